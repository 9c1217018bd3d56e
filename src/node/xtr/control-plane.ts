// The xTR's control plane on UDP 4342 (dgram: control traffic is light): registration with the
// map-servers (registrar), resolution of map-cache misses with key exchange and RLOC probing
// (resolver, ITR side), and answers to Map-Requests and probes (responder, ETR side). The state
// machines are sans-IO; this file owns the socket, the clock (wall time: registration signatures
// carry it) and the one timer that wakes them.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import type { CipherBackend } from '../../crypto/cipher-backend.js';
import type { ItrPeer } from '../../lisp/itr.js';
import type { MapCache } from '../../lisp/map-cache.js';
import { MESSAGE_TYPE } from '../../lisp/message-type.js';
import { Registrar, type RegistrarStatus } from '../../lisp/xtr-control/registrar.js';
import { itrPeerAttach, Resolver, type ResolverAction } from '../../lisp/xtr-control/resolver.js';
import { Responder } from '../../lisp/xtr-control/responder.js';
import { servedEidPrefixes, type XtrConfig } from '../config/xtr-config.js';
import type { Logger } from '../log.js';

export const CONTROL_PORT = 4342;

type Action = { readonly kind: 'send'; readonly to: string; readonly port: number; readonly bytes: Uint8Array } | ResolverAction | { readonly kind: 'drop' };

export interface ControlPlaneDeps {
  readonly mapCache: MapCache<ItrPeer>;
  /** The cipher backend when encryption is on. */
  readonly backend: CipherBackend | undefined;
  /** Feeds held packets back through the ITR once their mapping is known. */
  readonly reinject: (packets: readonly Uint8Array[]) => void;
}

