// The reference controller's EVE API v2 endpoints (eve-api.md §1), as a function from a request
// (method, path, body) to a response (status, body) — no HTTP here, so tests drive it directly
// and the server is a thin adapter. Every response body is an AuthContainer signed with the
// controller's signing key; every device request is checked against the certificate the device
// registered, and every refusal names its reason. Attestation (/attest, the integrity token that
// /config and attestation tickets require of a `tpm` device) is attestation-service.ts's.
import { createHash, X509Certificate } from 'node:crypto';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { certId16, certResolver, controllerCertHash, knownDeviceCert } from '../control/cert-hash.js';
import { openEnvelope, sealEnvelope, unwrapUnverified, type EnvelopeErrorReason } from '../control/envelope.js';
import { pemFromBase64 } from '../control/pem-base64.js';
import {
  AttestationTicketRequestSchema,
  AttestationTicketSchema,
  ConfigRequestSchema,
  ConfigResponseSchema,
  HashAlgorithm,
  UuidResponseSchema,
  ZCertType,
  ZControllerCertSchema,
  ZInfoMsgSchema,
  ZAttestResponseSchema,
  ZRegisterMsgSchema,
} from '../control/proto/index.js';
import type { P256Signer } from '../control/signer.js';
import type { Log as Logger } from '../control/log.js';
import { AttestationService } from './attestation-service.js';
import { deviceConfig } from './device-config.js';
import type { ControllerStore, DeviceRecord } from './store.js';
import { buildTicket, checkTicketLifetime, DEFAULT_TICKET_LIFETIME_SECONDS } from './ticket-issuer.js';

export interface ControllerSigningKeys {
  /** The signing certificate exactly as served in /certs (its PEM bytes are what devices hash). */
  readonly signingCertPem: string;
  readonly signer: P256Signer;
  readonly ecdhCertPem: string;
  readonly intermediatePems: readonly string[];
}

export interface ControllerApiOptions {
  /** How long an attestation ticket is valid, in seconds (default 600). */
  readonly ticketLifetimeSeconds?: number;
  /** How long a quote nonce stays usable (default 2 minutes). */
  readonly nonceLifetimeMs?: number;
  /** The clock for nonces, certificate validity and tickets (tests move it). */
  readonly now?: () => number;
}

export interface ApiResponse {
  readonly status: number;
  readonly body?: Uint8Array;
  /** Why a request was refused: logged, and sent as the text body of an error response. */
  readonly reason?: string;
}

const PREFIX = '/api/v2/edgedevice/';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const sha256 = (data: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(data).digest());

/** An envelope problem as an HTTP status: unknown sender 404 (EVE re-asks /uuid), bad credentials 401. */
const ENVELOPE_STATUS: Readonly<Record<EnvelopeErrorReason, number>> = {
  malformed: 400,
  'no-payload': 400,
  'hash-algo': 401,
  'hash-size': 401,
  'unknown-cert': 404,
  'bad-signature': 401,
};

function refuse(status: number, reason: string): ApiResponse {
  return { status, reason };
}

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array): MessageShape<D> | undefined {
  try {
    return fromBinary(schema, bytes);
  } catch {
    return undefined;
  }
}

export class ControllerApi {
  private readonly certsResponse: Promise<Uint8Array>;
  /** Changes with the certificate set; part of every config, so nodes notice a rotation. */
  readonly certsHash: string;
  readonly attestation: AttestationService;
  private readonly ticketLifetimeSeconds: number;
  private readonly now: () => number;

  constructor(
    private readonly store: ControllerStore,
    private readonly keys: ControllerSigningKeys,
    private readonly log: Logger,
    options: ControllerApiOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.ticketLifetimeSeconds = checkTicketLifetime(options.ticketLifetimeSeconds ?? DEFAULT_TICKET_LIFETIME_SECONDS);
    this.attestation = new AttestationService(store, log, { now: this.now, ...(options.nonceLifetimeMs === undefined ? {} : { nonceLifetimeMs: options.nonceLifetimeMs }) });
    const certs = create(ZControllerCertSchema, {
      certs: [
        ...[{ pem: keys.signingCertPem, type: ZCertType.CERT_TYPE_CONTROLLER_SIGNING }, { pem: keys.ecdhCertPem, type: ZCertType.CERT_TYPE_CONTROLLER_ECDH_EXCHANGE }].map(({ pem, type }) => ({
          hashAlgo: HashAlgorithm.SHA256_16BYTES,
          certHash: certId16(pem),
          type,
          cert: new TextEncoder().encode(pem),
        })),
        ...keys.intermediatePems.map((pem) => ({ hashAlgo: HashAlgorithm.SHA256_16BYTES, certHash: certId16(pem), type: ZCertType.CERT_TYPE_CONTROLLER_INTERMEDIATE, cert: new TextEncoder().encode(pem) })),
      ],
    });
    const bytes = toBinary(ZControllerCertSchema, certs);
    this.certsHash = Buffer.from(sha256(bytes)).toString('base64url');
    this.certsResponse = this.seal(bytes);
  }

