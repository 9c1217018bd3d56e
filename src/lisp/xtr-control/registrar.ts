// The xTR's registration state machine (RFC 9301 §5.6, §8.2; lisp-protocol.md §2.5, §2.6, §2.8,
// §5.2, §5.3; docs/registration-signature.md), sans-IO: every event takes `now` (ms since 1970)
// and returns the datagrams to send; randomness (nonces, jitter) comes from the constructor's
// `random`, so tests and capture replay drive it with a seeded generator.
//
// Choices, and why:
// - Every Map-Register sets M, I (xTR-ID/site-ID) and T with a record TTL of 3 minutes, as
//   lispers.net does: with T the map-server times the registration out after three missed
//   60 s refreshes whatever its own default is.
// - At most 20 records and about 1100 record bytes per message (lispers.net's packing), so a
//   Map-Register stays below a 1500-byte path MTU. A crypto-EID's hash-EID record and its
//   signed record are never split: the map-server needs the first to judge the second.
// - Each map-server has its own jittered 60 s period (±10 %), so the registrations of many xTRs
//   started together spread out instead of arriving in bursts.
// - A register round (the messages sent to one map-server at once) is answered when a Map-Notify
//   with one of its nonces verifies under that map-server's key. A round still unanswered after
//   `answerTimeoutMs` counts as unanswered; after `failAfter` (3) in a row the map-server is
//   'failing' — by then its registrations have timed out there too. One verified Map-Notify
//   makes it 'registered' again. No faster retransmission than the period (lispers.net's
//   behaviour); a map-server without want-map-notify counts as registered once sent.
// - No Map-Notify-Ack for register acknowledgements: RFC 9301 §5.7 asks for one only for
//   unsolicited Map-Notifies; OOR sends none, lispers.net acks everything. Our map-server
//   (register-handler.ts) does not retransmit register acks, so an ack would be noise.
// - A nonce is taken once: a second copy of the same Map-Notify is refused as unknown-nonce.
//   The MAC is checked before the nonce, so a forger learns nothing about outstanding nonces.
// - Configuration changes are registered at once as a difference (changed or new records, and
//   TTL-0 records for the removed ones); the periodic rounds go on with the whole set. A removed
//   map-server gets TTL-0 records for everything it held, a new one a full round at once.
// - An attestation ticket (the controller's signed admission of this node's crypto-EIDs) is asked
//   of `options.attestationTicket` once per register round, so a renewed ticket goes out with the
//   next refresh (or at once with a 'refresh' event). It rides on each crypto-EID record that
//   registers, inside the registration signature; deregistrations carry none.
import type { P256KeyPair } from '../../crypto/p256.js';
import { publicKeyJsonValue } from '../../crypto/p256.js';
import { DEFAULT_EID_PREFIX, deriveCryptoEid, type EidDerivation, type EidPrefix as CryptoEidPrefix } from '../../crypto/crypto-eid.js';
import { signEid, type EidText } from '../../crypto/eid-signature.js';
import { ip, withInstanceId, type Address } from '../address.js';
import { authFields, sealAuthentication, verifyAuthentication, type AuthFailure, type AuthKey } from '../auth.js';
import { ByteWriter } from '../bytes.js';
import { decodeControl, encodeControl } from '../control.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../ip-text.js';
import type { MapRegister } from '../map-register.js';
import { formatPrefix, type EidPrefix } from '../prefix.js';
import { EID_RECORD_DEFAULTS, LOCATOR_DEFAULTS, writeEidRecord, writeLocatorRecord, type EidRecord, type LocatorRecord } from '../records.js';
import { addAttestationTicket, addRegistrationSignature, jsonLocator, ticketLocator } from '../registration-record.js';

export const MAP_SERVER_PORT = 4342;

// ------------------------------------------------------------------ configuration

