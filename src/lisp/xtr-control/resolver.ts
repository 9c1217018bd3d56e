// The ITR's resolution and key exchange (RFC 9301 §5.2-5.4, §6.1 RLOC probing; RFC 8061 §6;
// lisp-protocol.md §2.2, §2.7, §2.8, §4.2, §4.5), sans-IO: map-cache misses in, ECM'd
// Map-Requests to the map-resolvers out; Map-Replies in, map-cache entries, sealing keys and
// re-injected packets out; RLOC probes on timers. `now` is milliseconds on the caller's clock,
// every random byte comes from the caller's `random`.
//
// - Rate limits: one request at a time per EID, at least `perEidIntervalMs` apart, and a global
//   token bucket (lispers.net allows one data-triggered request per 500 ms; we allow a burst).
// - Retries after 1 s, 2 s, 4 s (each to the next map-resolver: failover), then a short negative
//   entry (action send-map-request) so the data plane stops asking for a while.
// - Each attempt has its own nonce, so a reply tells which map-resolver answered; that one is tried
//   first next time.
// - With encryption on, the first ITR-RLOC is a Security Key LCAF; the pair is remembered per
//   request and, once a locator is keyed, per locator: probes offer it again (no new DH, as
//   lispers.net) until a rekey is due, then a fresh pair under the next key-id.
// - Probes (P=1, not encapsulated) go to every learned locator every 10 s; a locator is down after
//   `probeMissedLimit` unanswered probes or `probeReplyWaitMs` without an answer.
// - Signed key agreement (`authentication`, key-agreement-proof.ts): every offer carries our
//   crypto-EID's proof; an answer's proof must hold or its key is refused. Traffic to a crypto-EID
//   is sealed only under a key whose answer was signed by exactly that EID (`sealingFor`), and a
//   locator once authenticated takes no unsigned key and is not unkeyed by an unsigned reply.
import type { CipherBackend } from '../../crypto/cipher-backend.js';
import type { CipherSuite } from '../../crypto/cipher-suite.js';
import { signMapRequest } from '../../crypto/eid-signature.js';
import type { SealingSession, SessionLimits } from '../../crypto/session.js';
import type { DataPlaneKeys, X25519KeyPair } from '../../crypto/x25519-kdf.js';
import { ip, NO_ADDRESS, withInstanceId, type Address } from '../address.js';
import { decodeControl, encodeControl } from '../control.js';
import type { ItrPeer } from '../itr.js';
import { ECM_DEFAULTS, type Ecm } from '../ecm.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../ip-text.js';
import type { IpHeader } from '../ip-udp.js';
import { TTL_SECONDS_FLAG, type MapCache, type MapCacheLocator, type PositiveEntry } from '../map-cache.js';
import type { MapReply } from '../map-reply.js';
import { MAP_REQUEST_DEFAULTS, type MapRequest } from '../map-request.js';
import { familyBits, formatPrefix, prefixCovers, prefixOfEid } from '../prefix.js';
import { ACTION, EID_RECORD_DEFAULTS, type EidRecord, type LocatorRecord } from '../records.js';
import { eidInPrefix } from '../../crypto/crypto-eid.js';
import type { EidPrefix } from '../prefix.js';
import { answerTranscript, checkProof, jsonAddress, KEY_PROOF_REFUSALS, makeProof, offerTranscript, PROOF_FIELD, proofIn, transcriptEid, type CryptoEidScope, type KeyAgreementIdentity, type ProofFields } from './key-agreement-proof.js';
import { createItrPeer, generateKeyPair, ipOf, LocatorSealing, offeredKey, sameAuthentication, sameBytes, securityKeyAddress, type Random } from './key-exchange.js';

export const LISP_CONTROL_PORT = 4342;

export interface ResolverTimers {
  /** Wait after attempt i before attempt i+1 (or giving up after the last). */
  readonly retryDelaysMs: readonly number[];
  /** Lifetime of the negative entry after the last attempt went unanswered. */
  readonly negativeTtlMs: number;
  /** At most one Map-Request per EID in this interval (RFC 9301: <= 1/s). */
  readonly perEidIntervalMs: number;
  /** Global token bucket: sustained requests per second and burst. */
  readonly globalPerSecond: number;
  readonly globalBurst: number;
  readonly probeIntervalMs: number;
  readonly probeReplyWaitMs: number;
  readonly probeMissedLimit: number;
  /**
   * At most one SMR-invoked re-resolution per cached mapping in this interval. Each one is a
   * Map-Request and a new key pair, and an SMR is only as good as its source address: anyone who
   * can spoof a peer's locator could otherwise have us re-resolve and rekey at will.
   */
  readonly smrIntervalMs: number;
}

export const DEFAULT_RESOLVER_TIMERS: ResolverTimers = {
  retryDelaysMs: [1000, 2000, 4000],
  negativeTtlMs: 15_000,
  perEidIntervalMs: 1000,
  globalPerSecond: 10,
  globalBurst: 20,
  probeIntervalMs: 10_000,
  probeReplyWaitMs: 15_000,
  probeMissedLimit: 3,
  // One change of an ETR's mappings sends one SMR per prefix, at once: the first is honoured. A
  // forged flood then costs one Map-Request and one key pair per mapping per 30 s. An SMR
  // refused here is not retried by anyone: a second real change within 30 s reaches us when the
  // mapping's lifetime runs out, which the TTL bound (maxLearnedTtlMinutes) keeps short.
  smrIntervalMs: 30_000,
};

