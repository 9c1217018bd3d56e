// The vault key sealed to the boot measurements. EVE keeps the sealed object in TPM NV
// (TPM2B_PRIVATE at 0x1800000, TPM2B_PUBLIC at 0x1900000); here it is a file in the state
// directory. That is as safe: the private part is encrypted under the TPM's storage primary key,
// so the blob is useless without this TPM *and* the sealing-time PCR values, and a file avoids
// spending scarce NV space (and NV write cycles on every re-seal). What a file does not give is
// protection against deletion — neither does NV against an owner-authorized undefine.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeSealedBlob, encodeSealedBlob, type SealedBlob } from '../tpm/sealed-blob.js';
import type { Tpm } from '../tpm/tpm.js';
import { writeFileAtomic } from '../atomic-file.js';
import { NoMeasuredBootError, VaultFileError } from './errors.js';

/** The vault key: 32 bytes (AES-256), from the TPM's RNG. */
export const VAULT_KEY_BYTES = 32;

/**
 * EVE's default sealing set (eve-security.md §4): PCR 5 (GPT) is left out because EVE flips A/B
 * partition attributes on upgrade, 15 is reserved. Tpm.seal chains two PolicyPCR steps for it.
 */
export const VAULT_SEAL_PCRS: readonly number[] = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14];

/** PCRs that must hold a measurement before anything is sealed (EVE's "TPM Carte Blanche" check). */
export const MEASURED_BOOT_PCRS: readonly number[] = [0, 4];

export const SEALED_KEY_FILE = 'sealed-key.json';

/** What the sealed-key file holds: the blob, and the PCR values at sealing time for diagnostics. */
export interface SealedKey {
  readonly blob: SealedBlob;
  /** Read just before sealing; not authenticated, only used to say which PCRs changed (EVE: /persist/status/sealingpcrs). */
  readonly sealingPcrs: ReadonlyMap<number, Uint8Array>;
}

export function sealedKeyPath(vaultDir: string): string {
  return join(vaultDir, SEALED_KEY_FILE);
}

/** NoMeasuredBootError if PCR 0 or 4 (SHA-256 bank) is all zeros. */
export async function checkMeasuredBoot(tpm: Tpm): Promise<void> {
  const values = await tpm.pcrRead(MEASURED_BOOT_PCRS);
  const zero = MEASURED_BOOT_PCRS.filter((i) => (values.get(i) ?? new Uint8Array()).every((byte) => byte === 0));
  if (zero.length > 0) throw new NoMeasuredBootError(zero);
}

/** Seals `key` to the current values of VAULT_SEAL_PCRS after the measured-boot check. */
export async function sealVaultKey(tpm: Tpm, key: Uint8Array): Promise<SealedKey> {
  if (key.length !== VAULT_KEY_BYTES) throw new RangeError(`a vault key is ${VAULT_KEY_BYTES} bytes, got ${key.length}`);
  await checkMeasuredBoot(tpm);
  const sealingPcrs = await tpm.pcrRead(VAULT_SEAL_PCRS);
  const blob = await tpm.seal(key, VAULT_SEAL_PCRS);
  return { blob, sealingPcrs };
}

/** PCRs whose current value differs from the sealing-time record. */
export function changedPcrs(sealed: SealedKey, current: ReadonlyMap<number, Uint8Array>): number[] {
  return [...sealed.sealingPcrs.keys()].filter((i) => !Buffer.from(sealed.sealingPcrs.get(i) ?? []).equals(Buffer.from(current.get(i) ?? [])));
}

interface SealedKeyJson {
  readonly v: 1;
  readonly sealed: unknown;
  readonly sealingPcrs: Readonly<Record<string, string>>;
}

export async function writeSealedKey(file: string, sealed: SealedKey): Promise<void> {
  const json: SealedKeyJson = {
    v: 1,
    sealed: JSON.parse(encodeSealedBlob(sealed.blob)),
    sealingPcrs: Object.fromEntries([...sealed.sealingPcrs].map(([i, value]) => [String(i), Buffer.from(value).toString('hex')])),
  };
  await writeFileAtomic(file, `${JSON.stringify(json, null, 2)}\n`, 0o600);
}

/** The sealed key in `file`; undefined if there is none; VaultFileError if it is not one. */
export async function readSealedKey(file: string): Promise<SealedKey | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new VaultFileError(file, `cannot read the sealed vault key (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
  try {
    const json = JSON.parse(text) as Partial<SealedKeyJson> | null;
    if (json?.v !== 1 || typeof json.sealingPcrs !== 'object' || json.sealingPcrs === null) throw new TypeError('not a sealed vault key');
    const blob = decodeSealedBlob(JSON.stringify(json.sealed));
    const sealingPcrs = new Map<number, Uint8Array>();
    for (const [index, hex] of Object.entries(json.sealingPcrs)) {
      if (!/^\d+$/.test(index) || !/^[0-9a-f]{64}$/.test(hex)) throw new TypeError('bad sealing-time PCR record');
      sealingPcrs.set(Number(index), Buffer.from(hex, 'hex'));
    }
    return { blob, sealingPcrs };
  } catch (error) {
    throw new VaultFileError(
      file,
      `not a sealed vault key (${(error as Error).message}); restore it from a backup or recover the key from the controller's escrow (Vault.recover); do not delete it: without the file the vault starts over with a new key`,
      { cause: error },
    );
  }
}
