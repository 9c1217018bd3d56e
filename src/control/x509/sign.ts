// X.509 certificates signed through a P256Signer, so the device key can stay in the TPM.
// @peculiar/x509 builds and DER-encodes the TBSCertificate and hands it to `crypto.subtle.sign`
// of whatever WebCrypto object it is given; ours hashes it with SHA-256 and asks the signer for
// the digest's signature. WebCrypto's ECDSA format is raw r||s — exactly what signDigest
// returns — so the library's own formatter turns it into the DER ECDSA-Sig-Value.
import { createHash, webcrypto, X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import type { P256Signer } from '../signer.js';
import * as x509 from './lib.js';
import { certDerFromPem, certPemFromDer } from './pem.js';

/** The values CertificateSpec takes: KeyUsage bits and ExtKeyUsage OIDs. */
export { ExtendedKeyUsage, KeyUsageFlags } from './lib.js';

export interface CertificateSpec {
  /** Distinguished name, one RDN per element in encoding order: [{ O: ['…'] }, { CN: ['…'] }]. */
  readonly subject: x509.JsonName;
  readonly publicKey: KeyObject;
  /** 1..20 bytes, big-endian, not all zero (RFC 5280 §4.1.2.2). */
  readonly serial: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** KeyUsageFlags bits; always written critical, as Go does. */
  readonly keyUsage: number;
  /** A CA: critical basicConstraints CA:TRUE and a subject key identifier (Go adds it for CAs). */
  readonly isCA?: boolean;
  /** ExtKeyUsage OIDs in the order to encode; none means no extension. */
  readonly extKeyUsage?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export type CertificateSigningFailure = 'bad-signature-length' | 'signature-mismatch';

/**
 * The signer misbehaved. `certPem` is the certificate it produced when there is one (a
 * signature that does not verify under the issuer's key), kept as evidence, never to be used.
 */
export class CertificateSigningError extends Error {
  constructor(
    readonly reason: CertificateSigningFailure,
    message: string,
    readonly certPem?: string,
  ) {
    super(message);
    this.name = 'CertificateSigningError';
  }
}

/** What the library reads of a CryptoKey: the algorithm decides the AlgorithmIdentifier. */
const SIGNING_KEY = {
  type: 'private',
  extractable: false,
  algorithm: { name: 'ECDSA', namedCurve: 'P-256' },
  usages: ['sign'],
} as const;

interface SignAlgorithm {
  readonly name?: unknown;
  readonly hash?: unknown;
}

/** A WebCrypto stand-in that can do one thing: ECDSA-SHA256 through `signer`. */
function signerCrypto(signer: P256Signer): { readonly subtle: { sign(alg: SignAlgorithm, key: unknown, data: ArrayBuffer): Promise<ArrayBuffer> } } {
  return {
    subtle: {
      async sign(alg, _key, data) {
        const hash = typeof alg.hash === 'string' ? alg.hash : (alg.hash as { name?: unknown } | undefined)?.name;
        // The digest we compute must be the one the AlgorithmIdentifier in the TBS names.
        if (alg.name !== 'ECDSA' || hash !== 'SHA-256') throw new TypeError('only ECDSA with SHA-256 is supported');
        const signature = await signer.signDigest(createHash('sha256').update(new Uint8Array(data)).digest());
        if (signature.length !== 64) {
          throw new CertificateSigningError('bad-signature-length', `the signer returned ${signature.length} bytes, not a 64-byte r||s`);
        }
        return new Uint8Array(signature).buffer;
      },
    },
  };
}

function serialHex(serial: Uint8Array): string {
  if (serial.length < 1 || serial.length > 20 || serial.every((b) => b === 0)) {
    throw new RangeError('a certificate serial is 1..20 bytes and not zero');
  }
  return Buffer.from(serial).toString('hex');
}

const spkiOf = (key: KeyObject): Uint8Array => new Uint8Array(key.export({ format: 'der', type: 'spki' }));

/** RFC 5280 method 1 (SHA-1 of the key's BIT STRING), what Go puts in SubjectKeyId. */
async function keyIdentifier(key: KeyObject): Promise<string> {
  const id = await new x509.PublicKey(spkiOf(key)).getKeyIdentifier(webcrypto);
  return Buffer.from(id).toString('hex');
}

/** Go's buildCertExtensions order: KU, EKU, basicConstraints, SKI, AKI, SAN. */
async function extensionsFor(spec: CertificateSpec, authorityKeyId: string | undefined): Promise<x509.Extension[]> {
  const extensions: x509.Extension[] = [new x509.KeyUsagesExtension(spec.keyUsage, true)];
  if (spec.extKeyUsage?.length) extensions.push(new x509.ExtendedKeyUsageExtension([...spec.extKeyUsage], false));
  if (spec.isCA) {
    extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
    extensions.push(new x509.SubjectKeyIdentifierExtension(await keyIdentifier(spec.publicKey), false));
  }
  if (authorityKeyId !== undefined) extensions.push(new x509.AuthorityKeyIdentifierExtension(authorityKeyId, false));
  const names = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  return extensions;
}

/**
 * Issues `spec` signed by `signer`: self-signed without `issuerPem`, otherwise under that
 * certificate (its subject becomes the issuer, its key identifier the AKI). The result is
 * checked against the issuer's public key before it is returned, so a signer that signs with
 * some other key (a wrong TPM handle) is caught here rather than by the controller.
 */
export async function issueCertificate(signer: P256Signer, spec: CertificateSpec, issuerPem?: string): Promise<string> {
  let issuerName: x509.Name | x509.JsonName = spec.subject;
  let issuerKey = spec.publicKey;
  let authorityKeyId: string | undefined;
  if (issuerPem !== undefined) {
    const der = certDerFromPem(issuerPem);
    if (der === undefined) throw new TypeError('the issuer is not a PEM certificate');
    const issuer = new x509.X509Certificate(der);
    issuerName = issuer.subjectName;
    issuerKey = new NodeX509(der).publicKey;
    authorityKeyId = issuer.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  }
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex(spec.serial),
      subject: spec.subject,
      issuer: issuerName,
      notBefore: spec.notBefore,
      notAfter: spec.notAfter,
      publicKey: spkiOf(spec.publicKey),
      signingKey: SIGNING_KEY,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: await extensionsFor(spec, authorityKeyId),
    },
    signerCrypto(signer),
  );
  const der = new Uint8Array(cert.rawData);
  const pem = certPemFromDer(der);
  if (!new NodeX509(der).verify(issuerKey)) {
    throw new CertificateSigningError('signature-mismatch', `the signature on "${cert.subject}" does not verify under the issuer's key`, pem);
  }
  return pem;
}

/** A fresh 128-bit serial, as Go's templates draw them (zero, which RFC 5280 forbids, redrawn). */
export function randomSerial(random: (length: number) => Uint8Array): Uint8Array {
  for (;;) {
    const serial = random(16);
    if (serial.some((b) => b !== 0)) return serial;
  }
}
