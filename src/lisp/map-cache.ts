// The ITR's map-cache (RFC 9300/9301; digest §1.6, §2.4): EID-prefix -> locator set or negative
// action, per instance-id, with longest-prefix match on a destination read in place from a packet.
//
// Structure: one path-compressed binary trie (PATRICIA) per (instance-id, family). A node holds its
// prefix as four int32 words plus their masks, so a lookup step is a few xor/and on small integers:
// verify the node's prefix, remember its entry if live, branch on the next bit. The walk visits at
// most one node per branching point (about log2(n) for random prefixes, never more than 33 or
// 129), and unlike per-length hash tables its cost does not grow with the number of distinct
// prefix lengths, which negative Map-Replies (the least-specific uncovered prefix) make many.
//
// Time is a parameter: an entry is live while `now < expiresAt`. Lookups skip dead entries (so a
// dead /32 falls back to a live /24 at once, whether or not `expire` has run yet); `expire(now)`
// removes them and hands them back so the caller can release their locators' `state`.
import { ACTION, ACTION_NAMES, LOCATOR_DEFAULTS, type Action, type EidRecord, type LocatorRecord } from './records.js';
import type { Address, Lcaf } from './address.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from './ip-text.js';
import type { IpFamily } from './inner-ip.js';
import { checkInstanceId, eidPrefix, formatPrefix, prefixOfEid, type EidPrefix } from './prefix.js';

export const LISP_DATA_PORT = 4341;
/** RFC 9301 (digest §2.4): TTL 0xffffffff lets the receiver choose how long to keep the mapping. */
export const TTL_RECEIVER_DECIDES = 0xffffffff;
/** lispers.net (`lisp_eid_record.store_ttl`): with bit 31 set the low 31 bits are seconds. */
export const TTL_SECONDS_FLAG = 0x80000000;
/** What TTL_RECEIVER_DECIDES means here unless the caller says otherwise: the usual positive TTL. */
export const DEFAULT_RECEIVER_DECIDES_TTL_MINUTES = 1440;

export type EntryOrigin = 'static' | 'learned';

export interface MapCacheLocator<S> {
  readonly family: IpFamily;
  /** Canonical text (`192.0.2.1`, `2001:db8::1`). */
  readonly address: string;
  /** 4 or 16 network-order bytes, for writing the outer header without parsing text. */
  readonly bytes: Uint8Array;
  readonly port: number;
  /** 0-254, lower preferred; 255 = never used for unicast. */
  readonly priority: number;
  /** Relative share among locators of the best priority; all 0 = equal shares. */
  readonly weight: number;
  /** Starts as the record's R bit; RLOC probing may change it, `chooseLocator` reads it live. */
  reachable: boolean;
  /** The data plane's slot (e.g. a crypto session); carried over when a refresh keeps the locator. */
  state: S | undefined;
  /** The Locator-record this came from (security-key LCAF and all), absent for static locators. */
  readonly record: LocatorRecord | undefined;
}

interface EntryFields {
  readonly prefix: EidPrefix;
  readonly origin: EntryOrigin;
  /** The record's ACT; what a negative entry tells the ITR to do with the packet. */
  readonly action: Action;
  /** Milliseconds on the caller's clock; Infinity for static entries. Live while now < expiresAt. */
  readonly expiresAt: number;
  /** `now` when this entry was inserted (a refresh inserts a new entry object). */
  readonly insertedAt: number;
  /** The EID-record it was learned from; absent for static entries. */
  readonly record: EidRecord | undefined;
}

export interface PositiveEntry<S> extends EntryFields {
  readonly kind: 'positive';
  /** Usable (IP) locators in record order; may be empty if the record named only non-IP ones. */
  readonly locators: readonly MapCacheLocator<S>[];
}

/** A negative mapping (RFC 9301: Locator Count 0): the packet gets `action` instead of a locator. */
export interface NegativeEntry extends EntryFields {
  readonly kind: 'negative';
  readonly locators: readonly [];
}

export type MapCacheEntry<S> = PositiveEntry<S> | NegativeEntry;

export interface MapCacheMiss {
  readonly kind: 'miss';
}

/** The one miss value; `lookup` returns it or the matching entry itself, so it never allocates. */
export const MISS: MapCacheMiss = Object.freeze({ kind: 'miss' });

export type LookupResult<S> = MapCacheMiss | MapCacheEntry<S>;

