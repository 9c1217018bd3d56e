// The cert hashes EVE puts in AuthContainer.senderCertHash and ZCert.certHash, and the lookup
// from such a hash back to a verifying key (eve-api.md §9). The two directions hash different
// bytes: the DER of a device's cert, but the exact PEM text of a controller's. Mixing them up
// gives envelopes that every peer rejects as signed by an unknown cert.
import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { HashAlgorithm } from './proto/index.js';

/** A PEM file's content: bytes as stored or carried (hashes are over these exact bytes), or text. */
export type PemInput = string | Uint8Array;

const sha256 = (data: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(data).digest());
const pemBytes = (pem: PemInput): Uint8Array => (typeof pem === 'string' ? new TextEncoder().encode(pem) : pem);
const certificate = (pem: PemInput): X509Certificate => new X509Certificate(pemBytes(pem));

/**
 * Device → controller `senderCertHash`: SHA-256 over the DER of the device (or, for register,
 * onboarding) cert, all 32 bytes, sent with algo SHA256_32BYTES. Throws a TypeError when `pem`
 * holds no certificate.
 */
export function deviceCertHash(pem: PemInput): Uint8Array {
  return sha256(certificate(pem).raw);
}

/**
 * Controller → device `senderCertHash`: SHA-256 over the exact PEM bytes carried in the SIGNING
 * ZCert.cert, trailing newline included. Send all 32 bytes (algo 2) or the first 16 (algo 1).
 */
export function controllerCertHash(pem: PemInput): Uint8Array {
  return sha256(pemBytes(pem));
}

/** ZCert.certHash (with hashAlgo SHA256_16BYTES): the first 16 bytes of SHA-256(PEM bytes). */
export function certId16(pem: PemInput): Uint8Array {
  return controllerCertHash(pem).slice(0, 16);
}

/** How many bytes of the SHA-256 an algorithm keeps; undefined for any other value. */
export function hashLength(algo: HashAlgorithm): 16 | 32 | undefined {
  if (algo === HashAlgorithm.SHA256_16BYTES) return 16;
  if (algo === HashAlgorithm.SHA256_32BYTES) return 32;
  return undefined;
}

/** Whether `hash` is `fullHash` truncated as `algo` says (and of exactly that length). */
export function matchesCertHash(hash: Uint8Array, algo: HashAlgorithm, fullHash: Uint8Array): boolean {
  const length = hashLength(algo);
  if (length === undefined || hash.length !== length || fullHash.length < length) return false;
  return Buffer.from(hash).equals(fullHash.subarray(0, length));
}

/** Finds the key that should have signed an envelope from its sender's (validated) cert hash. */
export type CertResolver = (certHash: Uint8Array, algo: HashAlgorithm) => KeyObject | undefined;

/** A cert a peer may sign with: its full 32-byte hash, in the direction it is used, and its key. */
export interface KnownCert {
  readonly hash: Uint8Array;
  readonly key: KeyObject;
}

/** A controller cert as a device knows it: hashed over the PEM bytes. */
export function knownControllerCert(pem: PemInput): KnownCert {
  return { hash: controllerCertHash(pem), key: certificate(pem).publicKey };
}

/** A device (or onboarding) cert as the controller knows it: hashed over the DER. */
export function knownDeviceCert(pem: PemInput): KnownCert {
  const cert = certificate(pem);
  return { hash: sha256(cert.raw), key: cert.publicKey };
}

/** A resolver over a fixed set of certs: 16- or 32-byte hashes, as the algorithm says. */
export function certResolver(certs: readonly KnownCert[]): CertResolver {
  return (certHash, algo) => certs.find((cert) => matchesCertHash(certHash, algo, cert.hash))?.key;
}
