// The map-server's Map-Register handling (RFC 9301 §5.6/§8.2; lisp-protocol.md §2.5, §2.6, §5.4),
// sans-IO: `handle({ bytes, source }, now)` returns a verdict with per-record outcomes and the
// Map-Notify to send. No sockets, no clock (`now` is ms since 1970), no randomness (a Map-Notify
// echoes the Map-Register's nonce).
//
// Order of checks, cheapest and least trusting first:
//   1. decode (a DecodeError is a counted drop);
//   2. the site: among sites holding the message's key-id and allowing at least one of its
//      records, the first whose key verifies the HMAC (constant-time, auth.ts). Selecting by
//      records first keeps the number of HMACs per message at the number of plausible sites;
//   3. a byte-identical copy of a signed Map-Register this site accepted within the replay
//      window is dropped whole;
//   4. hash-EID records (public keys), then every other record: allowed prefix, ownership,
//      crypto-EID binding (the EID derives from the key), EID signature, registration signature,
//      and where the site requires it the attestation ticket (attestation-ticket.ts), which also
//      bounds the registration's lifetime.
// A refused record does not spoil the others; the Map-Notify acknowledges only what was accepted.
import type { KeyObject } from 'node:crypto';
import { hashEidName, verifyCryptoEid, verifyEidSignature, type EidText } from '../../crypto/index.js';
import { verifyAuthentication, sealAuthentication, type AuthFailure, type AuthKey } from '../auth.js';
import { ByteReader, ByteWriter } from '../bytes.js';
import { decodeControl } from '../control.js';
import { decodeSafely } from '../errors.js';
import { formatIpv6 } from '../ip-text.js';
import { recordTtlMs, TTL_RECEIVER_DECIDES } from '../map-cache.js';
import { AUTH_ALGORITHM, AUTH_DATA_OFFSET, type MapRegister } from '../map-register.js';
import { MESSAGE_TYPE } from '../message-type.js';
import { eidPrefix, parsePrefix, prefixCovers, prefixOfEid, type EidPrefix } from '../prefix.js';
import { readEidRecord, type EidRecord } from '../records.js';
import { checkRegistrationSignature, locatorJson, type RegistrationCheck } from '../registration-record.js';
import { XTR_IDENTITY_LENGTH } from '../xtr-identity.js';
import { judgeTicket, type TicketJudgement } from './attestation-ticket.js';
import {
  hashEidKey,
  hashEidOf,
  messageDigest,
  prefixKey,
  publicKeyOfRecord,
  RegistrationStore,
  type Endpoint,
  type Registration,
  type RegistrationProof,
  type StoreDropReason,
} from './registrations.js';
import {
  cryptoPrefixOf,
  cryptoPrefixOverlapping,
  proofRank,
  requiredProof,
  resolveConfig,
  siteAllows,
  type CryptoEidPrefix,
  type MapServerConfig,
  type ResolvedConfig,
  type SiteConfig,
} from './site.js';
import { NamedCounters } from '../named-counters.js';

/** Why a whole Map-Register was dropped. */
export const REGISTER_DROP_REASONS = [
  'register-decode-error',
  'register-not-map-register',
  'register-no-authentication',
  'register-unknown-key-id',
  /** No site holding the key-id allows any of the records: no HMAC is even computed. */
  'register-no-site',
  'register-algorithm-mismatch',
  'register-bad-auth-length',
  'register-mac-mismatch',
  /** Byte-identical to a signed Map-Register the site accepted within the replay window. */
  'register-replayed',
] as const;

