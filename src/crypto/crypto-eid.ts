// Crypto-EIDs: IPv6 EIDs whose low bits are a hash of the owner's public key, so that a
// registration can be checked against the key that signs it.
//
// EVE (the default, shared/spec/eve-security.md §1.1):
//   EID = prefix || first (128 - len)/8 bytes of SHA-256(IID as 4 bytes BE || prefix bytes || SPKI DER)
// lispers.net (shared/spec/lisp-protocol.md §5.1, opt-in for interop):
//   EID = prefix || first (128 - len)/4 hex digits of SHA-256(ASCII "%08x" IID || ASCII hex of the
//   prefix bits without leading zeros || SPKI DER)
import { createHash, timingSafeEqual } from 'node:crypto';

export type EidDerivation = 'eve' | 'lispers';

export interface EidPrefix {
  /** The prefix address, 16 bytes (bits past `length` must be zero). */
  readonly address: Uint8Array;
  readonly length: number;
}

export interface CryptoEid {
  /** The 16-byte IPv6 EID. */
  readonly eid: Uint8Array;
  /** `hash-…`: the distinguished name under which the public key is registered. */
  readonly hashEidName: string;
}

/** fd00::/8, EVE's default allocation prefix. */
export const DEFAULT_EID_PREFIX: EidPrefix = { address: Uint8Array.of(0xfd, ...new Array<number>(15).fill(0)), length: 8 };

export function checkEidPrefix(prefix: EidPrefix, derivation: EidDerivation): void {
  const { address, length } = prefix;
  if (address.length !== 16) throw new RangeError('an EID prefix is an IPv6 address (16 bytes)');
  const unit = derivation === 'eve' ? 8 : 4;
  // Hash-EID names format consistently only for whole bytes of hash (lisp-protocol.md §5.2).
  if (!Number.isInteger(length) || length < 8 || length > 120 || length % 8 !== 0) {
    throw new RangeError(`EID prefix length ${length} must be a multiple of 8 between 8 and 120 (${unit}-bit aligned for ${derivation})`);
  }
  for (let bit = length; bit < 128; bit++) {
    if (((address[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) throw new RangeError('the EID prefix has bits set past its length');
  }
}

function hashInput(iid: number, prefix: EidPrefix, spki: Uint8Array, derivation: EidDerivation): Uint8Array[] {
  const prefixBytes = prefix.address.subarray(0, prefix.length / 8);
  if (derivation === 'eve') {
    const iidBytes = new Uint8Array(4);
    new DataView(iidBytes.buffer).setUint32(0, iid);
    return [iidBytes, prefixBytes, spki];
  }
  const prefixHex = Buffer.from(prefixBytes).toString('hex').replace(/^0+(?=.)/, '');
  return [Buffer.from(iid.toString(16).padStart(8, '0'), 'latin1'), Buffer.from(prefixHex, 'latin1'), spki];
}

export function deriveCryptoEid(options: {
  readonly iid: number;
  readonly spki: Uint8Array;
  readonly prefix?: EidPrefix;
  readonly derivation?: EidDerivation;
}): CryptoEid {
  const { iid, spki } = options;
  const prefix = options.prefix ?? DEFAULT_EID_PREFIX;
  const derivation = options.derivation ?? 'eve';
  if (!Number.isInteger(iid) || iid < 0 || iid > 0xffffffff) throw new RangeError(`instance-id ${iid} is not a 32-bit value`);
  checkEidPrefix(prefix, derivation);
  const hash = createHash('sha256');
  for (const part of hashInput(iid, prefix, spki, derivation)) hash.update(part);
  const digest = hash.digest();
  const prefixBytes = prefix.length / 8;
  const eid = new Uint8Array(16);
  eid.set(prefix.address.subarray(0, prefixBytes));
  eid.set(digest.subarray(0, 16 - prefixBytes), prefixBytes);
  return { eid, hashEidName: hashEidName(eid, prefix.length) };
}

/**
 * `hash-` + the hash bits of the EID as colon-separated groups of 4 hex digits taken from the
 * low-order end, with a leading 2-digit group when the hash is an odd number of bytes
 * (fd00::/8 -> `hash-f1:5cf5:…`).
 */
export function hashEidName(eid: Uint8Array, prefixLength: number): string {
  const hashBytes = eid.subarray(prefixLength / 8);
  const hex = Buffer.from(hashBytes).toString('hex');
  const groups: string[] = [];
  let end = hex.length;
  while (end > 0) {
    groups.unshift(hex.slice(Math.max(0, end - 4), end));
    end -= 4;
  }
  return `hash-${groups.join(':')}`;
}

/** Does `eid` belong to `spki` under `prefix`? Constant-time over the EID bytes. */
export function verifyCryptoEid(options: {
  readonly iid: number;
  readonly eid: Uint8Array;
  readonly spki: Uint8Array;
  readonly prefix?: EidPrefix;
  readonly derivation?: EidDerivation;
}): boolean {
  if (options.eid.length !== 16) return false;
  const expected = deriveCryptoEid(options).eid;
  return timingSafeEqual(expected, options.eid);
}

/** Is `eid` inside `prefix`? (Which EIDs must be crypto-EIDs is configuration.) */
export function eidInPrefix(eid: Uint8Array, prefix: EidPrefix): boolean {
  for (let bit = 0; bit < prefix.length; bit++) {
    const mask = 1 << (7 - (bit & 7));
    if (((eid[bit >> 3] ?? 0) & mask) !== ((prefix.address[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}