export interface HoldLimits {
  /** First packets of a missed flow kept per pending request. */
  readonly packetsPerRequest: number;
  /** All held packets together. */
  readonly totalBytes: number;
}

export const DEFAULT_HOLD_LIMITS: HoldLimits = { packetsPerRequest: 3, totalBytes: 256 * 1024 };

export interface ResolverOptions<S> {
  readonly mapCache: MapCache<S>;
  /** Map-resolver addresses, in order of preference. */
  readonly mapResolvers: readonly string[];
  /** Our RLOCs (IPv4/IPv6 text): the ITR-RLOCs of our requests. */
  readonly rlocs: readonly string[];
  /** Inner source address of ECM'd requests per family; our RLOC of that family when absent. */
  readonly sourceEids?: { readonly ipv4?: string; readonly ipv6?: string };
  /** Our control socket's port: inner UDP source of ECMs (the Map-Reply comes back there). */
  readonly controlPort: number;
  /** Key exchange on; absent = plain ITR-RLOCs and no sealing keys. */
  readonly encryption?: { readonly suite: CipherSuite; readonly backend: CipherBackend; readonly limits?: SessionLimits };
  readonly timers?: Partial<ResolverTimers>;
  readonly hold?: Partial<HoldLimits>;
  readonly random: Random;
  /** The data plane's object for a map-cache locator (see `itrPeerAttach`); called again when its keys change. */
  readonly attach: (locator: MapCacheLocator<S>, sealing: SealingSession | undefined) => S;
  /** Default true. */
  readonly probing?: boolean;
  /**
   * A crypto-EID of this node and its private scalar: Map-Requests of its family are then signed
   * (lisp-protocol.md §5.5, lispers.net's format), so map-servers can apply lookup policies to us.
   */
  readonly signer?: { readonly instanceId: number; readonly eid: string; readonly scalar: Uint8Array };
  /** Upper bound on a learned mapping's lifetime, whatever its TTL says; default DEFAULT_MAX_LEARNED_TTL_MINUTES. */
  readonly maxLearnedTtlMinutes?: number;
  /** Signed key agreement: our crypto-EID signs every offer; crypto-EIDs (`scope`) get only keys their own EID signed. */
  readonly authentication?: { readonly identity: KeyAgreementIdentity; readonly scope: CryptoEidScope };
}

/**
 * An hour. The answering ETR chooses a mapping's TTL (usually a day): a wrong mapping (a lie the
 * resolver cannot tell from the truth, or a change whose SMR was lost or rate-limited) would
 * stay that long. An hour costs one Map-Request (and one key exchange) per mapping in use per hour.
 */
export const DEFAULT_MAX_LEARNED_TTL_MINUTES = 60;

/** 'not-installed': no record of the reply answered the request, or the map-cache refused it (full, static). */
export type HeldDropReason = 'resolution-failed' | 'negative-reply' | 'not-installed';

export type ResolverAction =
  | { readonly kind: 'send'; readonly what: 'map-request' | 'rloc-probe'; readonly to: string; readonly port: number; readonly bytes: Uint8Array }
  /** Held packets to feed through the ITR again (the mapping is now known). */
  | { readonly kind: 'reinject'; readonly iid: number; readonly packets: readonly Uint8Array[] }
  /** Held packets given up on. */
  | { readonly kind: 'discard'; readonly iid: number; readonly reason: HeldDropReason; readonly count: number };

export const RESOLVER_COUNTERS = [
  'map-request-sent',
  'map-request-retry',
  'already-pending',
  'rate-limited-eid',
  'rate-limited-global',
  'no-source-address',
  'no-map-resolver',
  'resolution-failed',
  'held',
  'held-dropped-full',
  'decode-error',
  'not-a-map-reply',
  'map-reply-unknown-nonce',
  'map-reply-record-ignored',
  /** A record whose prefix does not contain the requested EID (another EID, instance or family). */
  'map-reply-record-outside-request',
  /** A record containing the requested EID, but a more specific one (or an earlier one as specific) answered. */
  'map-reply-record-superseded',
  /** The answering record was not installed: the map-cache holds its maximum of learned entries. */
  'map-cache-full',
  'map-reply-negative',
  'key-installed',
  'key-refused-suite',
  'key-malformed',
  'key-derivation-failed',
  /** An answer signed by a crypto-EID, its proof checked. */
  'key-answer-authenticated',
  ...KEY_PROOF_REFUSALS,
  /** An unsigned answer for a locator whose key is authenticated: no downgrade. */
  'key-unsigned-refused',
  /** A keyless probe reply from an authenticated locator: its key stays. */
  'unkey-refused',
  'unkeyed',
  'probe-sent',
  'probe-no-rloc',
  'probe-reply',
  'probe-reply-without-p',
  'locator-down',
  'locator-up',
  'smr-honoured',
  'smr-ignored',
  /** An SMR for a mapping already re-resolved for an SMR within smrIntervalMs. */
  'smr-rate-limited',
] as const;
export type ResolverCounter = (typeof RESOLVER_COUNTERS)[number];

interface Pending {
  readonly key: string;
  readonly iid: number;
  readonly family: 4 | 6;
  readonly eid: string;
  /** Attempts sent so far. */
  attempts: number;
  nextAt: number;
  resolverIndex: number;
  readonly nonces: bigint[];
  readonly pair: X25519KeyPair | undefined;
  readonly held: Uint8Array[];
  heldBytes: number;
  /** Sent because the mapping's ETR solicited it (SMR): the request carries s. */
  readonly smrInvoked: boolean;
}

