// The verdict on a device's quote (ATTEST_REQ_QUOTE, eve-security.md §4 step 4), in EVE's codes:
// the quote must carry a nonce this controller issued to this device (unused, unexpired: it is
// used up here whatever follows) — else NONCE_MISMATCH; the controller must hold the device's
// attestation certificate — else NO_CERT_FOUND; that certificate's key must have signed a quote
// of PCRs 0–15 whose digest the sent PCR values reproduce, and those values must meet the
// device's policy — else QUOTE_FAILED. Every refusal says why; the caller logs it.
import { X509Certificate } from 'node:crypto';
import { TpmHashAlgo, ZAttestResponseCode, type ZAttestQuote } from '../control/proto/index.js';
import { parseQuoteAttest, verifyQuote, type QuoteAttest } from '../control/tpm/index.js';
import type { NonceBook, NonceRefusal } from './attestation-nonces.js';
import { differingPcrs, QUOTED_PCRS, type PcrValues } from './attestation-policy.js';
import type { DeviceAttestation } from './attestation-store.js';

export interface QuoteEvidence {
  readonly device: string;
  readonly quote: ZAttestQuote;
  /** The stored CERT_TYPE_DEVICE_RESTRICTED_SIGNING certificate, if the device sent one. */
  readonly attestationCertPem: string | undefined;
  readonly attestation: DeviceAttestation;
}

export type QuoteVerdict =
  /** `pcrs`: the quoted values; `pin`: learn mode's first success, to be pinned. */
  | { readonly ok: true; readonly pcrs: PcrValues; readonly pin: boolean }
  | { readonly ok: false; readonly code: ZAttestResponseCode; readonly reason: string };

const NONCE_REASON: Readonly<Record<NonceRefusal, string>> = {
  unknown: 'the quote carries a nonce this controller never issued, or one already used',
  'other-device': 'the quote carries a nonce issued to another device',
  expired: 'the quote carries an expired nonce',
};

const failed = (code: ZAttestResponseCode, reason: string): QuoteVerdict => ({ ok: false, code, reason });
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** The SHA-256 values of PCRs 0–15 from pcr_values (others travel unsigned and are ignored). */
function quotedValues(quote: ZAttestQuote): Map<number, Uint8Array> | string {
  const values = new Map<number, Uint8Array>();
  for (const pcr of quote.pcrValues) {
    if (!QUOTED_PCRS.includes(pcr.index) || pcr.hashAlgo !== TpmHashAlgo.SHA256) continue;
    if (values.has(pcr.index)) return `pcr_values holds PCR ${pcr.index} twice`;
    if (pcr.value.length !== 32) return `pcr_values: PCR ${pcr.index} is ${pcr.value.length} bytes, not a SHA-256 value`;
    values.set(pcr.index, pcr.value);
  }
  const missing = QUOTED_PCRS.filter((index) => !values.has(index));
  return missing.length === 0 ? values : `pcr_values lacks the SHA-256 value of PCR ${missing.join(', ')}`;
}

export function judgeQuote(evidence: QuoteEvidence, nonces: NonceBook): QuoteVerdict {
  const { quote, attestation } = evidence;
  if (quote.attestData.length === 0) return failed(ZAttestResponseCode.QUOTE_FAILED, 'an empty quote (no TPM), but the device attests in mode tpm');
  let attest: QuoteAttest;
  try {
    attest = parseQuoteAttest(quote.attestData);
  } catch (error) {
    return failed(ZAttestResponseCode.QUOTE_FAILED, `attestData: ${(error as Error).message}`);
  }
  const nonceRefusal = nonces.consume(attest.extraData, evidence.device);
  if (nonceRefusal !== undefined) return failed(ZAttestResponseCode.NONCE_MISMATCH, NONCE_REASON[nonceRefusal]);
  if (evidence.attestationCertPem === undefined) return failed(ZAttestResponseCode.NO_CERT_FOUND, 'no attestation certificate (ATTEST_REQ_CERT, type 11) is stored for the device');
  if (attest.pcrs.join(',') !== QUOTED_PCRS.join(',')) return failed(ZAttestResponseCode.QUOTE_FAILED, `the quote selects PCRs ${attest.pcrs.join(',') || 'none'}, not 0–15`);
  const values = quotedValues(quote);
  if (typeof values === 'string') return failed(ZAttestResponseCode.QUOTE_FAILED, values);
  const key = new X509Certificate(evidence.attestationCertPem).publicKey;
  const verdict = verifyQuote(key, { attest: quote.attestData, signatureDer: quote.signature, pcrs: values }, attest.extraData);
  if (!verdict.ok) return failed(ZAttestResponseCode.QUOTE_FAILED, verdict.reason);
  const pcrs: PcrValues = new Map([...values].map(([index, value]) => [index, hex(value)]));
  const expected = attestation.policy ?? attestation.pinned;
  if (expected === undefined) return { ok: true, pcrs, pin: true };
  const differing = differingPcrs(expected, pcrs);
  if (differing.length > 0) {
    const against = attestation.policy ? 'the PCR policy' : 'the values pinned at the first attestation';
    return failed(ZAttestResponseCode.QUOTE_FAILED, `PCR ${differing.join(', ')} ${differing.length === 1 ? 'differs' : 'differ'} from ${against}`);
  }
  return { ok: true, pcrs, pin: false };
}
