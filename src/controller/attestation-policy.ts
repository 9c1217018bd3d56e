// What a device's quoted PCRs must be (eve-security.md §4: "compares PCRs to its policy"). Either
// explicit values the operator gives at `device add --pcr-policy FILE` ({"0":"<hex>", …}), or
// "learn": the first successful attestation pins every quoted PCR and later quotes must repeat
// them. Values are SHA-256 bank digests as lowercase hex, keyed by PCR index.

/** `none`: no TPM, nothing to verify (EVE's empty quote); `tpm`: a verifying quote is required. */
export type AttestationMode = 'none' | 'tpm';

export const ATTESTATION_MODES: readonly AttestationMode[] = ['none', 'tpm'];

/** PCRs 0–15 of the SHA-256 bank: EVE's quote selection, so the only ones a policy can name. */
export const QUOTED_PCRS: readonly number[] = Array.from({ length: 16 }, (_, i) => i);

export type PcrValues = ReadonlyMap<number, string>;

export class PcrPolicyError extends Error {
  override readonly name = 'PcrPolicyError';
}

/** Parses a policy's JSON ({"<index>":"<64 hex>"}); throws PcrPolicyError naming what is wrong. */
export function parsePcrValues(text: string, source: string): PcrValues {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new PcrPolicyError(`${source}: not JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PcrPolicyError(`${source}: expected an object {"<pcr index>": "<sha-256 hex>"}`);
  const values = new Map<number, string>();
  for (const [key, value] of Object.entries(parsed)) {
    const index = /^(0|[1-9]\d?)$/.test(key) ? Number(key) : -1;
    if (!QUOTED_PCRS.includes(index)) throw new PcrPolicyError(`${source}: "${key}" is not a quoted PCR index (0–15)`);
    if (typeof value !== 'string' || !/^[0-9a-fA-F]{64}$/.test(value)) throw new PcrPolicyError(`${source}: PCR ${key}: expected 64 hex digits (a SHA-256 value)`);
    values.set(index, value.toLowerCase());
  }
  if (values.size === 0) throw new PcrPolicyError(`${source}: the policy names no PCR`);
  return values;
}

export function pcrValuesToJson(values: PcrValues): string {
  return JSON.stringify(Object.fromEntries([...values].sort(([a], [b]) => a - b)));
}

/** The PCR indices whose quoted value differs from (or is missing against) the expected one. */
export function differingPcrs(expected: PcrValues, quoted: PcrValues): number[] {
  return [...expected].filter(([index, value]) => quoted.get(index) !== value).map(([index]) => index).sort((a, b) => a - b);
}
