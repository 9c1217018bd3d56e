// The RFC 8061 key exchange piggy-backed on Map-Request / Map-Reply (lisp-protocol.md §4.2, §4.5),
// sans-IO: building and reading the Security Key LCAF, the per-locator key state of each side,
// and the ItrPeer / EtrPeer objects the data plane reads.
//
// Key-ids travel by position (RFC 8061 §6: "up to three keys, identified by key-id 1, then 2,
// then 3"): a key offered as key-id k is the k-th entry of the LCAF's key list, the ones before it
// zero-length. Key-id 1 is therefore exactly lispers.net's one-key LCAF. The ITR proposes a key-id,
// the ETR installs its opening key under it and answers at the same position, and the ITR seals
// under the key-id the answer names — so a lispers.net ETR (which always answers one key) simply
// keeps both ends on key-id 1, as lispers.net does itself.
import type { CipherBackend } from '../../crypto/cipher-backend.js';
import { parseCipherSuite, type CipherSuite } from '../../crypto/cipher-suite.js';
import { OpeningSession, SALT_LENGTH, SealingSession, type KeyId, type SessionLimits } from '../../crypto/session.js';
import { deriveDataPlaneKeys, x25519FromPrivate, type DataPlaneKeys, type X25519KeyPair } from '../../crypto/x25519-kdf.js';
import type { Address } from '../address.js';
import type { EtrPeer } from '../etr.js';
import { parseIpv4, parseIpv6 } from '../ip-text.js';
import type { ItrPeer } from '../itr.js';

/** The caller's CSPRNG: n fresh bytes. */
export type Random = (n: number) => Uint8Array;

/** How our locator carries its key in a Map-Reply. */
export type KeyedLocatorForm =
  /** AFI-List{RLOC, Security Key LCAF{…, RLOC}}: what lispers.net sends (the RLOC appears twice). */
  | 'afi-list'
  /** The Security Key LCAF alone, its locator field the RLOC (RFC 8061's figure). */
  | 'direct';

export const X25519_KEY_LENGTH = 32;

export function nextKeyId(k: KeyId | undefined): KeyId {
  return k === 1 ? 2 : k === 2 ? 3 : 1;
}

export function generateKeyPair(random: Random): X25519KeyPair {
  const bytes = random(32);
  if (bytes.length !== 32) throw new RangeError('random(32) returned the wrong length');
  return x25519FromPrivate(bytes);
}

/** A Security Key LCAF offering `publicKey` as key-id `keyId` for `rloc`. */
export function securityKeyAddress(suite: CipherSuite, keyId: KeyId, publicKey: Uint8Array, rloc: Address): Address {
  const keys: Uint8Array[] = [];
  for (let k = 1; k < keyId; k++) keys.push(new Uint8Array(0));
  keys.push(publicKey.slice());
  return { afi: 'lcaf', lcaf: { type: 'security-key', cipherSuite: suite, rekey: false, keys, locator: rloc } };
}

/** Our locator with our key, in the chosen form; with a proof (a JSON LCAF), always AFI-List{RLOC, key, proof}. */
export function keyedLocator(form: KeyedLocatorForm, suite: CipherSuite, keyId: KeyId, publicKey: Uint8Array, rloc: Address, proof?: Address): Address {
  const key = securityKeyAddress(suite, keyId, publicKey, rloc);
  if (proof) return { afi: 'lcaf', lcaf: { type: 'afi-list', items: [rloc, key, proof] } };
  return form === 'direct' ? key : { afi: 'lcaf', lcaf: { type: 'afi-list', items: [rloc, key] } };
}

/** What an address offers as a key. */
export type OfferedKey =
  | { readonly kind: 'none' }
  /** A suite we do not speak (parseCipherSuite's reason): answer without a key. */
  | { readonly kind: 'refused'; readonly suite: number; readonly reason: string }
  /** A Security Key LCAF we cannot use: no key, several non-empty keys, or not 32 bytes. */
  | { readonly kind: 'malformed'; readonly reason: string }
  | { readonly kind: 'key'; readonly suite: CipherSuite; readonly keyId: KeyId; readonly publicKey: Uint8Array; readonly rekey: boolean };

const NONE: OfferedKey = { kind: 'none' };

/**
 * The key a Locator or ITR-RLOC address carries: a Security Key LCAF directly, or inside an
 * AFI-List (lispers.net) — both are accepted whatever form we send.
 */
