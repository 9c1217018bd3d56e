// A device that attests to the reference controller, for the attestation tests: a software device
// key and certificate registered in the controller's store, EdgeNode certificates it issues (the
// attestation one for a key in swtpm), and each attest/config/ticket request as the device signs
// it, sent through ControllerApi.handle, with the signed response opened as a node would.
import { createHash, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { certId16, certResolver, deviceCertHash, knownControllerCert } from '../../src/control/cert-hash.js';
import { openEnvelope, sealEnvelope } from '../../src/control/envelope.js';
import {
  AttestationTicketRequestSchema,
  AttestationTicketSchema,
  ConfigRequestSchema,
  HashAlgorithm,
  TpmHashAlgo,
  ZAttestQuoteSchema,
  ZAttestReqSchema,
  ZAttestReqType,
  ZAttestResponseSchema,
  ZCertSchema,
  type ZCertType,
  type AttestationTicket,
  type ZAttestQuote,
  type ZAttestResponse,
  type ZCert,
} from '../../src/control/proto/index.js';
import type { P256Signer } from '../../src/control/signer.js';
import type { Tpm } from '../../src/control/tpm/index.js';
import { createDeviceCert, issueEdgeNodeCert } from '../../src/control/x509/device.js';
import { randomSerial } from '../../src/control/x509/sign.js';
import { softwareSigner } from '../../src/control/x509/software-signer.js';
import type { ApiResponse } from '../../src/controller/api.js';
import { CONTROLLER_FILES } from '../../src/controller/controller-dir.js';
import { generateP256KeyPair } from '../../src/crypto/p256.js';
import type { ControllerFixture } from './controller-fixture.js';

const random = (n: number): Uint8Array => randomBytes(n);
export const QUOTE_PCRS = Array.from({ length: 16 }, (_, i) => i);

/** A response whose body, if any, was opened with the controller's signing certificate. */
export interface Opened<T> extends ApiResponse {
  readonly message?: T;
}

export interface AttestingDevice {
  readonly uuid: string;
  readonly certPem: string;
  readonly signer: P256Signer;
  readonly ecdhCertPem: string;
  /** Issues an EdgeNode certificate for `key` under this device's certificate (its own key signs). */
  issue(key: KeyObject, kind: 'ecdh' | 'attestation'): Promise<string>;
  /** ZCert as EVE sends it (certHash = first 16 bytes of SHA-256 over the PEM). */
  zcert(pem: string, type: ZCertType): ZCert;
  attest(request: MessageInitShape<typeof ZAttestReqSchema>): Promise<Opened<ZAttestResponse>>;
  sendCerts(certs: readonly ZCert[]): Promise<Opened<ZAttestResponse>>;
  nonce(): Promise<Uint8Array>;
  quote(quote: ZAttestQuote): Promise<Opened<ZAttestResponse>>;
  config(token?: Uint8Array): Promise<ApiResponse>;
  ticket(token: Uint8Array, eids: readonly string[]): Promise<Opened<AttestationTicket>>;
}

/** A TPM quote over PCRs 0–15 with `nonce`, as EVE's ZAttestQuote (DER signature, SHA-256 values). */
export async function tpmQuote(tpm: Tpm, handle: number, nonce: Uint8Array): Promise<ZAttestQuote> {
  const quote = await tpm.quote(handle, QUOTE_PCRS, nonce);
  return create(ZAttestQuoteSchema, {
    attestData: quote.attest,
    signature: quote.signatureDer,
    pcrValues: [...quote.pcrs].map(([index, value]) => ({ index, hashAlgo: TpmHashAlgo.SHA256, value })),
  });
}

/**
 * Registers a device key and certificate for the pre-registered device `uuid` (as /register would,
 * straight into the store) and returns the device's side of the protocol.
 */
export async function registerAttestingDevice(f: ControllerFixture, uuid: string): Promise<AttestingDevice> {
  const store = f.server.store;
  const pre = store.device(uuid);
  if (!pre) throw new Error(`no pre-registered device ${uuid}`);
  const signer = softwareSigner(generateP256KeyPair(random));
  const certPem = await createDeviceCert(signer, { now: new Date(), serial: randomSerial(random) });
  const cert = new X509Certificate(certPem);
  const outcome = store.register(pre.onboardCertHash, pre.serial, { pem: certPem, hash: deviceCertHash(certPem), notBefore: new Date(cert.validFrom) });
  if (outcome !== 'registered') throw new Error(`register: ${outcome}`);
  const controllerCert = knownControllerCert(readFileSync(join(f.dir, CONTROLLER_FILES.signing)));
  const issue = (key: KeyObject, kind: 'ecdh' | 'attestation'): Promise<string> => issueEdgeNodeCert(signer, certPem, key, kind, { now: new Date(), serial: randomSerial(random) });
  const ecdhCertPem = await issue(softwareSigner(generateP256KeyPair(random)).publicKey, 'ecdh');

  const post = async (action: string, payload: Uint8Array): Promise<ApiResponse> => {
    const body = await sealEnvelope(payload, signer, { certHash: deviceCertHash(certPem), algo: HashAlgorithm.SHA256_32BYTES });
    return f.server.api.handle('POST', `/api/v2/edgedevice/id/${uuid}/${action}`, body);
  };
  const open = (response: ApiResponse): Uint8Array | undefined => {
    if (!response.body) return undefined;
    const opened = openEnvelope(response.body, certResolver([controllerCert]));
    if (!opened.ok) throw opened.error;
    return opened.payload;
  };
  const zcert: AttestingDevice['zcert'] = (pem, type) =>
    create(ZCertSchema, { hashAlgo: HashAlgorithm.SHA256_16BYTES, certHash: certId16(pem), type, cert: new TextEncoder().encode(pem), attributes: { isMutable: false, isTpm: true } });
  const device: AttestingDevice = {
    uuid,
    certPem,
    signer,
    ecdhCertPem,
    issue,
    zcert,
    async attest(request) {
      const response = await post('attest', toBinary(ZAttestReqSchema, create(ZAttestReqSchema, request)));
      const payload = open(response);
      return { ...response, ...(payload && { message: fromBinary(ZAttestResponseSchema, payload) }) };
    },
    sendCerts(certs) {
      return device.attest({ reqType: ZAttestReqType.ATTEST_REQ_CERT, certs: [...certs] });
    },
    async nonce() {
      const nonce = (await device.attest({ reqType: ZAttestReqType.ATTEST_REQ_NONCE })).message?.nonce?.nonce;
      if (!nonce) throw new Error('no nonce');
      return nonce;
    },
    quote(quote) {
      return device.attest({ reqType: ZAttestReqType.ATTEST_REQ_QUOTE, quote });
    },
    config(token) {
      return post('config', toBinary(ConfigRequestSchema, create(ConfigRequestSchema, { configHash: '', ...(token && { integrityToken: token }) })));
    },
    async ticket(token, eids) {
      const response = await post('ext/attestation-ticket', toBinary(AttestationTicketRequestSchema, create(AttestationTicketRequestSchema, { integrityToken: token, eids: [...eids] })));
      const payload = open(response);
      return { ...response, ...(payload && { message: fromBinary(AttestationTicketSchema, payload) }) };
    },
  };
  return device;
}

/** What a PCR holds after extending a fresh (zero) SHA-256 PCR with `digests` in turn. */
export function extendedPcr(...digests: Uint8Array[]): string {
  let value: Uint8Array = new Uint8Array(32);
  for (const digest of digests) value = createHash('sha256').update(value).update(digest).digest();
  return Buffer.from(value).toString('hex');
}
