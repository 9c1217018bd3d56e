// A secret sealed to PCR values: the TPM object's public and (TPM-encrypted) private parts, and
// which PCRs its policy covers. Useless outside the TPM that made it, so it may be stored anywhere
// (EVE keeps it in NV); encoded here as JSON for a file.

export interface SealedBlob {
  /** TPM2B_PUBLIC of the sealed-data object. */
  readonly public: Uint8Array;
  /** TPM2B_PRIVATE, encrypted under the storage primary key: only this TPM can load it. */
  readonly private: Uint8Array;
  /** SHA-256 bank PCRs of the policy, ascending. */
  readonly pcrs: readonly number[];
}

export const MAX_PCR_INDEX = 23;

/**
 * tpm2-tools refuse a PolicyPCR over more than 8 PCRs, so a policy over more is a chain of
 * PolicyPCR steps of at most 8 each (eve-security.md §6, gotcha 2). The chain's digest differs
 * from EVE's single 14-PCR PolicyPCR, so blobs are not interchangeable with EVE's.
 */
export function pcrPolicySteps(pcrs: readonly number[]): number[][] {
  const sorted = [...new Set(pcrs)].sort((a, b) => a - b);
  const steps: number[][] = [];
  for (let i = 0; i < sorted.length; i += 8) steps.push(sorted.slice(i, i + 8));
  return steps;
}

interface SealedBlobJson {
  readonly v: 1;
  readonly public: string;
  readonly private: string;
  readonly pcrs: readonly number[];
}

export function encodeSealedBlob(blob: SealedBlob): string {
  const json: SealedBlobJson = {
    v: 1,
    public: Buffer.from(blob.public).toString('base64'),
    private: Buffer.from(blob.private).toString('base64'),
    pcrs: blob.pcrs,
  };
  return JSON.stringify(json);
}

/** Inverse of encodeSealedBlob; TypeError for anything else. */
export function decodeSealedBlob(text: string): SealedBlob {
  const json = JSON.parse(text) as Partial<SealedBlobJson> | null;
  const pcrs = json?.pcrs;
  if (
    json?.v !== 1 ||
    typeof json.public !== 'string' ||
    typeof json.private !== 'string' ||
    !Array.isArray(pcrs) ||
    !pcrs.every((i) => Number.isInteger(i) && i >= 0 && i <= MAX_PCR_INDEX)
  ) {
    throw new TypeError('not a sealed blob');
  }
  return { public: Buffer.from(json.public, 'base64'), private: Buffer.from(json.private, 'base64'), pcrs };
}