interface Outstanding {
  readonly sentAt: number;
  readonly pair: X25519KeyPair | undefined;
}

interface ProbeState {
  readonly address: string;
  readonly family: 4 | 6;
  nextProbeAt: number;
  readonly outstanding: Map<bigint, Outstanding>;
  firstUnansweredAt: number | undefined;
  reachable: boolean;
  /** An EID-prefix this locator serves: the probe's target record. */
  target: { readonly iid: number; readonly eid: Address; readonly length: number };
}

export class Resolver<S> {
  readonly counters = new Map<ResolverCounter, number>();
  private readonly timers: ResolverTimers;
  private readonly hold: HoldLimits;
  private readonly pending = new Map<string, Pending>();
  private readonly requestNonces = new Map<bigint, { readonly pending: Pending; readonly resolverIndex: number }>();
  private readonly recent = new Map<string, number>();
  private readonly probes = new Map<string, ProbeState>();
  private readonly probeNonces = new Map<bigint, ProbeState>();
  /** Sealing state per remote locator address: where the ITR's keys live. */
  private readonly sealings = new Map<string, LocatorSealing>();
  private preferredResolver = 0;
  private tokens: number;
  private tokensAt: number | undefined;
  private heldBytes = 0;
  private readonly maxLearnedTtlMinutes: number;
  /** Mapping (prefix text) -> when an SMR for it was last honoured; oldest first (Map order). */
  private readonly smrHonouredAt = new Map<string, number>();

  constructor(private readonly options: ResolverOptions<S>) {
    this.timers = { ...DEFAULT_RESOLVER_TIMERS, ...options.timers };
    this.maxLearnedTtlMinutes = options.maxLearnedTtlMinutes ?? DEFAULT_MAX_LEARNED_TTL_MINUTES;
    if (!(this.maxLearnedTtlMinutes > 0)) throw new RangeError(`maxLearnedTtlMinutes ${this.maxLearnedTtlMinutes}`);
    this.hold = { ...DEFAULT_HOLD_LIMITS, ...options.hold };
    this.tokens = this.timers.globalBurst;
    if (!Number.isInteger(options.controlPort) || options.controlPort < 1 || options.controlPort > 0xffff) throw new RangeError(`control port ${options.controlPort}`);
    if (this.timers.retryDelaysMs.length < 1) throw new RangeError('at least one attempt');
  }

  // ------------------------------------------------------------------ public surface

  /** The sealing state for a remote locator (address text), if any exchange has happened. */
  sealingFor(address: string): LocatorSealing | undefined {
    return this.sealings.get(address);
  }

  /** Whether a probed locator is currently considered reachable (undefined: not probed). */
  reachability(address: string): boolean | undefined {
    return this.probes.get(address)?.reachable;
  }

  /** Asks for a fresh key pair (and the next key-id) on the next probe to `address`, which is sent now. */
  requestRekey(address: string, now: number): void {
    const s = this.sealings.get(address);
    if (s) s.rekeyWanted = true;
    const p = this.probes.get(address);
    if (p) p.nextProbeAt = Math.min(p.nextProbeAt, now);
  }

  /**
   * A map-cache miss for `eid` (4 or 16 bytes) in instance `iid`. `packet`, when given, is copied
   * and held until the request ends (bounded), then handed back by a 'reinject' or 'discard' action.
   */
  miss(iid: number, eid: Uint8Array, now: number, packet?: Uint8Array, options: { readonly smrInvoked?: boolean } = {}): ResolverAction[] {
    if (eid.length !== 4 && eid.length !== 16) throw new RangeError('an EID is 4 or 16 bytes');
    const family: 4 | 6 = eid.length === 4 ? 4 : 6;
    const text = family === 4 ? formatIpv4(eid) : formatIpv6(eid);
    const key = `[${iid}]${text}`;
    const existing = this.pending.get(key);
    if (existing) {
      this.count('already-pending');
      if (packet) this.holdPacket(existing, packet);
      return [];
    }
    const last = this.recent.get(key);
    if (last !== undefined && now - last < this.timers.perEidIntervalMs) {
      this.count('rate-limited-eid');
      return [];
    }
    if (this.options.mapResolvers.length === 0) {
      this.count('no-map-resolver');
      return [];
    }
    if (!this.takeToken(now)) {
      this.count('rate-limited-global');
      return [];
    }
    const p: Pending = {
      key,
      iid,
      family,
      eid: text,
      attempts: 0,
      nextAt: now,
      resolverIndex: this.preferredResolver,
      nonces: [],
      pair: this.options.encryption ? generateKeyPair(this.options.random) : undefined,
      held: [],
      heldBytes: 0,
      smrInvoked: options.smrInvoked ?? false,
    };
    const action = this.sendRequest(p, now);
    if (!action) return [];
    this.pending.set(key, p);
    this.recent.set(key, now);
    if (packet) this.holdPacket(p, packet);
    return [action];
  }

