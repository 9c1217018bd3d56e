// Addresses and EID-prefix routes on the TUN interface, through iproute2's `ip` (execFile, no
// shell). openTun already set the MTU and brought the link up; this adds the rest and returns its
// teardown. Routes go `dev <tun>` for both families: a TUN is point-to-point, so no gateway.
// The exported functions are async, so a bad argument is a rejection, like a failed command.
import { execFile } from 'node:child_process';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * An `ip` command that failed: the command line, its exit code (or the signal that ended it, or
 * undefined when it did not run) and what it printed on stderr.
 */
export class IpCommandError extends Error {
  override readonly name = 'IpCommandError';
  constructor(
    readonly command: string,
    readonly exitCode: number | NodeJS.Signals | undefined,
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    const detail = stderr.trim() === '' ? 'no output on stderr' : stderr.trim();
    const status = typeof exitCode === 'number' ? `exit ${exitCode}` : (exitCode ?? 'did not run');
    super(`\`${command}\` failed (${status}): ${detail}`, options);
  }
}

export interface RouteOptions {
  /** Routing table id or name (`ip route … table <table>`); default: main. */
  readonly table?: number | string;
  /** Preferred source address of locally originated packets (`src`), of the prefix's family. */
  readonly src?: string;
}

export interface InterfaceConfig {
  readonly name: string;
  /** Addresses with their prefix length, e.g. '192.0.2.1/24', '2001:db8::1/64'. */
  readonly addresses: readonly string[];
  /** Prefixes routed into the interface, e.g. '198.18.0.0/15', 'fd00::/8'. */
  readonly routes: readonly string[];
}

type Family = 4 | 6;

function ipCommand(args: readonly string[]): Promise<void> {
  const command = ['ip', ...args].join(' ');
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8', timeout: 10_000 }, (error, _stdout, stderr) => {
      if (error === null) {
        resolve();
        return;
      }
      const code = (error as { code?: unknown }).code;
      if (code === 'ENOENT') {
        reject(new IpCommandError(command, undefined, "iproute2's `ip` is not installed (or not on PATH)", { cause: error }));
        return;
      }
      const exitCode = typeof code === 'number' ? code : (error.signal ?? undefined);
      reject(new IpCommandError(command, exitCode, stderr, { cause: error }));
    });
  });
}

function checkInterfaceName(ifname: string): void {
  if (ifname.length === 0 || Buffer.byteLength(ifname) > 15 || /[\s/:]/.test(ifname) || ifname.startsWith('-')) {
    throw new RangeError(`invalid interface name ${JSON.stringify(ifname)}`);
  }
}

/** The family of 'address/length', checked. */
function cidrFamily(cidr: string): Family {
  const slash = cidr.indexOf('/');
  if (slash < 0) throw new RangeError(`${JSON.stringify(cidr)} has no prefix length (address/length)`);
  const address = cidr.slice(0, slash);
  const lengthText = cidr.slice(slash + 1);
  const family: Family | undefined = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined) throw new RangeError(`${JSON.stringify(cidr)} is not an IPv4 or IPv6 address/length`);
  const length = /^\d{1,3}$/.test(lengthText) ? Number(lengthText) : NaN;
  if (!(length <= (family === 4 ? 32 : 128))) throw new RangeError(`${JSON.stringify(cidr)} has an invalid prefix length`);
  return family;
}

function addressArgs(verb: 'add' | 'del', ifname: string, cidr: string): string[] {
  checkInterfaceName(ifname);
  const family = cidrFamily(cidr);
  const args = [`-${family}`, 'address', verb, cidr, 'dev', ifname];
  // No duplicate address detection: on a point-to-point TUN there is nobody to collide with, and
  // DAD would keep the address tentative (unusable as a source) for a second or more.
  if (verb === 'add' && family === 6) args.push('nodad');
  return args;
}

function routeArgs(verb: 'add' | 'del', ifname: string, cidr: string, options: RouteOptions): string[] {
  checkInterfaceName(ifname);
  const family = cidrFamily(cidr);
  const args = [`-${family}`, 'route', verb, cidr, 'dev', ifname];
  if (options.src !== undefined) {
    const valid = family === 4 ? isIPv4(options.src) : isIPv6(options.src);
    if (!valid) {
      throw new RangeError(`route ${cidr}: src ${JSON.stringify(options.src)} is not an IPv${family} address`);
    }
    args.push('src', options.src);
  }
  if (options.table !== undefined) {
    const table = String(options.table);
    if (!/^[A-Za-z0-9_-]+$/.test(table) || table.startsWith('-')) throw new RangeError(`invalid routing table ${JSON.stringify(table)}`);
    args.push('table', table);
  }
  return args;
}

/** `ip address add <cidr> dev <ifname>` (IPv6: with `nodad`). Fails if the address is already there. */
export async function addAddress(ifname: string, cidr: string): Promise<void> {
  await ipCommand(addressArgs('add', ifname, cidr));
}

/** `ip address del <cidr> dev <ifname>`. */
export async function removeAddress(ifname: string, cidr: string): Promise<void> {
  await ipCommand(addressArgs('del', ifname, cidr));
}

/** `ip route add <cidr> dev <ifname> [src …] [table …]`. Fails if the route is already there. */
export async function addRoute(ifname: string, cidr: string, options: RouteOptions = {}): Promise<void> {
  await ipCommand(routeArgs('add', ifname, cidr, options));
}

/** `ip route del <cidr> dev <ifname> [src …] [table …]`. */
export async function removeRoute(ifname: string, cidr: string, options: RouteOptions = {}): Promise<void> {
  await ipCommand(routeArgs('del', ifname, cidr, options));
}

// What `ip` says when the thing to delete is not there any more: the route or address is gone
// (ESRCH, EADDRNOTAVAIL, or the kernel's extack text instead, e.g. "Error: ipv6: address not
// found."), or the whole interface is, and everything on it with it.
const ALREADY_GONE = [/No such process/, /Cannot assign requested address/, /address not found/i, /Cannot find device/, /No such device/];

function isAlreadyGone(error: unknown): boolean {
  return error instanceof IpCommandError && ALREADY_GONE.some((pattern) => pattern.test(error.stderr));
}

/**
 * Adds `config.addresses`, then routes `config.routes` into `config.name`. Every argument is
 * checked before the first command runs; when a command fails, what was added is removed again and
 * the error is thrown. Resolves to the teardown, which removes the routes and then the addresses,
 * ignores what is already gone (the interface closed, say), and throws an AggregateError of the
 * other failures after trying everything.
 */
export async function applyInterfaceConfig(config: InterfaceConfig): Promise<() => Promise<void>> {
  const { name } = config;
  const steps: { readonly add: string[]; readonly del: string[] }[] = [
    ...config.addresses.map((cidr) => ({ add: addressArgs('add', name, cidr), del: addressArgs('del', name, cidr) })),
    ...config.routes.map((cidr) => ({ add: routeArgs('add', name, cidr, {}), del: routeArgs('del', name, cidr, {}) })),
  ];
  const applied: string[][] = [];
  const teardown = async (): Promise<void> => {
    const failures: unknown[] = [];
    for (const del of applied.splice(0).reverse()) {
      try {
        await ipCommand(del);
      } catch (error) {
        if (!isAlreadyGone(error)) failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `tearing down ${name}: ${failures.length} command(s) failed`);
  };
  for (const step of steps) {
    try {
      await ipCommand(step.add);
    } catch (error) {
      try {
        await teardown();
      } catch {
        // The rollback is best effort; the first failure is the one to report.
      }
      throw error;
    }
    applied.push(step.del);
  }
  return teardown;
}