export function offeredKey(a: Address): OfferedKey {
  const lcaf = findSecurityKeyLcaf(a, 0);
  if (!lcaf) return NONE;
  const suite = parseCipherSuite(lcaf.cipherSuite);
  if (!suite.ok) return { kind: 'refused', suite: lcaf.cipherSuite, reason: suite.reason };
  if (lcaf.keys.length < 1 || lcaf.keys.length > 3) return { kind: 'malformed', reason: `${lcaf.keys.length} keys (1 to 3 expected)` };
  let found: { keyId: KeyId; key: Uint8Array } | undefined;
  for (let i = 0; i < lcaf.keys.length; i++) {
    const key = lcaf.keys[i] ?? new Uint8Array(0);
    if (key.length === 0) continue;
    if (found) return { kind: 'malformed', reason: 'more than one non-empty key' };
    found = { keyId: (i + 1) as KeyId, key };
  }
  if (!found) return { kind: 'malformed', reason: 'no key material' };
  if (found.key.length !== X25519_KEY_LENGTH) return { kind: 'malformed', reason: `a ${found.key.length}-byte key is no X25519 key` };
  return { kind: 'key', suite: suite.suite, keyId: found.keyId, publicKey: found.key.slice(), rekey: lcaf.rekey };
}

type SecurityKeyLcaf = Extract<Extract<Address, { afi: 'lcaf' }>['lcaf'], { type: 'security-key' }>;

function findSecurityKeyLcaf(a: Address, depth: number): SecurityKeyLcaf | undefined {
  if (a.afi !== 'lcaf' || depth > 4) return undefined;
  const l = a.lcaf;
  if (l.type === 'security-key') return l;
  if (l.type === 'afi-list') {
    for (const item of l.items) {
      const found = findSecurityKeyLcaf(item, depth + 1);
      if (found) return found;
    }
  }
  return undefined;
}

/** The IP address inside a locator or ITR-RLOC (plain, AFI-List, Security Key, Instance-ID), as text. */
export function ipOf(a: Address, depth = 0): { readonly family: 4 | 6; readonly address: string } | undefined {
  if (depth > 4) return undefined;
  switch (a.afi) {
    case 'ipv4':
      return { family: 4, address: a.address };
    case 'ipv6':
      return { family: 6, address: a.address };
    case 'lcaf': {
      const l = a.lcaf;
      if (l.type === 'security-key') return ipOf(l.locator, depth + 1);
      if (l.type === 'instance-id') return ipOf(l.address, depth + 1);
      if (l.type === 'afi-list') {
        for (const item of l.items) {
          const found = ipOf(item, depth + 1);
          if (found) return found;
        }
      }
      return undefined;
    }
    case 'none':
    case 'mac':
    case 'distinguished-name':
      return undefined;
  }
}

// ---------------------------------------------------------------- data-plane peer objects

/** The UDP socket's 16-byte address slot (IPv4 as ::ffff:a.b.c.d), built here so src/lisp stays free of src/tun. */
export function addressSlot(address: string): { readonly family: 4 | 6; readonly slot: Uint8Array } {
  const slot = new Uint8Array(16);
  const v4 = parseIpv4(address);
  if (v4) {
    slot[10] = 0xff;
    slot[11] = 0xff;
    slot.set(v4, 12);
    return { family: 4, slot };
  }
  const v6 = parseIpv6(address);
  if (!v6) throw new RangeError(`not an IP address: ${address}`);
  slot.set(v6);
  return { family: 6, slot };
}

/** An ItrPeer for a locator: clear when `sealing` is undefined (the ITR's requireEncryption decides). */
export function createItrPeer(address: string, port: number, sealing: SealingSession | undefined): ItrPeer {
  const { family, slot } = addressSlot(address);
  return { family, address: slot, port, sealing };
}

export function createEtrPeer(opening: OpeningSession | undefined, acceptClear: boolean): EtrPeer {
  return { opening, acceptClear };
}

/**
 * The sealing salt with its top bit set by which public key is larger, as src/node/xtr/peers.ts
 * does for static keys: should both directions ever derive the same key (one X25519 pair used
 * for both roles on both nodes), their IV spaces still differ.
 */
export function directionalSalt(random: Random, ownPublic: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  const salt = random(SALT_LENGTH).slice();
  if (salt.length !== SALT_LENGTH) throw new RangeError(`random(${SALT_LENGTH}) returned the wrong length`);
  salt[0] = ((salt[0] ?? 0) & 0x7f) | (compareBytes(ownPublic, peerPublic) > 0 ? 0x80 : 0);
  return salt;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return a.length - b.length;
}

export function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a !== undefined && b !== undefined && compareBytes(a, b) === 0;
}

// ---------------------------------------------------------------- ITR side: one per remote locator