export class XtrControlPlane {
  private timer: NodeJS.Timeout | undefined;
  private unsupported = 0;
  private discarded = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly registrar: Registrar | undefined,
    readonly resolver: Resolver<ItrPeer> | undefined,
    readonly responder: Responder,
    private readonly deps: ControlPlaneDeps,
    private readonly log: Logger,
  ) {}

  static async start(config: XtrConfig, deps: ControlPlaneDeps, log: Logger): Promise<XtrControlPlane> {
    const socket = createSocket({ type: config.underlay.family === 4 ? 'udp4' : 'udp6' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(CONTROL_PORT, config.underlay.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const random = (n: number): Uint8Array => randomBytes(n);
    const rlocs = [config.underlay.address];
    const enc = config.encryption;
    const registrar =
      config.mapServers.length === 0
        ? undefined
        : new Registrar(
            {
              eids: config.localEids.map((e) => e.prefix),
              ...(config.cryptoEid && {
                cryptoEids: [
                  {
                    keyPair: config.cryptoEid.key,
                    instanceId: config.instanceId,
                    prefix: { address: config.cryptoEid.prefix.address, length: config.cryptoEid.prefix.length },
                    derivation: config.cryptoEid.derivation,
                  },
                ],
              }),
              rlocs: rlocs.map((address) => ({ address })),
              mapServers: config.mapServers.map((m) => ({ address: m.address, port: m.port, key: m.key, proxyReply: m.proxyReply })),
              xtrId: randomBytes(16),
              siteId: 0n,
            },
            random,
          );
    const v4 = config.localEids.find((e) => e.prefix.family === 4 && e.address)?.address;
    const v6 = config.localEids.find((e) => e.prefix.family === 6 && e.address)?.address ?? config.cryptoEid?.eid;
    const resolver =
      config.mapResolvers.length === 0
        ? undefined
        : new Resolver<ItrPeer>({
            mapCache: deps.mapCache,
            mapResolvers: config.mapResolvers.map((m) => m.address),
            rlocs,
            sourceEids: { ...(v4 && { ipv4: v4 }), ...(v6 && { ipv6: v6 }) },
            controlPort: CONTROL_PORT,
            ...(enc.mode === 'required' && deps.backend && { encryption: { suite: enc.suite, backend: deps.backend } }),
            random,
            attach: itrPeerAttach,
            ...(config.cryptoEid && { signer: { instanceId: config.instanceId, eid: config.cryptoEid.eid, scalar: config.cryptoEid.key.scalar } }),
          });
    const responder = new Responder({
      instanceId: config.instanceId,
      localEids: servedEidPrefixes(config),
      rlocs,
      ...(enc.mode === 'required' && deps.backend && { encryption: { backend: deps.backend, suites: [enc.suite] } }),
      acceptClear: enc.mode === 'off' || enc.acceptClear,
      random,
    });
    const plane = new XtrControlPlane(socket, registrar, resolver, responder, deps, log);
    socket.on('message', (bytes, from) => plane.receive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), from.address, from.port));
    socket.on('error', (error) => log.log('error', 'control socket error', { error: error.message }));
    plane.act(registrar?.start(Date.now()) ?? []);
    return plane;
  }

  /**
   * A map-cache miss: `eid` is 4 or 16 bytes (an ITR destination, or an ETR's unknown inner
   * source); `packet`, from the ITR, is held until the mapping arrives.
   */
  miss(iid: number, eid: Uint8Array, packet?: Uint8Array): void {
    if (this.resolver) this.act(this.resolver.miss(iid, eid, Date.now(), packet));
  }

  private receive(bytes: Uint8Array, address: string, port: number): void {
    const now = Date.now();
    switch ((bytes[0] ?? 0) >>> 4) {
      case MESSAGE_TYPE.mapNotify:
        if (this.registrar) this.act(this.registrar.mapNotify(bytes, { address, port }, now));
        return;
      case MESSAGE_TYPE.mapReply:
        if (this.resolver) this.act(this.resolver.receive(bytes, now));
        return;
      case MESSAGE_TYPE.mapRequest:
        // S (Solicit-Map-Request, byte 0 bit 0x01): an ETR asks us, as an ITR, to re-resolve.
        if (((bytes[0] ?? 0) & 0x01) !== 0) {
          if (this.resolver) this.act(this.resolver.smr(bytes, address, now));
          return;
        }
        this.act(this.responder.receive(bytes, { address, port }, now));
        return;
      case MESSAGE_TYPE.ecm:
        this.act(this.responder.receive(bytes, { address, port }, now));
        return;
      default:
        this.unsupported++;
    }
  }

  /** Carries out the state machines' actions and re-arms the timer for their next deadline. */
  private act(actions: readonly Action[]): void {
    for (const action of actions) {
      switch (action.kind) {
        case 'send':
          this.socket.send(action.bytes, action.port, action.to);
          break;
        case 'reinject':
          this.deps.reinject(action.packets);
          break;
        case 'discard':
          this.discarded += action.count;
          break;
        case 'drop':
          break;
      }
    }
    if (this.timer) clearTimeout(this.timer);
    const deadlines = [this.registrar?.nextTimer(), this.resolver?.nextTimer()].filter((t): t is number => t !== undefined);
    if (deadlines.length > 0) {
      this.timer = setTimeout(() => this.tick(), Math.max(0, Math.min(...deadlines) - Date.now()));
      this.timer.unref();
    }
  }

  /**
   * Our local mappings changed: SMRs to the ITRs that cached them (the registrar registers the
   * difference through its configChanged). The configuration reload is to call this.
   */
  localMappingsChanged(): void {
    this.act(this.responder.solicitMapRequests(Date.now()));
  }

  private tick(): void {
    const now = Date.now();
    this.responder.expire(now);
    this.act([...(this.registrar?.tick(now) ?? []), ...(this.resolver?.tick(now) ?? [])]);
  }

  status(): {
    readonly registration: RegistrarStatus | undefined;
    readonly resolver: Readonly<Record<string, number>> | undefined;
    readonly responder: Readonly<Record<string, number>>;
    readonly unsupported: number;
    readonly heldDiscarded: number;
  } {
    return {
      registration: this.registrar?.status(),
      resolver: this.resolver ? Object.fromEntries(this.resolver.counters) : undefined,
      responder: Object.fromEntries(this.responder.counters),
      unsupported: this.unsupported,
      heldDiscarded: this.discarded,
    };
  }

  /** Deregisters everything (TTL 0 to every map-server), then closes the socket once sent. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const actions = this.registrar?.shutdown(Date.now()) ?? [];
    await Promise.all(
      actions.map((a) => (a.kind === 'send' ? new Promise<void>((resolve) => this.socket.send(a.bytes, a.port, a.to, () => resolve())) : Promise.resolve())),
    );
    this.socket.close();
    this.log.log('info', 'control plane stopped', { deregistrations: actions.length });
  }
}