/** Why one EID-record of an authenticated Map-Register was refused. */
export const RECORD_REFUSALS = [
  /** Not an IPv4/IPv6 prefix nor a hash-EID name (a MAC, AFI 0, another name). */
  'record-unsupported-eid',
  'record-outside-site-prefixes',
  /** A live registration of the same key belongs to another site. */
  'record-registered-by-other-site',
  /** A prefix overlapping a crypto-EID prefix that is not one crypto-EID (/128 inside it). */
  'record-crypto-eid-prefix-overlap',
  /** A hash-EID record without a parsable `{"public-key"}` locator. */
  'record-hash-eid-malformed',
  /** A hash-EID name that names no EID of a crypto-EID prefix of its instance. */
  'record-hash-eid-not-crypto',
  /** The hash-EID record's public key does not derive the EID its name stands for. */
  'record-hash-eid-key-mismatch',
  'record-signature-missing',
  /** `signature-eid` is not the record's EID (crypto-EID) or not a crypto-EID (require-signature). */
  'record-signature-eid-invalid',
  /** No hash-EID record for the signing EID, in the message or registered. */
  'record-public-key-unknown',
  /** The crypto-EID does not derive from the registered key (lispers.net does not check this). */
  'record-eid-not-derived-from-key',
  'record-signature-invalid',
  'record-registration-signature-missing',
  'record-registration-signature-invalid',
  'record-registration-signature-stale',
  'record-registration-signature-from-the-future',
  /** A registration signature older than, or the same as, one already accepted for this EID. */
  'record-replayed',
  /** The site requires an attestation ticket and the record carries none. */
  'record-attestation-ticket-missing',
  /** Malformed, not signed by a trusted controller signing certificate, or not yet valid. */
  'record-attestation-ticket-invalid',
  'record-attestation-ticket-expired',
  /** A valid ticket that does not list this EID (or its instance-id). */
  'record-attestation-ticket-not-admitted',
] as const;

export type RegisterDropReason = (typeof REGISTER_DROP_REASONS)[number];
export type RecordRefusal = (typeof RECORD_REFUSALS)[number];
/** Counter names: every reason a Map-Register or one of its records is not taken. */
export type RegisterCounterName = RegisterDropReason | RecordRefusal;

const COUNTER_NAMES: readonly RegisterCounterName[] = [...REGISTER_DROP_REASONS, ...RECORD_REFUSALS];

/** RegisterCounters: one counter per name. */
export class RegisterCounters extends NamedCounters<RegisterCounterName> {
  constructor() {
    super(COUNTER_NAMES);
  }
}

export interface MapRegisterEvent {
  /** The UDP payload as received. */
  readonly bytes: Uint8Array;
  readonly source: Endpoint;
}

export type RegisterAction = { readonly kind: 'send'; readonly to: string; readonly port: number; readonly bytes: Uint8Array };

export type RecordOutcome =
  | { readonly index: number; readonly outcome: 'registered' | 'refreshed'; readonly key: string; readonly expiresAt: number }
  /** TTL 0; `removed` is false when nothing was registered under the key. */
  | { readonly index: number; readonly outcome: 'deregistered'; readonly key: string; readonly removed: boolean }
  | { readonly index: number; readonly outcome: 'refused'; readonly reason: RecordRefusal; readonly key: string | undefined; readonly detail?: string };

export type RegisterVerdict =
  | { readonly kind: 'dropped'; readonly reason: RegisterDropReason; readonly site: string | undefined; readonly actions: readonly RegisterAction[] }
  | {
      readonly kind: 'processed';
      readonly site: string;
      readonly nonce: bigint;
      readonly keyId: number;
      /** In record order. */
      readonly records: readonly RecordOutcome[];
      /** Sent when M is set and at least one record was accepted (registered, refreshed or deregistered). */
      readonly mapNotify: Uint8Array | undefined;
      readonly actions: readonly RegisterAction[];
    };

export type RestoreDropReason =
  | StoreDropReason
  | 'site-removed'
  /** The site's allowed prefixes, or the crypto-EID prefixes, no longer admit the registration. */
  | 'not-allowed'
  /** The configuration now demands more proof than was given, or the signer's key is gone. */
  | 'proof-insufficient'
  /** The site requires attestation tickets and the record's ticket fails the current checker. */
  | 'attestation-ticket';

export type RestoreReport =
  | { readonly ok: true; readonly restored: number; readonly dropped: readonly { readonly key: string; readonly reason: RestoreDropReason }[] }
  | { readonly ok: false; readonly error: string };

/** What a record claims, worked out before the site is known. */
type Claim =
  | { readonly kind: 'prefix'; readonly prefix: EidPrefix }
  | { readonly kind: 'hash-eid'; readonly instanceId: number; readonly name: string; readonly candidates: readonly HashCandidate[] }
  | { readonly kind: 'unsupported' };

interface HashCandidate {
  readonly crypto: CryptoEidPrefix;
  readonly eid: EidPrefix;
}

