// Data-plane sessions: what RFC 8061 leaves to the implementation. One SealingSession per peer
// locator we send to, one OpeningSession per peer locator we receive from (lispers.net keys
// them the same way: encap by etr:port, decap by itr[:port]).
//
// - IVs never repeat: salt (from the caller's CSPRNG, per key) || a per-key 64-bit counter. For
//   suite 5 that is the 12-byte GCM nonce (4 + 8, as EVE's data plane lays it out). CBC needs an
//   unpredictable IV, so for suite 2 the IV is AES_K(salt8 || counter) — NIST SP 800-38A app. C —
//   and the receiver recovers the counter with one block decryption.
// - The receiver keeps an anti-replay window per key on that counter.
// - Key-ids 1..3: installing a new key makes it current for sending at once; on the receiving
//   side the others stay valid for a grace period, so packets in flight are not lost.
// - A sealing key asks to be replaced after a packet count or an age, and refuses to seal at a
//   hard limit rather than reuse an IV.
import { createCipheriv, createDecipheriv, type Cipher, type Decipher } from 'node:crypto';
import { OPEN_STATUS, type CipherBackend, type CipherContext } from './cipher-backend.js';
import { suiteLayout, type CipherSuite, type SuiteLayout } from './cipher-suite.js';
import { ReplayWindow } from './replay-window.js';
import type { DataPlaneKeys } from './x25519-kdf.js';

export type KeyId = 1 | 2 | 3;

export interface SessionLimits {
  /** needsRekey() turns true after this many packets under one key. */
  readonly rekeyAfterPackets: number;
  /** … or after this long (ms). */
  readonly rekeyAfterMs: number;
  /** Sealing stops at this count; never above 2^53 (the counter is a JS number). */
  readonly hardLimitPackets: number;
  /** How long a receiving key stays valid after a newer one was installed (ms). */
  readonly graceMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  rekeyAfterPackets: 2 ** 30,
  rekeyAfterMs: 60 * 60 * 1000,
  hardLimitPackets: 2 ** 32,
  graceMs: 30 * 1000,
};

const HEADER = 8;
/** Counters at or above this cannot be represented exactly and are never produced. */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;
export const SALT_LENGTH = 8;

export interface InstallKey {
  readonly keyId: KeyId;
  readonly suite: CipherSuite;
  readonly keys: DataPlaneKeys;
  /** 8 bytes from the caller's CSPRNG; suite 5 uses the first 4. */
  readonly salt: Uint8Array;
  readonly now: number;
}

function writeCounter(out: Uint8Array, at: number, counter: number): void {
  const hi = Math.floor(counter / 2 ** 32);
  const lo = counter >>> 0;
  out[at] = hi >>> 24;
  out[at + 1] = (hi >>> 16) & 0xff;
  out[at + 2] = (hi >>> 8) & 0xff;
  out[at + 3] = hi & 0xff;
  out[at + 4] = lo >>> 24;
  out[at + 5] = (lo >>> 16) & 0xff;
  out[at + 6] = (lo >>> 8) & 0xff;
  out[at + 7] = lo & 0xff;
}