/** What the ITR holds for one remote locator (keyed by its address text). */
export class LocatorSealing {
  readonly sealing: SealingSession;
  /** Installed: the key-id, our public key and theirs it was derived from. */
  keyId: KeyId | undefined;
  suite: CipherSuite | undefined;
  keys: DataPlaneKeys | undefined;
  salt: Uint8Array | undefined;
  ownPublic: Uint8Array | undefined;
  peerPublic: Uint8Array | undefined;
  installedAt = 0;
  /** The pair the installed key came from: probes offer it again so no new DH happens (lispers.net). */
  pair: X25519KeyPair | undefined;
  /** A fresh pair offered for a rekey, kept (and re-offered) until a reply installs it. */
  pendingPair: { readonly pair: X25519KeyPair; readonly keyId: KeyId } | undefined;
  /** Set by `requestRekey` or when the sealing key asks for it. */
  rekeyWanted = false;
  /** How the installed key's agreement was authenticated. */
  authentication: SessionAuthentication = UNAUTHENTICATED;

  constructor(
    readonly address: string,
    backend: CipherBackend,
    limits: SessionLimits | undefined,
  ) {
    this.sealing = new SealingSession(backend, limits);
  }

  get keyed(): boolean {
    return this.keyId !== undefined;
  }

  /** The pair and key-id the next probe offers. */
  offer(random: Random, now: number): { readonly pair: X25519KeyPair; readonly keyId: KeyId } {
    if (this.pendingPair) return this.pendingPair;
    if (this.pair && this.keyId !== undefined && !this.rekeyWanted && !this.sealing.needsRekey(now)) return { pair: this.pair, keyId: this.keyId };
    this.pendingPair = { pair: generateKeyPair(random), keyId: this.keyId === undefined ? 1 : nextKeyId(this.keyId) };
    return this.pendingPair;
  }

  /**
   * Completes an exchange: `pair` is what our request offered, `answer` the peer's key. Installs
   * unless exactly this key is already current. `avoidSalt` rejects salts whose GCM part another
   * session under the same key already uses (a multihomed ETR answers every locator with one key).
   */
  complete(
    pair: X25519KeyPair,
    answer: { readonly suite: CipherSuite; readonly keyId: KeyId; readonly publicKey: Uint8Array },
    random: Random,
    now: number,
    avoidSalt: (keys: DataPlaneKeys, salt: Uint8Array) => boolean,
  ): 'installed' | 'unchanged' {
    if (this.keyId === answer.keyId && this.suite === answer.suite && sameBytes(this.ownPublic, pair.publicKey) && sameBytes(this.peerPublic, answer.publicKey)) {
      return 'unchanged';
    }
    const keys = deriveDataPlaneKeys(pair, answer.publicKey);
    let salt = directionalSalt(random, pair.publicKey, answer.publicKey);
    for (let tries = 0; avoidSalt(keys, salt) && tries < 16; tries++) salt = directionalSalt(random, pair.publicKey, answer.publicKey);
    this.sealing.install({ keyId: answer.keyId, suite: answer.suite, keys, salt, now });
    this.keyId = answer.keyId;
    this.suite = answer.suite;
    this.keys = keys;
    this.salt = salt;
    this.ownPublic = pair.publicKey;
    this.peerPublic = answer.publicKey.slice();
    this.installedAt = now;
    this.pair = pair;
    if (this.pendingPair?.pair === pair) this.pendingPair = undefined;
    this.rekeyWanted = false;
    return 'installed';
  }

  /** The peer answered without a key ("unkeying", lispers.net): forget ours, send clear or drop. */
  unkey(): void {
    this.sealing.close();
    this.keyId = undefined;
    this.suite = undefined;
    this.keys = undefined;
    this.salt = undefined;
    this.ownPublic = undefined;
    this.peerPublic = undefined;
    this.pair = undefined;
    this.pendingPair = undefined;
  }

  /** Whether this locator seals under `keys` with the same 4-byte GCM salt. */
  usesSalt(keys: DataPlaneKeys, salt: Uint8Array): boolean {
    return this.keys !== undefined && this.salt !== undefined && sameBytes(this.keys.encryptKey, keys.encryptKey) && compareBytes(this.salt.subarray(0, 4), salt.subarray(0, 4)) === 0;
  }
}

// ---------------------------------------------------------------- ETR side: one per remote ITR locator