  /**
   * A Solicit-Map-Request (a Map-Request with S) from `from`: an ETR says its mapping changed. It
   * is honoured only for EIDs whose cached mapping lists `from` among its locators — anyone else
   * could otherwise make us query at will — and answered with an SMR-invoked (s) Map-Request
   * through the map-resolver, rate-limited like any other. A source address is easy to forge, so
   * each mapping is re-resolved for an SMR at most once per `smrIntervalMs` (smr-rate-limited).
   */
  smr(bytes: Uint8Array, from: string, now: number): ResolverAction[] {
    const decoded = decodeControl(bytes);
    if (!decoded.ok || decoded.value.type !== 'map-request' || !decoded.value.smr) {
      this.count('smr-ignored');
      return [];
    }
    const out: ResolverAction[] = [];
    for (const record of decoded.value.records) {
      let iid = 0;
      let eid = record.eid;
      if (eid.afi === 'lcaf' && eid.lcaf.type === 'instance-id') {
        iid = eid.lcaf.instanceId;
        eid = eid.lcaf.address;
      }
      const bytes = eid.afi === 'ipv4' ? parseIpv4(eid.address) : eid.afi === 'ipv6' ? parseIpv6(eid.address) : undefined;
      const entry = bytes && this.options.mapCache.lookupAddress(iid, bytes, now);
      if (!bytes || entry?.kind !== 'positive' || !entry.locators.some((l) => l.address === from)) {
        this.count('smr-ignored');
        continue;
      }
      if (!this.smrAllowed(formatPrefix(entry.prefix), now)) {
        this.count('smr-rate-limited');
        continue;
      }
      this.count('smr-honoured');
      out.push(...this.miss(iid, bytes, now, undefined, { smrInvoked: true }));
    }
    return out;
  }

  /**
   * Whether an SMR for `mapping` may re-resolve it now, and if so remembers that it did. Entries
   * are kept in the order they were honoured, so the expired ones are at the front and go first:
   * the memory holds only the mappings honoured in the last interval.
   */
  private smrAllowed(mapping: string, now: number): boolean {
    const interval = this.timers.smrIntervalMs;
    for (const [key, at] of this.smrHonouredAt) {
      if (now - at < interval) break;
      this.smrHonouredAt.delete(key);
    }
    const last = this.smrHonouredAt.get(mapping);
    if (last !== undefined && now - last < interval) return false;
    this.smrHonouredAt.delete(mapping);
    this.smrHonouredAt.set(mapping, now);
    return true;
  }

  /** A datagram from the control socket (our control port); only Map-Replies are ours. */
  receive(bytes: Uint8Array, now: number): ResolverAction[] {
    const decoded = decodeControl(bytes);
    if (!decoded.ok) {
      this.count('decode-error');
      return [];
    }
    if (decoded.value.type !== 'map-reply') {
      this.count('not-a-map-reply');
      return [];
    }
    return this.handleMapReply(decoded.value, now);
  }

  handleMapReply(reply: MapReply, now: number): ResolverAction[] {
    const probe = this.probeNonces.get(reply.nonce);
    if (probe) {
      if (!reply.probe) {
        this.count('probe-reply-without-p');
        return [];
      }
      this.probeReply(probe, reply, now);
      return [];
    }
    const request = this.requestNonces.get(reply.nonce);
    if (!request) {
      this.count('map-reply-unknown-nonce');
      return [];
    }
    return this.resolutionReply(request.pending, request.resolverIndex, reply, now);
  }

  /** The earliest time `tick` has work; undefined when idle. */
  nextTimer(): number | undefined {
    let next = Infinity;
    for (const p of this.pending.values()) next = Math.min(next, p.nextAt);
    for (const s of this.probes.values()) {
      next = Math.min(next, s.nextProbeAt);
      if (s.firstUnansweredAt !== undefined && s.reachable) next = Math.min(next, s.firstUnansweredAt + this.timers.probeReplyWaitMs);
    }
    return next === Infinity ? undefined : next;
  }

  tick(now: number): ResolverAction[] {
    const out: ResolverAction[] = [];
    for (const p of [...this.pending.values()]) {
      if (p.nextAt > now) continue;
      if (p.attempts < this.timers.retryDelaysMs.length) {
        p.resolverIndex = (p.resolverIndex + 1) % this.options.mapResolvers.length;
        const action = this.sendRequest(p, now);
        if (action) {
          this.count('map-request-retry');
          out.push(action);
          continue;
        }
      }
      this.giveUp(p, now, out);
    }
    for (const [key, at] of this.recent) if (now - at >= this.timers.perEidIntervalMs && !this.pending.has(key)) this.recent.delete(key);
    if (this.options.probing ?? true) this.probeTick(now, out);
    return out;
  }

  // ------------------------------------------------------------------ resolution

  private sendRequest(p: Pending, now: number): ResolverAction | undefined {
    const resolver = this.options.mapResolvers[p.resolverIndex % this.options.mapResolvers.length];
    if (resolver === undefined) return undefined;
    const resolverFamily = resolver.includes(':') ? 6 : 4;
    const itrRlocs = this.itrRlocs(resolverFamily, p.pair, 1);
    const rlocOfFamily = this.options.rlocs.find((r) => (r.includes(':') ? 6 : 4) === p.family);
    const sourceEid = p.family === 4 ? this.options.sourceEids?.ipv4 : this.options.sourceEids?.ipv6;
    const innerSource = sourceEid ?? rlocOfFamily;
    if (itrRlocs.length === 0 || innerSource === undefined) {
      this.count('no-source-address');
      return undefined;
    }
    const nonce = this.nonce();
    const eid = ip(p.eid);
    const signer = this.options.signer;
    const signed = signer !== undefined && signer.instanceId === p.iid && (signer.eid.includes(':') ? 6 : 4) === p.family;
    const bytes = encodeEcmMapRequest({
      smrInvoked: p.smrInvoked,
      nonce,
      iid: p.iid,
      eid: p.eid,
      sourceEid: signed ? signedSourceEid(signer, nonce, p.iid, eid, p.pair && this.offerProof(nonce, p.eid, 1, p.pair.publicKey)) : sourceEid === undefined ? NO_ADDRESS : wrapIid(p.iid, ip(sourceEid)),
      itrRlocs,
      innerSource: signed ? signer.eid : innerSource,
      sourcePort: this.options.controlPort,
    });
    p.attempts++;
    p.nextAt = now + (this.timers.retryDelaysMs[p.attempts - 1] ?? 0);
    p.nonces.push(nonce);
    this.requestNonces.set(nonce, { pending: p, resolverIndex: p.resolverIndex });
    this.count('map-request-sent');
    return { kind: 'send', what: 'map-request', to: resolver, port: LISP_CONTROL_PORT, bytes };
  }