interface OwnerKey {
  readonly publicKey: KeyObject;
  readonly spki: Uint8Array;
}

/** Per-message state while records are judged. */
interface Context {
  readonly m: MapRegister;
  /** The message as received and each record's byte range in it. */
  readonly bytes: Uint8Array;
  readonly spans: readonly (readonly [number, number])[];
  readonly site: SiteConfig;
  readonly now: number;
  readonly source: Endpoint;
  /** Public keys the message's own hash-EID records carry, by hash-EID key. */
  readonly messageKeys: Map<string, OwnerKey>;
}

type Judgement = { readonly ok: true; readonly proof: RegistrationProof } | { readonly ok: false; readonly reason: RecordRefusal };

export class RegisterHandler {
  readonly config: ResolvedConfig;
  readonly counters = new RegisterCounters();
  private current: RegistrationStore;

  /** Throws RangeError for an invalid configuration (site.ts resolveConfig). */
  constructor(config: MapServerConfig, store: RegistrationStore = new RegistrationStore()) {
    this.config = resolveConfig(config);
    this.current = store;
  }

  get store(): RegistrationStore {
    return this.current;
  }

  /** Removes registrations dead at `now` (call at nextExpiry()); returns them. */
  expire(now: number): Registration[] {
    return this.current.expire(now);
  }

  handle(event: MapRegisterEvent, now: number): RegisterVerdict {
    const { bytes, source } = event;
    const decoded = decodeControl(bytes);
    if (!decoded.ok) return this.drop('register-decode-error', undefined);
    const m = decoded.value;
    if (m.type !== 'map-register') return this.drop('register-not-map-register', undefined);
    if (m.algorithmId === AUTH_ALGORITHM.none) return this.drop('register-no-authentication', undefined);

    const claims = m.records.map((r) => this.claimOf(r));
    const found = this.authenticate(bytes, m.keyId, claims);
    if (!found.ok) return this.drop(found.reason, undefined);
    const { site, key } = found;

    const digest = messageDigest(bytes);
    if (this.current.seenRegister(site.name, digest, now)) return this.drop('register-replayed', site.name);

    const spans = recordSpans(bytes, m);
    const ctx: Context = { m, bytes, spans, site, now, source, messageKeys: new Map() };
    const outcomes: RecordOutcome[] = [];
    let signedAccepted = false;
    // Public keys first: lispers.net sends the hash-EID record and the crypto-EID record in one
    // Map-Register, and the second needs the first.
    const order = [...claims.keys()].sort((a, b) => rank(claims[a]) - rank(claims[b]));
    for (const index of order) {
      const record = m.records[index];
      const claim = claims[index];
      if (!record || !claim) continue;
      const outcome = claim.kind === 'hash-eid' ? this.hashEidRecord(ctx, index, record, claim) : this.prefixRecord(ctx, index, record, claim);
      if (outcome.outcome === 'refused') this.counters.add(outcome.reason);
      else if (outcome.signed) signedAccepted = true;
      outcomes[index] = stripSigned(outcome);
    }
    const records: readonly RecordOutcome[] = outcomes;
    if (signedAccepted) {
      this.current.rememberRegister(site.name, digest, m.nonce, now + this.config.replayWindowMs, this.config.timers.rememberedRegistersPerSite);
    }

    const accepted = records.filter((o) => o.outcome !== 'refused').map((o) => o.index);
    const mapNotify = m.wantMapNotify && accepted.length > 0 ? buildMapNotify(ctx, accepted, key) : undefined;
    const actions: RegisterAction[] = mapNotify ? [{ kind: 'send', to: source.address, port: source.port, bytes: mapNotify }] : [];
    return { kind: 'processed', site: site.name, nonce: m.nonce, keyId: m.keyId, records, mapNotify, actions };
  }

