// The map-server's registration store: what sites registered, until when, and with what proof,
// plus the replay memory that keeps a copied registration from being accepted twice.
//
// Structure: a Map by key (`[iid]prefix/len` or `[iid]'hash-…'`) and, for longest-prefix match,
// one table per (instance-id, family) holding a hash map per prefix length, walked from the
// longest length present. A lookup costs one masked copy and one Map probe per distinct length
// (a handful in practice: /128 crypto-EIDs, a few site prefixes). The map-cache's PATRICIA trie
// (map-cache.ts) would be faster for many lengths but is private to that module and its entries
// carry data-plane state; exporting a generic trie from there is the change to make if the
// benchmark (issue 5, 100,000 EIDs) shows this walk.
//
// One registration per key: the last accepted Map-Register of the owning site wins. Merging the
// RLOC-sets several ETRs of a site register for one prefix (per xTR-ID; lispers.net's merge bit)
// is not done yet: with two ETRs per prefix the mapping follows whichever refreshed last.
//
// Time is a parameter (ms since 1970: registration signatures carry Unix timestamps and the
// snapshot stores absolute expiry). A registration is live while `now < expiresAt`; lookups skip
// dead ones, `expire(now)` removes them.
import { createHash, type KeyObject } from 'node:crypto';
import { publicKeyFromJsonValue } from '../../crypto/index.js';
import { ByteReader, fromHex, toHex } from '../bytes.js';
import { DecodeError, decodeSafely } from '../errors.js';
import type { IpFamily } from '../inner-ip.js';
import { parseIpv4, parseIpv6 } from '../ip-text.js';
import { eidPrefix, formatPrefix, parsePrefix, prefixOfEid, type EidPrefix } from '../prefix.js';
import { readEidRecord, type EidRecord } from '../records.js';
import { locatorJson } from '../registration-record.js';
import type { XtrIdentity } from '../xtr-identity.js';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** What was proven when the registration was accepted (site.ts ProofLevel, with its evidence). */
export type RegistrationProof =
  | { readonly level: 'site-key' }
  /** `signer`: the key of the hash-EID registration whose public key verified the signature. */
  | { readonly level: 'eid-signature'; readonly signer: string }
  | { readonly level: 'registration-signature'; readonly signer: string; readonly timestamp: number; readonly nonce: bigint };

interface RegistrationFields {
  /** `[iid]prefix/len` for prefixes, `[iid]'hash-…'` for hash-EIDs (lispers.net's notation). */
  readonly key: string;
  readonly site: string;
  readonly instanceId: number;
  /** The EID-record as received (signature locators included: ITRs may check them end to end). */
  readonly record: EidRecord;
  /** Its wire bytes as received. */
  readonly wire: Uint8Array;
  /** Where the Map-Register came from (the registering ETR, or its NAT). */
  readonly source: Endpoint;
  readonly xtrIdentity: XtrIdentity | undefined;
  /** P: the ETR asked the map-server to answer Map-Requests for it. */
  readonly proxyReply: boolean;
  /** The key-id whose key authenticated the registration. */
  readonly keyId: number;
  readonly firstRegisteredAt: number;
  readonly lastRegisteredAt: number;
  readonly expiresAt: number;
  readonly proof: RegistrationProof;
  /**
   * The end of the attestation ticket that admitted it (sites requiring tickets): `expiresAt` is
   * never later, and proxy replies' TTLs end with it. Not in the snapshot: a restore re-checks
   * the ticket the record carries against the trust configured then (RegisterHandler.restore).
   */
  readonly ticketNotAfter?: number;
}

export interface PrefixRegistration extends RegistrationFields {
  readonly kind: 'prefix';
  readonly prefix: EidPrefix;
}

/** A crypto-EID owner's public key, registered under `[iid]'hash-…'` (lisp-protocol.md §5.2). */
export interface HashEidRegistration extends RegistrationFields {
  readonly kind: 'hash-eid';
  readonly name: string;
  /** The crypto-EID (/128) the name stands for under the configured crypto-EID prefix. */
  readonly eid: EidPrefix;
  readonly publicKey: KeyObject;
  readonly spki: Uint8Array;
}

export type Registration = PrefixRegistration | HashEidRegistration;

export function prefixKey(p: EidPrefix): string {
  return formatPrefix(p);
}

export function hashEidKey(instanceId: number, name: string): string {
  return `[${instanceId}]'${name}'`;
}