  /** Our RLOCs, the one of `family` first; with a key pair, that first one is a Security Key LCAF. */
  private itrRlocs(family: 4 | 6, pair: X25519KeyPair | undefined, keyId: 1 | 2 | 3): Address[] {
    const ordered = [...this.options.rlocs].sort((a, b) => Number((b.includes(':') ? 6 : 4) === family) - Number((a.includes(':') ? 6 : 4) === family));
    return ordered.map((r, i) => {
      const a = ip(r);
      const suite = this.options.encryption?.suite;
      return i === 0 && pair && suite !== undefined ? securityKeyAddress(suite, keyId, pair.publicKey, a) : a;
    });
  }

  private finish(p: Pending): void {
    this.pending.delete(p.key);
    for (const n of p.nonces) this.requestNonces.delete(n);
    this.heldBytes -= p.heldBytes;
  }

  private giveUp(p: Pending, now: number, out: ResolverAction[]): void {
    this.finish(p);
    this.count('resolution-failed');
    // All attempts unanswered: start with the next resolver next time.
    this.preferredResolver = (p.resolverIndex + 1) % Math.max(1, this.options.mapResolvers.length);
    const seconds = Math.max(1, Math.round(this.timers.negativeTtlMs / 1000));
    const record: EidRecord = {
      ...EID_RECORD_DEFAULTS,
      ttl: (TTL_SECONDS_FLAG | seconds) >>> 0,
      action: ACTION.sendMapRequest,
      eidMaskLength: p.family === 4 ? 32 : 128,
      eid: ip(p.eid),
      locators: [],
    };
    this.options.mapCache.insertRecord(p.iid, record, now);
    if (p.held.length > 0) out.push({ kind: 'discard', iid: p.iid, reason: 'resolution-failed', count: p.held.length });
  }

  private holdPacket(p: Pending, packet: Uint8Array): void {
    if (p.held.length >= this.hold.packetsPerRequest || this.heldBytes + packet.length > this.hold.totalBytes) {
      this.count('held-dropped-full');
      return;
    }
    p.held.push(packet.slice());
    p.heldBytes += packet.length;
    this.heldBytes += packet.length;
    this.count('held');
  }

  private resolutionReply(p: Pending, resolverIndex: number, reply: MapReply, now: number): ResolverAction[] {
    this.finish(p);
    this.preferredResolver = resolverIndex;
    const record = this.answeringRecord(p, reply.records);
    const installed = record ? this.install(p, record, now) : 'not-installed';
    if (record && typeof installed === 'object') {
      for (const l of installed.locators) {
        if (p.pair && l.record) this.exchange(l.address, p.pair, l.record, reply.nonce, 'resolution', now);
        this.ensureProbe(l.address, l.family, installed.prefix.instanceId, record, now);
        const probe = this.probes.get(l.address);
        if (probe && !probe.reachable) l.reachable = false;
        l.state = this.options.attach(l, this.entrySealing(l.address, installed.prefix));
      }
    }
    if (p.held.length === 0) return [];
    return typeof installed === 'object'
      ? [{ kind: 'reinject', iid: p.iid, packets: p.held }]
      : [{ kind: 'discard', iid: p.iid, reason: installed === 'negative' ? 'negative-reply' : 'not-installed', count: p.held.length }];
  }

  /**
   * The one record of a reply that answers the request: of those whose prefix contains the
   * requested host EID (same instance and family), the most specific. Anything else would let the
   * answering ETR — any registered site member, for its own prefix — map other nodes' EIDs to
   * itself. A less specific covering record changes nothing for the requested EID (the longer one
   * wins every lookup of it) and would only capture the other EIDs it spans, so it is not
   * installed either; nor is a second record as specific as the first.
   */
  private answeringRecord(p: Pending, records: readonly EidRecord[]): EidRecord | undefined {
    const host = prefixOfEid(ip(p.eid), familyBits(p.family), p.iid);
    let best: { readonly record: EidRecord; readonly length: number } | undefined;
    for (const record of records) {
      const prefix = prefixOfEid(record.eid, record.eidMaskLength, p.iid);
      if (!host || !prefix || !prefixCovers(prefix, host)) {
        this.count('map-reply-record-outside-request');
        continue;
      }
      if (best) this.count('map-reply-record-superseded');
      if (!best || prefix.length > best.length) best = { record, length: prefix.length };
    }
    return best?.record;
  }