  /**
   * Replaces the store with a snapshot's registrations that the *current* configuration still
   * admits. Nothing cryptographic is re-verified (no ECDSA): the snapshot is this process's own
   * output, kept with the same protection as the configuration holding the site keys (whoever can
   * write one can write the other), and the registration signatures it vouched for may be past
   * their freshness window by now. What is re-checked is everything that depends on the
   * configuration or the clock: expiry, the site, its allowed prefixes, the crypto-EID prefixes
   * (including the cheap SHA-256 derivation of each crypto-EID from its registered key) and the
   * proof level each site now requires. The replay memory is restored too, so a restart opens no
   * window for a copy of a Map-Register accepted before it.
   */
  restore(snapshot: unknown, now: number): RestoreReport {
    const restored = RegistrationStore.restore(snapshot, now);
    if (!restored.ok) return restored;
    const store = restored.store;
    const dropped: { key: string; reason: RestoreDropReason }[] = [...restored.dropped];
    const all = [...store.entries()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'hash-eid' ? -1 : 1));
    for (const r of all) {
      const reason = this.recheck(store, r, now) ?? this.readmit(store, r, now);
      if (reason) {
        store.remove(r.key);
        dropped.push({ key: r.key, reason });
      }
    }
    this.current = store;
    return { ok: true, restored: store.size, dropped };
  }

  // ------------------------------------------------------------ site

  private drop(reason: RegisterDropReason, site: string | undefined): RegisterVerdict {
    this.counters.add(reason);
    return { kind: 'dropped', reason, site, actions: [] };
  }

  private claimOf(record: EidRecord): Claim {
    const hash = hashEidOf(record);
    if (hash) {
      const candidates: HashCandidate[] = [];
      for (const crypto of this.config.cryptoEidPrefixes) {
        if (crypto.prefix.instanceId !== hash.instanceId) continue;
        const eid = eidFromHashName(hash.name, crypto);
        if (eid) candidates.push({ crypto, eid });
      }
      return { kind: 'hash-eid', instanceId: hash.instanceId, name: hash.name, candidates };
    }
    const prefix = prefixOfEid(record.eid, record.eidMaskLength, 0);
    return prefix ? { kind: 'prefix', prefix } : { kind: 'unsupported' };
  }

  private authenticate(
    bytes: Uint8Array,
    keyId: number,
    claims: readonly Claim[],
  ): { readonly ok: true; readonly site: SiteConfig; readonly key: AuthKey } | { readonly ok: false; readonly reason: RegisterDropReason } {
    const holders = this.config.sites.filter((s) => s.keys.some((k) => k.keyId === keyId));
    if (holders.length === 0) return { ok: false, reason: 'register-unknown-key-id' };
    const candidates = holders.filter((s) => claims.some((c) => claimAllowed(s, c)));
    if (candidates.length === 0) return { ok: false, reason: 'register-no-site' };
    const failures: AuthFailure[] = [];
    for (const site of candidates) {
      const keyFor = (id: number): AuthKey | undefined => site.keys.find((k) => k.keyId === id);
      const verdict = verifyAuthentication(bytes, keyFor);
      const key = keyFor(keyId);
      if (verdict.ok && key) return { ok: true, site, key };
      if (!verdict.ok) failures.push(verdict.reason);
    }
    // Report the most telling failure: a wrong MAC beats a wrong algorithm beats a wrong length.
    if (failures.includes('mac-mismatch')) return { ok: false, reason: 'register-mac-mismatch' };
    if (failures.includes('algorithm-mismatch')) return { ok: false, reason: 'register-algorithm-mismatch' };
    if (failures.includes('bad-auth-length')) return { ok: false, reason: 'register-bad-auth-length' };
    return { ok: false, reason: 'register-decode-error' };
  }

  // ------------------------------------------------------------ records

  private hashEidRecord(ctx: Context, index: number, record: EidRecord, claim: Claim & { kind: 'hash-eid' }): Outcome {
    const key = hashEidKey(claim.instanceId, claim.name);
    const refuse = (reason: RecordRefusal): Outcome => ({ index, outcome: 'refused', reason, key });
    const owner = publicKeyOfRecord(record);
    if (!owner) return refuse('record-hash-eid-malformed');
    // Offered to the crypto-EID records of this message even if this record is refused below:
    // they then fail the derivation check, which names the actual problem.
    ctx.messageKeys.set(key, owner);
    if (claim.candidates.length === 0) return refuse('record-hash-eid-not-crypto');
    const allowed = claim.candidates.filter((c) => siteAllows(ctx.site, c.eid));
    if (allowed.length === 0) return refuse('record-outside-site-prefixes');
    // Only the key that derives the name may sit under it, so nobody can replace an owner's key.
    const derived = allowed.find((c) => derives(c.crypto, c.eid, owner.spki));
    if (!derived) return refuse('record-hash-eid-key-mismatch');
    const previous = this.current.get(key);
    if (previous && previous.site !== ctx.site.name && ctx.now < previous.expiresAt) return refuse('record-registered-by-other-site');
    const lifetime = this.lifetimeMs(ctx.m, record);
    if (lifetime === 0) return this.deregister(ctx, index, key, false);
    const r: Registration = {
      kind: 'hash-eid',
      ...this.fields(ctx, key, claim.instanceId, record, index, previous, lifetime, { level: 'site-key' }),
      name: claim.name,
      eid: derived.eid,
      publicKey: owner.publicKey,
      spki: owner.spki,
    };
    this.current.put(r);
    return { index, outcome: previous && ctx.now < previous.expiresAt ? 'refreshed' : 'registered', key, expiresAt: r.expiresAt, signed: false };
  }

  private prefixRecord(ctx: Context, index: number, record: EidRecord, claim: Claim): Outcome {
    if (claim.kind !== 'prefix') return { index, outcome: 'refused', reason: 'record-unsupported-eid', key: undefined };
    const prefix = claim.prefix;
    const key = prefixKey(prefix);
    const refuse = (reason: RecordRefusal, detail?: string): Outcome => ({ index, outcome: 'refused', reason, key, ...(detail !== undefined && { detail }) });
    if (!siteAllows(ctx.site, prefix)) return refuse('record-outside-site-prefixes');
    const crypto = cryptoPrefixOverlapping(this.config, prefix);
    // A shorter prefix over (or inside) crypto-EID space would answer lookups for crypto-EIDs
    // nobody proved to own.
    if (crypto && !(prefix.length === 128 && prefixCovers(crypto.prefix, prefix))) return refuse('record-crypto-eid-prefix-overlap');
    const previous = this.current.get(key);
    if (previous && previous.site !== ctx.site.name && ctx.now < previous.expiresAt) return refuse('record-registered-by-other-site');
    const needed = requiredProof(ctx.site, crypto !== undefined);
    const judged: Judgement = needed === 'site-key' ? { ok: true, proof: { level: 'site-key' } } : this.checkSignatures(ctx, record, prefix, crypto, key);
    if (!judged.ok) return refuse(judged.reason);
    const proof = judged.proof;
    const lifetime = this.lifetimeMs(ctx.m, record);
    // Deregistering needs no admission. A refused ticket leaves an existing registration (and its
    // ticket-bound expiry) as it was: no refresh without a valid ticket.
    const ticket: TicketJudgement | undefined = lifetime > 0 && ctx.site.requireAttestationTicket ? judgeTicket(record, prefix, this.config.ticketCheck, ctx.now) : undefined;
    if (ticket && !ticket.ok) return refuse(`record-attestation-ticket-${ticket.reason}`, ticket.detail);
    if (proof.level === 'registration-signature') {
      this.current.raiseSignatureFloor(key, { timestamp: proof.timestamp, nonce: proof.nonce, expiresAt: ctx.now + this.config.replayWindowMs });
    }
    const signed = proof.level !== 'site-key';
    if (lifetime === 0) return this.deregister(ctx, index, key, signed);
    const bounded = ticket ? Math.min(lifetime, ticket.notAfter - ctx.now) : lifetime;
    const r: Registration = {
      kind: 'prefix',
      ...this.fields(ctx, key, prefix.instanceId, record, index, previous, bounded, proof),
      prefix,
      ...(ticket && { ticketNotAfter: ticket.notAfter }),
    };
    this.current.put(r);
    return { index, outcome: previous && ctx.now < previous.expiresAt ? 'refreshed' : 'registered', key, expiresAt: r.expiresAt, signed };
  }

  /**
   * lisp-protocol.md §5.4 plus the binding check lispers.net skips. The signing EID is the record's
   * own EID for a crypto-EID, else (require-signature) the crypto-EID named in `signature-eid`.
   */
  private checkSignatures(ctx: Context, record: EidRecord, prefix: EidPrefix, crypto: CryptoEidPrefix | undefined, key: string): Judgement {
    const refuse = (reason: RecordRefusal): Judgement => ({ ok: false, reason });
    const json = record.locators.map(locatorJson).find((j) => j?.signature !== undefined);
    if (!json) return refuse('record-signature-missing');
    const named = json['signature-eid'];
    let signer: { readonly eid: EidPrefix; readonly crypto: CryptoEidPrefix };
    if (crypto) {
      signer = { eid: prefix, crypto };
      // lispers.net ignores signature-eid for a crypto-EID; a different one is at best a mistake.
      if (named !== undefined && named !== eidTextOf(prefix)) return refuse('record-signature-eid-invalid');
    } else {
      const eid = typeof named === 'string' ? parsePrefix(named) : undefined;
      const owner = eid && eid.family === 6 && eid.length === 128 && eidTextOf(eid) === named ? cryptoPrefixOverlapping(this.config, eid) : undefined;
      if (!eid || !owner || !prefixCovers(owner.prefix, eid)) return refuse('record-signature-eid-invalid');
      signer = { eid, crypto: owner };
    }
    const iid = signer.eid.instanceId;
    const name = hashEidName(signer.eid.address, signer.crypto.prefix.length);
    const signerKey = hashEidKey(iid, name);
    const owner = ctx.messageKeys.get(signerKey) ?? this.current.publicKeyOf(iid, name, ctx.now);
    if (!owner) return refuse('record-public-key-unknown');
    // The derivation is one SHA-256, cheaper than the ECDSA verification: first.
    if (!derives(signer.crypto, signer.eid, owner.spki)) return refuse('record-eid-not-derived-from-key');
    const eidText: EidText = { iid, text: formatIpv6(signer.eid.address) };
    const signature = json.signature;
    if (typeof signature !== 'string' || !verifyEidSignature(owner.publicKey, eidText, signature)) return refuse('record-signature-invalid');

    const t = this.config.timers;
    const freshness = { nowSeconds: Math.floor(ctx.now / 1000), maxAgeSeconds: t.signatureMaxAgeSeconds, maxSkewSeconds: t.signatureMaxSkewSeconds };
    const check: RegistrationCheck = checkRegistrationSignature(record, owner.publicKey, { eid: eidText, nonce: ctx.m.nonce }, freshness);
    switch (check) {
      case 'missing':
        // Verified whenever present, demanded where the site says so, and for an EID whose owner
        // sent one within the replay window (else dropping it would downgrade a replay to the
        // static signature).
        if (ctx.site.requireRegistrationSignature || this.current.signatureFloor(key, ctx.now)) return refuse('record-registration-signature-missing');
        return { ok: true, proof: { level: 'eid-signature', signer: signerKey } };
      case 'valid':
        break;
      case 'stale':
        return refuse('record-registration-signature-stale');
      case 'from-the-future':
        return refuse('record-registration-signature-from-the-future');
      case 'bad-signature':
      case 'malformed':
      case 'eid-mismatch':
        return refuse('record-registration-signature-invalid');
    }
    const timestamp = registrationTimestamp(record);
    if (timestamp === undefined) return refuse('record-registration-signature-invalid');
    // The signature binds nonce, time and record, not the rest of the message: a site insider could
    // re-wrap a signed record under its original nonce. Each EID's accepted signatures must move
    // forward in time, and the same one is never taken twice.
    const floor = this.current.signatureFloor(key, ctx.now);
    if (floor && (timestamp < floor.timestamp || (timestamp === floor.timestamp && ctx.m.nonce === floor.nonce))) return refuse('record-replayed');
    return { ok: true, proof: { level: 'registration-signature', signer: signerKey, timestamp, nonce: ctx.m.nonce } };
  }

  /**
   * How long the registration lives, in ms; 0 deregisters. Without T: the site timeout (three
   * missed 60 s refreshes). With T: the record TTL (minutes, or seconds with lispers.net's bit
   * 31), capped; "receiver decides" (0xffffffff) gets the site timeout.
   */
  private lifetimeMs(m: MapRegister, record: EidRecord): number {
    const ttl = recordTtlMs(record.ttl, 0);
    if (ttl === 0 && record.ttl !== TTL_RECEIVER_DECIDES) return 0;
    if (!m.useTtlForTimeout || record.ttl === TTL_RECEIVER_DECIDES) return this.config.timers.registrationTimeoutMs;
    return Math.min(ttl, this.config.timers.maxRecordTtlMs);
  }

  private deregister(ctx: Context, index: number, key: string, signed: boolean): Outcome {
    const previous = this.current.get(key);
    // A live registration of another site was refused before we got here; a dead one goes (expire
    // would remove it anyway).
    const removed = previous !== undefined && (previous.site === ctx.site.name || ctx.now >= previous.expiresAt) && this.current.remove(key) !== undefined;
    return { index, outcome: 'deregistered', key, removed, signed };
  }

  private fields(
    ctx: Context,
    key: string,
    instanceId: number,
    record: EidRecord,
    index: number,
    previous: Registration | undefined,
    lifetime: number,
    proof: RegistrationProof,
  ): Omit<Registration, 'kind' | 'prefix' | 'name' | 'eid' | 'publicKey' | 'spki'> {
    const keep = previous && previous.site === ctx.site.name && ctx.now < previous.expiresAt;
    return {
      key,
      site: ctx.site.name,
      instanceId,
      record,
      // A copy: a registration must not pin the receive buffer.
      wire: ctx.bytes.slice(...(ctx.spans[index] ?? [0, 0])),
      source: ctx.source,
      xtrIdentity: ctx.m.xtrIdentity,
      proxyReply: ctx.m.proxyReply,
      keyId: ctx.m.keyId,
      firstRegisteredAt: keep ? previous.firstRegisteredAt : ctx.now,
      lastRegisteredAt: ctx.now,
      expiresAt: ctx.now + lifetime,
      proof,
    };
  }

  // ------------------------------------------------------------ restore

  private recheck(store: RegistrationStore, r: Registration, now: number): RestoreDropReason | undefined {
    const site = this.config.siteByName.get(r.site);
    if (!site) return 'site-removed';
    if (r.kind === 'hash-eid') {
      const claim = this.claimOf(r.record);
      if (claim.kind !== 'hash-eid') return 'not-allowed';
      const c = claim.candidates.find((x) => x.eid.length === r.eid.length && prefixCovers(x.eid, r.eid) && siteAllows(site, x.eid) && derives(x.crypto, x.eid, r.spki));
      return c ? undefined : 'not-allowed';
    }
    if (!siteAllows(site, r.prefix)) return 'not-allowed';
    const crypto = cryptoPrefixOverlapping(this.config, r.prefix);
    if (crypto && !(r.prefix.length === 128 && prefixCovers(crypto.prefix, r.prefix))) return 'not-allowed';
    const needed = requiredProof(site, crypto !== undefined);
    if (proofRank(r.proof.level) < proofRank(needed)) return 'proof-insufficient';
    if (r.proof.level === 'site-key') return undefined;
    const signer = store.get(r.proof.signer);
    if (signer?.kind !== 'hash-eid' || now >= signer.expiresAt) return 'proof-insufficient';
    const signerCrypto = cryptoPrefixOverlapping(this.config, signer.eid);
    if (!signerCrypto || !derives(signerCrypto, signer.eid, signer.spki)) return 'proof-insufficient';
    if (crypto && !(signer.eid.length === r.prefix.length && prefixCovers(signer.eid, r.prefix))) return 'proof-insufficient';
    return undefined;
  }

  /**
   * A restored registration of a site requiring tickets keeps its (ticket-bound) expiry only if
   * its ticket still passes the checker configured now: a signing certificate no longer trusted
   * or a ticket that ended drops it. One ECDSA verification per such registration.
   */
  private readmit(store: RegistrationStore, r: Registration, now: number): RestoreDropReason | undefined {
    if (r.kind !== 'prefix' || !this.config.siteByName.get(r.site)?.requireAttestationTicket) return undefined;
    const ticket = judgeTicket(r.record, r.prefix, this.config.ticketCheck, now);
    if (!ticket.ok) return 'attestation-ticket';
    store.put({ ...r, expiresAt: Math.min(r.expiresAt, ticket.notAfter), ticketNotAfter: ticket.notAfter });
    return undefined;
  }
}