  /** Signs a response payload as the controller: sender hash over the signing cert's PEM bytes. */
  seal(payload: Uint8Array): Promise<Uint8Array> {
    return sealEnvelope(payload, this.keys.signer, { certHash: controllerCertHash(this.keys.signingCertPem), algo: HashAlgorithm.SHA256_32BYTES });
  }

  async handle(method: string, path: string, body: Uint8Array): Promise<ApiResponse> {
    if (!path.startsWith(PREFIX)) return refuse(404, `not an EVE API v2 path: ${path}`);
    const route = path.slice(PREFIX.length).split('/');
    const [first, uuid, action] = route;
    if (route.length === 1 && method === 'GET') {
      if (first === 'ping') return { status: 200 };
      if (first === 'certs') return { status: 200, body: await this.certsResponse };
    }
    if (method !== 'POST') return refuse(405, `${method} ${path}: no such endpoint`);
    if (route.length === 1 && first === 'register') return this.register(body);
    if (route.length === 1 && first === 'uuid') return this.uuid(body);
    const ticketPath = route.length === 4 && action === 'ext' && route[3] === 'attestation-ticket';
    if ((route.length === 3 || ticketPath) && first === 'id' && uuid !== undefined && UUID.test(uuid)) {
      const sender = this.sender(body, uuid);
      if ('status' in sender) return sender;
      if (ticketPath) return this.ticket(sender.device, sender.payload);
      if (action === 'config') return this.config(sender.device, sender.payload);
      if (action === 'info') return this.info(sender.device, sender.payload);
      if (action === 'attest') return this.attest(sender.device, sender.payload);
    }
    return refuse(404, `${method} ${path}: no such endpoint`);
  }

  /** /register: signed with the onboarding key, whose certificate rides along in the envelope. */
  private register(body: Uint8Array): ApiResponse {
    const unwrapped = unwrapUnverified(body);
    if (!unwrapped.ok) return refuse(ENVELOPE_STATUS[unwrapped.error.reason], `register: ${unwrapped.error.message}`);
    const onboardPem = unwrapped.senderCert && pemFromBase64(unwrapped.senderCert);
    if (!onboardPem) return refuse(400, 'register: no onboarding certificate (senderCert) in the envelope');
    let onboarding;
    try {
      onboarding = knownDeviceCert(onboardPem);
    } catch {
      return refuse(400, 'register: senderCert is not a PEM certificate');
    }
    const opened = openEnvelope(body, certResolver([onboarding]));
    if (!opened.ok) return refuse(ENVELOPE_STATUS[opened.error.reason] === 404 ? 401 : ENVELOPE_STATUS[opened.error.reason], `register: ${opened.error.message}`);
    const message = decode(ZRegisterMsgSchema, opened.payload);
    const devicePem = message && pemFromBase64(message.pemCert);
    if (!message || !devicePem) return refuse(400, 'register: the payload is not a ZRegisterMsg with a base64 PEM device certificate');
    let deviceCert: X509Certificate;
    try {
      deviceCert = new X509Certificate(devicePem);
    } catch {
      return refuse(400, 'register: pemCert is not a certificate');
    }
    const devicePemText = Buffer.from(devicePem).toString('utf8');
    const device = { pem: devicePemText, hash: sha256(deviceCert.raw), notBefore: new Date(deviceCert.validFrom) };
    // EVE's controllers try the SMBIOS serial, then the soft serial.
    let outcome = this.store.register(onboarding.hash, message.serial, device);
    if (outcome === 'unknown' && message.softSerial !== '') outcome = this.store.register(onboarding.hash, message.softSerial, device);
    switch (outcome) {
      case 'registered':
        this.log.log('info', 'device registered', { serial: message.serial });
        return { status: 201 };
      case 'repeated':
        return { status: 200 };
      case 'conflict':
        return refuse(409, `register: serial ${message.serial} already has another device certificate (clear it with 'lispnode controller device clear' to re-onboard)`);
      case 'rollback':
        return refuse(409, `register: serial ${message.serial}: this device certificate was retired at re-onboarding, or is older than the retired one`);
      case 'unknown':
        return refuse(403, `register: no pre-registered device with this onboarding certificate and serial ${message.serial}`);
    }
  }