/** How a session's key agreement was authenticated (status output says it). */
export type SessionAuthentication =
  /** RFC 8061 as is: the nonce keeps off-path strangers out, an on-path attacker could sit in the middle. */
  | { readonly kind: 'unauthenticated' }
  /** Signed by the peer's crypto-EID key over the exchange (docs/key-agreement.md); `eid` is `peerEid`'s 16 bytes. */
  | { readonly kind: 'crypto-eid'; readonly peerEid: string; readonly eid: Uint8Array };

export const UNAUTHENTICATED: SessionAuthentication = { kind: 'unauthenticated' };

/** The status text of a session's authentication. */
export function describeAuthentication(a: SessionAuthentication): string {
  return a.kind === 'crypto-eid' ? `authenticated (crypto-EID ${a.peerEid})` : 'unauthenticated';
}

/** What the ETR keeps with each key of an ITR locator: what it was agreed from and how. */
export interface OpeningMeta {
  readonly itrPublic: Uint8Array;
  readonly ourPublic: Uint8Array;
  readonly authentication: SessionAuthentication;
}

/** How long a candidate waits for the packet that proves it. */
export const CANDIDATE_TTL_MS = 5 * 60_000;

/**
 * What the ETR holds for one ITR locator (keyed by its address text). Every offer gets a fresh
 * X25519 pair of ours, so the key it leads to is known only to whoever reads our answer, which
 * goes to the locator the key is for; and it becomes a *candidate* (session.ts), current only
 * once a packet from that locator opens under it. A replayed or forged offer can therefore never
 * replace the key a working ITR uses, nor bring back a retired key with an empty replay window.
 */
export class LocatorOpening {
  readonly opening: OpeningSession<OpeningMeta>;
  readonly peer: EtrPeer;

  constructor(
    readonly address: string,
    backend: CipherBackend,
    options: { readonly limits?: SessionLimits; readonly acceptClear: boolean },
  ) {
    this.opening = new OpeningSession<OpeningMeta>(backend, options.limits === undefined ? {} : { limits: options.limits });
    this.peer = createEtrPeer(this.opening, options.acceptClear);
  }

  /** The key-id of the newest proven key, if any. */
  get current(): KeyId | undefined {
    let best: { readonly keyId: KeyId; readonly at: number } | undefined;
    for (const k of this.opening.keys()) if (k.role === 'current' && (!best || k.installedAt >= best.at)) best = { keyId: k.keyId, at: k.installedAt };
    return best?.keyId;
  }

  /** How the newest proven key was agreed; undefined while none is proven. */
  get authentication(): SessionAuthentication | undefined {
    const current = this.current;
    return this.opening.keys().find((k) => k.role === 'current' && k.keyId === current)?.meta?.authentication;
  }

  /** Keys agreed but not yet proven by a packet. */
  get candidates(): number {
    return this.opening.keys().filter((k) => k.role === 'candidate').length;
  }

  /**
   * Our answer to an offer. An offer of exactly a key we hold as current or candidate (same
   * key-id, same ITR key: a probe re-offering it, a retransmission) is answered with the same
   * public key and changes nothing; any other offer becomes a new candidate under a fresh pair.
   * A retiring key is never matched: its ITR gets a new key instead of one about to expire.
   */
  answer(
    offer: { readonly suite: CipherSuite; readonly keyId: KeyId; readonly publicKey: Uint8Array },
    authentication: SessionAuthentication,
    random: Random,
    now: number,
  ): { readonly publicKey: Uint8Array; readonly outcome: 'candidate' | 'unchanged'; readonly evicted: number } {
    for (const k of this.opening.keys()) {
      if (k.role === 'retiring' || k.keyId !== offer.keyId || !k.meta || !sameBytes(k.meta.itrPublic, offer.publicKey)) continue;
      if (!sameAuthentication(k.meta.authentication, authentication)) continue;
      return { publicKey: k.meta.ourPublic, outcome: 'unchanged', evicted: 0 };
    }
    const own = generateKeyPair(random);
    const keys = deriveDataPlaneKeys(own, offer.publicKey);
    // The opening side never uses its salt for GCM; CBC recovers the counter from the IV itself.
    const install = { keyId: offer.keyId, suite: offer.suite, keys, salt: random(SALT_LENGTH).slice(), now };
    const evicted = this.opening.addCandidate(install, { itrPublic: offer.publicKey.slice(), ourPublic: own.publicKey, authentication }, now + CANDIDATE_TTL_MS);
    return { publicKey: own.publicKey, outcome: 'candidate', evicted };
  }
}

export function sameAuthentication(a: SessionAuthentication, b: SessionAuthentication): boolean {
  return a.kind === b.kind && (a.kind === 'unauthenticated' || (b.kind === 'crypto-eid' && a.peerEid === b.peerEid));
}
