// Map-Register / Map-Notify / Map-Notify-Ack authentication (RFC 9301 §5.6), as lispers.net
// and OOR compute it: HMAC over the whole message with the authentication field zeroed, the full
// digest (20 bytes SHA-1, 32 bytes SHA-256) in the field, keys chosen by key-id.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { AUTH_DATA_OFFSET, AUTH_ALGORITHM } from './map-register.js';
import { MESSAGE_TYPE } from './message-type.js';

export type AuthAlgorithmId = typeof AUTH_ALGORITHM.hmacSha1 | typeof AUTH_ALGORITHM.hmacSha256;

export interface AuthKey {
  readonly keyId: number;
  readonly algorithmId: AuthAlgorithmId;
  /** The shared secret; a configured password is used as its UTF-8 bytes. */
  readonly secret: Uint8Array;
}

const DIGEST: Readonly<Record<AuthAlgorithmId, { readonly hash: 'sha1' | 'sha256'; readonly length: number }>> = {
  [AUTH_ALGORITHM.hmacSha1]: { hash: 'sha1', length: 20 },
  [AUTH_ALGORITHM.hmacSha256]: { hash: 'sha256', length: 32 },
};

export function authDataLength(algorithmId: AuthAlgorithmId): number {
  return DIGEST[algorithmId].length;
}

export function isAuthAlgorithm(id: number): id is AuthAlgorithmId {
  return id === AUTH_ALGORITHM.hmacSha1 || id === AUTH_ALGORITHM.hmacSha256;
}

/** The fields an authenticated message must carry before sealing: key-id, algorithm, a zeroed field. */
export function authFields(key: AuthKey): { keyId: number; algorithmId: number; authData: Uint8Array } {
  return { keyId: key.keyId, algorithmId: key.algorithmId, authData: new Uint8Array(authDataLength(key.algorithmId)) };
}

function mac(key: AuthKey, message: Uint8Array, fieldLength: number): Buffer {
  const h = createHmac(DIGEST[key.algorithmId].hash, key.secret);
  h.update(message.subarray(0, AUTH_DATA_OFFSET));
  h.update(new Uint8Array(fieldLength));
  h.update(message.subarray(AUTH_DATA_OFFSET + fieldLength));
  return h.digest();
}

/**
 * Fills the authentication field of an encoded message whose header already names `key`
 * (see authFields). Returns a new array; the input is not changed.
 */
export function sealAuthentication(encoded: Uint8Array, key: AuthKey): Uint8Array {
  const header = readAuthHeader(encoded);
  if (typeof header === 'string') throw new RangeError(`cannot seal: ${header}`);
  if (header.keyId !== key.keyId || header.algorithmId !== key.algorithmId || header.length !== authDataLength(key.algorithmId)) {
    throw new RangeError('the message header does not name this key (use authFields)');
  }
  const out = encoded.slice();
  out.set(mac(key, encoded, header.length), AUTH_DATA_OFFSET);
  return out;
}

export type AuthFailure =
  | 'truncated'
  | 'not-authenticated-type'
  | 'no-authentication'
  | 'unknown-key-id'
  | 'algorithm-mismatch'
  | 'bad-auth-length'
  | 'mac-mismatch';

export type AuthVerdict = { readonly ok: true; readonly keyId: number } | { readonly ok: false; readonly reason: AuthFailure };

/**
 * Checks a received message against the keys of its site. `keyFor` returns the key configured
 * under a key-id, or undefined. The comparison is constant-time over the full digest.
 */
export function verifyAuthentication(encoded: Uint8Array, keyFor: (keyId: number) => AuthKey | undefined): AuthVerdict {
  const header = readAuthHeader(encoded);
  if (typeof header === 'string') return { ok: false, reason: header };
  if (header.algorithmId === AUTH_ALGORITHM.none && header.length === 0) return { ok: false, reason: 'no-authentication' };
  const key = keyFor(header.keyId);
  if (!key) return { ok: false, reason: 'unknown-key-id' };
  if (key.algorithmId !== header.algorithmId) return { ok: false, reason: 'algorithm-mismatch' };
  if (header.length !== authDataLength(key.algorithmId)) return { ok: false, reason: 'bad-auth-length' };
  const expected = mac(key, encoded, header.length);
  const received = encoded.subarray(AUTH_DATA_OFFSET, AUTH_DATA_OFFSET + header.length);
  return timingSafeEqual(expected, received) ? { ok: true, keyId: header.keyId } : { ok: false, reason: 'mac-mismatch' };
}

function readAuthHeader(b: Uint8Array): { keyId: number; algorithmId: number; length: number } | 'truncated' | 'not-authenticated-type' {
  if (b.length < AUTH_DATA_OFFSET) return 'truncated';
  const type = (b[0] ?? 0) >>> 4;
  if (type !== MESSAGE_TYPE.mapRegister && type !== MESSAGE_TYPE.mapNotify && type !== MESSAGE_TYPE.mapNotifyAck && type !== MESSAGE_TYPE.info) {
    return 'not-authenticated-type';
  }
  const length = ((b[14] ?? 0) << 8) | (b[15] ?? 0);
  if (b.length < AUTH_DATA_OFFSET + length) return 'truncated';
  return { keyId: b[12] ?? 0, algorithmId: b[13] ?? 0, length };
}

/** A site password as configured (ASCII/UTF-8 text) turned into key bytes. */
export function passwordKey(keyId: number, algorithmId: AuthAlgorithmId, password: string): AuthKey {
  return { keyId, algorithmId, secret: new TextEncoder().encode(password) };
}