  /** The device that signed a device request; it must be the one named in the URL. */
  private sender(body: Uint8Array, uuid?: string): { device: DeviceRecord; payload: Uint8Array } | ApiResponse {
    const opened = openEnvelope(body, (hash, algo) => {
      if (algo !== HashAlgorithm.SHA256_32BYTES) return undefined; // devices send the full hash
      const device = this.store.deviceByCertHash(hash);
      return device?.deviceCertPem === undefined ? undefined : knownDeviceCert(device.deviceCertPem).key;
    });
    if (!opened.ok) return refuse(ENVELOPE_STATUS[opened.error.reason], opened.error.message);
    const device = this.store.deviceByCertHash(opened.certHash);
    if (!device) return refuse(404, 'unknown-cert: no registered device has this certificate');
    if (uuid !== undefined && device.uuid !== uuid) return refuse(403, `the signer is device ${device.uuid}, not ${uuid}`);
    return { device, payload: opened.payload };
  }

  private async uuid(body: Uint8Array): Promise<ApiResponse> {
    const sender = this.sender(body);
    if ('status' in sender) return sender;
    const response = create(UuidResponseSchema, { uuid: sender.device.uuid, manufacturer: 'lispnode', productName: 'lispnode' });
    return { status: 200, body: await this.seal(toBinary(UuidResponseSchema, response)) };
  }

  private async config(device: DeviceRecord, payload: Uint8Array): Promise<ApiResponse> {
    const request = decode(ConfigRequestSchema, payload);
    if (!request) return refuse(400, 'config: the payload is not a ConfigRequest');
    const unattested = this.unattested(device, request.integrityToken);
    if (unattested !== undefined) return refuse(403, `config: ${unattested}`);
    const response = deviceConfig(device, this.certsHash);
    if (request.configHash === response.configHash) return { status: 304 };
    return { status: 200, body: await this.seal(toBinary(ConfigResponseSchema, response)) };
  }

  /**
   * Why a `tpm` device's request is not covered by a current attestation (EVE: 403, which sends
   * the device to attest again); undefined when it is, and always for a `none` device.
   */
  private unattested(device: DeviceRecord, token: Uint8Array): string | undefined {
    if (this.store.attestation.attestation(device.uuid).mode === 'none') return undefined;
    if (token.length === 0) return 'no integrity token: the device must attest first';
    return this.attestation.tokenIsCurrent(device, token) ? undefined : 'the integrity token is not current (never issued, superseded or revoked): the device must attest again';
  }

  private async attest(device: DeviceRecord, payload: Uint8Array): Promise<ApiResponse> {
    const outcome = this.attestation.handle(device, payload);
    const reason = outcome.reason === undefined ? {} : { reason: outcome.reason };
    if (!outcome.response) return { status: outcome.status, ...reason };
    return { status: outcome.status, body: await this.seal(toBinary(ZAttestResponseSchema, outcome.response)), ...reason };
  }

  /**
   * An attestation ticket (lispnode's extension): the signed envelope around it is the whole
   * response, so the node verifies it like any response and passes it on unchanged.
   */
  private async ticket(device: DeviceRecord, payload: Uint8Array): Promise<ApiResponse> {
    const request = decode(AttestationTicketRequestSchema, payload);
    if (!request) return refuse(400, 'attestation ticket: the payload is not an AttestationTicketRequest');
    if (this.store.attestation.attestation(device.uuid).mode !== 'tpm') return refuse(403, 'attestation ticket: the device is not attested with a TPM (mode none)');
    const unattested = this.unattested(device, request.integrityToken);
    if (unattested !== undefined) return refuse(403, `attestation ticket: ${unattested}`);
    const decision = buildTicket(device, request.eids, this.now(), this.ticketLifetimeSeconds);
    if (!decision.ok) return refuse(400, `attestation ticket: ${decision.reason}`);
    this.log.log('info', 'attestation ticket issued', { device: device.uuid, eids: decision.ticket.eidPrefixes, seconds: this.ticketLifetimeSeconds });
    return { status: 200, body: await this.seal(toBinary(AttestationTicketSchema, decision.ticket)) };
  }

  private info(device: DeviceRecord, payload: Uint8Array): ApiResponse {
    const info = decode(ZInfoMsgSchema, payload);
    if (!info) return refuse(400, 'info: the payload is not a ZInfoMsg');
    this.log.log('info', 'device info', { device: device.uuid, type: info.ztype });
    return { status: 201 };
  }
}