/** An outcome plus whether its acceptance rested on a signature (for the replay memory). */
type Outcome = RecordOutcome & { readonly signed?: boolean };

function stripSigned(o: Outcome): RecordOutcome {
  if (o.outcome === 'refused') return { index: o.index, outcome: o.outcome, reason: o.reason, key: o.key, ...(o.detail !== undefined && { detail: o.detail }) };
  if (o.outcome === 'deregistered') return { index: o.index, outcome: o.outcome, key: o.key, removed: o.removed };
  return { index: o.index, outcome: o.outcome, key: o.key, expiresAt: o.expiresAt };
}

function rank(c: Claim | undefined): number {
  return c?.kind === 'hash-eid' ? 0 : 1;
}

function claimAllowed(site: SiteConfig, claim: Claim): boolean {
  switch (claim.kind) {
    case 'prefix':
      return siteAllows(site, claim.prefix);
    case 'hash-eid':
      return claim.candidates.some((c) => siteAllows(site, c.eid));
    case 'unsupported':
      return false;
  }
}

function derives(crypto: CryptoEidPrefix, eid: EidPrefix, spki: Uint8Array): boolean {
  return verifyCryptoEid({ iid: eid.instanceId, eid: eid.address, spki, prefix: cryptoPrefixOf(crypto), derivation: crypto.derivation });
}