export interface InsertRecordOptions {
  /** Lifetime for TTL 0xffffffff ("the receiver decides"); default 1440 minutes. */
  readonly receiverDecidesTtlMinutes?: number;
  /** UDP port of the record's locators unless a NAT-Traversal LCAF names one; default 4341. */
  readonly port?: number;
  /**
   * Upper bound on the entry's lifetime, whatever the record's TTL says (0xffffffff included);
   * default none. Whoever answered decides the TTL, so without a bound a wrong mapping could stay
   * as long as it asked for (a day, 68 years with lispers.net's seconds form). Positive, minutes.
   */
  readonly maxTtlMinutes?: number;
}

export type InsertOutcome<S> =
  | {
      readonly outcome: 'inserted' | 'replaced';
      readonly entry: MapCacheEntry<S>;
      /** The entry this one replaced (its locators' moved `state` slots are cleared). */
      readonly previous: MapCacheEntry<S> | undefined;
      /** Locators of `previous` with no successor of the same address and port: release their state. */
      readonly dropped: readonly MapCacheLocator<S>[];
    }
  /** TTL 0 (RFC 9301: remove at once): the learned entry for the prefix, if there was one, is gone. */
  | { readonly outcome: 'removed'; readonly previous: MapCacheEntry<S> | undefined }
  | { readonly outcome: 'ignored'; readonly reason: InsertRefusal };

export type InsertRefusal =
  /** The record's EID is not an IPv4/IPv6 prefix (a name, a MAC, AFI 0). */
  | 'not-an-ip-prefix'
  /** The record carries an Instance-ID LCAF for another instance than the one asked for. */
  | 'instance-id-mismatch'
  /** Configuration owns this exact prefix; a Map-Reply cannot override it. */
  | 'static-entry'
  /** `maxLearnedEntries` reached (a flood of Map-Replies cannot grow the cache without bound). */
  | 'cache-full';

export interface LocatorSpec {
  /** IPv4 or IPv6 text. */
  readonly address: string;
  readonly port?: number;
  readonly priority?: number;
  readonly weight?: number;
  readonly reachable?: boolean;
}

export type StaticTarget = { readonly locators: readonly LocatorSpec[] } | { readonly action: Action };

export interface MapCacheOptions {
  /** Upper bound on learned entries; static ones do not count. Default: unbounded. */
  readonly maxLearnedEntries?: number;
}

/**
 * Milliseconds an EID-record TTL stands for: minutes, or lispers.net's seconds when bit 31 is set.
 * 0xffffffff is read as the RFC's "receiver decides" (the seconds rule alone would make it 2^31-1
 * seconds, 68 years) and becomes `receiverDecidesTtlMinutes`: a learned mapping that never expired
 * could never be corrected. 0 (or 0 seconds) means delete.
 */
export function recordTtlMs(ttl: number, receiverDecidesTtlMinutes = DEFAULT_RECEIVER_DECIDES_TTL_MINUTES): number {
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0xffffffff) throw new RangeError(`record TTL ${ttl} is not a 32-bit unsigned integer`);
  if (ttl === TTL_RECEIVER_DECIDES) return receiverDecidesTtlMinutes * 60_000;
  if (ttl >= TTL_SECONDS_FLAG) return (ttl - TTL_SECONDS_FLAG) * 1000;
  return ttl * 60_000;
}

/** `maxTtlMinutes` in milliseconds (Infinity when absent); a bound of 0 would make every record a deletion. */
function ttlBoundMs(maxTtlMinutes: number | undefined): number {
  if (maxTtlMinutes === undefined) return Infinity;
  if (!(maxTtlMinutes > 0)) throw new RangeError(`maxTtlMinutes ${maxTtlMinutes} is not a positive number`);
  return maxTtlMinutes * 60_000;
}

// ---------------------------------------------------------------- the trie

/**
 * A trie node: a prefix (words w0..w3, masks m0..m3, int32 so V8 keeps them as small integers) and
 * maybe an entry. Nodes without an entry are branch points and always have two children.
 */
class TrieNode<S> {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly m0: number;
  readonly m1: number;
  readonly m2: number;
  readonly m3: number;
  /** Which word and how far to shift it to bring bit `length` into the sign bit. */
  readonly nextWord: number;
  readonly nextShift: number;
  entry: MapCacheEntry<S> | undefined = undefined;
  zero: TrieNode<S> | undefined = undefined;
  one: TrieNode<S> | undefined = undefined;

