// The node's TPM through tpm2-tools: see tpm.ts for the operations, errors.ts for what fails how.
export { hasTpmRc, TpmAuthError, TpmError, TpmPolicyError, TpmRc, TpmUnavailableError, tpmRcBase } from './errors.js';
export { decodeEccPoint, eccPointOf, encodeEccPoint, parseQuoteAttest, type EccPoint, type QuoteAttest } from './marshal.js';
export { verifyQuote, type QuoteVerdict, type TpmQuote } from './quote.js';
export type { TpmRunnerOptions } from './runner.js';
export { decodeSealedBlob, encodeSealedBlob, type SealedBlob } from './sealed-blob.js';
export {
  ATTESTATION_KEY_HANDLE,
  DEVICE_KEY_HANDLE,
  ECDH_KEY_HANDLE,
  MAX_AUTH_BYTES,
  MAX_SEAL_BYTES,
  Tpm,
  type EccKeyKind,
} from './tpm.js';
