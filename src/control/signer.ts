// A P-256 signing key the node may not be able to read: the device key lives in the TPM (it
// signs there and never leaves) or, on a node without one, in a PEM file. Everything that signs
// for the node — certificates, envelopes to the controller — goes through this interface, so it
// never needs to know which.
import type { KeyObject } from 'node:crypto';

export interface P256Signer {
  /** The public half (SubjectPublicKeyInfo), to build certificates and check signatures. */
  readonly publicKey: KeyObject;
  /**
   * ECDSA P-256 over a SHA-256 digest the caller computed: returns raw r||s, each half
   * left-padded to 32 bytes (64 bytes, EVE's envelope format). Rejects with a typed error when
   * the key refuses (a TPM authorization failure, a key file that no longer opens).
   */
  signDigest(digest: Uint8Array): Promise<Uint8Array>;
}

/** Where the node's keys live: EVE degrades to files without a TPM, and says so. */
export type KeyStoreKind = 'tpm' | 'file';