  constructor(
    words: readonly number[],
    readonly length: number,
  ) {
    this.m0 = maskWord(length, 0);
    this.m1 = maskWord(length, 1);
    this.m2 = maskWord(length, 2);
    this.m3 = maskWord(length, 3);
    this.w0 = (words[0] ?? 0) & this.m0;
    this.w1 = (words[1] ?? 0) & this.m1;
    this.w2 = (words[2] ?? 0) & this.m2;
    this.w3 = (words[3] ?? 0) & this.m3;
    this.nextWord = length >>> 5;
    this.nextShift = length & 31;
  }

  words(): number[] {
    return [this.w0, this.w1, this.w2, this.w3];
  }
}

function maskWord(length: number, word: number): number {
  const bits = length - 32 * word;
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return -1 << (32 - bits);
}

function bitAt(words: readonly number[], index: number): number {
  return ((words[index >>> 5] ?? 0) >>> (31 - (index & 31))) & 1;
}

/** Length of the common leading bits of two word vectors, at most `limit`. */
function commonLength(a: readonly number[], b: readonly number[], limit: number): number {
  for (let w = 0; w < 4 && 32 * w < limit; w++) {
    const x = (a[w] ?? 0) ^ (b[w] ?? 0);
    if (x !== 0) return Math.min(limit, 32 * w + Math.clz32(x));
  }
  return limit;
}

function wordsOf(address: Uint8Array): number[] {
  const out = [0, 0, 0, 0];
  for (let i = 0; i < address.length; i++) out[i >>> 2] = (out[i >>> 2] ?? 0) | ((address[i] ?? 0) << (24 - 8 * (i & 3)));
  return out;
}

class Trie<S> {
  root: TrieNode<S> | undefined = undefined;
  count = 0;

  /** The node for exactly (words, length), created (with no entry) if missing. */
  nodeFor(words: readonly number[], length: number): TrieNode<S> {
    let parent: TrieNode<S> | undefined;
    let side = 0;
    let node = this.root;
    for (;;) {
      if (node === undefined) {
        const leaf = new TrieNode<S>(words, length);
        this.attach(parent, side, leaf);
        return leaf;
      }
      const nodeWords = node.words();
      const common = commonLength(nodeWords, words, Math.min(node.length, length));
      if (common === node.length) {
        if (node.length === length) return node;
        parent = node;
        side = bitAt(words, node.length);
        node = side === 0 ? node.zero : node.one;
        continue;
      }
      if (common === length) {
        // The new prefix is an ancestor of `node`.
        const fresh = new TrieNode<S>(words, length);
        setChild(fresh, bitAt(nodeWords, length), node);
        this.attach(parent, side, fresh);
        return fresh;
      }
      const branch = new TrieNode<S>(words, common);
      const leaf = new TrieNode<S>(words, length);
      setChild(branch, bitAt(nodeWords, common), node);
      setChild(branch, bitAt(words, common), leaf);
      this.attach(parent, side, branch);
      return leaf;
    }
  }

  find(words: readonly number[], length: number): TrieNode<S> | undefined {
    let node = this.root;
    while (node !== undefined && node.length <= length) {
      if (commonLength(node.words(), words, node.length) !== node.length) return undefined;
      if (node.length === length) return node;
      node = bitAt(words, node.length) === 0 ? node.zero : node.one;
    }
    return undefined;
  }

  /** Clears the entry at (words, length) and prunes nodes that no longer carry or branch. */
  remove(words: readonly number[], length: number): MapCacheEntry<S> | undefined {
    let grandparent: TrieNode<S> | undefined;
    let parent: TrieNode<S> | undefined;
    let node = this.root;
    while (node !== undefined && node.length < length) {
      grandparent = parent;
      parent = node;
      node = bitAt(words, node.length) === 0 ? node.zero : node.one;
    }
    if (node?.length !== length || node.entry === undefined) return undefined;
    if (commonLength(node.words(), words, length) !== length) return undefined;
    const entry = node.entry;
    node.entry = undefined;
    this.count--;
    if (node.zero !== undefined && node.one !== undefined) return entry;
    const child = node.zero ?? node.one;
    if (child !== undefined) {
      this.replace(parent, node, child);
      return entry;
    }
    this.replace(parent, node, undefined);
    if (parent !== undefined && parent.entry === undefined) {
      // A branch point left with one child is no longer needed.
      this.replace(grandparent, parent, parent.zero ?? parent.one);
    }
    return entry;
  }

