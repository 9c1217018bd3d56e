// X25519 key agreement and the RFC 8061 key derivation exactly as lispers.net computes it
// (lisp-protocol.md §4.3, vector TV3) — two details differ from a literal reading of the RFC and
// must be copied for interop: the X25519 output is first hashed as SHA-256("curve25519-shared:" ||
// raw), and the HMAC is keyed with the context string, not with the secret.
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import { ENCRYPT_KEY_LENGTH } from './cipher-suite.js';

export interface X25519KeyPair {
  readonly privateKey: KeyObject;
  /** The raw 32-byte public key, as carried in the Security Key LCAF. */
  readonly publicKey: Uint8Array;
}

export interface DataPlaneKeys {
  /** AES-128 key. */
  readonly encryptKey: Uint8Array;
  /** HMAC-SHA-256 key for the ICV: 4 zero bytes || 16 bytes (lispers.net zero-fills to 160 bits). */
  readonly icvKey: Uint8Array;
}

// The fixed DER wrapper of a raw X25519 private key (RFC 8410), for PEM files.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
/** A placeholder JWK `x` (32 zero bytes): Node requires the member, OpenSSL derives the real one from `d`. */
const UNUSED_X = Buffer.alloc(32).toString('base64url');

/** A key pair from 32 private bytes (the caller's CSPRNG output; clamping is X25519's). */
export function x25519FromPrivate(privateBytes: Uint8Array): X25519KeyPair {
  if (privateBytes.length !== 32) throw new RangeError('an X25519 private key is 32 bytes');
  // Through JWK, not PKCS#8 DER: OpenSSL 3's DER decoder costs ~400 µs a key here, JWK ~40 µs, and
  // an ETR makes a pair per key offer. Node builds the key from `d` alone (the raw private key,
  // OpenSSL derives the public part); `x` must be present but is not used, so the public key is
  // read back from the key itself (crypto-vectors.test.ts checks it against TV3).
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: Buffer.from(privateBytes).toString('base64url'), x: UNUSED_X }, format: 'jwk' });
  const x = createPublicKey(privateKey).export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new TypeError('X25519 public key export failed');
  return { privateKey, publicKey: new Uint8Array(Buffer.from(x, 'base64url')) };
}

/** A key pair from its PKCS#8 PEM text (how the node keeps its static data-plane key). */
export function x25519FromPem(pem: string): X25519KeyPair {
  const key = createPrivateKey({ key: pem, format: 'pem' });
  if (key.asymmetricKeyType !== 'x25519') throw new TypeError(`not an X25519 private key (${key.asymmetricKeyType ?? 'unknown type'})`);
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return x25519FromPrivate(new Uint8Array(der.subarray(PKCS8_PREFIX.length)));
}

/** PKCS#8 PEM text of a key pair's private key. */
export function x25519ToPem(pair: X25519KeyPair): string {
  return pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new RangeError('an X25519 public key is 32 bytes');
  // JWK for speed, as above (~10 µs against ~90 µs for SPKI DER).
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

/** The raw X25519 output. Throws for low-order peer keys (an all-zero secret). */
export function x25519SharedSecret(own: X25519KeyPair, peerPublic: Uint8Array): Uint8Array {
  const lowOrder = new RangeError('the peer public key is of low order (all-zero shared secret)');
  const publicKey = publicKeyObject(peerPublic);
  let raw: Buffer;
  try {
    raw = diffieHellman({ privateKey: own.privateKey, publicKey });
  } catch {
    // OpenSSL refuses the derivation itself when the result would be all zeros.
    throw lowOrder;
  }
  if (raw.every((b) => b === 0)) throw lowOrder;
  return new Uint8Array(raw);
}

/** hex(int(a) XOR int(b)), lowercase without leading zeros, as Python's hex() prints it. */
function xorHex(a: Uint8Array, b: Uint8Array): string {
  const x = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) x[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return x.toString('hex').replace(/^0+(?=.)/, '');
}

/** The KDF from the raw shared secret and both public keys; symmetric in the two keys. */
export function deriveKeysFromShared(rawShared: Uint8Array, ownPublic: Uint8Array, peerPublic: Uint8Array): DataPlaneKeys {
  const secret = createHash('sha256').update('curve25519-shared:').update(rawShared).digest();
  const context = `0001lisp-crypto${xorHex(ownPublic, peerPublic)}0100`;
  const material = createHmac('sha256', context).update(secret).digest();
  const icvKey = new Uint8Array(20);
  icvKey.set(material.subarray(ENCRYPT_KEY_LENGTH, 32), 4);
  return { encryptKey: new Uint8Array(material.subarray(0, ENCRYPT_KEY_LENGTH)), icvKey };
}

export function deriveDataPlaneKeys(own: X25519KeyPair, peerPublic: Uint8Array): DataPlaneKeys {
  return deriveKeysFromShared(x25519SharedSecret(own, peerPublic), own.publicKey, peerPublic);
}
