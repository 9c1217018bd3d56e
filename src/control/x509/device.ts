// The node's own certificates, from EVE's tpmmgr templates (eve-security.md §2.1): the device
// cert, self-signed by the device key (in the TPM when there is one), the EdgeNode certs it
// issues for the ECDH and attestation keys, and the onboarding cert EVE bakes into the image.
import type { KeyObject } from 'node:crypto';
import { exportPrivateKeyPem, generateP256KeyPair } from '../../crypto/p256.js';
import type { P256Signer } from '../signer.js';
import * as x509 from './lib.js';
import { issueCertificate, randomSerial } from './sign.js';
import { softwareSigner } from './software-signer.js';
import { eveValidity } from './validity.js';

export interface DeviceCertOptions {
  readonly now: Date;
  /** 16 random bytes (EVE's 128-bit serial). */
  readonly serial: Uint8Array;
}

/** O=The Linux Foundation, CN=EVE (Go encodes O before CN). */
export const EVE_DEVICE_SUBJECT: x509.JsonName = [{ O: ['The Linux Foundation'] }, { CN: ['EVE'] }];

const { digitalSignature, keyEncipherment, keyCertSign } = x509.KeyUsageFlags;
const { clientAuth, serverAuth } = x509.ExtendedKeyUsage;

/** The self-signed device cert: a CA for the EdgeNode certs, client and server for TLS. */
export function createDeviceCert(signer: P256Signer, { now, serial }: DeviceCertOptions): Promise<string> {
  return issueCertificate(signer, {
    subject: EVE_DEVICE_SUBJECT,
    publicKey: signer.publicKey,
    serial,
    ...eveValidity(now),
    isCA: true,
    keyUsage: digitalSignature | keyCertSign,
    extKeyUsage: [clientAuth, serverAuth],
  });
}

export type EdgeNodeCertKind = 'ecdh' | 'attestation';

const EDGE_NODE_COMMON_NAME: Readonly<Record<EdgeNodeCertKind, string>> = {
  ecdh: 'Device ECDH certificate',
  attestation: 'Device Attestation certificate',
};

/**
 * An EdgeNode cert for another node key, issued under the device cert and signed by the device
 * key. The window is the device cert's template (a day before `now`, 20 years): tpmmgr
 * regenerates these on reinstall while the device cert survives, so it is recomputed, not copied.
 */
export function issueEdgeNodeCert(
  deviceSigner: P256Signer,
  devicePem: string,
  subjectPublicKey: KeyObject,
  kind: EdgeNodeCertKind,
  { now, serial }: DeviceCertOptions,
): Promise<string> {
  return issueCertificate(
    deviceSigner,
    {
      subject: [{ CN: [EDGE_NODE_COMMON_NAME[kind]] }],
      publicKey: subjectPublicKey,
      serial,
      ...eveValidity(now),
      keyUsage: keyEncipherment | digitalSignature,
      extKeyUsage: [serverAuth],
    },
    devicePem,
  );
}

export interface OnboardingCertOptions {
  readonly commonName: string;
  readonly now: Date;
  /** The caller's CSPRNG: draws the key and the serial. */
  readonly random: (length: number) => Uint8Array;
}

/**
 * The shared onboarding identity EVE ships in the image (/config/onboard.{cert,key}.pem): a
 * software P-256 key and a self-signed client cert that signs only the register request.
 */
export async function createOnboardingCert({ commonName, now, random }: OnboardingCertOptions): Promise<{ readonly certPem: string; readonly keyPem: string }> {
  const pair = generateP256KeyPair(random);
  const certPem = await issueCertificate(softwareSigner(pair), {
    subject: [{ CN: [commonName] }],
    publicKey: pair.publicKey,
    serial: randomSerial(random),
    ...eveValidity(now),
    keyUsage: digitalSignature,
    extKeyUsage: [clientAuth],
  });
  return { certPem, keyPem: exportPrivateKeyPem(pair) };
}