  *walk(): Generator<MapCacheEntry<S>> {
    const stack: TrieNode<S>[] = [];
    if (this.root) stack.push(this.root);
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      if (node.entry) yield node.entry;
      if (node.one) stack.push(node.one);
      if (node.zero) stack.push(node.zero);
    }
  }

  private attach(parent: TrieNode<S> | undefined, side: number, node: TrieNode<S>): void {
    if (parent === undefined) this.root = node;
    else setChild(parent, side, node);
  }

  private replace(parent: TrieNode<S> | undefined, old: TrieNode<S>, next: TrieNode<S> | undefined): void {
    if (parent === undefined) this.root = next;
    else if (parent.zero === old) parent.zero = next;
    else parent.one = next;
  }
}

function setChild<S>(parent: TrieNode<S>, side: number, child: TrieNode<S>): void {
  if (side === 0) parent.zero = child;
  else parent.one = child;
}

// ---------------------------------------------------------------- the cache

const NO_LOCATORS: readonly [] = Object.freeze<[]>([]);

/**
 * `S` is whatever the data plane hangs on a locator (a crypto session, counters); this module
 * never looks at it.
 */
export class MapCache<S = unknown> {
  private readonly v4 = new Map<number, Trie<S>>();
  private readonly v6 = new Map<number, Trie<S>>();
  private readonly maxLearned: number;
  private learned = 0;
  private total = 0;

  constructor(options: MapCacheOptions = {}) {
    this.maxLearned = options.maxLearnedEntries ?? Infinity;
  }

  get size(): number {
    return this.total;
  }

  get learnedCount(): number {
    return this.learned;
  }

  /**
   * Longest-prefix match of the destination at `packet[addressOffset..]` (4 or 16 bytes) in
   * instance `iid`, ignoring entries dead at `now`. Returns the entry itself (kind 'positive' or
   * 'negative') or MISS: no allocation, no strings.
   */
  lookup(iid: number, family: IpFamily, packet: Uint8Array, addressOffset: number, now: number): LookupResult<S> {
    const o = addressOffset;
    if (family === 4) {
      if (o < 0 || o + 4 > packet.length) throw new RangeError('destination address outside the packet');
      const trie = this.v4.get(iid);
      if (trie === undefined) return MISS;
      const d0 = ((packet[o] ?? 0) << 24) | ((packet[o + 1] ?? 0) << 16) | ((packet[o + 2] ?? 0) << 8) | (packet[o + 3] ?? 0);
      let best: MapCacheEntry<S> | undefined;
      let node = trie.root;
      while (node !== undefined) {
        if (((d0 ^ node.w0) & node.m0) !== 0) break;
        const e = node.entry;
        if (e !== undefined && now < e.expiresAt) best = e;
        // At length 32 the shift wraps to 0, but such a node has no children either way.
        node = (d0 << node.nextShift) < 0 ? node.one : node.zero;
      }
      return best ?? MISS;
    }
    if (o < 0 || o + 16 > packet.length) throw new RangeError('destination address outside the packet');
    const trie = this.v6.get(iid);
    if (trie === undefined) return MISS;
    const d0 = ((packet[o] ?? 0) << 24) | ((packet[o + 1] ?? 0) << 16) | ((packet[o + 2] ?? 0) << 8) | (packet[o + 3] ?? 0);
    const d1 = ((packet[o + 4] ?? 0) << 24) | ((packet[o + 5] ?? 0) << 16) | ((packet[o + 6] ?? 0) << 8) | (packet[o + 7] ?? 0);
    const d2 = ((packet[o + 8] ?? 0) << 24) | ((packet[o + 9] ?? 0) << 16) | ((packet[o + 10] ?? 0) << 8) | (packet[o + 11] ?? 0);
    const d3 = ((packet[o + 12] ?? 0) << 24) | ((packet[o + 13] ?? 0) << 16) | ((packet[o + 14] ?? 0) << 8) | (packet[o + 15] ?? 0);
    let best: MapCacheEntry<S> | undefined;
    let node = trie.root;
    while (node !== undefined) {
      if ((((d0 ^ node.w0) & node.m0) | ((d1 ^ node.w1) & node.m1) | ((d2 ^ node.w2) & node.m2) | ((d3 ^ node.w3) & node.m3)) !== 0) break;
      const e = node.entry;
      if (e !== undefined && now < e.expiresAt) best = e;
      const w = node.nextWord;
      const word = w === 0 ? d0 : w === 1 ? d1 : w === 2 ? d2 : d3;
      node = (word << node.nextShift) < 0 ? node.one : node.zero;
    }
    return best ?? MISS;
  }

