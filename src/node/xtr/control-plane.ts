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
import type { EidPrefix } from '../../lisp/prefix.js';
import { Registrar, type RegistrarConfig, type RegistrarStatus } from '../../lisp/xtr-control/registrar.js';
import { itrPeerAttach, Resolver, type ResolverAction } from '../../lisp/xtr-control/resolver.js';
import { Responder } from '../../lisp/xtr-control/responder.js';
import type { XtrConfig } from '../config/xtr-config.js';
import type { Logger } from '../log.js';
import { NamedCounters } from '../../lisp/named-counters.js';
import { ControlSender, ReceiveGuard } from '../receive-guard.js';
import { ticketFileProvider } from './ticket-file.js';
import type { PacketTap } from '../ops/packet-tap.js';
import { keyAuthentication } from './key-agreement.js';
import { RegistrationCounters, type RegistrationTotals } from './registration-counters.js';
import { ReplyTimer, type TimedRequest } from './reply-timer.js';

export const CONTROL_PORT = 4342;

type Action = { readonly kind: 'send'; readonly to: string; readonly port: number; readonly bytes: Uint8Array } | ResolverAction | { readonly kind: 'drop' };

export interface ControlPlaneDeps {
  readonly mapCache: MapCache<ItrPeer>;
  /** The cipher backend when encryption is on. */
  readonly backend: CipherBackend | undefined;
  /** Feeds held packets back through the ITR once their mapping is known. */
  readonly reinject: (packets: readonly Uint8Array[]) => void;
  /**
   * The EID-prefixes this node serves, shared with the ETR and changed in place by a reload (the
   * responder reads them at every request).
   */
  readonly localEids: EidPrefix[];
  /** Told the time from each timed request to its Map-Reply (the metrics' latency histogram). */
  readonly replyLatency?: (kind: TimedRequest, ms: number) => void;
  /** The capture tap while `lispnode capture` runs (control messages on 4342, both ways). */
  readonly tap?: () => PacketTap | undefined;
}

/** What the registrar is to register for `config`; `xtrId` stays the same for the process. */
/** A registrar for `config`, carrying the attestation ticket file's current ticket when there is one. */
function newRegistrar(config: XtrConfig, xtrId: Uint8Array, random: (n: number) => Uint8Array, log: Logger): Registrar {
  const ticketFile = config.cryptoEid?.ticketFile;
  return new Registrar(registrarConfig(config, xtrId), random, ticketFile === undefined ? {} : { attestationTicket: ticketFileProvider(ticketFile, log) });
}

function registrarConfig(config: XtrConfig, xtrId: Uint8Array): RegistrarConfig {
  return {
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
    rlocs: [{ address: config.underlay.address }],
    mapServers: config.mapServers.map((m) => ({ address: m.address, port: m.port, key: m.key, proxyReply: m.proxyReply })),
    xtrId,
    siteId: 0n,
  };
}

/** What became of each datagram on 4342: exactly one of these per datagram received. */
const DATAGRAM_OUTCOMES = ['map-notify', 'map-reply', 'map-request', 'smr', 'ecm', 'no-registrar', 'no-resolver', 'unsupported-type', 'handler-error'] as const;
type DatagramOutcome = (typeof DATAGRAM_OUTCOMES)[number];

/** Sends whose destination came out of a received datagram, not our configuration. */
const UNTRUSTED_SENDS: ReadonlySet<string> = new Set(['map-reply', 'smr', 'rloc-probe']);

export class XtrControlPlane {
  private timer: NodeJS.Timeout | undefined;
  private received = 0;
  private readonly outcomes = new NamedCounters(DATAGRAM_OUTCOMES);
  private readonly guard: ReceiveGuard;
  private readonly sender: ControlSender;
  private discarded = 0;
  private readonly random = (n: number): Uint8Array => randomBytes(n);
  readonly registrations = new RegistrationCounters();
  private readonly replies = new ReplyTimer();