/** SHA-256 of a whole message: the identity of a Map-Register for replay detection. */
export function messageDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

class PrefixTable {
  private readonly byLength = new Map<number, Map<string, PrefixRegistration>>();
  /** Distinct lengths present, longest first. */
  private lengths: number[] = [];

  constructor(
    readonly instanceId: number,
    readonly family: IpFamily,
  ) {}

  get empty(): boolean {
    return this.lengths.length === 0;
  }

  put(r: PrefixRegistration): void {
    let level = this.byLength.get(r.prefix.length);
    if (!level) {
      level = new Map();
      this.byLength.set(r.prefix.length, level);
      this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
    }
    level.set(toHex(r.prefix.address), r);
  }

  delete(p: EidPrefix): void {
    const level = this.byLength.get(p.length);
    if (!level) return;
    level.delete(toHex(p.address));
    if (level.size === 0) {
      this.byLength.delete(p.length);
      this.lengths = [...this.byLength.keys()].sort((a, b) => b - a);
    }
  }

  /** The longest live registration covering (or equal to) `p`. */
  covering(p: EidPrefix, now: number): PrefixRegistration | undefined {
    for (const length of this.lengths) {
      if (length > p.length) continue;
      const level = this.byLength.get(length);
      const hit = level?.get(toHex(eidPrefix(p.instanceId, p.family, p.address, length).address));
      if (hit && now < hit.expiresAt) return hit;
    }
    return undefined;
  }
}

interface RememberedRegister {
  readonly nonce: bigint;
  readonly expiresAt: number;
}

/** The newest registration signature accepted for a key: older ones are replays. */
export interface SignatureFloor {
  readonly timestamp: number;
  readonly nonce: bigint;
  readonly expiresAt: number;
}

export type StoreDropReason = 'expired' | 'malformed';

export type RestoreResult =
  | { readonly ok: true; readonly store: RegistrationStore; readonly dropped: readonly { readonly key: string; readonly reason: StoreDropReason }[] }
  | { readonly ok: false; readonly error: string };

export const SNAPSHOT_FORMAT = 'lispnode-map-server-registrations';
export const SNAPSHOT_VERSION = 1;

export class RegistrationStore {
  private readonly byKey = new Map<string, Registration>();
  private readonly tables = new Map<string, PrefixTable>();
  /** Per site: digests of accepted signed Map-Registers, oldest first (Map keeps insertion order). */
  private readonly registers = new Map<string, Map<string, RememberedRegister>>();
  /** Per registration key (crypto-EID or require-signature prefix). */
  private readonly floors = new Map<string, SignatureFloor>();

  get size(): number {
    return this.byKey.size;
  }

  /** Registrations of one site (live or not yet expired by `expire`). */
  count(site?: string): number {
    if (site === undefined) return this.byKey.size;
    let n = 0;
    for (const r of this.byKey.values()) if (r.site === site) n++;
    return n;
  }

  get(key: string): Registration | undefined {
    return this.byKey.get(key);
  }

  /** The live hash-EID registration for `[iid]'name'`. */
  publicKeyOf(instanceId: number, name: string, now: number): HashEidRegistration | undefined {
    const r = this.byKey.get(hashEidKey(instanceId, name));
    return r?.kind === 'hash-eid' && now < r.expiresAt ? r : undefined;
  }

  /** Longest-prefix match of an address (text or 4/16 bytes) in `instanceId` over live registrations. */
  lookup(instanceId: number, address: string | Uint8Array, now: number): PrefixRegistration | undefined {
    const bytes = typeof address === 'string' ? (address.includes(':') ? parseIpv6(address) : parseIpv4(address)) : address;
    if (!bytes || (bytes.length !== 4 && bytes.length !== 16)) return undefined;
    const family: IpFamily = bytes.length === 4 ? 4 : 6;
    return this.covering(eidPrefix(instanceId, family, bytes, family === 4 ? 32 : 128), now);
  }

  /** The longest live registration covering `prefix` (a Map-Request may name a prefix). */
  covering(prefix: EidPrefix, now: number): PrefixRegistration | undefined {
    return this.tables.get(tableKey(prefix.instanceId, prefix.family))?.covering(prefix, now);
  }

  /** Inserts or replaces the registration under its key; returns the one it replaced. */
  put(r: Registration): Registration | undefined {
    const previous = this.byKey.get(r.key);
    this.byKey.set(r.key, r);
    if (r.kind === 'prefix') {
      const k = tableKey(r.prefix.instanceId, r.prefix.family);
      let table = this.tables.get(k);
      if (!table) {
        table = new PrefixTable(r.prefix.instanceId, r.prefix.family);
        this.tables.set(k, table);
      }
      table.put(r);
    }
    return previous;
  }