  /** `lookup` for an address given as text or bytes; for the control plane and tests. */
  lookupAddress(iid: number, address: string | Uint8Array, now: number): LookupResult<S> {
    const bytes = typeof address === 'string' ? (address.includes(':') ? parseIpv6(address) : parseIpv4(address)) : address;
    if (!bytes || (bytes.length !== 4 && bytes.length !== 16)) throw new RangeError(`not an IP address: ${String(address)}`);
    return this.lookup(iid, bytes.length === 4 ? 4 : 6, bytes, 0, now);
  }

  /** The entry for exactly this prefix, live or not. */
  get(prefix: EidPrefix): MapCacheEntry<S> | undefined {
    return this.tries(prefix.family).get(prefix.instanceId)?.find(wordsOf(prefix.address), prefix.length)?.entry;
  }

  /**
   * Inserts or replaces the mapping an EID-record gives for instance `iid` (learned from a
   * Map-Reply or Map-Notify). A refresh replaces the entry object; locators that stay (same
   * address and port) keep their `state`. TTL 0 removes the learned entry for the prefix.
   */
  insertRecord(iid: number, record: EidRecord, now: number, options: InsertRecordOptions = {}): InsertOutcome<S> {
    checkInstanceId(iid);
    const eid = record.eid;
    if (eid.afi === 'lcaf' && eid.lcaf.type === 'instance-id' && eid.lcaf.instanceId !== iid) {
      return { outcome: 'ignored', reason: 'instance-id-mismatch' };
    }
    const p = prefixOfEid(eid, record.eidMaskLength, iid);
    if (!p) return { outcome: 'ignored', reason: 'not-an-ip-prefix' };
    const existing = this.get(p);
    if (existing?.origin === 'static') return { outcome: 'ignored', reason: 'static-entry' };
    const ttlMs = Math.min(recordTtlMs(record.ttl, options.receiverDecidesTtlMinutes), ttlBoundMs(options.maxTtlMinutes));
    if (ttlMs === 0) return { outcome: 'removed', previous: existing === undefined ? undefined : this.remove(p) };
    if (existing === undefined && this.learned >= this.maxLearned) return { outcome: 'ignored', reason: 'cache-full' };
    const port = options.port ?? LISP_DATA_PORT;
    let entry: MapCacheEntry<S>;
    if (record.locators.length === 0) {
      entry = negativeEntry(p, 'learned', record.action, now + ttlMs, now, record);
    } else {
      const locators: MapCacheLocator<S>[] = [];
      for (const l of record.locators) {
        const target = locatorTarget(l.locator, port, 0);
        if (target) locators.push(makeLocator<S>(target.family, target.bytes, target.port, l.priority, l.weight, l.reachable, l));
      }
      entry = positiveEntry(p, 'learned', record.action, locators, now + ttlMs, now, record);
    }
    return this.put(entry, existing);
  }

  /** Inserts or replaces a configured mapping: it never expires and Map-Replies cannot replace it. */
  insertStatic(prefix: EidPrefix, target: StaticTarget, now: number): InsertOutcome<S> {
    const p = eidPrefix(prefix.instanceId, prefix.family, prefix.address, prefix.length);
    let entry: MapCacheEntry<S>;
    if ('action' in target) {
      entry = negativeEntry(p, 'static', target.action, Infinity, now, undefined);
    } else {
      const locators = target.locators.map((spec) => {
        const family: IpFamily = spec.address.includes(':') ? 6 : 4;
        const bytes = family === 4 ? parseIpv4(spec.address) : parseIpv6(spec.address);
        if (!bytes) throw new RangeError(`not a locator address: ${spec.address}`);
        const priority = spec.priority ?? LOCATOR_DEFAULTS.priority;
        const weight = spec.weight ?? LOCATOR_DEFAULTS.weight;
        const port = spec.port ?? LISP_DATA_PORT;
        checkByte(priority, 'priority');
        checkByte(weight, 'weight');
        if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new RangeError(`locator port ${port}`);
        return makeLocator<S>(family, bytes, port, priority, weight, spec.reachable ?? true, undefined);
      });
      entry = positiveEntry(p, 'static', ACTION.noAction, locators, Infinity, now, undefined);
    }
    return this.put(entry, this.get(p));
  }

