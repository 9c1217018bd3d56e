// Typed failures of the vault and the escrow: each says what happened and what the caller (or an
// operator reading the log) should do about it.

/** Base class: anything the vault refuses or cannot do. */
export class VaultError extends Error {
  override readonly name: string = 'VaultError';
}

const pcrNames = (pcrs: readonly number[]): string => pcrs.map((i) => `PCR ${i}`).join(' and ');

/**
 * EVE's "TPM Carte Blanche" check: PCR 0 (firmware code) or PCR 4 (boot loader) of the SHA-256
 * bank is still all zeros, so the firmware measured nothing there and anyone could extend those
 * PCRs to whatever values a sealed key expects. Sealing would protect nothing, so it is refused.
 */
export class NoMeasuredBootError extends VaultError {
  override readonly name = 'NoMeasuredBootError';
  constructor(readonly zeroPcrs: readonly number[]) {
    super(
      `refusing to seal the vault key: ${pcrNames(zeroPcrs)} (SHA-256 bank) ${zeroPcrs.length > 1 ? 'are' : 'is'} all zeros, ` +
        'so the firmware did no SHA-256 measured boot and the PCR values could be forged; ' +
        'enable measured boot (TPM 2.0, SHA-256 PCR bank) in the firmware, or run without vault encryption',
    );
  }
}

/**
 * The sealed vault key exists but the TPM will not unseal it: the PCRs differ from sealing time
 * (a firmware/OS upgrade, or tampering). `pcrs` holds the current values of the sealing set and
 * `changed` the PCRs that differ from the values recorded when the key was sealed (undefined if
 * that record is missing). The way out is attestation: Vault.recover() with the escrowed key.
 */
export class VaultLockedError extends VaultError {
  override readonly name = 'VaultLockedError';
  constructor(
    readonly pcrs: ReadonlyMap<number, Uint8Array>,
    readonly changed: readonly number[] | undefined,
    options?: ErrorOptions,
  ) {
    const which = changed === undefined ? 'the PCRs changed' : changed.length === 0 ? 'no recorded PCR changed (the record may be stale)' : `${pcrNames(changed)} changed`;
    super(
      `the vault is locked: the TPM refuses to unseal the vault key because ${which} since it was sealed ` +
        '(firmware or OS upgrade, or tampering); attest to the controller and recover the escrowed key',
      options,
    );
  }
}

/** A file of the vault (the sealed key) is unreadable or not what the vault wrote. */
export class VaultFileError extends VaultError {
  override readonly name = 'VaultFileError';
  constructor(
    readonly file: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${file}: ${message}`, options);
  }
}

/** Base class of escrow failures: the blob the controller returned cannot give back the key. */
export class EscrowError extends VaultError {
  override readonly name: string = 'EscrowError';
}

/** The AttestVolumeKey is not a vault key (key_type is not ATTEST_VOLUME_KEY_TYPE_VSK). */
export class EscrowKeyTypeError extends EscrowError {
  override readonly name = 'EscrowKeyTypeError';
}

/** The escrow blob does not parse, has an unsupported version, or has wrong field sizes. */
export class EscrowMalformedError extends EscrowError {
  override readonly name = 'EscrowMalformedError';
}

/**
 * AES-GCM authentication failed: the blob was wrapped by another TPM (or for another device
 * key), or it was altered in transit or storage.
 */
export class EscrowNotThisTpmError extends EscrowError {
  override readonly name = 'EscrowNotThisTpmError';
}

/** The key decrypted, but its SHA-256 is not the digest that travelled with it. */
export class EscrowDigestError extends EscrowError {
  override readonly name = 'EscrowDigestError';
}
