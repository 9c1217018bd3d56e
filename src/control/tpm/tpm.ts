// The node's TPM, driven through tpm2-tools (one process per TPM command, ~10-30 ms each on
// swtpm): EVE's persistent P-256 keys, signing, NV counters and indexes, PCRs, quotes, sealing
// and ECDH. Secrets (auth values, data to seal) reach the tools on stdin (`file:-`, `-i -`) and
// come back on stdout or in mode-0600 files of a private scratch directory, never on argv.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { hasTpmRc, TpmError, TpmRc } from './errors.js';
import { decodeEccPoint, ecdsaSignatureToRaw, encodeEccPoint, type EccPoint } from './marshal.js';
import type { TpmQuote } from './quote.js';
import { TpmRunner, type ToolSession, type TpmRunnerOptions } from './runner.js';
import { MAX_PCR_INDEX, pcrPolicySteps, type SealedBlob } from './sealed-blob.js';

/** EVE's persistent handles (eve-security.md §2.1). */
export const DEVICE_KEY_HANDLE = 0x817fffff;
export const ATTESTATION_KEY_HANDLE = 0x81000004;
export const ECDH_KEY_HANDLE = 0x81000005;

export type EccKeyKind = 'device' | 'ecdh' | 'attestation';

// All three are primaries under the owner hierarchy. A primary key is derived from the owner
// seed and its template alone (the auth value is not an input), so an ECDH template equal to
// the device key's would produce the device key itself — on swtpm the PEMs came out identical,
// and EVE's equal templates do exactly that. Without `sign` the ECDH key is a key of its own,
// fit only for ECDH (TPM2_ECDH_ZGen needs just `decrypt`).
const TEMPLATES: Readonly<Record<EccKeyKind, { readonly alg: string; readonly attributes: string }>> = {
  device: { alg: 'ecc256', attributes: 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign|decrypt' },
  ecdh: { alg: 'ecc256', attributes: 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|decrypt' },
  // A restricted key needs the symmetric part spelled out as null (§6 gotcha 3).
  attestation: { alg: 'ecc256:ecdsa-sha256:null', attributes: 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign|noda' },
};

// Sealed objects hang under this ECC storage primary. Being a primary it is re-derived
// identically on every unseal, so no SRK needs to be persisted (EVE persists an RSA one).
const STORAGE_PRIMARY = ['-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|decrypt|noda'];

/** The largest auth value an object with a SHA-256 name algorithm accepts (its digest size). */
export const MAX_AUTH_BYTES = 32;
/** TPM2B_SENSITIVE_DATA's limit (MAX_SYM_DATA). */
export const MAX_SEAL_BYTES = 128;
const COUNTER_BYTES = 8;

const hex = (n: number): string => `0x${n.toString(16)}`;

function checkRange(what: string, value: number, low: number, high: number): void {
  if (!Number.isInteger(value) || value < low || value > high) throw new RangeError(`${what} ${String(value)} is outside ${hex(low)}..${hex(high)}`);
}
const checkPersistent = (handle: number): void => checkRange('persistent handle', handle, 0x81000000, 0x81ffffff);
const checkNvIndex = (index: number): void => checkRange('NV index', index, 0x01000000, 0x01ffffff);

/** RangeError unless `digest` has SHA-256's length (a signer given a message would sign garbage). */
export function checkSha256Digest(digest: Uint8Array): void {
  if (digest.length !== 32) throw new RangeError(`a SHA-256 digest is 32 bytes, got ${digest.length}`);
}

function pcrList(indices: Iterable<number>): number[] {
  const list = [...new Set(indices)].sort((a, b) => a - b);
  if (list.length === 0) throw new RangeError('no PCR selected');
  for (const i of list) checkRange('PCR', i, 0, MAX_PCR_INDEX);
  return list;
}

/** The `-p file:-` arguments and stdin for an auth value; nothing for an empty one. */
function authArgs(flag: string, auth: Uint8Array | undefined): { args: string[]; stdin: Uint8Array | undefined } {
  if (auth === undefined || auth.length === 0) return { args: [], stdin: undefined };
  if (auth.length > MAX_AUTH_BYTES) throw new RangeError(`an auth value is at most ${MAX_AUTH_BYTES} bytes`);
  return { args: [flag, 'file:-'], stdin: auth };
}

function splitDigests(bytes: Uint8Array, indices: readonly number[], tool: string): Map<number, Uint8Array> {
  if (bytes.length !== indices.length * 32) throw new TpmError(tool, undefined, `expected ${indices.length} SHA-256 PCR values, got ${bytes.length} bytes`);
  return new Map(indices.map((index, i) => [index, bytes.slice(i * 32, i * 32 + 32)]));
}

export class Tpm {
  private constructor(private readonly runner: TpmRunner) {}

  /**
   * Opens the TPM behind `tcti` (`device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`) and
   * checks that it answers; TpmUnavailableError if it does not or tpm2-tools are missing.
   */
  static async open(tcti: string, options: TpmRunnerOptions = {}): Promise<Tpm> {
    const tpm = new Tpm(new TpmRunner(tcti, options));
    await tpm.random(1);
    return tpm;
  }

  get tcti(): string {
    return this.runner.tcti;
  }

  /** `length` bytes from the TPM's RNG (TPM2_GetRandom gives at most a digest per call). */
  async random(length: number): Promise<Uint8Array> {
    checkRange('length', length, 0, 1 << 20);
    return this.runner.operation(async (s) => {
      const parts: Buffer[] = [];
      for (let have = 0; have < length; ) {
        const part = await s.run('tpm2_getrandom', [String(Math.min(32, length - have))]);
        if (part.length === 0) throw new TpmError('tpm2_getrandom', undefined, 'the TPM returned no random bytes');
        parts.push(part);
        have += part.length;
      }
      return new Uint8Array(Buffer.concat(parts));
    });
  }

  async persistentHandles(): Promise<number[]> {
    const out = await this.runner.operation((s) => s.run('tpm2_getcap', ['handles-persistent']));
    return [...out.toString('utf8').matchAll(/0x([0-9a-f]+)/gi)].map((m) => Number.parseInt(m[1] ?? '', 16));
  }

  /**
   * Creates one of EVE's P-256 primaries (TEMPLATES) and makes it persistent at `handle`; the
   * TPM refuses (TPM_RC_NV_DEFINED) if the handle is taken. `auth` becomes the key's userAuth.
   * The same template under the same owner seed always yields the same key pair.
   */
  async createPersistentEccKey(handle: number, kind: EccKeyKind, auth?: Uint8Array): Promise<KeyObject> {
    checkPersistent(handle);
    const { args, stdin } = authArgs('-p', auth);
    const { alg, attributes } = TEMPLATES[kind];
    return this.runner.operation(async (s) => {
      await s.run('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', alg, '-a', attributes, '-c', s.path('key.ctx'), ...args], stdin);
      await s.run('tpm2_evictcontrol', ['-C', 'o', '-c', s.path('key.ctx'), hex(handle)]);
      return readPublic(s, handle);
    });
  }

  /** The public key of a persistent object (TpmError TPM_RC_HANDLE if there is none). */
  async publicKey(handle: number): Promise<KeyObject> {
    checkPersistent(handle);
    return this.runner.operation((s) => readPublic(s, handle));
  }

  async evict(handle: number): Promise<void> {
    checkPersistent(handle);
    await this.runner.operation((s) => s.run('tpm2_evictcontrol', ['-C', 'o', '-c', hex(handle)]));
  }

  /**
   * ECDSA P-256 over a caller-computed SHA-256 digest with an unrestricted persistent key;
   * returns raw r||s (64 bytes). TpmAuthError when `auth` is not the key's.
   */
  async signDigest(handle: number, digest: Uint8Array, auth?: Uint8Array): Promise<Uint8Array> {
    checkPersistent(handle);
    checkSha256Digest(digest);
    const { args, stdin } = authArgs('-p', auth);
    return this.runner.operation(async (s) => {
      const input = await s.write('digest.bin', digest);
      await s.run('tpm2_sign', ['-c', hex(handle), '-g', 'sha256', '-s', 'ecdsa', '-d', '-o', s.path('sig.bin'), ...args, input], stdin);
      return ecdsaSignatureToRaw(await s.read('sig.bin'));
    });
  }

  /** Defines a monotonic 64-bit NV counter (owner-authorized); it has no value until incremented. */
  async defineCounter(index: number): Promise<void> {
    checkNvIndex(index);
    await this.runner.operation((s) => s.run('tpm2_nvdefine', [hex(index), '-C', 'o', '-s', String(COUNTER_BYTES), '-a', 'nt=counter|ownerread|ownerwrite']));
  }

  /**
   * Increments the counter and returns its new value. The first increment does not give 1 in
   * general: the TPM starts a counter at the highest value any deleted counter had reached
   * (so re-defining an index cannot roll a counter back). On swtpm: 1 on a fresh TPM; after
   * undefining a counter that had reached 7, a new counter's first increment gave 8.
   */
  async incrementCounter(index: number): Promise<bigint> {
    checkNvIndex(index);
    return this.runner.operation(async (s) => {
      await s.run('tpm2_nvincrement', [hex(index), '-C', 'o']);
      return counterValue(await s.run('tpm2_nvread', [hex(index), '-C', 'o', '-s', String(COUNTER_BYTES)]));
    });
  }

  /** The counter's value; undefined if the index is not defined or was never incremented. */
  async readCounter(index: number): Promise<bigint | undefined> {
    checkNvIndex(index);
    return this.runner.operation(async (s) => {
      try {
        return counterValue(await s.run('tpm2_nvread', [hex(index), '-C', 'o', '-s', String(COUNTER_BYTES)]));
      } catch (error) {
        if (hasTpmRc(error, TpmRc.NV_UNINITIALIZED) || hasTpmRc(error, TpmRc.HANDLE)) return undefined;
        throw error;
      }
    });
  }

  /** An ordinary owner-read/owner-write NV index of `size` bytes (EVE keeps certs, blobs there). */
  async nvDefine(index: number, size: number): Promise<void> {
    checkNvIndex(index);
    checkRange('NV size', size, 1, 0xffff);
    await this.runner.operation((s) => s.run('tpm2_nvdefine', [hex(index), '-C', 'o', '-s', String(size), '-a', 'ownerread|ownerwrite']));
  }

  /** Writes `data` at offset 0 (on stdin: NV contents may be secret). */
  async nvWrite(index: number, data: Uint8Array): Promise<void> {
    checkNvIndex(index);
    await this.runner.operation((s) => s.run('tpm2_nvwrite', [hex(index), '-C', 'o', '-i', '-'], data));
  }

  /** The whole index (its defined size). */
  async nvRead(index: number): Promise<Uint8Array> {
    checkNvIndex(index);
    return new Uint8Array(await this.runner.operation((s) => s.run('tpm2_nvread', [hex(index), '-C', 'o'])));
  }

  async nvUndefine(index: number): Promise<void> {
    checkNvIndex(index);
    await this.runner.operation((s) => s.run('tpm2_nvundefine', [hex(index), '-C', 'o']));
  }

  /**
   * SHA-256 bank values. The TPM returns at most 8 digests per TPM2_PCR_Read; tpm2_pcrread
   * repeats the command until it has them all (checked for all 24), and the length is verified.
   */
  async pcrRead(indices: Iterable<number>): Promise<Map<number, Uint8Array>> {
    const list = pcrList(indices);
    return this.runner.operation(async (s) => {
      await s.run('tpm2_pcrread', [`sha256:${list.join(',')}`, '-o', s.path('pcrs.bin')]);
      return splitDigests(await s.read('pcrs.bin'), list, 'tpm2_pcrread');
    });
  }

  /** Extends the SHA-256 bank of PCR `index` with a digest (a public measurement, so on argv). */
  async pcrExtend(index: number, digest: Uint8Array): Promise<void> {
    checkRange('PCR', index, 0, MAX_PCR_INDEX);
    checkSha256Digest(digest);
    await this.runner.operation((s) => s.run('tpm2_pcrextend', [`${index}:sha256=${Buffer.from(digest).toString('hex')}`]));
  }

  /** TPM2_PCR_Event: the TPM hashes `data` and extends every bank (EVE's measure-config). */
  async pcrEvent(index: number, data: Uint8Array): Promise<void> {
    checkRange('PCR', index, 0, MAX_PCR_INDEX);
    await this.runner.operation(async (s) => s.run('tpm2_pcrevent', [String(index), await s.write('event.bin', data)]));
  }

  /**
   * TPM2_Quote over SHA-256 PCRs `indices` with qualifying data `nonce` (EVE: 12..32 bytes from
   * the controller; public, so it goes on argv), signed by the restricted key at `akHandle`.
   */
  async quote(akHandle: number, indices: Iterable<number>, nonce: Uint8Array): Promise<TpmQuote> {
    checkPersistent(akHandle);
    const list = pcrList(indices);
    if (nonce.length === 0 || nonce.length > 64) throw new RangeError('a quote nonce is 1..64 bytes');
    return this.runner.operation(async (s) => {
      await s.run('tpm2_quote', [
        '-c', hex(akHandle),
        '-l', `sha256:${list.join(',')}`,
        '-q', Buffer.from(nonce).toString('hex'),
        '-g', 'sha256',
        '-m', s.path('attest.bin'),
        '-s', s.path('sig.der'), '-f', 'plain',
        '-o', s.path('pcrs.bin'), '-F', 'values',
      ]);
      return {
        attest: await s.read('attest.bin'),
        signatureDer: await s.read('sig.der'),
        pcrs: splitDigests(await s.read('pcrs.bin'), list, 'tpm2_quote'),
      };
    });
  }

  /**
   * Seals up to 128 bytes to the current values of SHA-256 PCRs `pcrs`: only a policy session
   * that sees the same values can unseal (the object has no userWithAuth).
   */
  async seal(secret: Uint8Array, pcrs: Iterable<number>): Promise<SealedBlob> {
    if (secret.length === 0 || secret.length > MAX_SEAL_BYTES) throw new RangeError(`a sealed secret is 1..${MAX_SEAL_BYTES} bytes`);
    const steps = pcrPolicySteps(pcrList(pcrs));
    return this.runner.operation(async (s) => {
      await pcrPolicy(s, steps, 'trial', s.path('policy.bin'));
      const primary = await storagePrimary(s);
      await s.run('tpm2_create', [
        '-C', primary, '-g', 'sha256',
        '-L', s.path('policy.bin'), '-a', 'fixedtpm|fixedparent|noda',
        '-i', '-', '-u', s.path('sealed.pub'), '-r', s.path('sealed.priv'),
      ], secret);
      return { public: await s.read('sealed.pub'), private: await s.read('sealed.priv'), pcrs: steps.flat() };
    });
  }

  /** The sealed secret; TpmPolicyError when the PCRs no longer have their sealing-time values. */
  async unseal(blob: SealedBlob): Promise<Uint8Array> {
    const steps = pcrPolicySteps(pcrList(blob.pcrs));
    return this.runner.operation(async (s) => {
      const primary = await storagePrimary(s);
      const pub = await s.write('sealed.pub', blob.public);
      const priv = await s.write('sealed.priv', blob.private);
      await s.run('tpm2_load', ['-C', primary, '-u', pub, '-r', priv, '-c', s.path('sealed.ctx')]);
      await s.flushTransients();
      const session = await pcrPolicy(s, steps, 'policy');
      return new Uint8Array(await s.run('tpm2_unseal', ['-c', s.path('sealed.ctx'), '-p', `session:${session}`]));
    });
  }

  /**
   * TPM2_ECDH_ZGen: the shared point d·Q for the key at `handle` and a peer point Q (EVE's
   * vault-key wrap uses the device cert's own point). Z is a secret: it comes back in a 0600 file.
   */
  async ecdhZGen(handle: number, point: EccPoint, auth?: Uint8Array): Promise<EccPoint> {
    checkPersistent(handle);
    const input = encodeEccPoint(point);
    const { args, stdin } = authArgs('-p', auth);
    return this.runner.operation(async (s) => {
      const z = await s.secretOutput('z.bin');
      await s.run('tpm2_ecdhzgen', ['-c', hex(handle), '-u', await s.write('point.bin', input), '-o', z, ...args], stdin);
      return decodeEccPoint(await s.read('z.bin'));
    });
  }
}

async function readPublic(s: ToolSession, handle: number): Promise<KeyObject> {
  await s.run('tpm2_readpublic', ['-c', hex(handle), '-f', 'pem', '-o', s.path('public.pem')]);
  return createPublicKey(Buffer.from(await s.read('public.pem')));
}

function counterValue(bytes: Uint8Array): bigint {
  if (bytes.length !== COUNTER_BYTES) throw new TpmError('tpm2_nvread', undefined, `a counter is ${COUNTER_BYTES} bytes, got ${bytes.length}`);
  return Buffer.from(bytes).readBigUInt64BE(0);
}

/** Creates the storage primary, saves its context and frees its slot; returns the context path. */
async function storagePrimary(s: ToolSession): Promise<string> {
  const context = s.path('primary.ctx');
  await s.run('tpm2_createprimary', [...STORAGE_PRIMARY, '-c', context]);
  await s.flushTransients();
  return context;
}

/**
 * Runs the chained PolicyPCR steps in a new trial session (writing the digest to `policyFile`)
 * or policy session; returns the saved session's path. The session lives in the TPM until the
 * operation's final flush.
 */
async function pcrPolicy(s: ToolSession, steps: readonly (readonly number[])[], kind: 'trial' | 'policy', policyFile?: string): Promise<string> {
  const session = s.path(`${kind}.session`);
  await s.run('tpm2_startauthsession', ['-S', session, ...(kind === 'policy' ? ['--policy-session'] : [])]);
  for (const [i, step] of steps.entries()) {
    const last = i === steps.length - 1 && policyFile !== undefined;
    await s.run('tpm2_policypcr', ['-S', session, '-l', `sha256:${step.join(',')}`, ...(last ? ['-L', policyFile] : [])]);
  }
  return session;
}