  /** Removes the entry for exactly this prefix (static or learned) and returns it. */
  remove(prefix: EidPrefix): MapCacheEntry<S> | undefined {
    const tries = this.tries(prefix.family);
    const trie = tries.get(prefix.instanceId);
    const entry = trie?.remove(wordsOf(prefix.address), prefix.length);
    if (trie === undefined || entry === undefined) return undefined;
    this.total--;
    if (entry.origin === 'learned') this.learned--;
    if (trie.count === 0) tries.delete(prefix.instanceId);
    return entry;
  }

  /** Removes every learned entry dead at `now` (now >= expiresAt) and returns them. */
  expire(now: number): MapCacheEntry<S>[] {
    const dead: MapCacheEntry<S>[] = [];
    for (const e of this.entries()) if (now >= e.expiresAt) dead.push(e);
    for (const e of dead) this.remove(e.prefix);
    return dead;
  }

  /** The earliest `expiresAt` of any entry, for the caller's timer; undefined if none expires. */
  nextExpiry(): number | undefined {
    let next = Infinity;
    for (const e of this.entries()) if (e.expiresAt < next) next = e.expiresAt;
    return next === Infinity ? undefined : next;
  }

  /** Every entry, live or dead: by instance-id, IPv4 before IPv6, then in address order (shorter first). */
  *entries(): Generator<MapCacheEntry<S>> {
    const iids = [...new Set([...this.v4.keys(), ...this.v6.keys()])].sort((a, b) => a - b);
    for (const iid of iids) {
      const t4 = this.v4.get(iid);
      if (t4) yield* t4.walk();
      const t6 = this.v6.get(iid);
      if (t6) yield* t6.walk();
    }
  }

  [Symbol.iterator](): Generator<MapCacheEntry<S>> {
    return this.entries();
  }

  clear(): MapCacheEntry<S>[] {
    const all = [...this.entries()];
    this.v4.clear();
    this.v6.clear();
    this.total = 0;
    this.learned = 0;
    return all;
  }

  private tries(family: IpFamily): Map<number, Trie<S>> {
    return family === 4 ? this.v4 : this.v6;
  }

  private put(entry: MapCacheEntry<S>, previous: MapCacheEntry<S> | undefined): InsertOutcome<S> {
    const p = entry.prefix;
    const tries = this.tries(p.family);
    let trie = tries.get(p.instanceId);
    if (trie === undefined) {
      trie = new Trie<S>();
      tries.set(p.instanceId, trie);
    }
    const node = trie.nodeFor(wordsOf(p.address), p.length);
    if (node.entry === undefined) {
      trie.count++;
      this.total++;
    } else if (node.entry.origin === 'learned') {
      this.learned--;
    }
    if (entry.origin === 'learned') this.learned++;
    node.entry = entry;
    const dropped = previous === undefined ? [] : carryState(previous.locators, entry.locators);
    return { outcome: previous === undefined ? 'inserted' : 'replaced', entry, previous, dropped };
  }
}

/** Moves `state` from old locators to new ones with the same address and port; returns the rest. */
function carryState<S>(old: readonly MapCacheLocator<S>[], next: readonly MapCacheLocator<S>[]): MapCacheLocator<S>[] {
  const dropped: MapCacheLocator<S>[] = [];
  const taken = new Set<MapCacheLocator<S>>();
  for (const o of old) {
    const successor = next.find((n) => !taken.has(n) && n.port === o.port && n.address === o.address);
    if (successor === undefined) {
      dropped.push(o);
      continue;
    }
    taken.add(successor);
    successor.state = o.state;
    o.state = undefined;
  }
  return dropped;
}

function checkByte(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 255) throw new RangeError(`locator ${what} ${value} is not 0-255`);
}

