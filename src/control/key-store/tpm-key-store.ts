// The keys in the TPM at EVE's persistent handles: the private halves never leave it, and no
// key file is written anywhere. Signing with the wrong authorization is the TPM's own refusal
// (TPM_RC_BAD_AUTH), reported as KeyRefusedError.
import type { KeyObject } from 'node:crypto';
import type { P256Signer } from '../signer.js';
import { hasTpmRc, TpmAuthError, TpmRc } from '../tpm/errors.js';
import { ATTESTATION_KEY_HANDLE, DEVICE_KEY_HANDLE, ECDH_KEY_HANDLE, type Tpm } from '../tpm/tpm.js';
import { checkSigningRole, KeyExistsError, KeyMissingError, KeyRefusedError, normalizeAuth, type KeyRole, type KeyStore } from './key-store.js';

const HANDLES: Readonly<Record<KeyRole, number>> = {
  device: DEVICE_KEY_HANDLE,
  ecdh: ECDH_KEY_HANDLE,
  attestation: ATTESTATION_KEY_HANDLE,
};

const hex = (n: number): string => `0x${n.toString(16)}`;

export class TpmKeyStore implements KeyStore {
  readonly kind = 'tpm';

  constructor(readonly tpm: Tpm) {}

  describe(): string {
    return `TPM at ${this.tpm.tcti}: device key ${hex(HANDLES.device)}, ECDH key ${hex(HANDLES.ecdh)}, attestation key ${hex(HANDLES.attestation)}`;
  }

  async has(role: KeyRole): Promise<boolean> {
    return (await this.tpm.persistentHandles()).includes(HANDLES[role]);
  }

  async create(role: KeyRole, auth?: Uint8Array): Promise<KeyObject> {
    const normalized = normalizeAuth(auth);
    if (await this.has(role)) throw new KeyExistsError(role, `the TPM already holds a ${role} key at ${hex(HANDLES[role])}`);
    return this.tpm.createPersistentEccKey(HANDLES[role], role, normalized);
  }

  async publicKey(role: KeyRole): Promise<KeyObject> {
    try {
      return await this.tpm.publicKey(HANDLES[role]);
    } catch (error) {
      if (hasTpmRc(error, TpmRc.HANDLE)) throw new KeyMissingError(role, `the TPM holds no ${role} key at ${hex(HANDLES[role])}`, { cause: error });
      throw error;
    }
  }

  async signer(role: KeyRole, auth?: Uint8Array): Promise<P256Signer> {
    checkSigningRole(role);
    const normalized = normalizeAuth(auth);
    const publicKey = await this.publicKey(role);
    return {
      publicKey,
      signDigest: async (digest) => {
        try {
          return await this.tpm.signDigest(HANDLES[role], digest, normalized);
        } catch (error) {
          if (error instanceof TpmAuthError) throw new KeyRefusedError(role, { cause: error });
          throw error;
        }
      },
    };
  }

  async remove(role: KeyRole): Promise<void> {
    if (await this.has(role)) await this.tpm.evict(HANDLES[role]);
  }
}