  remove(key: string): Registration | undefined {
    const r = this.byKey.get(key);
    if (!r) return undefined;
    this.byKey.delete(key);
    if (r.kind === 'prefix') {
      const k = tableKey(r.prefix.instanceId, r.prefix.family);
      const table = this.tables.get(k);
      table?.delete(r.prefix);
      if (table?.empty) this.tables.delete(k);
    }
    return r;
  }

  /** Removes registrations dead at `now` and forgets replay state older than its window; returns the removed registrations. */
  expire(now: number): Registration[] {
    const dead = [...this.byKey.values()].filter((r) => now >= r.expiresAt);
    for (const r of dead) this.remove(r.key);
    for (const [site, seen] of this.registers) {
      for (const [digest, m] of seen) if (now >= m.expiresAt) seen.delete(digest);
      if (seen.size === 0) this.registers.delete(site);
    }
    for (const [key, f] of this.floors) if (now >= f.expiresAt) this.floors.delete(key);
    return dead;
  }

  /** The earliest expiry of any registration, for the caller's timer. */
  nextExpiry(): number | undefined {
    let next = Infinity;
    for (const r of this.byKey.values()) if (r.expiresAt < next) next = r.expiresAt;
    return next === Infinity ? undefined : next;
  }

  /** Every registration, live or not yet expired, in insertion order. */
  entries(): IterableIterator<Registration> {
    return this.byKey.values();
  }

  [Symbol.iterator](): IterableIterator<Registration> {
    return this.entries();
  }

  // ------------------------------------------------------------ replay memory

  /** Whether this site accepted a byte-identical signed Map-Register within the window. */
  seenRegister(site: string, digest: string, now: number): boolean {
    const m = this.registers.get(site)?.get(digest);
    return m !== undefined && now < m.expiresAt;
  }

  /** Remembers an accepted signed Map-Register; beyond `cap` per site the oldest is forgotten. */
  rememberRegister(site: string, digest: string, nonce: bigint, expiresAt: number, cap: number): void {
    let seen = this.registers.get(site);
    if (!seen) {
      seen = new Map();
      this.registers.set(site, seen);
    }
    seen.delete(digest);
    seen.set(digest, { nonce, expiresAt });
    for (const oldest of seen.keys()) {
      if (seen.size <= cap) break;
      seen.delete(oldest);
    }
  }

  signatureFloor(key: string, now: number): SignatureFloor | undefined {
    const f = this.floors.get(key);
    return f && now < f.expiresAt ? f : undefined;
  }

  raiseSignatureFloor(key: string, floor: SignatureFloor): void {
    this.floors.set(key, floor);
  }

  // ------------------------------------------------------------ snapshot

  /**
   * Plain JSON (bigints and bytes as hex text) of the registrations and the replay memory. The
   * replay memory must travel with the registrations: a restart that forgot it would accept a
   * copy of a signed Map-Register the previous process had already accepted.
   */
  snapshot(): StoreSnapshot {
    return {
      format: SNAPSHOT_FORMAT,
      version: SNAPSHOT_VERSION,
      registrations: [...this.byKey.values()].map(registrationJson),
      registers: [...this.registers].flatMap(([site, seen]) => [...seen].map(([digest, m]): RegisterJson => [site, digest, hex64(m.nonce), m.expiresAt])),
      signatureFloors: [...this.floors].map(([key, f]): FloorJson => [key, f.timestamp, hex64(f.nonce), f.expiresAt]),
    };
  }

