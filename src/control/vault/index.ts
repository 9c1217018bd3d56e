// The vault (a TPM-sealed key, escrowed with the controller) and the node's secret store; see
// vault.ts for the lifecycle, escrow.ts for the escrow format, secret-store.ts for the store.
export { EncryptedSecretStore, deriveSecretStoreKey, SECRET_STORE_KDF_INFO } from './encrypted-secret-store.js';
export {
  EscrowDigestError,
  EscrowError,
  EscrowKeyTypeError,
  EscrowMalformedError,
  EscrowNotThisTpmError,
  NoMeasuredBootError,
  VaultError,
  VaultFileError,
  VaultLockedError,
} from './errors.js';
export { escrowVaultKey, recoverEscrowedKey } from './escrow.js';
export { PlainSecretStore } from './plain-secret-store.js';
export { secretStoreFor } from './secret-store-for.js';
export { checkMeasuredBoot, MEASURED_BOOT_PCRS, SEALED_KEY_FILE, VAULT_KEY_BYTES, VAULT_SEAL_PCRS } from './sealed-key.js';
export {
  checkSecretName,
  FileSecretStore,
  SecretFileError,
  SecretNameError,
  SecretStoreError,
  type SecretFileProblem,
  type SecretStore,
} from './secret-store.js';
export { plainVault, Vault, type PlainVault, type UnlockedVault, type VaultState } from './vault.js';