// Every entry and locator is built by one function with one property order, so all of them share
// a hidden class and the lookup loop's property loads stay monomorphic.
function positiveEntry<S>(
  prefix: EidPrefix,
  origin: EntryOrigin,
  action: Action,
  locators: readonly MapCacheLocator<S>[],
  expiresAt: number,
  insertedAt: number,
  record: EidRecord | undefined,
): PositiveEntry<S> {
  return { kind: 'positive', prefix, origin, action, locators, expiresAt, insertedAt, record };
}

function negativeEntry(prefix: EidPrefix, origin: EntryOrigin, action: Action, expiresAt: number, insertedAt: number, record: EidRecord | undefined): NegativeEntry {
  return { kind: 'negative', prefix, origin, action, locators: NO_LOCATORS, expiresAt, insertedAt, record };
}

function makeLocator<S>(
  family: IpFamily,
  bytes: Uint8Array,
  port: number,
  priority: number,
  weight: number,
  reachable: boolean,
  record: LocatorRecord | undefined,
): MapCacheLocator<S> {
  const address = family === 4 ? formatIpv4(bytes) : formatIpv6(bytes);
  return { family, address, bytes, port, priority, weight, reachable, state: undefined, record };
}

interface LocatorTarget {
  readonly family: IpFamily;
  readonly bytes: Uint8Array;
  readonly port: number;
}

/**
 * The IP address (and port) to encapsulate to, from a Loc-AFI: a plain address, or the address
 * inside the LCAFs peers wrap it in (lispers.net: AFI-List of name/address/Security Key, JSON;
 * NAT-Traversal: the translated global ETR address and port). Names and MACs give nothing.
 */
function locatorTarget(a: Address, port: number, depth: number): LocatorTarget | undefined {
  if (depth > 8) return undefined;
  switch (a.afi) {
    case 'ipv4': {
      const bytes = parseIpv4(a.address);
      return bytes && { family: 4, bytes, port };
    }
    case 'ipv6': {
      const bytes = parseIpv6(a.address);
      return bytes && { family: 6, bytes, port };
    }
    case 'lcaf':
      return lcafTarget(a.lcaf, port, depth);
    case 'none':
    case 'mac':
    case 'distinguished-name':
      return undefined;
  }
}

function lcafTarget(l: Lcaf, port: number, depth: number): LocatorTarget | undefined {
  switch (l.type) {
    case 'afi-list':
      for (const item of l.items) {
        const t = locatorTarget(item, port, depth + 1);
        if (t) return t;
      }
      return undefined;
    case 'instance-id':
    case 'json':
      return locatorTarget(l.address, port, depth + 1);
    case 'security-key':
      return locatorTarget(l.locator, port, depth + 1);
    case 'nat-traversal':
      return locatorTarget(l.globalEtrRloc, l.etrPort === 0 ? port : l.etrPort, depth + 1);
    case 'opaque':
      return undefined;
  }
}

// ---------------------------------------------------------------- locator choice

/**
 * RFC 9301 Priority/Weight (digest §1.6): among reachable locators with priority < 255 the lowest priority
 * wins, and the winners share flows in proportion to their weights (all 0 = equal shares).
 * `hash` (a 31-bit flow hash; bit 31 and above are ignored) picks deterministically by its high
 * bits, so a flow sticks to one locator while the set is unchanged. Undefined: no reachable
 * locator (the caller drops with 'no-reachable-locator'). Reads `reachable` live; allocates nothing.
 */
export function chooseLocator<S>(entry: MapCacheEntry<S>, hash: number): MapCacheLocator<S> | undefined {
  const locators: readonly MapCacheLocator<S>[] = entry.locators;
  const n = locators.length;
  let best = 255;
  let total = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const l = locators[i];
    if (l === undefined || !l.reachable || l.priority >= 255) continue;
    if (l.priority < best) {
      best = l.priority;
      total = l.weight;
      count = 1;
    } else if (l.priority === best) {
      total += l.weight;
      count++;
    }
  }
  if (count === 0) return undefined;
  // (hash * k) / 2^31 maps a uniform 31-bit hash onto 0..k-1 by its high bits; exact in a double.
  const byCount = total === 0;
  const target = Math.floor(((hash & 0x7fffffff) * (byCount ? count : total)) / 2147483648);
  let seen = 0;
  for (let i = 0; i < n; i++) {
    const l = locators[i];
    if (l === undefined || !l.reachable || l.priority !== best) continue;
    seen += byCount ? 1 : l.weight;
    if (seen > target) return l;
  }
  return undefined;
}