  /** Puts the answering record into the map-cache: the positive entry, or what became of it. */
  private install(p: Pending, record: EidRecord, now: number): PositiveEntry<S> | 'negative' | 'not-installed' {
    const outcome = this.options.mapCache.insertRecord(p.iid, record, now, { maxTtlMinutes: this.maxLearnedTtlMinutes });
    switch (outcome.outcome) {
      case 'ignored':
        this.count(outcome.reason === 'cache-full' ? 'map-cache-full' : 'map-reply-record-ignored');
        return 'not-installed';
      case 'removed':
        return 'negative';
      case 'inserted':
      case 'replaced':
        if (outcome.entry.kind === 'positive') return outcome.entry;
        this.count('map-reply-negative');
        return 'negative';
    }
  }

  // ------------------------------------------------------------------ keys

  /**
   * The sealing a map-cache entry for `prefix` may use at `address`. A crypto-EID's traffic is
   * sealed only under a key whose answer its own EID signed: a key agreed with anyone else (an
   * unsigned answer, another node's crypto-EID) leaves it without one, so it is dropped, never
   * sent to the wrong holder.
   */
  private entrySealing(address: string, prefix: EidPrefix): SealingSession | undefined {
    const s = this.sealings.get(address);
    if (!s?.keyed) return undefined;
    if (!this.isCryptoEid(prefix)) return s.sealing;
    const a = s.authentication;
    return a.kind === 'crypto-eid' && prefix.length === 128 && sameBytes(a.eid, prefix.address) ? s.sealing : undefined;
  }

  /** Is `prefix` within the crypto-EID prefix (so only its owner's signed key will do)? */
  private isCryptoEid(prefix: EidPrefix): boolean {
    const scope = this.options.authentication?.scope;
    return scope !== undefined && prefix.family === 6 && prefix.length >= scope.prefix.length && eidInPrefix(prefix.address, scope.prefix);
  }

  /** Our proof for an offer of `itrKey` as `keyId` for `target` (an EID as text), when we sign. */
  private offerProof(nonce: bigint, target: string, keyId: 1 | 2 | 3, itrKey: Uint8Array): ProofFields | undefined {
    const auth = this.options.authentication;
    const suite = this.options.encryption?.suite;
    const etrEid = transcriptEid(target);
    if (!auth || suite === undefined || !etrEid) return undefined;
    return makeProof(auth.identity, offerTranscript({ nonce, instanceId: auth.identity.instanceId, etrEid, suite, keyId, itrKey }, auth.identity.eid));
  }

  private sealingState(address: string): LocatorSealing | undefined {
    const enc = this.options.encryption;
    if (!enc) return undefined;
    let s = this.sealings.get(address);
    if (!s) {
      s = new LocatorSealing(address, enc.backend, enc.limits);
      this.sealings.set(address, s);
    }
    return s;
  }

  /**
   * The key exchange for one locator of a reply. Resolution replies without a key leave keys as
   * they are (a map-server proxy reply carries none: keys come from probes); a probe reply without
   * one means the ETR stopped encrypting (lispers.net "unkeying").
   */
  private exchange(address: string, pair: X25519KeyPair, record: LocatorRecord, nonce: bigint, via: 'resolution' | 'probe', now: number): void {
    const state = this.sealingState(address);
    if (!state) return;
    const wasKeyed = state.keyed;
    const wasAuthentication = state.authentication;
    const offer = offeredKey(record.locator);
    switch (offer.kind) {
      case 'key': {
        const proven = this.answerAuthentication(state, record.locator, nonce, pair, offer);
        if (!proven) return;
        let result: 'installed' | 'unchanged';
        try {
          result = state.complete(pair, offer, this.options.random, now, (keys, salt) => this.saltInUse(state, keys, salt));
        } catch {
          this.count('key-derivation-failed');
          return;
        }
        if (result === 'installed') this.count('key-installed');
        state.authentication = proven;
        break;
      }
      case 'refused':
      case 'malformed':
        this.count(offer.kind === 'refused' ? 'key-refused-suite' : 'key-malformed');
        if (via === 'probe' && wasKeyed) this.unkey(state);
        break;
      case 'none':
        if (via === 'probe' && wasKeyed) this.unkey(state);
        break;
    }
    if (state.keyed !== wasKeyed || state.authentication !== wasAuthentication) this.reattach(address);
  }

  /**
   * How an answer's key is authenticated, or undefined (counted) when it is to be refused: a
   * proof that does not hold, or no proof where the locator's key was authenticated before.
   */
  private answerAuthentication(state: LocatorSealing, locator: Address, nonce: bigint, pair: X25519KeyPair, answer: { readonly suite: number; readonly keyId: 1 | 2 | 3; readonly publicKey: Uint8Array }): LocatorSealing['authentication'] | undefined {
    const auth = this.options.authentication;
    const proof = auth && proofIn(locator);
    if (!auth || proof === undefined) {
      if (state.authentication.kind === 'unauthenticated') return state.authentication;
      this.count('key-unsigned-refused');
      return undefined;
    }
    const facts = { nonce, instanceId: auth.identity.instanceId, itrEid: auth.identity.eid, suite: answer.suite, keyId: answer.keyId, itrKey: pair.publicKey, etrKey: answer.publicKey };
    const checked = checkProof(proof, auth.identity.instanceId, (etrEid) => answerTranscript(facts, etrEid), auth.scope);
    switch (checked.kind) {
      case 'refused':
        this.count(checked.reason);
        return undefined;
      case 'unsigned':
        return state.authentication.kind === 'unauthenticated' ? state.authentication : undefined;
      case 'authenticated':
        this.count('key-answer-authenticated');
        return sameAuthentication(state.authentication, checked.authentication) ? state.authentication : checked.authentication;
    }
  }

