// lispnode's replay-proof registration signature (docs/registration-signature.md). The EID
// signature of EVE and lispers.net is static: anyone who once saw a Map-Register can replay it.
// This one covers the Map-Register nonce, a timestamp and a digest of the registered record, so
// a copy is useless under another nonce, after its freshness window, or with other RLOCs.
import type { KeyObject } from 'node:crypto';
import { decodeSignature, encodeSignature, signRaw, verifyRaw } from './ecdsa.js';
import { eidSignatureInput, type EidText } from './eid-signature.js';

export const REGISTRATION_SIGNATURE_LABEL = 'lispnode-registration-v1';

export interface RegistrationClaims {
  readonly eid: EidText;
  /** The Map-Register nonce, 64 bits. */
  readonly nonce: bigint;
  /** Unix time in seconds when the registration was signed. */
  readonly timestamp: number;
  /** SHA-256 of the EID-record's wire bytes without the signature's own locator. */
  readonly recordDigest: Uint8Array;
}

/** The exact bytes signed: five LF-separated ASCII lines. */
export function registrationSigningInput(c: RegistrationClaims): Uint8Array {
  if (c.recordDigest.length !== 32) throw new RangeError('the record digest is a SHA-256 value (32 bytes)');
  if (!Number.isSafeInteger(c.timestamp) || c.timestamp < 0) throw new RangeError('the timestamp is whole seconds since 1970');
  const lines = [
    REGISTRATION_SIGNATURE_LABEL,
    eidSignatureInput(c.eid),
    c.nonce.toString(16).padStart(16, '0'),
    String(c.timestamp),
    Buffer.from(c.recordDigest).toString('hex'),
  ];
  return Buffer.from(lines.join('\n'), 'latin1');
}

export function signRegistration(scalar: Uint8Array, claims: RegistrationClaims): string {
  return encodeSignature(signRaw(scalar, registrationSigningInput(claims), 'sha256'));
}

export type RegistrationVerdict = 'valid' | 'bad-signature' | 'stale' | 'from-the-future';

/**
 * Checks the signature and that the timestamp lies within `maxAgeSeconds` before `now` (and not
 * more than `maxSkewSeconds` after it). `now` is the caller's clock: this module reads none.
 */
export function verifyRegistration(
  publicKey: KeyObject,
  claims: RegistrationClaims,
  signature: string,
  freshness: { readonly nowSeconds: number; readonly maxAgeSeconds: number; readonly maxSkewSeconds: number },
): RegistrationVerdict {
  const raw = decodeSignature(signature);
  if (!raw || !verifyRaw(publicKey, registrationSigningInput(claims), raw, 'sha256')) return 'bad-signature';
  if (claims.timestamp > freshness.nowSeconds + freshness.maxSkewSeconds) return 'from-the-future';
  if (claims.timestamp < freshness.nowSeconds - freshness.maxAgeSeconds) return 'stale';
  return 'valid';
}
