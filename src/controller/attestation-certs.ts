// ATTEST_REQ_CERT's certificates (eve-security.md §4 step 1): the device's ECDH (13), attestation
// (11, the quote key) and EK (12) certificates, each issued by the device key under the device
// certificate the device registered. Anything else is refused before it is stored: a certificate
// the device key did not issue would let a device present a key it does not own.
import { X509Certificate } from 'node:crypto';
// ZCert hashes (16 or 32 bytes by hashAlgo) are over the PEM bytes, as for the controller's own certs.
import { controllerCertHash, matchesCertHash } from '../control/cert-hash.js';
import { ZCertType, type ZCert } from '../control/proto/index.js';
import type { DeviceCert } from './attestation-store.js';

const DEVICE_CERT_TYPES: readonly ZCertType[] = [ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING, ZCertType.CERT_TYPE_DEVICE_ENDORSEMENT_RSA, ZCertType.CERT_TYPE_DEVICE_ECDH_EXCHANGE];

export type CertsCheck = { readonly ok: true; readonly certs: readonly DeviceCert[] } | { readonly ok: false; readonly status: 400 | 403; readonly reason: string };

const refused = (status: 400 | 403, reason: string): CertsCheck => ({ ok: false, status, reason });
const typeName = (type: ZCertType): string => `${ZCertType[type] ?? 'unknown type'} (${type})`;

function checkOne(zcert: ZCert, device: X509Certificate, now: Date): X509Certificate | CertsCheck {
  const name = typeName(zcert.type);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(zcert.cert);
  } catch {
    return refused(400, `${name}: ZCert.cert is not a PEM certificate`);
  }
  if (zcert.certHash.length > 0 && !matchesCertHash(zcert.certHash, zcert.hashAlgo, controllerCertHash(zcert.cert))) {
    return refused(400, `${name}: certHash is not SHA-256 of the PEM bytes for hash algorithm ${zcert.hashAlgo}`);
  }
  if (!cert.checkIssued(device) || !cert.verify(device.publicKey)) return refused(403, `${name}: not issued by the device's registered certificate`);
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) return refused(403, `${name}: not valid now (${cert.validFrom} – ${cert.validTo})`);
  // verifyQuote checks ECDSA P-256, the only quote key EVE creates.
  if (zcert.type === ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING && cert.publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    return refused(400, `${name}: the attestation key is not ECDSA P-256`);
  }
  return cert;
}

/** The certificates to store, or why none is: 400 malformed, 403 not the device's own. */
export function checkDeviceCerts(deviceCertPem: string, certs: readonly ZCert[], now: Date): CertsCheck {
  if (certs.length === 0) return refused(400, 'ATTEST_REQ_CERT carries no certificates');
  const device = new X509Certificate(deviceCertPem);
  const seen = new Set<ZCertType>();
  const checked: DeviceCert[] = [];
  for (const zcert of certs) {
    if (!DEVICE_CERT_TYPES.includes(zcert.type)) return refused(400, `${typeName(zcert.type)} is not a device certificate type (11, 12 or 13)`);
    if (seen.has(zcert.type)) return refused(400, `${typeName(zcert.type)} appears twice`);
    seen.add(zcert.type);
    const result = checkOne(zcert, device, now);
    if (!(result instanceof X509Certificate)) return result;
    checked.push({ type: zcert.type, pem: Buffer.from(zcert.cert).toString('utf8') });
  }
  return { ok: true, certs: checked };
}