export interface LocalRloc {
  /** IPv4 or IPv6 text. */
  readonly address: string;
  /** Default 1. */
  readonly priority?: number;
  /** Default 100. */
  readonly weight?: number;
}

/** A workload key whose crypto-EID this node registers (lisp-protocol.md §5.1–5.3). */
export interface CryptoEidIdentity {
  readonly keyPair: P256KeyPair;
  readonly instanceId: number;
  /** Default fd00::/8. */
  readonly prefix?: CryptoEidPrefix;
  /** Default 'eve'. */
  readonly derivation?: EidDerivation;
}

export interface MapServerPeer {
  readonly address: string;
  /** Default 4342. */
  readonly port?: number;
  readonly key: AuthKey;
  /** M: ask for a Map-Notify. Default true. */
  readonly wantMapNotify?: boolean;
  /** P: ask the map-server to answer Map-Requests for us. Default false. */
  readonly proxyReply?: boolean;
}

export interface RegistrarTimers {
  readonly intervalMs: number;
  /** Fraction of the interval: each period is drawn uniformly from interval × (1 ± jitter). */
  readonly jitter: number;
  /** How long a round waits for its Map-Notify before it counts as unanswered. */
  readonly answerTimeoutMs: number;
  /** Consecutive unanswered rounds after which a map-server is 'failing'. */
  readonly failAfter: number;
  /** Record TTL in minutes, sent with T. */
  readonly recordTtlMinutes: number;
  readonly maxRecordsPerMessage: number;
  /** Soft bound on the record bytes of one message (a single oversized group goes alone). */
  readonly maxRecordBytes: number;
}

export const DEFAULT_REGISTRAR_TIMERS: RegistrarTimers = {
  intervalMs: 60_000,
  jitter: 0.1,
  answerTimeoutMs: 10_000,
  failAfter: 3,
  recordTtlMinutes: 3,
  maxRecordsPerMessage: 20,
  maxRecordBytes: 1100,
};

export interface RegistrarConfig {
  /** Local EID-prefixes, each with its instance-id (prefix.ts). */
  readonly eids: readonly EidPrefix[];
  readonly cryptoEids?: readonly CryptoEidIdentity[];
  /** The node's RLOCs: the locators of every record. */
  readonly rlocs: readonly LocalRloc[];
  readonly mapServers: readonly MapServerPeer[];
  /** 16 bytes. */
  readonly xtrId: Uint8Array;
  readonly siteId: bigint;
  readonly timers?: Partial<RegistrarTimers>;
}

/** What stays the same across configuration changes. */
export interface RegistrarOptions {
  /**
   * The node's current attestation ticket (the controller's AuthContainer bytes, unchanged), or
   * undefined when it has none. Called with the round's `now` at every round that registers a
   * crypto-EID; map-servers whose sites require tickets refuse crypto-EID records without one.
   */
  readonly attestationTicket?: (now: number) => Uint8Array | undefined;
}

// ------------------------------------------------------------------ events, actions, status

export type RegistrarAction = { readonly kind: 'send'; readonly to: string; readonly port: number; readonly bytes: Uint8Array } | { readonly kind: 'drop'; readonly reason: NotifyRefusal };

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export type RegistrarEvent =
  | { readonly kind: 'start' }
  | { readonly kind: 'tick' }
  | { readonly kind: 'map-notify'; readonly bytes: Uint8Array; readonly from: Endpoint }
  | { readonly kind: 'config-changed'; readonly config: RegistrarConfig }
  /** Everything to every map-server now, e.g. because a renewed attestation ticket should not wait. */
  | { readonly kind: 'refresh' }
  | { readonly kind: 'shutdown' };

