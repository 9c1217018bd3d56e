// Picks the secret store that matches the vault, so no caller can pair a TPM node with the plain
// store by accident, nor pretend a no-TPM node's secrets are encrypted.
import { EncryptedSecretStore } from './encrypted-secret-store.js';
import { PlainSecretStore } from './plain-secret-store.js';
import type { SecretStore } from './secret-store.js';
import type { VaultState } from './vault.js';

/** Encrypted under an unlocked vault's key; plain (and saying so) without a TPM. */
export function secretStoreFor(dir: string, vault: VaultState): SecretStore {
  return vault.encrypted ? new EncryptedSecretStore(dir, vault.key) : new PlainSecretStore(dir);
}