  /**
   * Rebuilds a store from `snapshot` (parsed JSON of unknown shape). Nothing cryptographic is
   * re-verified here; entries dead at `now` or that do not parse are dropped and reported.
   * Whether each registration still satisfies the *current* configuration is the register
   * handler's check (RegisterHandler.restore), which calls this.
   */
  static restore(snapshot: unknown, now: number): RestoreResult {
    if (!isRecord(snapshot) || snapshot.format !== SNAPSHOT_FORMAT) return { ok: false, error: `not a ${SNAPSHOT_FORMAT} snapshot` };
    if (snapshot.version !== SNAPSHOT_VERSION) return { ok: false, error: `snapshot version ${String(snapshot.version)} is not ${SNAPSHOT_VERSION}` };
    const { registrations, registers, signatureFloors } = snapshot;
    if (!Array.isArray(registrations) || !Array.isArray(registers) || !Array.isArray(signatureFloors)) return { ok: false, error: 'snapshot lists missing' };
    const store = new RegistrationStore();
    const dropped: { key: string; reason: StoreDropReason }[] = [];
    for (const item of registrations as unknown[]) {
      const r = parseRegistration(item);
      const key = isRecord(item) && typeof item.key === 'string' ? item.key : '?';
      if (!r) dropped.push({ key, reason: 'malformed' });
      else if (now >= r.expiresAt) dropped.push({ key, reason: 'expired' });
      else store.put(r);
    }
    for (const item of registers as unknown[]) {
      if (!Array.isArray(item) || item.length !== 4) continue;
      const [site, digest, nonce, expiresAt] = item as unknown[];
      if (typeof site !== 'string' || typeof digest !== 'string' || typeof expiresAt !== 'number' || now >= expiresAt) continue;
      const n = parseHex64(nonce);
      if (n !== undefined) store.rememberRegister(site, digest, n, expiresAt, Infinity);
    }
    for (const item of signatureFloors as unknown[]) {
      if (!Array.isArray(item) || item.length !== 4) continue;
      const [key, timestamp, nonce, expiresAt] = item as unknown[];
      const n = parseHex64(nonce);
      if (typeof key !== 'string' || typeof timestamp !== 'number' || typeof expiresAt !== 'number' || n === undefined || now >= expiresAt) continue;
      store.raiseSignatureFloor(key, { timestamp, nonce: n, expiresAt });
    }
    return { ok: true, store, dropped };
  }
}

function tableKey(instanceId: number, family: IpFamily): string {
  return `${instanceId}/${family}`;
}

// ---------------------------------------------------------------- JSON form

type RegisterJson = [site: string, digest: string, nonce: string, expiresAt: number];
type FloorJson = [key: string, timestamp: number, nonce: string, expiresAt: number];

export interface StoreSnapshot {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly version: typeof SNAPSHOT_VERSION;
  readonly registrations: readonly RegistrationJson[];
  readonly registers: readonly RegisterJson[];
  readonly signatureFloors: readonly FloorJson[];
}

interface RegistrationJson {
  readonly kind: Registration['kind'];
  readonly key: string;
  readonly site: string;
  /** The record's wire bytes; everything about the EID is decoded from them again. */
  readonly wire: string;
  /** hash-EIDs: the crypto-EID the name stands for. */
  readonly eid?: string;
  readonly source: Endpoint;
  readonly xtrId?: string;
  readonly siteId?: string;
  readonly proxyReply: boolean;
  readonly keyId: number;
  readonly firstRegisteredAt: number;
  readonly lastRegisteredAt: number;
  readonly expiresAt: number;
  readonly proof: { readonly level: RegistrationProof['level']; readonly signer?: string; readonly timestamp?: number; readonly nonce?: string };
}

function hex64(n: bigint): string {
  return n.toString(16).padStart(16, '0');
}