/** Why a received Map-Notify was not taken; the names double as counters. */
export const NOTIFY_REFUSALS = [
  'notify-decode-error',
  /** A Map-Notify-Ack, or another message type, on the registration path. */
  'notify-not-map-notify',
  /** Not from the address of a configured map-server. */
  'notify-unknown-source',
  'notify-no-authentication',
  'notify-wrong-key-id',
  'notify-algorithm-mismatch',
  'notify-bad-auth-length',
  'notify-bad-mac',
  /** Authenticated, but no outstanding Map-Register has its nonce (unsolicited, late or a copy). */
  'notify-unknown-nonce',
] as const;
export type NotifyRefusal = (typeof NOTIFY_REFUSALS)[number];

export type MapServerState = 'registered' | 'pending' | 'failing';

export interface MapServerStatus {
  readonly address: string;
  readonly port: number;
  readonly state: MapServerState;
  readonly lastSentAt: number | undefined;
  readonly lastMapNotifyAt: number | undefined;
  /** Consecutive register rounds that got no verified Map-Notify. */
  readonly unanswered: number;
  readonly nextRegisterAt: number | undefined;
  /** Map-Registers whose Map-Notify may still arrive. */
  readonly outstanding: number;
  /** Map-Notifies that acknowledged fewer records than their Map-Register carried. */
  readonly partialNotifies: number;
}

export interface RegistrarStatus {
  readonly mapServers: readonly MapServerStatus[];
  readonly refused: Readonly<Record<NotifyRefusal, number>>;
}

// ------------------------------------------------------------------ internals

/** One EID-record as this node registers it, before the per-message parts (nonce, signature). */
interface Entry {
  /** The map-server's key for it: `[iid]prefix/len` or `[iid]'hash-…'`. */
  readonly key: string;
  /** Entries of one crypto-EID identity travel in one message. */
  readonly group: string;
  /** TTL = the configured record TTL; static locators only. */
  readonly template: EidRecord;
  /** For a crypto-EID record: signs the registration signature per message. */
  readonly signer: { readonly scalar: Uint8Array; readonly eid: EidText } | undefined;
  /** Estimated wire bytes (the registration signature locator included, an attestation ticket not). */
  readonly size: number;
  /** Hex of the template's wire bytes: a change re-registers at once. */
  readonly fingerprint: string;
}

interface Resolved {
  readonly entries: readonly Entry[];
  readonly peers: readonly ResolvedPeer[];
  readonly xtrId: Uint8Array;
  readonly siteId: bigint;
  readonly timers: RegistrarTimers;
}

interface ResolvedPeer {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly key: AuthKey;
  readonly wantMapNotify: boolean;
  readonly proxyReply: boolean;
}

interface Round {
  readonly deadline: number;
  readonly nonces: Set<bigint>;
  answered: boolean;
  judged: boolean;
}

interface Outstanding {
  readonly round: Round;
  readonly records: number;
  /** Dropped from memory after this (a later Map-Notify is unknown). */
  readonly forgetAt: number;
}

interface ServerState {
  peer: ResolvedPeer;
  state: MapServerState;
  nextRegisterAt: number | undefined;
  lastSentAt: number | undefined;
  lastMapNotifyAt: number | undefined;
  unanswered: number;
  partialNotifies: number;
  readonly outstanding: Map<bigint, Outstanding>;
  readonly rounds: Round[];
}

/** One record to send: an entry, registered (its TTL) or deregistered (TTL 0). */
interface Item {
  readonly entry: Entry;
  readonly ttl: number;
}

export class Registrar {
  private config: Resolved;
  private readonly servers = new Map<string, ServerState>();
  private readonly refused: Record<NotifyRefusal, number> = Object.fromEntries(NOTIFY_REFUSALS.map((r) => [r, 0])) as Record<NotifyRefusal, number>;
  private phase: 'idle' | 'running' | 'stopped' = 'idle';

  /**
   * `random(n)` returns n bytes from the caller's CSPRNG (crypto.randomBytes in the daemon).
   * Throws RangeError for an invalid configuration.
   */
  constructor(
    config: RegistrarConfig,
    private readonly random: (n: number) => Uint8Array,
    private readonly options: RegistrarOptions = {},
  ) {
    this.config = resolve(config);
    for (const peer of this.config.peers) this.servers.set(peer.id, newServer(peer));
  }