  private constructor(
    private readonly socket: Socket,
    private registrar: Registrar | undefined,
    readonly resolver: Resolver<ItrPeer> | undefined,
    readonly responder: Responder,
    /** The resolver's map-resolver list, changed in place by a reload. */
    private readonly mapResolvers: string[],
    private readonly xtrId: Uint8Array,
    private readonly deps: ControlPlaneDeps,
    private readonly log: Logger,
    family: 4 | 6,
  ) {
    this.guard = new ReceiveGuard(log, 'xtr control 4342');
    this.sender = new ControlSender(socket, family, log);
  }

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
    const xtrId = randomBytes(16);
    const registrar = config.mapServers.length === 0 ? undefined : newRegistrar(config, xtrId, random, log);
    const v4 = config.localEids.find((e) => e.prefix.family === 4 && e.address)?.address;
    const v6 = config.localEids.find((e) => e.prefix.family === 6 && e.address)?.address ?? config.cryptoEid?.eid;
    const mapResolvers = config.mapResolvers.map((m) => m.address);
    const authentication = keyAuthentication(config);
    const resolver =
      config.mapResolvers.length === 0
        ? undefined
        : new Resolver<ItrPeer>({
            mapCache: deps.mapCache,
            mapResolvers,
            rlocs,
            sourceEids: { ...(v4 && { ipv4: v4 }), ...(v6 && { ipv6: v6 }) },
            controlPort: CONTROL_PORT,
            ...(enc.mode === 'required' && deps.backend && { encryption: { suite: enc.suite, backend: deps.backend } }),
            random,
            attach: itrPeerAttach,
            maxLearnedTtlMinutes: config.learnedMapCache.maxTtlMinutes,
            ...(config.cryptoEid && { signer: { instanceId: config.instanceId, eid: config.cryptoEid.eid, scalar: config.cryptoEid.key.scalar } }),
            ...(authentication && { authentication }),
          });
    const responder = new Responder({
      instanceId: config.instanceId,
      localEids: deps.localEids,
      rlocs,
      ...(enc.mode === 'required' && deps.backend && { encryption: { backend: deps.backend, suites: [enc.suite] } }),
      acceptClear: enc.mode === 'off' || enc.acceptClear,
      random,
      ...(authentication && { authentication }),
    });
    const plane = new XtrControlPlane(socket, registrar, resolver, responder, mapResolvers, xtrId, deps, log, config.underlay.family);
    socket.on('message', (bytes, from) => plane.receive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), from.address, from.port));
    socket.on('error', (error) => log.log('error', 'control socket error', { error: error.message }));
    plane.registrarAct(registrar?.start(Date.now()) ?? []);
    return plane;
  }

  /**
   * A map-cache miss: `eid` is 4 or 16 bytes (an ITR destination, or an ETR's unknown inner
   * source); `packet`, from the ITR, is held until the mapping arrives.
   */
  miss(iid: number, eid: Uint8Array, packet?: Uint8Array): void {
    if (this.resolver) this.act(this.resolver.miss(iid, eid, Date.now(), packet));
  }

  private local(): { address: string; port: number } {
    const { address, port } = this.socket.address();
    return { address, port };
  }

  /** One datagram: whatever a handler throws for it is a counted drop (receive-guard.ts). */
  private receive(bytes: Uint8Array, address: string, port: number): void {
    this.received++;
    try {
      this.outcomes.add(this.dispatch(bytes, address, port));
    } catch (error) {
      this.outcomes.add('handler-error');
      this.guard.caught(error, { from: `${address}:${port}`, length: bytes.length });
    }
  }

  private dispatch(bytes: Uint8Array, address: string, port: number): DatagramOutcome {
    const now = Date.now();
    this.deps.tap?.()?.underlay('in', this.local(), { address, port }, bytes);
    switch ((bytes[0] ?? 0) >>> 4) {
      case MESSAGE_TYPE.mapNotify:
        if (!this.registrar) return 'no-registrar';
        this.registrarAct(this.registrar.mapNotify(bytes, { address, port }, now));
        return 'map-notify';
      case MESSAGE_TYPE.mapReply: {
        if (!this.resolver) return 'no-resolver';
        const timed = this.replies.replied(bytes, now);
        if (timed) this.deps.replyLatency?.(timed.kind, timed.ms);
        this.act(this.resolver.receive(bytes, now));
        return 'map-reply';
      }
      case MESSAGE_TYPE.mapRequest:
        // S (Solicit-Map-Request, byte 0 bit 0x01): an ETR asks us, as an ITR, to re-resolve.
        if (((bytes[0] ?? 0) & 0x01) !== 0) {
          if (!this.resolver) return 'no-resolver';
          this.act(this.resolver.smr(bytes, address, now));
          return 'smr';
        }
        this.respond(bytes, address, port, now);
        return 'map-request';
      case MESSAGE_TYPE.ecm:
        this.respond(bytes, address, port, now);
        return 'ecm';
      default:
        return 'unsupported-type';
    }
  }

  /** The responder's answer to a Map-Request, a probe or a forwarded ECM. */
  private respond(bytes: Uint8Array, address: string, port: number, now: number): void {
    const actions = this.responder.receive(bytes, { address, port }, now);
    this.act(actions, address);
  }

  /** The registrar's actions: its sends are counted per map-server, its state changes observed. */
  private registrarAct(actions: readonly Action[]): void {
    for (const a of actions) if (a.kind === 'send') this.registrations.sent(a.to, a.port);
    if (this.registrar) this.registrations.observe(this.registrar.status());
    this.act(actions);
  }

  /**
   * Carries out the state machines' actions and re-arms the timer for their next deadline.
   * `origin`: the source of the datagram these actions answer.
   */
  private act(actions: readonly Action[], origin?: string): void {
    const now = Date.now();
    for (const action of actions) {
      switch (action.kind) {
        case 'send': {
          const what = 'what' in action ? action.what : undefined;
          if (what === 'map-request' || what === 'rloc-probe') this.replies.sent(what, action.bytes, now);
          const untrusted = what !== undefined && UNTRUSTED_SENDS.has(what) ? { untrusted: origin === undefined ? {} : { origin } } : {};
          if (this.sender.send(action.bytes, action.port, action.to, untrusted)) {
            this.deps.tap?.()?.underlay('out', this.local(), { address: action.to, port: action.port }, action.bytes);
          }
          break;
        }
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
   * difference through its configChanged). With `prefixes`, only those are named: a reload
   * solicits for the prefixes it removed — an ITR caching a kept prefix has nothing to learn, and
   * its re-resolution would replace a working session's keys for nothing.
   */
  localMappingsChanged(prefixes?: readonly EidPrefix[]): void {
    if (!prefixes) {
      this.act(this.responder.solicitMapRequests(Date.now()));
      return;
    }
    // The responder names the prefixes it serves: for this one call it serves exactly `prefixes`.
    const served = this.deps.localEids.splice(0, this.deps.localEids.length, ...prefixes);
    let actions: ReturnType<Responder['solicitMapRequests']>;
    try {
      actions = this.responder.solicitMapRequests(Date.now());
    } finally {
      this.deps.localEids.splice(0, this.deps.localEids.length, ...served);
    }
    this.act(actions);
  }

  /** Registers everything at once (a renewed attestation ticket should not wait for the next round). */
  refreshRegistrations(): void {
    if (this.registrar) this.registrarAct(this.registrar.refresh(Date.now()));
  }

  /** Throws RangeError when `config` cannot be registered (a prefix or map-server twice). */
  check(config: XtrConfig): void {
    if (config.mapServers.length > 0) newRegistrar(config, this.xtrId, this.random, this.log);
  }

  /**
   * A reload: map-servers and the registered set follow `config` (new records registered, removed
   * ones deregistered with TTL 0, a removed map-server told TTL 0 for everything), the resolver
   * uses the new map-resolvers, and ITRs caching a `removed` prefix are solicited (SMR). Call
   * check() first and update deps.localEids before: nothing here throws for a checked config.
   */
  reconfigure(config: XtrConfig, removed: readonly EidPrefix[]): void {
    const now = Date.now();
    if (config.mapServers.length === 0) {
      const last = this.registrar?.shutdown(now) ?? [];
      this.registrarAct(last);
      this.registrar = undefined;
    } else if (!this.registrar) {
      this.registrar = newRegistrar(config, this.xtrId, this.random, this.log);
      this.registrarAct(this.registrar.start(now));
    } else {
      this.registrarAct(this.registrar.configChanged(registrarConfig(config, this.xtrId), now));
    }
    this.mapResolvers.splice(0, this.mapResolvers.length, ...config.mapResolvers.map((m) => m.address));
    if (removed.length > 0) this.localMappingsChanged(removed);
  }

  private tick(): void {
    try {
      const now = Date.now();
      this.responder.expire(now);
      this.registrarAct(this.registrar?.tick(now) ?? []);
      this.act(this.resolver?.tick(now) ?? []);
    } catch (error) {
      this.guard.caught(error, { in: 'timer' });
      // Retry in a second rather than at a deadline that may already be past (a hot loop).
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.tick(), 1000);
      this.timer.unref();
    }
  }

  status(): {
    readonly registration: RegistrarStatus | undefined;
    readonly resolver: Readonly<Record<string, number>> | undefined;
    readonly responder: Readonly<Record<string, number>>;
    readonly unsupported: number;
    readonly heldDiscarded: number;
    /** Every datagram received on 4342, by what became of it; sends refused or failed, by reason. */
    readonly datagrams: { readonly received: number; readonly outcomes: Readonly<Record<string, number>> };
    readonly sendRefused: Readonly<Record<string, number>>;
    /** ITR locators the responder holds keys for, and how many of them only unproven candidates. */
    readonly inboundPeers: { readonly peers: number; readonly unproven: number };
    /** Map-Registers sent, Map-Notifies taken, unanswered rounds, per map-server (address:port). */
    readonly registrationTotals: Readonly<Record<string, RegistrationTotals>>;
  } {
    return {
      registrationTotals: Object.fromEntries([...this.registrations.all()].map(([k, t]) => [k, { ...t }])),
      registration: this.registrar?.status(),
      resolver: this.resolver ? Object.fromEntries(this.resolver.counters) : undefined,
      responder: Object.fromEntries(this.responder.counters),
      unsupported: this.outcomes.get('unsupported-type'),
      heldDiscarded: this.discarded,
      datagrams: { received: this.received, outcomes: this.outcomes.snapshot() },
      sendRefused: this.sender.refused.snapshot(),
      inboundPeers: this.responder.peerCounts,
    };
  }

  /** Deregisters everything (TTL 0 to every map-server), then closes the socket once sent. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const actions = this.registrar?.shutdown(Date.now()) ?? [];
    for (const a of actions) if (a.kind === 'send') this.registrations.sent(a.to, a.port);
    await Promise.all(actions.map((a) => (a.kind === 'send' ? new Promise<void>((resolve) => this.sender.send(a.bytes, a.port, a.to, { done: resolve })) : Promise.resolve())));
    this.socket.close();
    this.log.log('info', 'control plane stopped', { deregistrations: actions.length });
  }
}
