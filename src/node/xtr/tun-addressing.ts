// The addresses and routes on the xTR's TUN as the configuration wants them, kept current across
// reloads: `update` adds what is new (all or nothing, through applyInterfaceConfig) and removes
// what went; `teardown` removes everything that was ever added (what is already gone is ignored).
import { applyInterfaceConfig, removeAddress, removeRoute } from '../../tun/interface.js';
import { formatPrefix } from '../../lisp/prefix.js';
import type { XtrConfig } from '../config/xtr-config.js';

export interface TunLayout {
  /** address/length, e.g. 192.0.2.1/32. */
  readonly addresses: ReadonlySet<string>;
  /** prefix/length without the instance-id. */
  readonly routes: ReadonlySet<string>;
}

/** The TUN addresses (local EID addresses, the crypto-EID) and routes a configuration asks for. */
export function tunLayout(config: XtrConfig): TunLayout {
  return {
    addresses: new Set([
      ...config.localEids.flatMap((e) => (e.address ? [`${e.address}/${e.prefix.family === 4 ? 32 : 128}`] : [])),
      ...(config.cryptoEid ? [`${config.cryptoEid.eid}/128`] : []),
    ]),
    routes: new Set(config.tun.routes.map((p) => formatPrefix(p).replace(/^\[\d+\]/, ''))),
  };
}

export class TunAddressing {
  private readonly teardowns: (() => Promise<void>)[] = [];

  private constructor(
    private readonly name: string,
    private current: TunLayout,
  ) {}

  /** Applies `layout` to the interface `name`; on failure nothing stays added. */
  static async apply(name: string, layout: TunLayout): Promise<TunAddressing> {
    const t = new TunAddressing(name, { addresses: new Set(), routes: new Set() });
    await t.update(layout);
    return t;
  }

  /**
   * Moves to `next`. Additions come first and fail as a whole (nothing changed, the error is
   * thrown); a removal that fails is reported in the returned list, not thrown.
   */
  async update(next: TunLayout): Promise<{ readonly changes: string[]; readonly problems: string[] }> {
    const addAddresses = [...next.addresses].filter((a) => !this.current.addresses.has(a));
    const addRoutes = [...next.routes].filter((r) => !this.current.routes.has(r));
    if (addAddresses.length + addRoutes.length > 0) this.teardowns.push(await applyInterfaceConfig({ name: this.name, addresses: addAddresses, routes: addRoutes }));
    const problems: string[] = [];
    const dropRoutes = [...this.current.routes].filter((r) => !next.routes.has(r));
    const dropAddresses = [...this.current.addresses].filter((a) => !next.addresses.has(a));
    for (const r of dropRoutes) await removeRoute(this.name, r).catch((error: unknown) => problems.push(String(error)));
    for (const a of dropAddresses) await removeAddress(this.name, a).catch((error: unknown) => problems.push(String(error)));
    this.current = next;
    const changes = [...addAddresses.map((a) => `tun address +${a}`), ...dropAddresses.map((a) => `tun address -${a}`), ...addRoutes.map((r) => `tun route +${r}`), ...dropRoutes.map((r) => `tun route -${r}`)];
    return { changes, problems };
  }

  /** Removes every route and address ever added, newest first. */
  async teardown(): Promise<void> {
    const failures: unknown[] = [];
    for (const t of this.teardowns.splice(0).reverse()) await t().catch((error: unknown) => failures.push(error));
    if (failures.length > 0) throw new AggregateError(failures, `tearing down ${this.name}`);
  }
}
