// Checking a TPM quote the way EVE's controller must (eve-security.md §4): the attestation key
// signed exactly these TPMS_ATTEST bytes, they echo the verifier's nonce, and the PCR values that
// travel beside the quote are the ones whose digest the TPM signed.
import { createHash, verify, type KeyObject } from 'node:crypto';
import { parseQuoteAttest, type QuoteAttest } from './marshal.js';

export interface TpmQuote {
  /** The marshalled TPMS_ATTEST (EVE's ZAttestQuote.attestData). */
  readonly attest: Uint8Array;
  /** ECDSA P-256 over SHA-256(attest), ASN.1 DER (EVE sends DER here, not raw r||s). */
  readonly signatureDer: Uint8Array;
  /** SHA-256 bank values of the quoted PCRs, read with the quote, ascending index order. */
  readonly pcrs: ReadonlyMap<number, Uint8Array>;
}

export type QuoteVerdict = { readonly ok: true; readonly attest: QuoteAttest } | { readonly ok: false; readonly reason: string };

export function verifyQuote(akPublicKey: KeyObject, quote: TpmQuote, nonce: Uint8Array): QuoteVerdict {
  let signed: boolean;
  try {
    signed = verify('sha256', quote.attest, { key: akPublicKey, dsaEncoding: 'der' }, quote.signatureDer);
  } catch {
    signed = false;
  }
  if (!signed) return { ok: false, reason: 'the signature does not verify with the attestation key' };
  let attest: QuoteAttest;
  try {
    attest = parseQuoteAttest(quote.attest);
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  if (!Buffer.from(attest.extraData).equals(Buffer.from(nonce))) return { ok: false, reason: 'the quote does not carry this nonce' };
  const indices = [...quote.pcrs.keys()].sort((a, b) => a - b);
  if (indices.join(',') !== attest.pcrs.join(',')) return { ok: false, reason: 'the PCR values are not for the quoted selection' };
  const digest = createHash('sha256');
  for (const index of indices) digest.update(quote.pcrs.get(index) ?? new Uint8Array());
  if (!digest.digest().equals(Buffer.from(attest.pcrDigest))) return { ok: false, reason: 'the PCR values do not match the quoted digest' };
  return { ok: true, attest };
}
