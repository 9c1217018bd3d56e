// The vault's lifecycle (EVE's vaultmgr, eve-security.md §5). The vault key is 32 bytes from the
// TPM's RNG, sealed to the boot measurements and escrowed with the controller:
//   normal boot      open() unseals it;
//   first boot       open() creates and seals one, `created: true` asks the caller to escrow it;
//   upgrade/tamper   open() throws VaultLockedError; the caller attests, and if the controller
//                    returns the escrowed key, recover() decrypts it in the TPM, re-seals it to
//                    the current PCRs and returns it; the caller then escrows it again.
// Without a TPM there is no vault encryption, as in EVE: that is a PlainVault, which says so.
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import type { AttestVolumeKey } from '../proto/index.js';
import { TpmPolicyError } from '../tpm/errors.js';
import type { Tpm } from '../tpm/tpm.js';
import { ensurePrivateDir } from '../atomic-file.js';
import { VaultFileError, VaultLockedError } from './errors.js';
import { escrowVaultKey, recoverEscrowedKey } from './escrow.js';
import { changedPcrs, readSealedKey, sealedKeyPath, sealVaultKey, VAULT_KEY_BYTES, VAULT_SEAL_PCRS, writeSealedKey } from './sealed-key.js';

/** An unlocked vault: the key, and whether open() just made it (so it has never been escrowed). */
export interface UnlockedVault {
  readonly encrypted: true;
  readonly key: Uint8Array;
  readonly created: boolean;
}

/** No TPM, so no vault encryption (EVE's behaviour); `reason` is for status and logs. */
export interface PlainVault {
  readonly encrypted: false;
  readonly reason: string;
}

export type VaultState = UnlockedVault | PlainVault;

export function plainVault(reason = 'no TPM: the vault is not encrypted (as in EVE without a TPM)'): PlainVault {
  return { encrypted: false, reason };
}

export class Vault {
  /** `<stateDir>/vault`, mode 0700. */
  readonly dir: string;

  /**
   * `deviceKeyPublic` is the device key's public key (EVE: the device certificate's); the escrow
   * wrap key depends on it, so recovery must be given the same key as the escrow.
   */
  constructor(
    private readonly tpm: Tpm,
    stateDir: string,
    private readonly deviceKeyPublic: KeyObject,
  ) {
    this.dir = join(stateDir, 'vault');
  }

  get sealedKeyFile(): string {
    return sealedKeyPath(this.dir);
  }

  /**
   * Unseals the vault key, or creates one if none was ever sealed. VaultLockedError when the PCRs
   * changed since sealing; NoMeasuredBootError when a new key cannot be sealed safely;
   * VaultFileError when the sealed-key file is damaged.
   */
  async open(): Promise<UnlockedVault> {
    const file = this.sealedKeyFile;
    const sealed = await readSealedKey(file);
    if (sealed === undefined) {
      const key = await this.tpm.random(VAULT_KEY_BYTES);
      await this.seal(key);
      return { encrypted: true, key, created: true };
    }
    let key: Uint8Array;
    try {
      key = await this.tpm.unseal(sealed.blob);
    } catch (error) {
      if (!(error instanceof TpmPolicyError)) throw error;
      const current = await this.tpm.pcrRead(VAULT_SEAL_PCRS);
      throw new VaultLockedError(current, sealed.sealingPcrs.size === 0 ? undefined : changedPcrs(sealed, current), { cause: error });
    }
    if (key.length !== VAULT_KEY_BYTES) throw new VaultFileError(file, `the sealed secret is ${key.length} bytes, not a ${VAULT_KEY_BYTES}-byte vault key`);
    return { encrypted: true, key, created: false };
  }

  /**
   * Restores the vault from the key the controller escrowed: decrypts it in the TPM (EscrowError
   * subclasses if it is not this TPM's or not intact), re-seals it to the current PCRs so the next
   * boot unseals it locally, and returns it. Escrow it again afterwards, as EVE does.
   */
  async recover(volumeKey: AttestVolumeKey): Promise<Uint8Array> {
    const key = await recoverEscrowedKey(this.tpm, volumeKey, this.deviceKeyPublic);
    await this.seal(key);
    return key;
  }

  /**
   * The key as the controller stores it (AttestVolumeKey, VSK). A fresh IV each time, so calling
   * this after every successful attestation (as EVE re-publishes) is fine.
   */
  escrow(key: Uint8Array): Promise<AttestVolumeKey> {
    return escrowVaultKey(this.tpm, key, this.deviceKeyPublic);
  }

  private async seal(key: Uint8Array): Promise<void> {
    const sealed = await sealVaultKey(this.tpm, key);
    await ensurePrivateDir(this.dir);
    await writeSealedKey(this.sealedKeyFile, sealed);
  }
}
