// ECDSA P-256 signatures in the raw r||s form (64 bytes, base64 on the wire) that EVE and
// lispers.net use. Signing is RFC 6979 deterministic with high-s kept (as python-ecdsa signs),
// so the same key and message always give the same bytes and no randomness is needed.
// Verification is node:crypto's, which accepts low-s and high-s signatures alike.
import { verify, type KeyObject } from 'node:crypto';
import { ecdsa } from '@noble/curves/abstract/weierstrass.js';
import { p256 } from '@noble/curves/nist.js';
import { sha1 } from '@noble/hashes/legacy.js';

export type SignatureHash = 'sha256' | 'sha1';

// The hash drives both the message digest and RFC 6979's HMAC-DRBG, as in python-ecdsa.
const SIGNERS = { sha256: p256, sha1: ecdsa(p256.Point, sha1) } as const;

export const RAW_SIGNATURE_LENGTH = 64;

/** Signs `message` (hashed with `hash`) with the private scalar; returns raw r||s. */
export function signRaw(scalar: Uint8Array, message: Uint8Array, hash: SignatureHash): Uint8Array {
  return SIGNERS[hash].sign(message, scalar, { lowS: false, prehash: true });
}

export function verifyRaw(publicKey: KeyObject, message: Uint8Array, signature: Uint8Array, hash: SignatureHash): boolean {
  if (signature.length !== RAW_SIGNATURE_LENGTH) return false;
  try {
    return verify(hash, message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * Strict base64 (standard alphabet, padding required) of exactly a raw signature. lispers.net
 * leaves base64's trailing newline in JSON strings, so surrounding whitespace is tolerated.
 */
export function decodeSignature(text: string): Uint8Array | undefined {
  const bytes = decodeStrictBase64(text.trim(), 4 * (RAW_SIGNATURE_LENGTH / 3 + 1));
  return bytes?.length === RAW_SIGNATURE_LENGTH ? bytes : undefined;
}

/** Standard base64 with padding, nothing else (Buffer.from ignores what it cannot read), at most `maxLength` characters. */
export function decodeStrictBase64(text: string, maxLength: number): Uint8Array | undefined {
  if (text.length > maxLength || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

export function encodeSignature(signature: Uint8Array): string {
  return Buffer.from(signature).toString('base64');
}
