// Side-channel configuration (EVE left it "TBD", issue #233): a config bundle the controller
// exports and an operator carries on a USB stick or as a file. It is signed like an envelope and
// carries the controller certificates that vouch for it, so a node with no network can check it
// against its pinned root CA. A bundle applies only if its version is above the node's
// monotonic counter (a TPM NV counter where there is a TPM), so an old bundle cannot be replayed.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { certResolver, controllerCertHash, certId16, knownControllerCert } from './cert-hash.js';
import { openEnvelope, sealEnvelope, unwrapUnverified } from './envelope.js';
import { ConfigBundleSchema, HashAlgorithm, ZCertType, type ConfigBundle, type ConfigResponse } from './proto/index.js';
import type { P256Signer } from './signer.js';
import { verifyControllerCertSet } from './x509/verify.js';

export interface BundleSigner {
  readonly signer: P256Signer;
  readonly signingCertPem: string;
  readonly ecdhCertPem: string;
  readonly intermediatePems: readonly string[];
}

export async function sealBundle(by: BundleSigner, content: { readonly version: bigint; readonly deviceUuid: string; readonly config: ConfigResponse; readonly created: Date }): Promise<Uint8Array> {
  const cert = (pem: string, type: ZCertType) => ({ hashAlgo: HashAlgorithm.SHA256_16BYTES, certHash: certId16(pem), type, cert: new TextEncoder().encode(pem) });
  const bundle = create(ConfigBundleSchema, {
    version: content.version,
    deviceUuid: content.deviceUuid,
    controllerCerts: {
      certs: [
        cert(by.signingCertPem, ZCertType.CERT_TYPE_CONTROLLER_SIGNING),
        cert(by.ecdhCertPem, ZCertType.CERT_TYPE_CONTROLLER_ECDH_EXCHANGE),
        ...by.intermediatePems.map((pem) => cert(pem, ZCertType.CERT_TYPE_CONTROLLER_INTERMEDIATE)),
      ],
    },
    config: content.config,
    createdUnixMs: BigInt(content.created.getTime()),
  });
  return sealEnvelope(toBinary(ConfigBundleSchema, bundle), by.signer, { certHash: controllerCertHash(by.signingCertPem), algo: HashAlgorithm.SHA256_32BYTES });
}

export type BundleRefusal =
  | 'malformed' // not an envelope around a ConfigBundle
  | 'untrusted' // its certificates do not chain to the pinned root CA
  | 'signature' // not signed by the signing certificate it carries
  | 'device' // for another device
  | 'replayed'; // not newer than the last bundle applied

export type BundleResult = { readonly ok: true; readonly bundle: ConfigBundle; readonly config: ConfigResponse } | { readonly ok: false; readonly reason: BundleRefusal; readonly message: string };

const refuse = (reason: BundleRefusal, message: string): BundleResult => ({ ok: false, reason, message });

/** Every check but the version: the caller compares against its counter (`checkBundleVersion`). */
export function openBundle(bytes: Uint8Array, rootPem: string, now: Date, deviceUuid: string): BundleResult {
  const unwrapped = unwrapUnverified(bytes);
  if (!unwrapped.ok) return refuse('malformed', `not a signed bundle (${unwrapped.error.message})`);
  let bundle: ConfigBundle;
  try {
    bundle = fromBinary(ConfigBundleSchema, unwrapped.payload);
  } catch (error) {
    return refuse('malformed', `the payload is not a ConfigBundle (${(error as Error).message})`);
  }
  const certs = bundle.controllerCerts?.certs ?? [];
  const verdict = verifyControllerCertSet(certs.map((c) => ({ type: c.type, pem: c.cert })), rootPem, now);
  if (!verdict.ok) return refuse('untrusted', `its certificates are not the controller's (${verdict.error.reason}: ${verdict.error.message})`);
  const opened = openEnvelope(bytes, certResolver([knownControllerCert(verdict.signing.pem)]));
  if (!opened.ok) return refuse('signature', `not signed by the controller's signing certificate (${opened.error.message})`);
  if (bundle.deviceUuid !== deviceUuid) return refuse('device', `the bundle is for device ${bundle.deviceUuid}, this node is ${deviceUuid}`);
  if (!bundle.config?.config) return refuse('malformed', 'the bundle carries no config');
  return { ok: true, bundle, config: bundle.config };
}

export function checkBundleVersion(bundle: ConfigBundle, applied: bigint): BundleResult | undefined {
  if (bundle.version <= applied) {
    return refuse('replayed', `bundle version ${bundle.version} is not newer than the last applied one (${applied}); an old bundle cannot be applied again`);
  }
  return undefined;
}