  handle(event: RegistrarEvent, now: number): RegistrarAction[] {
    switch (event.kind) {
      case 'start':
        return this.start(now);
      case 'tick':
        return this.tick(now);
      case 'map-notify':
        return this.mapNotify(event.bytes, event.from, now);
      case 'config-changed':
        return this.configChanged(event.config, now);
      case 'refresh':
        return this.refresh(now);
      case 'shutdown':
        return this.shutdown(now);
    }
  }

  /** Registers everything with every map-server at once and starts the periodic timers. */
  start(now: number): RegistrarAction[] {
    if (this.phase !== 'idle') return [];
    this.phase = 'running';
    return this.refresh(now);
  }

  /** A full round to every map-server now; each one's period restarts from here. */
  refresh(now: number): RegistrarAction[] {
    if (this.phase !== 'running') return [];
    const actions: RegistrarAction[] = [];
    for (const s of this.servers.values()) actions.push(...this.fullRound(s, now));
    return actions;
  }

  /** When tick() should next be called; undefined when nothing is scheduled. */
  nextTimer(): number | undefined {
    if (this.phase !== 'running') return undefined;
    let next: number | undefined;
    const consider = (t: number | undefined): void => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    for (const s of this.servers.values()) {
      consider(s.nextRegisterAt);
      for (const r of s.rounds) if (!r.judged) consider(r.deadline);
    }
    return next;
  }

  tick(now: number): RegistrarAction[] {
    if (this.phase !== 'running') return [];
    const actions: RegistrarAction[] = [];
    for (const s of this.servers.values()) {
      this.judgeRounds(s, now);
      if (s.nextRegisterAt !== undefined && s.nextRegisterAt <= now) actions.push(...this.fullRound(s, now));
      forget(s, now);
    }
    return actions;
  }

  /** A datagram that arrived on the registration socket from `from`. */
  mapNotify(bytes: Uint8Array, from: Endpoint, now: number): RegistrarAction[] {
    const refuse = (reason: NotifyRefusal): RegistrarAction[] => {
      this.refused[reason] += 1;
      return [{ kind: 'drop', reason }];
    };
    const decoded = decodeControl(bytes);
    if (!decoded.ok) return refuse('notify-decode-error');
    const m = decoded.value;
    if (m.type !== 'map-notify') return refuse('notify-not-map-notify');
    const source = canonicalAddress(from.address);
    const candidates = [...this.servers.values()].filter((s) => s.peer.address === source);
    if (candidates.length === 0) return refuse('notify-unknown-source');
    let server: ServerState | undefined;
    const failures: AuthFailure[] = [];
    for (const s of candidates) {
      const verdict = verifyAuthentication(bytes, (id) => (id === s.peer.key.keyId ? s.peer.key : undefined));
      if (verdict.ok) {
        server = s;
        break;
      }
      failures.push(verdict.reason);
    }
    if (!server) return refuse(authRefusal(failures));
    forget(server, now);
    const outstanding = server.outstanding.get(m.nonce);
    if (!outstanding) return refuse('notify-unknown-nonce');
    server.outstanding.delete(m.nonce);
    outstanding.round.answered = true;
    if (m.records.length < outstanding.records) server.partialNotifies += 1;
    server.lastMapNotifyAt = now;
    server.unanswered = 0;
    server.state = 'registered';
    return [];
  }

