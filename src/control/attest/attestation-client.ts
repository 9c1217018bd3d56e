// Drives the attestation state machine against the controller and the TPM: sends the device's
// ECDH and attestation certificates (EVE's ATTEST_REQ_CERT), then nonce → TPM quote over PCRs
// 0–15 → verdict → escrow of the vault key, performing each action the machine asks for and
// feeding the outcome back. A node without a TPM sends an empty quote, as EVE does.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { certId16 } from '../cert-hash.js';
import type { ControllerClient, RequestSigner } from '../controller-client.js';
import {
  AttestStorageKeysResponseCode,
  AttestVolumeKeySchema,
  HashAlgorithm,
  TpmHashAlgo,
  ZAttestQuoteSchema,
  ZAttestReqSchema,
  ZAttestReqType,
  ZAttestResponseCode,
  ZAttestRespType,
  ZCertType,
  type AttestVolumeKey,
  type ZAttestQuote,
  type ZAttestReq,
} from '../proto/index.js';
import { ATTESTATION_KEY_HANDLE, type Tpm } from '../tpm/index.js';
import { AttestationFsm, type AttestAction, type AttestEvent, type QuoteVerdict } from './attestation-fsm.js';
import type { Log as Logger } from '../log.js';

/** PCRs 0–15, EVE's quote selection. */
export const QUOTED_PCRS = Array.from({ length: 16 }, (_, i) => i);

/** The vault's side of attestation: what to escrow, and what to do with keys the controller returns. */
export interface EscrowHooks {
  /** The keys to escrow now (empty: nothing yet, or no TPM). */
  escrowKeys(): Promise<readonly AttestVolumeKey[]>;
  /** Keys the controller returned after a successful attestation (empty on first contact). */
  returned(keys: readonly AttestVolumeKey[]): Promise<void>;
}

export interface AttestationClientOptions {
  readonly client: ControllerClient;
  readonly uuid: string;
  /** The device signer, fresh each time (it fails closed when the trust files change). */
  readonly device: () => Promise<RequestSigner>;
  readonly certs: { readonly ecdhPem: string; readonly attestationPem: string };
  /** The TPM, or undefined on a node without one (empty quotes, no escrow). */
  readonly tpm: Tpm | undefined;
  readonly escrow: EscrowHooks;
  readonly log: Logger;
  /** Called after each success (e.g. to renew the attestation ticket). */
  readonly onAttested?: (token: Uint8Array) => void;
}

const refusedCode = (code: ZAttestResponseCode): Extract<QuoteVerdict, { kind: 'refused' }>['code'] =>
  code === ZAttestResponseCode.NONCE_MISMATCH ? 'nonce-mismatch' : code === ZAttestResponseCode.NO_CERT_FOUND ? 'no-cert' : code === ZAttestResponseCode.QUOTE_FAILED ? 'quote-failed' : 'invalid';