/** The counter in 8 big-endian bytes, or -1 when it exceeds 2^53. */
function readCounter(b: Uint8Array, at: number): number {
  const hi = (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
  const lo = (((b[at + 4] ?? 0) << 24) | ((b[at + 5] ?? 0) << 16) | ((b[at + 6] ?? 0) << 8) | (b[at + 7] ?? 0)) >>> 0;
  const value = hi * 2 ** 32 + lo;
  return value > MAX_COUNTER ? -1 : value;
}

let scratch = new Uint8Array(16 * 64);
/** Shared scratch for batches of CBC IV blocks (single-threaded: no call can interleave). */
function ivScratch(count: number): Uint8Array {
  if (scratch.length < 16 * count) scratch = new Uint8Array(16 * count);
  return scratch;
}

function checkLimits(limits: SessionLimits): void {
  if (!(limits.hardLimitPackets > 0 && limits.hardLimitPackets <= MAX_COUNTER)) throw new RangeError('hardLimitPackets must be in (0, 2^53)');
}

/** One installed key: cipher context plus what the IV scheme needs. */
interface KeySlot {
  readonly keyId: KeyId;
  readonly layout: SuiteLayout;
  readonly context: CipherContext;
  readonly salt: Uint8Array;
  /** Suite 2 only: AES-ECB under the encrypt key, for the IV permutation. */
  readonly ivBlock: Cipher | Decipher | undefined;
  readonly installedAt: number;
}

function openSlot(backend: CipherBackend, k: InstallKey, direction: 'seal' | 'open'): KeySlot {
  if (k.salt.length !== SALT_LENGTH) throw new RangeError(`the salt is ${SALT_LENGTH} bytes`);
  const layout = suiteLayout(k.suite);
  const ivBlock =
    k.suite === 2
      ? (direction === 'seal' ? createCipheriv('aes-128-ecb', k.keys.encryptKey, null) : createDecipheriv('aes-128-ecb', k.keys.encryptKey, null)).setAutoPadding(false)
      : undefined;
  return {
    keyId: k.keyId,
    layout,
    context: backend.createContext(k.suite, k.keys.encryptKey, k.keys.icvKey),
    salt: k.salt.slice(),
    ivBlock,
    installedAt: k.now,
  };
}

export type SealOutcome = { readonly status: 'ok'; readonly sealed: number } | { readonly status: 'no-key' | 'key-exhausted'; readonly sealed: number };

/** Sends to one peer locator with its current key. */
export class SealingSession {
  private slot: KeySlot | undefined;
  private counter = 0;

  constructor(
    private readonly backend: CipherBackend,
    private readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS,
  ) {
    checkLimits(limits);
  }

  /** The current key-id and layout, so the caller puts the plaintext at 8 + ivLength. */
  get current(): { readonly keyId: KeyId; readonly layout: SuiteLayout } | undefined {
    return this.slot;
  }

  get packetsSealed(): number {
    return this.counter;
  }

  install(k: InstallKey): void {
    this.slot?.context.close();
    this.slot = openSlot(this.backend, k, 'seal');
    this.counter = 0;
  }

  needsRekey(now: number): boolean {
    const s = this.slot;
    return s !== undefined && (this.counter >= this.limits.rekeyAfterPackets || now - s.installedAt >= this.limits.rekeyAfterMs);
  }

  /**
   * Seals packets[0..count): sets the key-id bits of each LISP header, writes the IV, and
   * encrypts. lengths[i] in: 8 + ivLength + plaintext; out: sealed length. Stops (and says why)
   * when there is no key or the key is used up; packets from `sealed` on are untouched.
   */
  sealBatch(packets: readonly Uint8Array[], lengths: Uint32Array, count: number): SealOutcome {
    const s = this.slot;
    if (!s) return { status: 'no-key', sealed: 0 };
    const room = Math.max(0, this.limits.hardLimitPackets - this.counter);
    const n = Math.min(count, room);
    const blocks = s.ivBlock ? ivScratch(n) : undefined;
    for (let i = 0; i < n; i++) {
      const p = packets[i];
      if (!p) throw new RangeError(`count exceeds the packet array (${packets.length})`);
      p[0] = ((p[0] ?? 0) & ~0x03) | s.keyId;
      if (blocks) {
        blocks.set(s.salt, 16 * i);
        writeCounter(blocks, 16 * i + 8, this.counter++);
      } else {
        p.set(s.salt.subarray(0, 4), HEADER);
        writeCounter(p, HEADER + 4, this.counter++);
      }
    }
    if (blocks && n > 0) {
      // ECB treats blocks independently: one call permutes the whole batch of IVs.
      const ivs = (s.ivBlock as Cipher).update(blocks.subarray(0, 16 * n));
      for (let i = 0; i < n; i++) packets[i]?.set(ivs.subarray(16 * i, 16 * i + 16), HEADER);
    }
    if (n > 0) s.context.sealBatch(packets, lengths, n);
    return n === count ? { status: 'ok', sealed: n } : { status: 'key-exhausted', sealed: n };
  }

  close(): void {
    this.slot?.context.close();
    this.slot = undefined;
  }
}

/** Session-level results of OpeningSession.openBatch: the cipher's, then the session's own. */
export const SESSION_OPEN_STATUS = [...OPEN_STATUS, 'no-key', 'key-expired', 'replayed', 'too-old'] as const;
export type SessionOpenStatus = (typeof SESSION_OPEN_STATUS)[number];
const S = Object.fromEntries(SESSION_OPEN_STATUS.map((name, i) => [name, i])) as Readonly<Record<SessionOpenStatus, number>>;

/** Statuses after which a packet may still open under a candidate or retiring key of its key-id. */
const RETRY_UNDER_FALLBACK = new Uint8Array(SESSION_OPEN_STATUS.length);
for (const status of ['no-key', 'icv-mismatch', 'key-expired', 'replayed', 'too-old'] as const) RETRY_UNDER_FALLBACK[S[status]] = 1;

interface ReceiveSlot extends KeySlot {
  readonly window: ReplayWindow | undefined;
  /** Set when a newer key arrives: after this the key is refused. */
  expiresAt: number;
}

/**
 * A key held besides the current ones, tried only for packets the current keys refuse:
 * - `candidate`: agreed in an exchange but not yet proven. The first packet that opens under it
 *   (ICV, tag and replay window) proves the peer holds the key, and it becomes current for its
 *   key-id. An unauthenticated key offer can therefore never replace a working key by itself.
 * - `retiring`: replaced by a promoted candidate of the same key-id (lispers.net always uses
 *   key-id 1), kept for the grace period so packets in flight still open.
 * Its cipher context is made on first use, so an unproven candidate costs only its key bytes.
 */
interface FallbackKey<M> {
  readonly role: 'candidate' | 'retiring';
  readonly keyId: KeyId;
  readonly installedAt: number;
  /** A candidate's key until its context is made. */
  readonly pending: InstallKey | undefined;
  slot: ReceiveSlot | undefined;
  readonly meta: M | undefined;
  expiresAt: number;
}

interface FallbackOpen<M> {
  readonly status: number;
  /** The meta of the key that opened it, when ok. */
  readonly meta?: M | undefined;
  /** Where the plaintext starts, when ok. */
  readonly offset: number;
  /** 8 + IV + padded plaintext, when ok. */
  readonly length: number;
}

/** How many candidates (and retiring keys) one session keeps; the oldest goes first. */
export const MAX_CANDIDATES = 3;
const MAX_RETIRING = 3;

/** A key the session holds, for status output and for answering a re-offer with the same key. */
export interface HeldKey<M> {
  readonly keyId: KeyId;
  readonly role: 'current' | 'candidate' | 'retiring';
  readonly meta: M | undefined;
  readonly installedAt: number;
}

/**
 * Receives from one peer locator: up to three current keys by key-id, each with its replay
 * window, and a few candidate and retiring keys (FallbackKey). `M` is what the caller keeps with
 * each key (the public keys it was agreed from, how it was authenticated).
 */
export class OpeningSession<M = unknown> {
  private readonly slots: (ReceiveSlot | undefined)[] = [undefined, undefined, undefined, undefined];
  private readonly metas: (M | undefined)[] = [undefined, undefined, undefined, undefined];
  private fallbacks: FallbackKey<M>[] = [];
  /** Candidates proven by a packet so far. */
  promotions = 0;
  /** Candidates pushed out by newer ones (MAX_CANDIDATES). */
  evictions = 0;
  /** When a packet last opened under any key (for the caller's eviction of idle peers). */
  lastOpenedAt = -Infinity;
  private readonly one: { packets: Uint8Array[]; lengths: Uint32Array; statuses: Uint8Array } = { packets: [new Uint8Array(0)], lengths: new Uint32Array(1), statuses: new Uint8Array(1) };
  // Scratch space for grouping a batch by key-id, reused across calls.
  private groupPackets: Uint8Array[] = [];
  private groupIndex = new Uint32Array(0);
  private groupLengths = new Uint32Array(0);
  private groupStatuses = new Uint8Array(0);
  private counters = new Float64Array(0);

  /**
   * `replay: 'off'` is for peers whose IVs are not salt||counter (lispers.net packs its counter
   * little-endian behind a random start); they get no window.
   */
  constructor(
    private readonly backend: CipherBackend,
    private readonly options: { readonly limits?: SessionLimits; readonly replay?: 'window' | 'off'; readonly windowSize?: number } = {},
  ) {
    checkLimits(options.limits ?? DEFAULT_SESSION_LIMITS);
  }

  /**
   * Makes `k` current for its key-id at once: for keys proven otherwise (static keys from the
   * configuration). Keys agreed over the network go through `addCandidate`.
   */
  install(k: InstallKey, meta?: M): void {
    this.graceOthers(k.keyId, k.now);
    this.slots[k.keyId]?.context.close();
    this.slots[k.keyId] = this.receiveSlot(k);
    this.metas[k.keyId] = meta;
  }

  /** Holds `k` as a candidate until a packet proves it or `expiresAt` passes; returns the candidates pushed out. */
  addCandidate(k: InstallKey, meta: M, expiresAt: number): number {
    this.fallbacks.push({ role: 'candidate', keyId: k.keyId, installedAt: k.now, pending: k, slot: undefined, meta, expiresAt });
    return this.trim('candidate', MAX_CANDIDATES);
  }

  /** The keys held, current first. */
  keys(): HeldKey<M>[] {
    const out: HeldKey<M>[] = [];
    for (const keyId of [1, 2, 3] as const) {
      const slot = this.slots[keyId];
      if (slot) out.push({ keyId, role: 'current', meta: this.metas[keyId], installedAt: slot.installedAt });
    }
    for (const f of this.fallbacks) out.push({ keyId: f.keyId, role: f.role, meta: f.meta, installedAt: f.installedAt });
    return out;
  }

  /** Whether the session holds no key at all (current, candidate or retiring). */
  get empty(): boolean {
    return this.fallbacks.length === 0 && !this.proven;
  }

  /** Whether any key is current (a packet has proven the peer, or the key is static). */
  get proven(): boolean {
    return this.slots.some((s) => s !== undefined);
  }

  /** Drops keys whose grace period (or a candidate's time to be proven) is over. */
  expire(now: number): void {
    this.slots.forEach((s, i) => {
      if (s && s.expiresAt <= now) {
        s.context.close();
        this.slots[i] = undefined;
        this.metas[i] = undefined;
      }
    });
    const kept: FallbackKey<M>[] = [];
    for (const f of this.fallbacks) {
      if (f.expiresAt <= now) f.slot?.context.close();
      else kept.push(f);
    }
    this.fallbacks = kept;
  }

  hasKey(keyId: KeyId): boolean {
    return this.slots[keyId] !== undefined;
  }

  private receiveSlot(k: InstallKey): ReceiveSlot {
    return { ...openSlot(this.backend, k, 'open'), window: this.options.replay === 'off' ? undefined : new ReplayWindow(this.options.windowSize), expiresAt: Number.POSITIVE_INFINITY };
  }

  /** A new key for `keyId`: the other key-ids' keys stay valid for the grace period only. */
  private graceOthers(keyId: KeyId, now: number): void {
    const grace = (this.options.limits ?? DEFAULT_SESSION_LIMITS).graceMs;
    for (const other of this.slots) if (other && other.keyId !== keyId) other.expiresAt = Math.min(other.expiresAt, now + grace);
  }

  /** Keeps the newest `max` fallbacks of `role`; returns how many went. */
  private trim(role: FallbackKey<M>['role'], max: number): number {
    let excess = this.fallbacks.filter((f) => f.role === role).length - max;
    if (excess <= 0) return 0;
    const gone = excess;
    this.fallbacks = this.fallbacks.filter((f) => {
      if (f.role !== role || excess <= 0) return true;
      excess--;
      f.slot?.context.close();
      return false;
    });
    if (role === 'candidate') this.evictions += gone;
    return gone;
  }

  /** A packet opened under candidate `f`: it becomes current for its key-id, the key it replaces retires. */
  private promote(f: FallbackKey<M>, slot: ReceiveSlot, now: number): void {
    const keyId = f.keyId;
    const old = this.slots[keyId];
    this.fallbacks = this.fallbacks.filter((x) => x !== f);
    if (old) {
      old.expiresAt = Math.min(old.expiresAt, now + (this.options.limits ?? DEFAULT_SESSION_LIMITS).graceMs);
      this.fallbacks.push({ role: 'retiring', keyId, installedAt: old.installedAt, pending: undefined, slot: old, meta: this.metas[keyId], expiresAt: old.expiresAt });
      this.trim('retiring', MAX_RETIRING);
    }
    this.slots[keyId] = slot;
    this.metas[keyId] = f.meta;
    this.promotions++;
    // The newest proven key is the one the peer moves to: older ones (also one proven only now,
    // by a packet that was in flight) keep the grace period, never the other way round.
    const newest = Math.max(...this.slots.map((x) => x?.installedAt ?? -Infinity));
    const grace = (this.options.limits ?? DEFAULT_SESSION_LIMITS).graceMs;
    for (const x of this.slots) if (x && x.installedAt < newest) x.expiresAt = Math.min(x.expiresAt, now + grace);
  }

  /**
   * The packet the current keys refused, tried under the fallback keys of its key-id (retiring
   * first: in-flight packets of a rekey are the common case). Undefined when none of them can
   * say more than the current keys did.
   */
  private openFallback(p: Uint8Array, length: number, now: number): FallbackOpen<M> | undefined {
    const keyId = ((p[0] ?? 0) & 0x03) as KeyId;
    let result: FallbackOpen<M> | undefined;
    for (const role of ['retiring', 'candidate'] as const) {
      for (const f of this.fallbacks) {
        if (f.role !== role || f.keyId !== keyId || f.expiresAt <= now) continue;
        const slot = (f.slot ??= f.pending && this.receiveSlot(f.pending));
        if (!slot) continue;
        if (!this.opensAt(slot, p, length)) continue;
        const counter = !slot.window ? 0 : slot.ivBlock ? readCounter((slot.ivBlock).update(p.subarray(HEADER, HEADER + 16)), 8) : readCounter(p, HEADER + 4);
        const verdict = !slot.window ? 'fresh' : counter < 0 ? 'too-old' : slot.window.check(counter);
        if (verdict !== 'fresh') {
          result ??= { status: S[verdict], offset: 0, length };
          continue;
        }
        const one = this.one;
        one.packets[0] = p;
        one.lengths[0] = length;
        slot.context.openBatch(one.packets, one.lengths, one.statuses, 1);
        const status = one.statuses[0] ?? S['bad-length'];
        if (status === S['icv-mismatch']) continue;
        if (status === S.ok) {
          slot.window?.accept(counter);
          if (f.role === 'candidate') this.promote(f, slot, now);
          return { status, offset: HEADER + slot.layout.ivLength, length: one.lengths[0] ?? 0, meta: f.meta };
        }
        return { status, offset: 0, length };
      }
    }
    return result;
  }

  /**
   * Opens packets[0..count). statuses[i] gets an index into SESSION_OPEN_STATUS; lengths[i] in:
   * the received length; out (when ok): 8 + ivLength + padded plaintext, and payloadOffsets[i]
   * (when given) where the plaintext starts, and openedBy[i] (when given) the meta of the key
   * that opened it (what it was agreed from: the caller's check of the inner source).
   */
  openBatch(packets: readonly Uint8Array[], lengths: Uint32Array, statuses: Uint8Array, count: number, now: number, payloadOffsets?: Uint32Array, openedBy?: (M | undefined)[]): void {
    this.reserve(count);
    for (const keyId of [1, 2, 3] as const) {
      const slot = this.slots[keyId];
      const ivCounters = slot?.window && slot.ivBlock ? this.cbcCounters(slot, keyId, packets, lengths, count) : undefined;
      let n = 0;
      let m = 0;
      for (let i = 0; i < count; i++) {
        const p = packets[i];
        if (!p) throw new RangeError(`count exceeds the packet array (${packets.length})`);
        if (((p[0] ?? 0) & 0x03) !== keyId) continue;
        if (!slot) {
          statuses[i] = S['no-key'];
          continue;
        }
        if (slot.expiresAt <= now) {
          statuses[i] = S['key-expired'];
          continue;
        }
        const length = lengths[i] ?? 0;
        if (!this.opensAt(slot, p, length)) {
          statuses[i] = S['too-short'];
          continue;
        }
        const counter = !slot.window ? 0 : ivCounters ? (ivCounters[m++] ?? -1) : readCounter(p, HEADER + 4);
        if (slot.window) {
          const verdict = counter < 0 ? 'too-old' : slot.window.check(counter);
          if (verdict !== 'fresh') {
            statuses[i] = S[verdict];
            continue;
          }
        }
        this.groupPackets[n] = p;
        this.groupIndex[n] = i;
        this.groupLengths[n] = length;
        this.counters[n] = counter;
        n++;
      }
      if (!slot || n === 0) continue;
      slot.context.openBatch(this.groupPackets, this.groupLengths, this.groupStatuses, n);
      for (let j = 0; j < n; j++) {
        const i = this.groupIndex[j] ?? 0;
        let status = this.groupStatuses[j] ?? S['bad-length'];
        // Only authenticated packets move the window; a duplicate inside one batch loses here.
        if (status === S.ok && slot.window && !slot.window.accept(this.counters[j] ?? -1)) status = S.replayed;
        statuses[i] = status;
        if (status === S.ok) {
          lengths[i] = this.groupLengths[j] ?? 0;
          if (payloadOffsets) payloadOffsets[i] = HEADER + slot.layout.ivLength;
          if (openedBy) openedBy[i] = this.metas[keyId];
        }
      }
    }
    for (let i = 0; i < count; i++) {
      const p = packets[i];
      if (!p || ((p[0] ?? 0) & 0x03) === 0) {
        statuses[i] = S['no-key'];
        continue;
      }
      if (this.fallbacks.length > 0 && RETRY_UNDER_FALLBACK[statuses[i] ?? 0] === 1) {
        const retried = this.openFallback(p, lengths[i] ?? 0, now);
        if (retried) {
          statuses[i] = retried.status;
          if (retried.status === S.ok) {
            lengths[i] = retried.length;
            if (payloadOffsets) payloadOffsets[i] = retried.offset;
            if (openedBy) openedBy[i] = retried.meta;
          }
        }
      }
      if (statuses[i] === S.ok) this.lastOpenedAt = now;
    }
  }

  /**
   * Suite 2: the counters of this key's packets (in packet order, for those long enough to hold an
   * IV), recovered from their IVs with one ECB call for the batch.
   */
  private cbcCounters(slot: ReceiveSlot, keyId: KeyId, packets: readonly Uint8Array[], lengths: Uint32Array, count: number): Float64Array {
    const blocks = ivScratch(count);
    let m = 0;
    for (let i = 0; i < count; i++) {
      const p = packets[i];
      if (!p || ((p[0] ?? 0) & 0x03) !== keyId || !this.opensAt(slot, p, lengths[i] ?? 0)) continue;
      blocks.set(p.subarray(HEADER, HEADER + 16), 16 * m++);
    }
    const plain = (slot.ivBlock as Decipher).update(blocks.subarray(0, 16 * m));
    const out = new Float64Array(m);
    for (let j = 0; j < m; j++) out[j] = readCounter(plain, 16 * j + 8);
    return out;
  }

  /** The checks before a packet reaches the cipher: key still valid, room for header and IV. */
  private opensAt(slot: ReceiveSlot, p: Uint8Array, length: number): boolean {
    return length >= HEADER + slot.layout.ivLength && length <= p.length;
  }

  private reserve(count: number): void {
    if (this.groupIndex.length >= count) return;
    this.groupIndex = new Uint32Array(count);
    this.groupLengths = new Uint32Array(count);
    this.groupStatuses = new Uint8Array(count);
    this.counters = new Float64Array(count);
    this.groupPackets = new Array<Uint8Array>(count);
  }

  close(): void {
    this.slots.forEach((s, i) => {
      s?.context.close();
      this.slots[i] = undefined;
    });
  }
}