function eidTextOf(p: EidPrefix): string {
  return `[${p.instanceId}]${formatIpv6(p.address)}`;
}

/**
 * The crypto-EID a hash-EID name stands for under `crypto`: the prefix bits followed by the hash
 * bits the name spells. Only the canonical spelling (crypto-eid.ts hashEidName) is accepted, so
 * one EID has one name and one registration key.
 */
export function eidFromHashName(name: string, crypto: CryptoEidPrefix): EidPrefix | undefined {
  const prefixBytes = crypto.prefix.length / 8;
  const hex = name.slice('hash-'.length).replaceAll(':', '');
  if (!/^[0-9a-f]+$/.test(hex) || hex.length !== (16 - prefixBytes) * 2) return undefined;
  const address = new Uint8Array(16);
  address.set(crypto.prefix.address.subarray(0, prefixBytes));
  address.set(Buffer.from(hex, 'hex'), prefixBytes);
  if (hashEidName(address, crypto.prefix.length) !== name) return undefined;
  return eidPrefix(crypto.prefix.instanceId, 6, address, 128);
}

function registrationTimestamp(record: EidRecord): number | undefined {
  const json = record.locators.map(locatorJson).find((j) => j?.['registration-signature'] !== undefined);
  const t = json?.timestamp;
  return typeof t === 'number' && Number.isSafeInteger(t) ? t : undefined;
}

