// The controller's PKI (eve-security.md §3, eve-api.md §4): a root CA the device pins in
// /config/root-certificate.pem, and under it the object-signing cert, the ECDH cert and the TLS
// server cert. Keys are software P-256 keys; the caller writes the PEM files.
import { exportPrivateKeyPem, generateP256KeyPair, importP256PrivateKey } from '../../crypto/p256.js';
import * as x509 from './lib.js';
import { issueCertificate, randomSerial, type CertificateSpec } from './sign.js';
import { softwareSigner } from './software-signer.js';
import { eveValidity, validityDays } from './validity.js';

export interface CertAndKey {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

export interface ControllerPki {
  readonly root: CertAndKey;
  readonly signing: CertAndKey;
  readonly ecdh: CertAndKey;
  readonly tls: CertAndKey;
}

type Random = (length: number) => Uint8Array;

export interface LeafOptions {
  readonly now: Date;
  /** The caller's CSPRNG: draws keys and serials. */
  readonly random: Random;
  /** Lifetime of the certs under the root; they rotate, so short. Default 730. */
  readonly validityDays?: number;
}

export interface ControllerPkiOptions extends LeafOptions {
  /** The controller's host name, as devices dial it (/config/server). */
  readonly dnsName: string;
  readonly ipAddresses: readonly string[];
}

const DEFAULT_LEAF_DAYS = 730;
const ORG = { O: ['lispnode'] };
const { digitalSignature, keyAgreement, keyCertSign, cRLSign } = x509.KeyUsageFlags;

type LeafTemplate = Pick<CertificateSpec, 'subject' | 'keyUsage' | 'extKeyUsage' | 'dnsNames' | 'ipAddresses'>;

// Signing and ECDH carry no ExtKeyUsage: EVE checks them with Go's x509.Verify, whose default
// demands serverAuth of any cert that has an EKU at all; none passes and claims no TLS role.
const SIGNING: LeafTemplate = { subject: [ORG, { CN: ['lispnode controller signing'] }], keyUsage: digitalSignature };
const ECDH: LeafTemplate = { subject: [ORG, { CN: ['lispnode controller ECDH'] }], keyUsage: keyAgreement };

async function issueLeaf(root: CertAndKey, template: LeafTemplate, { now, random, validityDays: days }: LeafOptions): Promise<CertAndKey> {
  const pair = generateP256KeyPair(random);
  const certPem = await issueCertificate(
    softwareSigner(importP256PrivateKey(root.keyPem)),
    { ...template, publicKey: pair.publicKey, serial: randomSerial(random), ...validityDays(now, days ?? DEFAULT_LEAF_DAYS) },
    root.certPem,
  );
  return { certPem, keyPem: exportPrivateKeyPem(pair) };
}

/**
 * A new root and the three certs under it. The root lives 20 years, like EVE's device cert:
 * the device pins it at install and only a reinstall replaces it, so it must outlive the device;
 * the certs under it are short-lived and rotated by issuing new ones.
 */
export async function createControllerPki(options: ControllerPkiOptions): Promise<ControllerPki> {
  const pair = generateP256KeyPair(options.random);
  const rootPem = await issueCertificate(softwareSigner(pair), {
    subject: [ORG, { CN: ['lispnode controller root CA'] }],
    publicKey: pair.publicKey,
    serial: randomSerial(options.random),
    ...eveValidity(options.now),
    isCA: true,
    keyUsage: keyCertSign | cRLSign,
  });
  const root = { certPem: rootPem, keyPem: exportPrivateKeyPem(pair) };
  const tls: LeafTemplate = {
    subject: [ORG, { CN: [options.dnsName] }],
    keyUsage: digitalSignature,
    extKeyUsage: [x509.ExtendedKeyUsage.serverAuth],
    dnsNames: [options.dnsName],
    ipAddresses: options.ipAddresses,
  };
  return {
    root,
    signing: await issueLeaf(root, SIGNING, options),
    ecdh: await issueLeaf(root, ECDH, options),
    tls: await issueLeaf(root, tls, options),
  };
}

/** A new signing cert and key under `root`; the controller starts using it by its new hash. */
export function rotateSigningCert(root: CertAndKey, options: LeafOptions): Promise<CertAndKey> {
  return issueLeaf(root, SIGNING, options);
}