  /**
   * Takes a new configuration: the difference is registered at once (TTL 0 for removed records),
   * new map-servers get everything, removed ones get TTL 0 for everything they held.
   */
  configChanged(newConfig: RegistrarConfig, now: number): RegistrarAction[] {
    const next = resolve(newConfig);
    const previous = this.config;
    this.config = next;
    const oldByKey = new Map(previous.entries.map((e) => [e.key, e]));
    const newKeys = new Set(next.entries.map((e) => e.key));
    const removed = previous.entries.filter((e) => !newKeys.has(e.key));
    const changed = next.entries.filter((e) => oldByKey.get(e.key)?.fingerprint !== e.fingerprint);
    const difference: Item[] = [...removed.map((entry) => ({ entry, ttl: 0 })), ...changed.map((entry) => ({ entry, ttl: next.timers.recordTtlMinutes }))];

    const actions: RegistrarAction[] = [];
    const running = this.phase === 'running';
    const newIds = new Set(next.peers.map((p) => p.id));
    for (const [id, s] of [...this.servers]) {
      if (newIds.has(id)) continue;
      this.servers.delete(id);
      if (running) actions.push(...this.send(s, previous.entries.map((entry) => ({ entry, ttl: 0 })), now, previous));
    }
    for (const peer of next.peers) {
      const s = this.servers.get(peer.id);
      if (!s) {
        const fresh = newServer(peer);
        this.servers.set(peer.id, fresh);
        if (running) actions.push(...this.fullRound(fresh, now));
        continue;
      }
      const peerChanged = !samePeer(s.peer, peer);
      s.peer = peer;
      if (!running) continue;
      if (peerChanged) {
        // A new key or new flags: everything again, under the new key (removed records too).
        actions.push(...this.send(s, [...removed.map((entry) => ({ entry, ttl: 0 })), ...next.entries.map((entry) => ({ entry, ttl: next.timers.recordTtlMinutes }))], now, next));
      } else if (difference.length > 0) {
        actions.push(...this.send(s, difference, now, next));
      }
    }
    return actions;
  }

  /** TTL-0 records for everything, to every map-server; the registrar stops. */
  shutdown(now: number): RegistrarAction[] {
    if (this.phase !== 'running') {
      this.phase = 'stopped';
      return [];
    }
    const actions: RegistrarAction[] = [];
    for (const s of this.servers.values()) {
      actions.push(...this.send(s, this.config.entries.map((entry) => ({ entry, ttl: 0 })), now, this.config));
      s.nextRegisterAt = undefined;
    }
    this.phase = 'stopped';
    return actions;
  }

  status(): RegistrarStatus {
    return {
      mapServers: [...this.servers.values()].map((s) => ({
        address: s.peer.address,
        port: s.peer.port,
        state: s.state,
        lastSentAt: s.lastSentAt,
        lastMapNotifyAt: s.lastMapNotifyAt,
        unanswered: s.unanswered,
        nextRegisterAt: s.nextRegisterAt,
        outstanding: s.outstanding.size,
        partialNotifies: s.partialNotifies,
      })),
      refused: { ...this.refused },
    };
  }

  // ------------------------------------------------------------ sending

  private fullRound(s: ServerState, now: number): RegistrarAction[] {
    const actions = this.send(s, this.config.entries.map((entry) => ({ entry, ttl: this.config.timers.recordTtlMinutes })), now, this.config);
    s.nextRegisterAt = now + this.period();
    return actions;
  }

