// The controller's side of EVE attestation (POST /id/<uuid>/attest, eve-api.md §6): certificates,
// nonces, the quote verdict with the integrity token and escrowed keys, and key escrow. It owns
// the device's integrity token: /config and attestation tickets ask it whether a token is current.
// A device in mode `none` (no TPM) gets a token for an empty quote, as Adam gives one; a device in
// mode `tpm` gets one only for a quote verifier.ts accepts, and any refused certificate or quote
// revokes the token it had.
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import {
  AttestStorageKeysResponseCode,
  AttestStorageKeysSchema,
  ZAttestReqSchema,
  ZAttestReqType,
  ZAttestQuoteSchema,
  ZAttestResponseCode,
  ZAttestResponseSchema,
  ZAttestRespType,
  ZCertType,
  type AttestVolumeKey,
  type ZAttestQuote,
  type ZAttestResponse,
  type ZCert,
} from '../control/proto/index.js';
import type { Log as Logger } from '../control/log.js';
import { checkDeviceCerts } from './attestation-certs.js';
import { NonceBook } from './attestation-nonces.js';
import { TokenBook } from './attestation-tokens.js';
import type { ControllerStore, DeviceRecord } from './store.js';
import { judgeQuote } from './verifier.js';

/** A 2xx carries a ZAttestResponse to seal; `reason` explains any refusal, in or out of band. */
export interface AttestOutcome {
  readonly status: number;
  readonly response?: ZAttestResponse;
  readonly reason?: string;
}

export interface AttestationServiceOptions {
  readonly nonceLifetimeMs?: number;
  readonly now?: () => number;
}

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array): MessageShape<D> | undefined {
  try {
    return fromBinary(schema, bytes);
  } catch {
    return undefined;
  }
}

const answer = (response: MessageInitShape<typeof ZAttestResponseSchema>, reason?: string): AttestOutcome => ({
  status: 200,
  response: create(ZAttestResponseSchema, response),
  ...(reason === undefined ? {} : { reason }),
});

export class AttestationService {
  private readonly nonces: NonceBook;
  private readonly tokens = new TokenBook();
  private readonly now: () => number;

  constructor(
    private readonly store: ControllerStore,
    private readonly log: Logger,
    options: AttestationServiceOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.nonces = new NonceBook({ now: this.now, ...(options.nonceLifetimeMs === undefined ? {} : { lifetimeMs: options.nonceLifetimeMs }) });
  }

  /** Whether `token` is the device's current integrity token (earned with its current certificate). */
  tokenIsCurrent(device: DeviceRecord, token: Uint8Array): boolean {
    return this.tokens.isCurrent(device.uuid, device.deviceCertHash, token);
  }

  handle(device: DeviceRecord, payload: Uint8Array): AttestOutcome {
    const request = decode(ZAttestReqSchema, payload);
    if (!request) return { status: 400, reason: 'attest: the payload is not a ZAttestReq' };
    switch (request.reqType) {
      case ZAttestReqType.ATTEST_REQ_CERT:
        return this.certs(device, request.certs);
      case ZAttestReqType.ATTEST_REQ_NONCE:
        return answer({ respType: ZAttestRespType.ATTEST_RESP_NONCE, nonce: { nonce: this.nonces.issue(device.uuid) } });
      case ZAttestReqType.ATTEST_REQ_QUOTE:
        return this.quote(device, request.quote);
      case ZAttestReqType.Z_ATTEST_REQ_TYPE_STORE_KEYS:
        return this.storeKeys(device, request.storageKeys?.integrityToken ?? new Uint8Array(), request.storageKeys?.keys ?? []);
      case ZAttestReqType.ATTEST_REQ_NONE:
      default:
        return { status: 400, reason: `attest: request type ${request.reqType} is not one of CERT (1), NONCE (2), QUOTE (3), STORE_KEYS (4)` };
    }
  }