  private unkey(state: LocatorSealing): void {
    if (state.authentication.kind === 'crypto-eid') {
      // Only the peer could say so, and an unsigned reply is anyone's: the key stays.
      this.count('unkey-refused');
      return;
    }
    state.unkey();
    this.count('unkeyed');
  }

  private saltInUse(self: LocatorSealing, keys: DataPlaneKeys, salt: Uint8Array): boolean {
    for (const s of this.sealings.values()) if (s !== self && s.usesSalt(keys, salt)) return true;
    return false;
  }

  /** Gives every map-cache locator with this address a fresh data-plane object (its keys changed). */
  private reattach(address: string): void {
    for (const e of this.learnedEntries()) for (const l of e.locators) if (l.address === address) l.state = this.options.attach(l, this.entrySealing(address, e.prefix));
  }

  private *learnedEntries(): Generator<PositiveEntry<S>> {
    for (const e of this.options.mapCache.entries()) if (e.kind === 'positive' && e.origin === 'learned') yield e;
  }

  private *locatorsAt(address: string): Generator<MapCacheLocator<S>> {
    for (const e of this.learnedEntries()) for (const l of e.locators) if (l.address === address) yield l;
  }

  // ------------------------------------------------------------------ probing

  private ensureProbe(address: string, family: 4 | 6, iid: number, record: EidRecord, now: number): void {
    const target = { iid, eid: record.eid, length: record.eidMaskLength };
    const existing = this.probes.get(address);
    if (existing) {
      existing.target = target;
      return;
    }
    // Unkeyed with encryption on (a proxy reply): probe at once, that is where keys come from.
    const needsKey = this.options.encryption !== undefined && !this.sealings.get(address)?.keyed;
    this.probes.set(address, {
      address,
      family,
      nextProbeAt: needsKey ? now : now + this.timers.probeIntervalMs,
      outstanding: new Map(),
      firstUnansweredAt: undefined,
      reachable: true,
      target,
    });
  }

  private probeTick(now: number, out: ResolverAction[]): void {
    const live = new Set<string>();
    for (const e of this.options.mapCache.entries()) {
      if (e.kind !== 'positive' || e.origin !== 'learned' || now >= e.expiresAt) continue;
      for (const l of e.locators) live.add(l.address);
    }
    for (const [address, s] of this.probes) {
      if (live.has(address)) continue;
      for (const n of s.outstanding.keys()) this.probeNonces.delete(n);
      this.probes.delete(address);
      this.sealings.get(address)?.sealing.close();
      this.sealings.delete(address);
    }
    for (const s of this.probes.values()) {
      if (s.reachable && s.firstUnansweredAt !== undefined && (now - s.firstUnansweredAt >= this.timers.probeReplyWaitMs || s.outstanding.size >= this.timers.probeMissedLimit)) {
        s.reachable = false;
        this.count('locator-down');
        for (const l of this.locatorsAt(s.address)) l.reachable = false;
      }
      if (s.nextProbeAt > now) continue;
      const action = this.sendProbe(s, now);
      if (action) out.push(action);
      s.nextProbeAt = now + this.timers.probeIntervalMs;
    }
  }

  private sendProbe(s: ProbeState, now: number): ResolverAction | undefined {
    const rloc = this.options.rlocs.find((r) => (r.includes(':') ? 6 : 4) === s.family);
    if (rloc === undefined) {
      this.count('probe-no-rloc');
      return undefined;
    }
    const sealing = this.sealingState(s.address);
    const offer = sealing?.offer(this.options.random, now);
    const suite = this.options.encryption?.suite;
    const itrRloc = offer && suite !== undefined ? securityKeyAddress(suite, offer.keyId, offer.pair.publicKey, ip(rloc)) : ip(rloc);
    const nonce = this.nonce();
    const request: MapRequest = {
      ...MAP_REQUEST_DEFAULTS,
      probe: true,
      nonce,
      sourceEid: offer ? this.probeSourceEid(nonce, s.target, offer) : NO_ADDRESS,
      itrRlocs: [itrRloc],
      records: [{ reserved: 0, eidMaskLength: s.target.length, eid: s.target.eid }],
    };
    // Keep the newest few: older nonces answered late still count as a sign of life.
    if (s.outstanding.size >= this.timers.probeMissedLimit + 1) {
      const oldest = s.outstanding.keys().next();
      if (!oldest.done) {
        s.outstanding.delete(oldest.value);
        this.probeNonces.delete(oldest.value);
      }
    }
    s.outstanding.set(nonce, { sentAt: now, pair: offer?.pair });
    s.firstUnansweredAt ??= now;
    this.probeNonces.set(nonce, s);
    this.count('probe-sent');
    return { kind: 'send', what: 'rloc-probe', to: s.address, port: LISP_CONTROL_PORT, bytes: encodeRequest(request) };
  }

  /** A probe's Source-EID when we sign its offer: a JSON LCAF naming us, with the proof. */
  private probeSourceEid(nonce: bigint, target: ProbeState['target'], offer: { readonly pair: X25519KeyPair; readonly keyId: 1 | 2 | 3 }): Address {
    const auth = this.options.authentication;
    const eid = ipOf(target.eid);
    const proof = auth && eid && this.offerProof(nonce, eid.address, offer.keyId, offer.pair.publicKey);
    if (!auth || !proof) return NO_ADDRESS;
    return jsonAddress({ 'source-eid': `[${auth.identity.instanceId}]${formatIpv6(auth.identity.eid)}`, [PROOF_FIELD]: proof });
  }