  /** Packs `items` into Map-Registers to `s`, remembers their nonces as one round. */
  private send(s: ServerState, items: readonly Item[], now: number, config: Resolved): RegistrarAction[] {
    if (items.length === 0) return [];
    const { peer } = s;
    const t = config.timers;
    const round: Round = { deadline: now + t.answerTimeoutMs, nonces: new Set(), answered: false, judged: false };
    const actions: RegistrarAction[] = [];
    const timestamp = Math.floor(now / 1000);
    const ticket = items.some(carriesTicket) ? this.options.attestationTicket?.(now) : undefined;
    const ticketSize = ticket ? locatorBytes(ticketLocator(ticket)) : 0;
    const sizeOf = (item: Item): number => item.entry.size + (ticket && carriesTicket(item) ? ticketSize : 0);
    for (const batch of pack(items, t, sizeOf)) {
      const nonce = this.nonce(s);
      const records = batch.map((item) => finalRecord(item, nonce, timestamp, ticket));
      const m: MapRegister = {
        type: 'map-register',
        proxyReply: peer.proxyReply,
        securityCapable: false,
        wantMapNotify: peer.wantMapNotify,
        useTtlForTimeout: true,
        reservedFlags: 0,
        nonce,
        ...authFields(peer.key),
        records,
        xtrIdentity: { xtrId: config.xtrId, siteId: config.siteId },
      };
      const bytes = sealAuthentication(encodeControl(m), peer.key);
      actions.push({ kind: 'send', to: peer.address, port: peer.port, bytes });
      if (peer.wantMapNotify) {
        round.nonces.add(nonce);
        s.outstanding.set(nonce, { round, records: records.length, forgetAt: now + t.intervalMs * t.failAfter });
      }
    }
    s.lastSentAt = now;
    if (peer.wantMapNotify) s.rounds.push(round);
    else s.state = 'registered';
    return actions;
  }

  private judgeRounds(s: ServerState, now: number): void {
    for (const r of s.rounds) {
      if (r.judged || r.deadline > now) continue;
      r.judged = true;
      if (r.answered) continue;
      s.unanswered += 1;
      if (s.unanswered >= this.config.timers.failAfter) s.state = 'failing';
    }
    // Judged rounds are kept only while a late Map-Notify may still name them.
    for (let i = s.rounds.length - 1; i >= 0; i--) {
      const r = s.rounds[i];
      if (r?.judged && ![...r.nonces].some((n) => s.outstanding.has(n))) s.rounds.splice(i, 1);
    }
  }

  private nonce(s: ServerState): bigint {
    for (;;) {
      const b = this.random(8);
      if (b.length !== 8) throw new RangeError('random(8) must return 8 bytes');
      const n = Buffer.from(b).readBigUInt64BE(0);
      if (n !== 0n && !s.outstanding.has(n)) return n;
    }
  }

  /** interval × (1 ± jitter), uniform. */
  private period(): number {
    const { intervalMs, jitter } = this.config.timers;
    const b = this.random(4);
    if (b.length !== 4) throw new RangeError('random(4) must return 4 bytes');
    const u = Buffer.from(b).readUInt32BE(0) / 0x1_0000_0000;
    return Math.round(intervalMs * (1 + jitter * (2 * u - 1)));
  }
}

// ------------------------------------------------------------------ helpers

function newServer(peer: ResolvedPeer): ServerState {
  return {
    peer,
    state: 'pending',
    nextRegisterAt: undefined,
    lastSentAt: undefined,
    lastMapNotifyAt: undefined,
    unanswered: 0,
    partialNotifies: 0,
    outstanding: new Map(),
    rounds: [],
  };
}

function forget(s: ServerState, now: number): void {
  for (const [nonce, o] of s.outstanding) if (now >= o.forgetAt) s.outstanding.delete(nonce);
}

function samePeer(a: ResolvedPeer, b: ResolvedPeer): boolean {
  return (
    a.wantMapNotify === b.wantMapNotify &&
    a.proxyReply === b.proxyReply &&
    a.key.keyId === b.key.keyId &&
    a.key.algorithmId === b.key.algorithmId &&
    Buffer.from(a.key.secret).equals(Buffer.from(b.key.secret))
  );
}

function authRefusal(failures: readonly AuthFailure[]): NotifyRefusal {
  // The most telling failure when several map-servers share the address.
  if (failures.includes('mac-mismatch')) return 'notify-bad-mac';
  if (failures.includes('algorithm-mismatch')) return 'notify-algorithm-mismatch';
  if (failures.includes('bad-auth-length')) return 'notify-bad-auth-length';
  if (failures.includes('unknown-key-id')) return 'notify-wrong-key-id';
  if (failures.includes('no-authentication')) return 'notify-no-authentication';
  return 'notify-decode-error';
}