  /** Revokes on refusal: a device presenting keys its device key did not certify is not trusted. */
  private certs(device: DeviceRecord, certs: readonly ZCert[]): AttestOutcome {
    if (device.deviceCertPem === undefined) return { status: 404, reason: 'attest: the device has no registered certificate' };
    const checked = checkDeviceCerts(device.deviceCertPem, certs, new Date(this.now()));
    if (!checked.ok) {
      this.tokens.revoke(device.uuid);
      return { status: checked.status, reason: `attest: ${checked.reason}` };
    }
    const stored = this.store.attestation.storeCerts(device.uuid, checked.certs);
    if (stored.kind === 'conflict') {
      this.tokens.revoke(device.uuid);
      return { status: 409, reason: `attest: a different ${ZCertType[stored.type] ?? stored.type} certificate is already stored and certificates are immutable (clear the device to re-onboard)` };
    }
    if (stored.added > 0) this.log.log('info', 'device attestation certificates stored', { device: device.uuid, types: checked.certs.map((c) => c.type) });
    return answer({ respType: ZAttestRespType.ATTEST_RESP_CERT });
  }

  private quote(device: DeviceRecord, quote: ZAttestQuote | undefined): AttestOutcome {
    const attestation = this.store.attestation.attestation(device.uuid);
    if (attestation.mode === 'none') {
      // Nothing to verify without a TPM (EVE's empty quote); escrowed keys stay with a verified quote.
      this.log.log('info', 'device attested without a TPM (mode none)', { device: device.uuid });
      return this.verdict(ZAttestResponseCode.SUCCESS, this.tokens.issue(device.uuid, device.deviceCertHash ?? new Uint8Array()), []);
    }
    const verdict = judgeQuote(
      {
        device: device.uuid,
        quote: quote ?? create(ZAttestQuoteSchema),
        attestationCertPem: this.store.attestation.cert(device.uuid, ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING),
        attestation,
      },
      this.nonces,
    );
    if (!verdict.ok) {
      this.tokens.revoke(device.uuid);
      return this.verdict(verdict.code, undefined, [], `attest: ${ZAttestResponseCode[verdict.code]}: ${verdict.reason}; the integrity token is revoked`);
    }
    if (verdict.pin && this.store.attestation.pin(device.uuid, verdict.pcrs)) this.log.log('info', 'device PCRs pinned (learn mode)', { device: device.uuid });
    this.log.log('info', 'device attested', { device: device.uuid });
    return this.verdict(ZAttestResponseCode.SUCCESS, this.tokens.issue(device.uuid, device.deviceCertHash ?? new Uint8Array()), this.escrowed(device.uuid));
  }

  private verdict(code: ZAttestResponseCode, token: Uint8Array | undefined, keys: AttestVolumeKey[], reason?: string): AttestOutcome {
    return answer({ respType: ZAttestRespType.ATTEST_RESP_QUOTE_RESP, quoteResp: { response: code, ...(token === undefined ? {} : { integrityToken: token }), keys } }, reason);
  }

  private escrowed(uuid: string): AttestVolumeKey[] {
    const bytes = this.store.attestation.escrowedKeys(uuid);
    return bytes === undefined ? [] : fromBinary(AttestStorageKeysSchema, bytes).keys;
  }

  /** The keys are opaque (EVE: a marshalled AttestVolumeKeyData each) and replace earlier ones. */
  private storeKeys(device: DeviceRecord, token: Uint8Array, keys: readonly AttestVolumeKey[]): AttestOutcome {
    const respType = ZAttestRespType.Z_ATTEST_RESP_TYPE_STORE_KEYS;
    if (!this.tokenIsCurrent(device, token)) {
      return answer({ respType, storageKeysResp: { response: AttestStorageKeysResponseCode.ITOKEN_MISMATCH } }, 'attest: STORE_KEYS with an integrity token that is not the current one');
    }
    this.store.attestation.setEscrowedKeys(device.uuid, toBinary(AttestStorageKeysSchema, create(AttestStorageKeysSchema, { keys: [...keys] })));
    this.log.log('info', 'device keys escrowed', { device: device.uuid, keys: keys.length });
    return answer({ respType, storageKeysResp: { response: AttestStorageKeysResponseCode.SUCCESS } });
  }
}
