// P-256 key pairs for workload (crypto-EID) keys: generation from caller-supplied randomness,
// PEM/DER import and export. Signing is deterministic (RFC 6979) so it needs no randomness at
// all; verification uses node:crypto, which is 20-40x faster than a JS implementation.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';

export interface P256KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The private scalar, 32 bytes big-endian (what the deterministic signer needs). */
  readonly scalar: Uint8Array;
  /** DER SubjectPublicKeyInfo (91 bytes): the input of EID derivation. */
  readonly spki: Uint8Array;
}

const ORDER = p256.Point.CURVE().n;

function toBigInt(bytes: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`);
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** A key pair from a private scalar (1 <= d < n). */
export function p256FromScalar(scalar: Uint8Array): P256KeyPair {
  if (scalar.length !== 32) throw new RangeError('a P-256 private scalar is 32 bytes');
  const d = toBigInt(scalar);
  if (d === 0n || d >= ORDER) throw new RangeError('the P-256 private scalar is out of range');
  const point = p256.getPublicKey(scalar, false); // 04 || X || Y
  const jwk = { kty: 'EC', crv: 'P-256', d: b64url(scalar), x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33, 65)) };
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  return fromPrivateKey(privateKey);
}

/**
 * A fresh key pair. `randomBytes` is the caller's CSPRNG (crypto.randomBytes in the daemon);
 * scalars outside [1, n) are drawn again, so the result is uniform.
 */
export function generateP256KeyPair(randomBytes: (length: number) => Uint8Array): P256KeyPair {
  for (;;) {
    const candidate = randomBytes(32);
    const d = toBigInt(candidate);
    if (d !== 0n && d < ORDER) return p256FromScalar(candidate);
  }
}

function fromPrivateKey(privateKey: KeyObject): P256KeyPair {
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('not a P-256 private key');
  }
  const jwk = privateKey.export({ format: 'jwk' });
  if (!jwk.d) throw new TypeError('the private key has no scalar');
  const publicKey = createPublicKey(privateKey);
  return {
    privateKey,
    publicKey,
    scalar: new Uint8Array(Buffer.from(jwk.d, 'base64url')),
    spki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })),
  };
}

/** Reads a private key in PEM (PKCS#8 or SEC1 "EC PRIVATE KEY", as EVE stores it) or DER. */
export function importP256PrivateKey(data: string | Uint8Array): P256KeyPair {
  const key =
    typeof data === 'string'
      ? createPrivateKey({ key: data, format: 'pem' })
      : createPrivateKey({ key: Buffer.from(data), format: 'der', type: 'pkcs8' });
  return fromPrivateKey(key);
}

/** Reads a public key in PEM or DER SPKI; returns it with its SPKI bytes. */
export function importP256PublicKey(data: string | Uint8Array): { readonly publicKey: KeyObject; readonly spki: Uint8Array } {
  const publicKey =
    typeof data === 'string'
      ? createPublicKey({ key: data, format: 'pem' })
      : createPublicKey({ key: Buffer.from(data), format: 'der', type: 'spki' });
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('not a P-256 public key');
  }
  return { publicKey, spki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })) };
}

export function exportPrivateKeyPem(pair: P256KeyPair): string {
  return pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function exportPublicKeyPem(publicKey: KeyObject): string {
  return publicKey.export({ format: 'pem', type: 'spki' }).toString();
}

/** lispers.net's hash-EID JSON value: base64 of the whole PEM text ("public-key" in §5.2). */
export function publicKeyJsonValue(publicKey: KeyObject): string {
  return Buffer.from(exportPublicKeyPem(publicKey)).toString('base64');
}

/** Inverse of publicKeyJsonValue; throws TypeError for anything that is not a P-256 key. */
export function publicKeyFromJsonValue(value: string): { readonly publicKey: KeyObject; readonly spki: Uint8Array } {
  return importP256PublicKey(Buffer.from(value, 'base64').toString('latin1'));
}
