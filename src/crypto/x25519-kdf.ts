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

// Fixed DER wrappers around raw X25519 keys (RFC 8410), so raw bytes become KeyObjects.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** A key pair from 32 private bytes (the caller's CSPRNG output; clamping is X25519's). */
export function x25519FromPrivate(privateBytes: Uint8Array): X25519KeyPair {
  if (privateBytes.length !== 32) throw new RangeError('an X25519 private key is 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateBytes]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)) };
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
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
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
