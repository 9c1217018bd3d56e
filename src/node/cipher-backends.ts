// The two interchangeable data-plane cipher backends, wired where I/O meets protocol: src/crypto
// defines the seam and the node:crypto reference, src/tun ships the addon; this picks.
import type { CipherBackend } from '../crypto/cipher-backend.js';
import { nodeCipherBackend } from '../crypto/node-cipher-backend.js';
import { createNativeAeadContext, nativeAddonAvailable } from '../tun/native-aead.js';

/** The addon: one reused OpenSSL EVP context per key, packets sealed in batches. */
export const nativeCipherBackend: CipherBackend = {
  name: 'native',
  createContext: createNativeAeadContext,
};

export type CipherBackendChoice = 'native' | 'node';

/** The configured backend; 'native' without a built addon is an error, never a silent fallback. */
export function cipherBackend(choice: CipherBackendChoice): CipherBackend {
  if (choice === 'node') return nodeCipherBackend;
  if (!nativeAddonAvailable()) throw new Error("the native cipher backend needs the lispnode_native addon: run 'npm run build:native'");
  return nativeCipherBackend;
}