  private probeReply(s: ProbeState, reply: MapReply, now: number): void {
    const sent = s.outstanding.get(reply.nonce);
    for (const n of s.outstanding.keys()) this.probeNonces.delete(n);
    s.outstanding.clear();
    s.firstUnansweredAt = undefined;
    this.count('probe-reply');
    if (!s.reachable) {
      s.reachable = true;
      this.count('locator-up');
    }
    for (const l of this.locatorsAt(s.address)) l.reachable = true;
    const record = probedLocator(reply, s.address);
    if (sent?.pair && record) this.exchange(s.address, sent.pair, record, reply.nonce, 'probe', now);
  }

  // ------------------------------------------------------------------ small parts

  private nonce(): bigint {
    const b = this.options.random(8);
    let n = 0n;
    for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(b[i] ?? 0);
    return n;
  }

  private takeToken(now: number): boolean {
    if (this.tokensAt !== undefined) {
      this.tokens = Math.min(this.timers.globalBurst, this.tokens + ((now - this.tokensAt) / 1000) * this.timers.globalPerSecond);
    }
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private count(c: ResolverCounter): void {
    this.counters.set(c, (this.counters.get(c) ?? 0) + 1);
  }
}

/** The locator record of a probe reply that answers for `address`: the p-flagged one first. */
function probedLocator(reply: MapReply, address: string): LocatorRecord | undefined {
  let fallback: LocatorRecord | undefined;
  for (const r of reply.records) {
    for (const l of r.locators) {
      if (ipOf(l.locator)?.address !== address) continue;
      if (l.probed) return l;
      fallback ??= l;
    }
  }
  return fallback;
}

/** What an ECM'd Map-Request for one EID carries (see `encodeEcmMapRequest`). */
export interface EcmMapRequestSpec {
  readonly nonce: bigint;
  readonly iid: number;
  /** The requested EID (IPv4/IPv6 text), asked for as a host (/32, /128); also the inner IP destination. */
  readonly eid: string;
  /** The Source-EID field as it goes on the wire (NO_ADDRESS, a plain EID, or `signedSourceEid`). */
  readonly sourceEid: Address;
  /** 1 to 32 addresses the Map-Reply may go to; the first may be a Security Key LCAF. */
  readonly itrRlocs: readonly Address[];
  /** Inner IP source (same family as `eid`). */
  readonly innerSource: string;
  /** Inner UDP source port: where the Map-Reply comes back. */
  readonly sourcePort: number;
  /** s: this request answers an SMR (RFC 9301 §6.1); default false. */
  readonly smrInvoked?: boolean;
}

/** An ECM (no flags) holding a Map-Request for `spec.eid`, inner UDP to the control port 4342. */
export function encodeEcmMapRequest(spec: EcmMapRequestSpec): Uint8Array {
  const family = spec.eid.includes(':') ? 6 : 4;
  const request: MapRequest = {
    ...MAP_REQUEST_DEFAULTS,
    smrInvoked: spec.smrInvoked ?? false,
    nonce: spec.nonce,
    sourceEid: spec.sourceEid,
    itrRlocs: spec.itrRlocs,
    records: [{ reserved: 0, eidMaskLength: family === 4 ? 32 : 128, eid: wrapIid(spec.iid, ip(spec.eid)) }],
  };
  const ipHeader: IpHeader =
    family === 4
      ? { version: 4, tos: 0, identification: 0, dontFragment: false, ttl: 64, source: spec.innerSource, destination: spec.eid }
      : { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, source: spec.innerSource, destination: spec.eid };
  const ecm: Ecm<MapRequest> = {
    ...ECM_DEFAULTS,
    ip: ipHeader,
    udp: { sourcePort: spec.sourcePort, destinationPort: LISP_CONTROL_PORT, checksum: 'computed' },
    message: request,
  };
  return encodeEcm(ecm);
}

/** The Source-EID of a signed Map-Request: a JSON LCAF naming the signer and its signature (and the key offer's proof). */
export function signedSourceEid(signer: { readonly instanceId: number; readonly eid: string; readonly scalar: Uint8Array }, nonce: bigint, iid: number, target: Address, proof?: ProofFields): Address {
  const nonceBytes = new Uint8Array(8);
  new DataView(nonceBytes.buffer).setBigUint64(0, nonce);
  const source = { iid, text: signer.eid };
  const signature = signMapRequest(signer.scalar, nonceBytes, source, { iid, text: target.afi === 'ipv4' || target.afi === 'ipv6' ? target.address : '' });
  const eidText = `[${iid}]${signer.eid}`;
  return jsonAddress({ 'source-eid': eidText, 'signature-eid': eidText, signature, ...(proof && { [PROOF_FIELD]: proof }) });
}

export function wrapIid(iid: number, a: Address): Address {
  return iid === 0 ? a : withInstanceId(iid, a);
}

// control.ts encodes any ControlMessage; these keep the types narrow at the call sites.
function encodeEcm(m: Ecm<MapRequest>): Uint8Array {
  return encodeControl(m);
}

function encodeRequest(m: MapRequest): Uint8Array {
  return encodeControl(m);
}

/** `attach` for the ITR data plane: one ItrPeer per map-cache locator, clear until keyed. */
export function itrPeerAttach(locator: MapCacheLocator<ItrPeer>, sealing: SealingSession | undefined): ItrPeer {
  return createItrPeer(locator.address, locator.port, sealing);
}