export class AttestationClient {
  private readonly fsm = new AttestationFsm();
  private certsSent = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: AttestationClientOptions) {}

  get integrityToken(): Uint8Array | undefined {
    return this.fsm.integrityToken;
  }

  get state(): AttestationFsm['state'] {
    return this.fsm.state;
  }

  start(): void {
    this.feed({ type: 'start' });
  }

  /** A 403 from /config: the controller wants a fresh attestation. */
  restart(why: string): void {
    this.feed({ type: 'restart', why });
  }

  /** Resolves once every action in flight has been performed (for tests and shutdown). */
  settled(): Promise<void> {
    return this.queue;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private feed(event: AttestEvent): void {
    if (this.stopped) return;
    const actions = this.fsm.handle(event, Date.now());
    this.queue = this.queue.then(() => this.perform(actions));
    clearTimeout(this.timer);
    const wake = this.fsm.wakeAt;
    if (wake !== undefined) this.timer = setTimeout(() => this.feed({ type: 'tick' }), Math.max(0, wake - Date.now()));
  }

  private async perform(actions: readonly AttestAction[]): Promise<void> {
    for (const action of actions) {
      if (this.stopped) return;
      const next = await this.act(action);
      if (next) this.feed(next);
    }
  }

  private async send(request: ZAttestReq): Promise<ReturnType<ControllerClient['attest']>> {
    return this.options.client.attest(await this.options.device(), this.options.uuid, request);
  }

  /** Performs one action; returns the event that reports how it went. */
  private async act(action: AttestAction): Promise<AttestEvent | undefined> {
    const { log } = this.options;
    try {
      switch (action.type) {
        case 'log':
          log.log(action.level, action.message, {});
          return undefined;
        case 'request-nonce': {
          await this.sendCerts();
          const response = await this.send(create(ZAttestReqSchema, { reqType: ZAttestReqType.ATTEST_REQ_NONCE }));
          const nonce = response.nonce?.nonce;
          if (response.respType !== ZAttestRespType.ATTEST_RESP_NONCE || !nonce || nonce.length < 12 || nonce.length > 32) {
            return { type: 'failed', step: 'nonce', detail: 'the controller sent no usable nonce (12..32 bytes)' };
          }
          return { type: 'nonce', nonce };
        }
        case 'make-quote':
          return { type: 'quote', quote: await this.quote(action.nonce) };
        case 'send-quote': {
          const response = await this.send(create(ZAttestReqSchema, { reqType: ZAttestReqType.ATTEST_REQ_QUOTE, quote: action.quote as ZAttestQuote }));
          const verdict = response.quoteResp;
          if (response.respType !== ZAttestRespType.ATTEST_RESP_QUOTE_RESP || !verdict) return { type: 'failed', step: 'verdict', detail: 'no quote response' };
          if (verdict.response !== ZAttestResponseCode.SUCCESS || verdict.integrityToken.length === 0) {
            return { type: 'verdict', verdict: { kind: 'refused', code: refusedCode(verdict.response), detail: `response code ${verdict.response}` } };
          }
          return { type: 'verdict', verdict: { kind: 'success', token: verdict.integrityToken, keys: verdict.keys.map((k) => toBinary(AttestVolumeKeySchema, k)) } };
        }
        case 'deliver-keys':
          await this.options.escrow.returned(action.keys.map((k) => fromBinary(AttestVolumeKeySchema, k)));
          return undefined;
        case 'escrow': {
          const keys = await this.options.escrow.escrowKeys();
          if (keys.length > 0) {
            const response = await this.send(create(ZAttestReqSchema, { reqType: ZAttestReqType.Z_ATTEST_REQ_TYPE_STORE_KEYS, storageKeys: { integrityToken: action.token, keys: [...keys] } }));
            const code = response.storageKeysResp?.response;
            if (code === AttestStorageKeysResponseCode.ITOKEN_MISMATCH) return { type: 'escrow-refused', detail: 'integrity token mismatch' };
            if (code !== AttestStorageKeysResponseCode.SUCCESS) return { type: 'failed', step: 'escrow', detail: `store-keys response ${code ?? 'missing'}` };
          }
          this.options.onAttested?.(action.token);
          return { type: 'escrowed' };
        }
      }
    } catch (error) {
      const step = action.type === 'request-nonce' ? 'nonce' : action.type === 'make-quote' ? 'quote' : action.type === 'send-quote' ? 'verdict' : 'escrow';
      return { type: 'failed', step, detail: (error as Error).message };
    }
  }

  /** ATTEST_REQ_CERT once per run: the ECDH and attestation certificates, as EVE sends them. */
  private async sendCerts(): Promise<void> {
    if (this.certsSent) return;
    const cert = (pem: string, type: ZCertType) => ({ hashAlgo: HashAlgorithm.SHA256_16BYTES, certHash: certId16(pem), type, cert: new TextEncoder().encode(pem), attributes: { isMutable: false, isTpm: this.options.tpm !== undefined } });
    await this.send(
      create(ZAttestReqSchema, {
        reqType: ZAttestReqType.ATTEST_REQ_CERT,
        certs: [cert(this.options.certs.ecdhPem, ZCertType.CERT_TYPE_DEVICE_ECDH_EXCHANGE), cert(this.options.certs.attestationPem, ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING)],
      }),
    );
    this.certsSent = true;
  }

  /** A TPM quote over PCRs 0–15 with the nonce; an empty one without a TPM (EVE). */
  private async quote(nonce: Uint8Array): Promise<ZAttestQuote> {
    const tpm = this.options.tpm;
    if (!tpm) return create(ZAttestQuoteSchema);
    const quote = await tpm.quote(ATTESTATION_KEY_HANDLE, QUOTED_PCRS, nonce);
    return create(ZAttestQuoteSchema, {
      attestData: quote.attest,
      signature: quote.signatureDer,
      pcrValues: [...quote.pcrs].map(([index, value]) => ({ index, hashAlgo: TpmHashAlgo.SHA256, value })),
    });
  }
}