/** Byte ranges of each EID-record in the received message (they decoded once already). */
function recordSpans(bytes: Uint8Array, m: MapRegister): readonly (readonly [number, number])[] {
  const result = decodeSafely((quirks) => {
    const r = new ByteReader(bytes, AUTH_DATA_OFFSET + m.authData.length);
    const spans: [number, number][] = [];
    for (let i = 0; i < m.records.length; i++) {
      const start = r.offset;
      readEidRecord(r, quirks);
      spans.push([start, r.offset]);
    }
    return spans;
  });
  // Unreachable: decodeControl read the same bytes with the same reader.
  if (!result.ok) throw new Error(`records of a decoded Map-Register did not re-read: ${result.error.message}`);
  return result.value;
}

/**
 * Map-Notify as lispers.net builds it (byte-identical for its captures): type 4 and the record
 * count, the Map-Register's nonce, key-id and algorithm, then the accepted records' bytes as
 * received, then the xTR-ID/site-ID trailer copied without setting I (lisp-protocol.md §2.6),
 * sealed with the key that verified the Map-Register.
 */
function buildMapNotify(ctx: Context, accepted: readonly number[], key: AuthKey): Uint8Array {
  const { bytes, spans, m } = ctx;
  const w = new ByteWriter(bytes.length);
  w.u32(((MESSAGE_TYPE.mapNotify << 28) | accepted.length) >>> 0).u64(m.nonce);
  w.u8(key.keyId).u8(key.algorithmId).u16(m.authData.length).bytes(new Uint8Array(m.authData.length));
  for (const i of accepted) {
    const span = spans[i];
    if (span) w.bytes(bytes.subarray(span[0], span[1]));
  }
  if (m.xtrIdentity) w.bytes(bytes.subarray(bytes.length - XTR_IDENTITY_LENGTH));
  return sealAuthentication(w.finish(), key);
}
