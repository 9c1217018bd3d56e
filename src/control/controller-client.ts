// The node's side of the EVE API v2 connection to its one controller. TLS trusts only the
// pinned root CA and checks the pinned server name; every response body is an envelope whose
// signer must be the signing certificate from the last /certs set that chained to that root CA
// (and was not rolled back). The trust files are re-read and checked against the identity's
// binding before every call, so a changed file stops the node talking at once (fail closed).
import { request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { deviceCertHash, knownControllerCert, certResolver } from './cert-hash.js';
import { openEnvelope, sealEnvelope, unwrapUnverified } from './envelope.js';
import { base64Pem } from './pem-base64.js';
import {
  ConfigRequestSchema,
  ConfigResponseSchema,
  HashAlgorithm,
  UuidRequestSchema,
  UuidResponseSchema,
  ZAttestReqSchema,
  ZAttestResponseSchema,
  ZControllerCertSchema,
  ZRegisterMsgSchema,
  AttestationTicketRequestSchema,
  type ConfigResponse,
  type ZAttestReq,
  type ZAttestResponse,
} from './proto/index.js';
import type { P256Signer } from './signer.js';
import { verifyControllerCertSet, type VerifiedCert } from './x509/verify.js';
import type { ControllerTrust } from './trust.js';

/** Why a controller call failed; `reason` says which check, the message says what to do. */
export type ControllerErrorReason =
  | 'network' // no connection, TLS failure (wrong CA or name), timeout
  | 'status' // an HTTP status the call does not expect
  | 'certs' // the /certs set is not acceptable (chain, rollback, shape)
  | 'envelope' // a response envelope failed its checks
  | 'payload'; // the verified payload is not the expected message

export class ControllerError extends Error {
  override readonly name = 'ControllerError';
  constructor(
    readonly reason: ControllerErrorReason,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A key and certificate that sign requests: the onboarding pair for /register, the device's for the rest. */
export interface RequestSigner {
  readonly signer: P256Signer;
  readonly certPem: string;
}

export interface Response {
  readonly status: number;
  readonly body: Uint8Array;
}

/** Saved across calls and restarts: the last accepted signing certificate, for anti-rollback. */
export interface CertsCheckpoint {
  load(): { readonly signingNotBefore: Date } | undefined;
  save(signingNotBefore: Date): void;
}

const TIMEOUT_MS = 15_000;
const PROTO = 'application/x-proto-binary';

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    throw new ControllerError('payload', `${what}: not a valid message (${(error as Error).message})`);
  }
}

export class ControllerClient {
  private signing: VerifiedCert | undefined;

  constructor(
    private readonly trust: () => ControllerTrust,
    private readonly checkpoint: CertsCheckpoint,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** One HTTPS exchange: GET without a body, POST with one (EVE's rule). */
  async exchange(path: string, body?: Uint8Array, extraHeaders: Readonly<Record<string, string>> = {}): Promise<Response> {
    const trust = this.trust();
    const url = new URL(`/api/v2/edgedevice/${path}`, trust.url);
    const headers: Record<string, string | number> = { 'X-Request-Id': randomUUID(), ...extraHeaders };
    if (body) Object.assign(headers, { 'Content-Type': PROTO, 'Content-Length': body.length });
    const options = { method: body ? 'POST' : 'GET', headers, timeout: TIMEOUT_MS };
    return new Promise<Response>((resolve, reject) => {
      const done = (response: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on('error', (e) => reject(new ControllerError('network', `${url.href}: ${e.message}`)));
      };
      const req =
        url.protocol === 'https:'
          ? httpsRequest(url, { ...options, ca: trust.rootCaPem, minVersion: 'TLSv1.2', ...(isIP(url.hostname) === 0 && { servername: url.hostname }) }, done)
          : httpRequest(url, options, done);
      req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000} s`)));
      req.on('error', (e) => reject(new ControllerError('network', `${url.href}: ${e.message}`)));
      req.end(body);
    });
  }

  /** GET /certs: the set must chain to the pinned root CA and must not roll the signing cert back. */
  async fetchCerts(): Promise<VerifiedCert> {
    const response = await this.exchange('certs');
    if (response.status !== 200) throw new ControllerError('status', `/certs answered ${response.status}`, response.status);
    const unwrapped = unwrapUnverified(response.body);
    if (!unwrapped.ok) throw new ControllerError('envelope', `/certs: ${unwrapped.error.message}`);
    const set = decode(ZControllerCertSchema, unwrapped.payload, '/certs');
    const verdict = verifyControllerCertSet(
      set.certs.map((c) => ({ type: c.type, pem: c.cert })),
      this.trust().rootCaPem,
      this.now(),
      this.checkpoint.load(),
    );
    if (!verdict.ok) throw new ControllerError('certs', `/certs refused (${verdict.error.reason}): ${verdict.error.message}`);
    this.signing = verdict.signing;
    this.checkpoint.save(verdict.signing.notBefore);
    return verdict.signing;
  }

  /** A response envelope's payload, verified; an unknown signer hash re-fetches /certs once (EVE). */
  private async verified(body: Uint8Array, what: string): Promise<Uint8Array> {
    for (let attempt = 0; ; attempt++) {
      const signing = this.signing ?? (await this.fetchCerts());
      const opened = openEnvelope(body, certResolver([knownControllerCert(signing.pem)]));
      if (opened.ok) return opened.payload;
      if (opened.error.reason !== 'unknown-cert' || attempt > 0) throw new ControllerError('envelope', `${what}: ${opened.error.message}`);
      this.signing = undefined;
    }
  }

  private async signedPost(path: string, payload: Uint8Array, by: RequestSigner, register = false): Promise<Response> {
    const sender = register
      ? { certHash: deviceCertHash(by.certPem), algo: HashAlgorithm.SHA256_32BYTES, senderCert: base64Pem(by.certPem) }
      : { certHash: deviceCertHash(by.certPem), algo: HashAlgorithm.SHA256_32BYTES };
    return this.exchange(path, await sealEnvelope(payload, by.signer, sender));
  }

  /** POST /register, signed with the onboarding key: 201 new, 200 repeated; 403, 409 as EVE. */
  async register(onboarding: RequestSigner, deviceCertPem: string, serial: string, softSerial: string): Promise<number> {
    const message = create(ZRegisterMsgSchema, { pemCert: base64Pem(deviceCertPem), serial, softSerial });
    const response = await this.signedPost('register', toBinary(ZRegisterMsgSchema, message), onboarding, true);
    if (response.status === 200 || response.status === 201) return response.status;
    throw new ControllerError('status', `/register answered ${response.status}: ${Buffer.from(response.body).toString('utf8') || 'no reason given'}`, response.status);
  }

  /** POST /uuid: the device's UUID, in a signed response. */
  async uuid(device: RequestSigner): Promise<string> {
    const response = await this.signedPost('uuid', toBinary(UuidRequestSchema, create(UuidRequestSchema)), device);
    if (response.status !== 200) throw new ControllerError('status', `/uuid answered ${response.status}: ${Buffer.from(response.body).toString('utf8') || 'no reason given'}`, response.status);
    const uuid = decode(UuidResponseSchema, await this.verified(response.body, '/uuid'), '/uuid').uuid;
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) throw new ControllerError('payload', `/uuid: '${uuid}' is not a lowercase UUID`);
    return uuid;
  }

  /** POST /id/<uuid>/config: undefined when unchanged (304). */
  async config(device: RequestSigner, uuid: string, configHash: string, integrityToken?: Uint8Array): Promise<ConfigResponse | undefined> {
    const request = create(ConfigRequestSchema, { configHash, ...(integrityToken && { integrityToken }) });
    const response = await this.signedPost(`id/${uuid}/config`, toBinary(ConfigRequestSchema, request), device);
    if (response.status === 304) return undefined;
    if (response.status !== 200) throw new ControllerError('status', `/config answered ${response.status}: ${Buffer.from(response.body).toString('utf8') || 'no reason given'}`, response.status);
    const config = decode(ConfigResponseSchema, await this.verified(response.body, '/config'), '/config');
    if (config.config?.id?.uuid !== uuid) throw new ControllerError('payload', `/config: the config is for device ${config.config?.id?.uuid ?? '(none)'}, not ${uuid}`);
    return config;
  }

  /** POST /id/<uuid>/attest: one step of the attestation exchange, the response verified. */
  async attest(device: RequestSigner, uuid: string, request: ZAttestReq): Promise<ZAttestResponse> {
    const response = await this.signedPost(`id/${uuid}/attest`, toBinary(ZAttestReqSchema, request), device);
    if (response.status < 200 || response.status > 299) {
      throw new ControllerError('status', `/attest answered ${response.status}: ${Buffer.from(response.body).toString('utf8') || 'no reason given'}`, response.status);
    }
    return decode(ZAttestResponseSchema, await this.verified(response.body, '/attest'), '/attest');
  }

  /**
   * POST /id/<uuid>/ext/attestation-ticket (lispnode's extension): the signed ticket for these
   * crypto-EIDs, as the controller's envelope bytes — verified here, then carried unchanged to
   * the map-servers.
   */
  async attestationTicket(device: RequestSigner, uuid: string, integrityToken: Uint8Array, eids: readonly string[]): Promise<Uint8Array> {
    const request = create(AttestationTicketRequestSchema, { integrityToken, eids: [...eids] });
    const response = await this.signedPost(`id/${uuid}/ext/attestation-ticket`, toBinary(AttestationTicketRequestSchema, request), device);
    if (response.status !== 200) {
      throw new ControllerError('status', `attestation ticket: answered ${response.status}: ${Buffer.from(response.body).toString('utf8') || 'no reason given'}`, response.status);
    }
    await this.verified(response.body, 'attestation ticket');
    return response.body;
  }
}