// ---------------------------------------------------------------- flow hash

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_DCCP = 33;
const PROTO_SCTP = 132;
const PROTO_UDPLITE = 136;

function hasPorts(protocol: number): boolean {
  return protocol === PROTO_TCP || protocol === PROTO_UDP || protocol === PROTO_SCTP || protocol === PROTO_DCCP || protocol === PROTO_UDPLITE;
}

function word32(p: Uint8Array, at: number): number {
  return ((p[at] ?? 0) << 24) | ((p[at + 1] ?? 0) << 16) | ((p[at + 2] ?? 0) << 8) | (p[at + 3] ?? 0);
}

// MurmurHash3 (x86, 32-bit) block step and finaliser: a few multiplies per word, good avalanche.
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  // The top 31 bits: a V8 small integer, so returning it never allocates (a uint32 at or above
  // 2^31 is boxed as a heap number whenever the call is not inlined; measured 1 per 2 packets).
  return h >>> 1;
}

/**
 * A 31-bit hash (0 to 2^31-1) of the flow of the IP packet starting at `packet[offset]`: source,
 * destination, protocol and ports for TCP/UDP/SCTP/DCCP/UDP-Lite when the packet is not a fragment and the
 * ports are inside the buffer; source and destination alone otherwise (so every fragment of a
 * datagram, the first included, goes the same way). IPv6 extension headers (hop-by-hop, routing,
 * destination options, fragment, AH) are walked to find the transport header. Not cryptographic;
 * `seed` lets a node decorrelate its choices from its neighbours'. Never throws, never allocates.
 */
export function flowHash(packet: Uint8Array, offset: number, seed = 0): number {
  const first = packet[offset] ?? 0;
  const version = first >>> 4;
  let h = seed | 0;
  if (version === 4) {
    h = mix(h, word32(packet, offset + 12));
    h = mix(h, word32(packet, offset + 16));
    const protocol = packet[offset + 9] ?? 0;
    // MF or a fragment offset: ports are absent (later fragments) or must be ignored (the first).
    const fragment = (((packet[offset + 6] ?? 0) & 0x3f) << 8) | (packet[offset + 7] ?? 0);
    const transport = offset + ((first & 0x0f) << 2);
    if (fragment !== 0 || !hasPorts(protocol) || transport + 4 > packet.length) return finish(h, 8);
    h = mix(h, protocol);
    h = mix(h, word32(packet, transport));
    return finish(h, 16);
  }
  if (version !== 6) return finish(h, 0);
  for (let at = offset + 8; at < offset + 40; at += 4) h = mix(h, word32(packet, at));
  let next = packet[offset + 6] ?? 0;
  let at = offset + 40;
  for (let i = 0; i < 8; i++) {
    if (next === 0 || next === 43 || next === 60) {
      next = packet[at] ?? 0;
      at += ((packet[at + 1] ?? 0) + 1) * 8;
    } else if (next === 51) {
      next = packet[at] ?? 0;
      at += ((packet[at + 1] ?? 0) + 2) * 4;
    } else if (next === 44) {
      // Fragment offset or M set: a real fragment. An atomic fragment (both zero) keeps its ports.
      if (((((packet[at + 2] ?? 0) << 8) | (packet[at + 3] ?? 0)) & 0xfff9) !== 0) return finish(h, 32);
      next = packet[at] ?? 0;
      at += 8;
    } else {
      break;
    }
  }
  if (!hasPorts(next) || at + 4 > packet.length) return finish(h, 32);
  h = mix(h, next);
  h = mix(h, word32(packet, at));
  return finish(h, 40);
}

// ---------------------------------------------------------------- status

/** One status line: `[iid]prefix/len ttl target`, for `lispnode` status output and logs. */
export function describeEntry<S>(e: MapCacheEntry<S>, now: number): string {
  const ttl = e.expiresAt === Infinity ? 'static' : now >= e.expiresAt ? 'expired' : `${Math.ceil((e.expiresAt - now) / 1000)}s`;
  const target =
    e.kind === 'negative'
      ? `negative ${ACTION_NAMES[e.action]}`
      : e.locators.map((l) => `${l.family === 6 ? `[${l.address}]` : l.address}:${l.port} p${l.priority}/w${l.weight}${l.reachable ? '' : ' down'}`).join(', ') || 'no usable locator';
  return `${formatPrefix(e.prefix)} ${ttl} ${target}`;
}