function parseHex64(v: unknown): bigint | undefined {
  return typeof v === 'string' && /^[0-9a-f]{16}$/.test(v) ? BigInt(`0x${v}`) : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function registrationJson(r: Registration): RegistrationJson {
  const p = r.proof;
  return {
    kind: r.kind,
    key: r.key,
    site: r.site,
    wire: toHex(r.wire),
    ...(r.kind === 'hash-eid' && { eid: formatPrefix(r.eid) }),
    source: { address: r.source.address, port: r.source.port },
    ...(r.xtrIdentity && { xtrId: toHex(r.xtrIdentity.xtrId), siteId: r.xtrIdentity.siteId.toString() }),
    proxyReply: r.proxyReply,
    keyId: r.keyId,
    firstRegisteredAt: r.firstRegisteredAt,
    lastRegisteredAt: r.lastRegisteredAt,
    expiresAt: r.expiresAt,
    proof:
      p.level === 'site-key'
        ? { level: p.level }
        : p.level === 'eid-signature'
          ? { level: p.level, signer: p.signer }
          : { level: p.level, signer: p.signer, timestamp: p.timestamp, nonce: hex64(p.nonce) },
  };
}

function decodeRecord(wire: Uint8Array): EidRecord | undefined {
  const result = decodeSafely((quirks) => {
    const r = new ByteReader(wire);
    const record = readEidRecord(r, quirks);
    if (r.remaining !== 0) throw new DecodeError('trailing-bytes', r.offset, 'bytes after the record');
    return record;
  });
  return result.ok ? result.value : undefined;
}

/** The hash-EID name and instance-id an EID-record names, if it is one (`[iid]'hash-…'`). */
export function hashEidOf(record: EidRecord): { readonly instanceId: number; readonly name: string } | undefined {
  let iid = 0;
  let a = record.eid;
  if (a.afi === 'lcaf' && a.lcaf.type === 'instance-id') {
    iid = a.lcaf.instanceId;
    a = a.lcaf.address;
  }
  return a.afi === 'distinguished-name' && a.name.startsWith('hash-') ? { instanceId: iid, name: a.name } : undefined;
}

/** The public key a hash-EID record carries in its `{"public-key"}` JSON locator, if one parses. */
export function publicKeyOfRecord(record: EidRecord): { readonly publicKey: KeyObject; readonly spki: Uint8Array } | undefined {
  for (const l of record.locators) {
    const value = locatorJson(l)?.['public-key'];
    if (typeof value !== 'string') continue;
    try {
      return publicKeyFromJsonValue(value);
    } catch {
      // Not base64 of a P-256 PEM key: node:crypto's parse errors are not ours to rethrow.
      return undefined;
    }
  }
  return undefined;
}

function parseProof(v: unknown): RegistrationProof | undefined {
  if (!isRecord(v)) return undefined;
  if (v.level === 'site-key') return { level: 'site-key' };
  if (typeof v.signer !== 'string') return undefined;
  if (v.level === 'eid-signature') return { level: 'eid-signature', signer: v.signer };
  const nonce = parseHex64(v.nonce);
  if (v.level === 'registration-signature' && typeof v.timestamp === 'number' && Number.isSafeInteger(v.timestamp) && nonce !== undefined) {
    return { level: 'registration-signature', signer: v.signer, timestamp: v.timestamp, nonce };
  }
  return undefined;
}

function parseRegistration(v: unknown): Registration | undefined {
  if (!isRecord(v)) return undefined;
  const { kind, key, site, wire, source, proxyReply, keyId, firstRegisteredAt, lastRegisteredAt, expiresAt } = v;
  if (typeof key !== 'string' || typeof site !== 'string' || typeof wire !== 'string' || !/^([0-9a-f]{2})+$/.test(wire)) return undefined;
  if (!isRecord(source) || typeof source.address !== 'string' || typeof source.port !== 'number') return undefined;
  if (typeof proxyReply !== 'boolean' || typeof keyId !== 'number') return undefined;
  if (typeof firstRegisteredAt !== 'number' || typeof lastRegisteredAt !== 'number' || typeof expiresAt !== 'number') return undefined;
  const proof = parseProof(v.proof);
  const bytes = fromHex(wire);
  const record = decodeRecord(bytes);
  if (!proof || !record) return undefined;
  let xtrIdentity: XtrIdentity | undefined;
  if (v.xtrId !== undefined || v.siteId !== undefined) {
    if (typeof v.xtrId !== 'string' || !/^[0-9a-f]{32}$/.test(v.xtrId) || typeof v.siteId !== 'string' || !/^\d{1,20}$/.test(v.siteId)) return undefined;
    xtrIdentity = { xtrId: fromHex(v.xtrId), siteId: BigInt(v.siteId) };
  }
  const fields = {
    key,
    site,
    record,
    wire: bytes,
    source: { address: source.address, port: source.port },
    xtrIdentity,
    proxyReply,
    keyId,
    firstRegisteredAt,
    lastRegisteredAt,
    expiresAt,
    proof,
  };
  if (kind === 'prefix') {
    const prefix = prefixOfEid(record.eid, record.eidMaskLength, 0);
    if (!prefix || prefixKey(prefix) !== key) return undefined;
    return { kind, ...fields, instanceId: prefix.instanceId, prefix };
  }
  if (kind === 'hash-eid') {
    const hash = hashEidOf(record);
    const eid = typeof v.eid === 'string' ? parsePrefix(v.eid) : undefined;
    const owner = publicKeyOfRecord(record);
    if (!hash || !eid || !owner || hashEidKey(hash.instanceId, hash.name) !== key) return undefined;
    return { kind, ...fields, instanceId: hash.instanceId, name: hash.name, eid, publicKey: owner.publicKey, spki: owner.spki };
  }
  return undefined;
}
