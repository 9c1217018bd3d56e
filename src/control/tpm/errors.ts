// Typed failures of TPM operations, recovered from what tpm2-tools print on stderr. The tools
// report the TSS response code as `ERROR: Esys_Sign(0x9A2) - tpm:session(1):...`; the code tells
// an authorization refusal (the key's auth value does not match) from a policy refusal (PCRs
// changed since sealing) from everything else, and that is what callers act on.

/** A TPM operation failed; `rc` is the TSS2 response code when the tools printed one. */
export class TpmError extends Error {
  override readonly name: string = 'TpmError';
  constructor(
    readonly tool: string,
    readonly rc: number | undefined,
    message: string,
  ) {
    super(`${tool}: ${message}${rc === undefined ? '' : ` (rc 0x${rc.toString(16)})`}`);
  }
}

/** The TPM refused an authorization: wrong auth value (TPM_RC_AUTH_FAIL, _BAD_AUTH) or lockout. */
export class TpmAuthError extends TpmError {
  override readonly name = 'TpmAuthError';
}

/** A policy session did not satisfy the object's policy: for a PCR policy, the PCRs changed. */
export class TpmPolicyError extends TpmError {
  override readonly name = 'TpmPolicyError';
}

/** No TPM answered: tools missing, TCTI not loadable, device or socket gone, or a timeout. */
export class TpmUnavailableError extends TpmError {
  override readonly name = 'TpmUnavailableError';
}

/** TPM 2.0 response codes (Part 2 §6.6) this module tells apart, without handle/session numbers. */
export const TpmRc = {
  AUTH_FAIL: 0x08e,
  POLICY_FAIL: 0x09d,
  BAD_AUTH: 0x0a2,
  HANDLE: 0x08b,
  PCR_CHANGED: 0x128,
  AUTH_UNAVAILABLE: 0x12f,
  NV_UNINITIALIZED: 0x14a,
  NV_DEFINED: 0x14c,
  LOCKOUT: 0x921,
} as const;

// TSS2 codes carry the reporting layer in bits 16-23; layer 0 is the TPM itself, 10 the TCTI
// (the transport: socket refused, device gone, I/O error).
const TCTI_LAYER = 10;

/**
 * The TPM's own code with the handle/session/parameter number stripped (format-one codes keep
 * bits 0-5 and the format bit 7), so `0x9a2` (BAD_AUTH, session 1) compares equal to 0x0a2.
 * Undefined for codes from a TSS layer above the TPM.
 */
export function tpmRcBase(rc: number): number | undefined {
  if (rc >>> 16 !== 0) return undefined;
  return rc & 0x80 ? rc & 0xbf : rc;
}

const AUTH_CODES: ReadonlySet<number> = new Set([TpmRc.AUTH_FAIL, TpmRc.BAD_AUTH, TpmRc.AUTH_UNAVAILABLE, TpmRc.LOCKOUT]);
const POLICY_CODES: ReadonlySet<number> = new Set([TpmRc.POLICY_FAIL, TpmRc.PCR_CHANGED]);

/** The `ERROR: ...` lines of a failed tool run, minus the closing "Unable to run" boilerplate. */
function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('ERROR: ') && !line.startsWith('ERROR: Unable to run'))
    .map((line) => line.slice('ERROR: '.length));
}

/** Builds the typed error for a tool that exited non-zero with `stderr`. */
export function toolFailure(tool: string, stderr: string): TpmError {
  const lines = errorLines(stderr);
  // tpm2-tools' summary line: `Esys_Sign(0x9A2) - tpm:session(1):authorization failure ...`.
  const summary = lines.map((line) => /\(0x([0-9a-f]+)\) - (.*)$/i.exec(line)).find((m) => m !== null);
  const coded = summary ?? /ErrorCode \(0x([0-9a-f]+)\)/i.exec(stderr);
  const rc = coded?.[1] === undefined ? undefined : Number.parseInt(coded[1], 16);
  const message = summary?.[2] ?? (lines.join('; ') || stderr.trim().split('\n').pop() || 'failed');
  if (/Could not load tcti/i.test(stderr) || (rc !== undefined && rc >>> 16 === TCTI_LAYER)) {
    return new TpmUnavailableError(tool, rc, `the TPM cannot be reached: ${message}`);
  }
  const base = rc === undefined ? undefined : tpmRcBase(rc);
  if (base !== undefined && AUTH_CODES.has(base)) return new TpmAuthError(tool, rc, message);
  if (base !== undefined && POLICY_CODES.has(base)) return new TpmPolicyError(tool, rc, message);
  return new TpmError(tool, rc, message);
}

/** True when `error` is a TpmError whose TPM code (number bits stripped) is `code`. */
export function hasTpmRc(error: unknown, code: number): boolean {
  return error instanceof TpmError && error.rc !== undefined && tpmRcBase(error.rc) === code;
}
