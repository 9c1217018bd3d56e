// The node's key stores: TPM-held keys, or EVE's PEM-file fallback without a TPM.
export { FileKeyStore } from './file-key-store.js';
export {
  KeyExistsError,
  KeyMissingError,
  KeyRefusedError,
  KeyStoreError,
  KeyUsageError,
  MAX_KEY_AUTH_BYTES,
  normalizeAuth,
  type KeyRole,
  type KeyStore,
} from './key-store.js';
export { TpmKeyStore } from './tpm-key-store.js';