/** A crypto-EID record that registers (not a deregistration) carries the attestation ticket. */
function carriesTicket(item: Item): boolean {
  return item.entry.signer !== undefined && item.ttl > 0;
}

/** Greedy packing in entry order; a group (a crypto-EID's two records) is never split. */
function pack(items: readonly Item[], t: RegistrarTimers, sizeOf: (item: Item) => number): Item[][] {
  const groups: Item[][] = [];
  for (const item of items) {
    const last = groups.at(-1);
    const first = last?.[0];
    if (last && first && first.entry.group === item.entry.group && first.ttl === item.ttl) last.push(item);
    else groups.push([item]);
  }
  const batches: Item[][] = [];
  let current: Item[] = [];
  let bytes = 0;
  for (const g of groups) {
    const size = g.reduce((n, i) => n + sizeOf(i), 0);
    if (current.length > 0 && (current.length + g.length > t.maxRecordsPerMessage || bytes + size > t.maxRecordBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(...g);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function finalRecord(item: Item, nonce: bigint, timestamp: number, ticket: Uint8Array | undefined): EidRecord {
  const base = item.ttl === item.entry.template.ttl ? item.entry.template : { ...item.entry.template, ttl: item.ttl };
  const signer = item.entry.signer;
  if (!signer) return base;
  // The ticket goes in first so that the registration signature covers it.
  const record = ticket && carriesTicket(item) ? addAttestationTicket(base, ticket) : base;
  // The registration signature covers the record as sent, TTL included, so TTL-0 records are signed too.
  return addRegistrationSignature(record, signer.scalar, { eid: signer.eid, nonce, timestamp });
}

function canonicalAddress(text: string): string {
  const v4 = parseIpv4(text);
  if (v4) return formatIpv4(v4);
  const v6 = parseIpv6(text);
  return v6 ? formatIpv6(v6) : text;
}

function checkByte(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`${what} ${n} is not 0-255`);
  return n;
}

function recordBytes(record: EidRecord): Uint8Array {
  const w = new ByteWriter();
  writeEidRecord(w, record);
  return w.finish();
}

function locatorBytes(locator: LocatorRecord): number {
  const w = new ByteWriter();
  writeLocatorRecord(w, locator);
  return w.finish().length;
}

function withIid(instanceId: number, address: Address): Address {
  return instanceId === 0 ? address : withInstanceId(instanceId, address);
}

function resolve(config: RegistrarConfig): Resolved {
  const timers: RegistrarTimers = { ...DEFAULT_REGISTRAR_TIMERS, ...config.timers };
  if (!(timers.intervalMs > 0) || !(timers.jitter >= 0 && timers.jitter < 1) || !(timers.answerTimeoutMs > 0) || !(timers.failAfter >= 1)) {
    throw new RangeError('registrar timers: interval and answer timeout > 0, jitter in [0, 1), failAfter >= 1');
  }
  if (!Number.isInteger(timers.recordTtlMinutes) || timers.recordTtlMinutes < 1 || timers.recordTtlMinutes > 0x7fffffff) throw new RangeError('record TTL must be a positive number of minutes');
  if (!Number.isInteger(timers.maxRecordsPerMessage) || timers.maxRecordsPerMessage < 2 || timers.maxRecordsPerMessage > 255) {
    throw new RangeError('maxRecordsPerMessage must be 2-255 (a crypto-EID takes two records)');
  }
  if (config.xtrId.length !== 16) throw new RangeError('an xTR-ID is 16 bytes');
  if (config.siteId < 0n || config.siteId > 0xffff_ffff_ffff_ffffn) throw new RangeError('a site-ID is 64 bits');
  if (config.rlocs.length === 0) throw new RangeError('at least one RLOC is needed to register');

  const locators: LocatorRecord[] = config.rlocs.map((r) => ({
    ...LOCATOR_DEFAULTS,
    priority: checkByte(r.priority ?? LOCATOR_DEFAULTS.priority, 'RLOC priority'),
    weight: checkByte(r.weight ?? LOCATOR_DEFAULTS.weight, 'RLOC weight'),
    local: true,
    reachable: true,
    locator: ip(r.address),
  }));
  const ttl = timers.recordTtlMinutes;
  const entries: Entry[] = [];
  const seen = new Set<string>();
  const add = (e: Omit<Entry, 'fingerprint' | 'size'>, extra = 0): void => {
    if (seen.has(e.key)) throw new RangeError(`${e.key} is configured twice`);
    seen.add(e.key);
    const wire = recordBytes(e.template);
    entries.push({ ...e, size: wire.length + extra, fingerprint: Buffer.from(wire).toString('hex') });
  };
  for (const p of config.eids) {
    const address = ip(p.family === 4 ? formatIpv4(p.address) : formatIpv6(p.address));
    const key = formatPrefix(p);
    const template: EidRecord = { ...EID_RECORD_DEFAULTS, ttl, authoritative: true, eidMaskLength: p.length, eid: withIid(p.instanceId, address), locators };
    add({ key, group: key, template, signer: undefined });
  }
  for (const c of config.cryptoEids ?? []) {
    const prefix = c.prefix ?? DEFAULT_EID_PREFIX;
    const derived = deriveCryptoEid({ iid: c.instanceId, spki: c.keyPair.spki, prefix, derivation: c.derivation ?? 'eve' });
    const eid: EidText = { iid: c.instanceId, text: formatIpv6(derived.eid) };
    const group = `[${c.instanceId}]${eid.text}/128`;
    add({
      key: `[${c.instanceId}]'${derived.hashEidName}'`,
      group,
      template: {
        ...EID_RECORD_DEFAULTS,
        ttl,
        authoritative: true,
        eidMaskLength: 0,
        eid: withIid(c.instanceId, { afi: 'distinguished-name', name: derived.hashEidName }),
        locators: [jsonLocator({ 'public-key': publicKeyJsonValue(c.keyPair.publicKey) })],
      },
      signer: undefined,
    });
    const signature = jsonLocator({ 'signature-eid': `[${eid.iid}]${eid.text}`, signature: signEid(c.keyPair.scalar, eid) });
    // Same shape and length as the real one: 88 base64 characters, the same EID text, a timestamp
    // of ten digits (until 2286).
    const registrationLocator = jsonLocator({ 'registration-signature': 'A'.repeat(88), 'signed-eid': `[${eid.iid}]${eid.text}`, timestamp: 1_000_000_000 });
    add(
      {
        key: group,
        group,
        template: { ...EID_RECORD_DEFAULTS, ttl, authoritative: true, eidMaskLength: 128, eid: withIid(c.instanceId, ip(eid.text)), locators: [...locators, signature] },
        signer: { scalar: c.keyPair.scalar, eid },
      },
      locatorBytes(registrationLocator),
    );
  }
  const peers: ResolvedPeer[] = [];
  for (const ms of config.mapServers) {
    const address = canonicalAddress(ms.address);
    if (!parseIpv4(address) && !parseIpv6(address)) throw new RangeError(`map-server ${ms.address} is not an IP address`);
    const port = ms.port ?? MAP_SERVER_PORT;
    if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new RangeError(`map-server port ${port}`);
    const id = `${address}|${port}`;
    if (peers.some((p) => p.id === id)) throw new RangeError(`map-server ${address}:${port} is configured twice`);
    peers.push({ id, address, port, key: ms.key, wantMapNotify: ms.wantMapNotify ?? true, proxyReply: ms.proxyReply ?? false });
  }
  return { entries, peers, xtrId: Uint8Array.from(config.xtrId), siteId: config.siteId, timers };
}
