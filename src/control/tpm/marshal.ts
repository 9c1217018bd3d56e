// The few TPM 2.0 structures that cross the tool boundary as files (TPM 2.0 Part 2; all
// integers big-endian, TPM2B_x = 2-byte size then bytes): signatures, ECC points, attestations.
import type { KeyObject } from 'node:crypto';

const TPM_ALG_ECDSA = 0x0018;
const TPM_ALG_SHA256 = 0x000b;
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
const P256_BYTES = 32;

/** An uncompressed P-256 point, each coordinate 32 bytes big-endian. */
export interface EccPoint {
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}

class Reader {
  private offset = 0;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  take(n: number): Uint8Array {
    if (this.offset + n > this.bytes.length) throw new TypeError(`${this.what}: truncated`);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(): number {
    return this.take(1)[0] ?? 0;
  }

  u16(): number {
    const b = this.take(2);
    return ((b[0] ?? 0) << 8) | (b[1] ?? 0);
  }

  u32(): number {
    return Buffer.from(this.take(4)).readUInt32BE(0);
  }

  u64(): bigint {
    return Buffer.from(this.take(8)).readBigUInt64BE(0);
  }

  tpm2b(): Uint8Array {
    return this.take(this.u16());
  }

  end(): void {
    if (this.offset !== this.bytes.length) throw new TypeError(`${this.what}: ${this.bytes.length - this.offset} trailing bytes`);
  }
}

/** Left-pads a big-endian integer to 32 bytes (TPMs drop leading zero bytes of r, s, x, y). */
export function pad32(value: Uint8Array): Uint8Array {
  if (value.length > P256_BYTES) throw new RangeError(`a P-256 value is at most 32 bytes, got ${value.length}`);
  const out = new Uint8Array(P256_BYTES);
  out.set(value, P256_BYTES - value.length);
  return out;
}

/** TPMT_SIGNATURE (ECDSA/SHA-256, tpm2-tools' default "tss" output) → raw r||s, 64 bytes. */
export function ecdsaSignatureToRaw(tpmtSignature: Uint8Array): Uint8Array {
  const r = new Reader(tpmtSignature, 'TPMT_SIGNATURE');
  const alg = r.u16();
  const hash = r.u16();
  if (alg !== TPM_ALG_ECDSA || hash !== TPM_ALG_SHA256) {
    throw new TypeError(`TPMT_SIGNATURE: expected ECDSA/SHA-256, got alg 0x${alg.toString(16)} hash 0x${hash.toString(16)}`);
  }
  const sigR = pad32(r.tpm2b());
  const sigS = pad32(r.tpm2b());
  r.end();
  return Buffer.concat([sigR, sigS]);
}

/** TPM2B_ECC_POINT, what tpm2_ecdhzgen reads (-u) and writes (-o) (§6 gotcha 4). */
export function encodeEccPoint(point: EccPoint): Uint8Array {
  const x = pad32(point.x);
  const y = pad32(point.y);
  const out = Buffer.alloc(2 + 2 + x.length + 2 + y.length);
  out.writeUInt16BE(out.length - 2, 0);
  out.writeUInt16BE(x.length, 2);
  out.set(x, 4);
  out.writeUInt16BE(y.length, 4 + x.length);
  out.set(y, 6 + x.length);
  return out;
}

export function decodeEccPoint(tpm2bPoint: Uint8Array): EccPoint {
  const outer = new Reader(tpm2bPoint, 'TPM2B_ECC_POINT');
  const inner = new Reader(outer.tpm2b(), 'TPMS_ECC_POINT');
  outer.end();
  const point = { x: pad32(inner.tpm2b()), y: pad32(inner.tpm2b()) };
  inner.end();
  return point;
}

/** The point of a P-256 public key (e.g. the device cert's, for EVE's self-ECDH). */
export function eccPointOf(publicKey: KeyObject): EccPoint {
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('not a P-256 key');
  }
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.x === undefined || jwk.y === undefined) throw new TypeError('the key has no point');
  return { x: pad32(Buffer.from(jwk.x, 'base64url')), y: pad32(Buffer.from(jwk.y, 'base64url')) };
}

/** The parts of a TPMS_ATTEST from TPM2_Quote that a verifier checks. */
export interface QuoteAttest {
  readonly magic: number;
  readonly type: number;
  readonly qualifiedSigner: Uint8Array;
  /** The caller's qualifying data: the verifier's nonce. */
  readonly extraData: Uint8Array;
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
  readonly firmwareVersion: bigint;
  /** Quoted PCR indices of the SHA-256 bank, ascending. */
  readonly pcrs: readonly number[];
  /** SHA-256 over the quoted PCR values concatenated in ascending index order. */
  readonly pcrDigest: Uint8Array;
}

/** Parses a quote's TPMS_ATTEST; throws TypeError if it is not a SHA-256-only quote. */
export function parseQuoteAttest(attest: Uint8Array): QuoteAttest {
  const r = new Reader(attest, 'TPMS_ATTEST');
  const magic = r.u32();
  const type = r.u16();
  if (magic !== TPM_GENERATED_VALUE || type !== TPM_ST_ATTEST_QUOTE) throw new TypeError('TPMS_ATTEST: not a TPM-generated quote');
  const qualifiedSigner = r.tpm2b();
  const extraData = r.tpm2b();
  const clock = r.u64();
  const resetCount = r.u32();
  const restartCount = r.u32();
  const safe = r.u8() !== 0;
  const firmwareVersion = r.u64();
  const pcrs: number[] = [];
  for (let banks = r.u32(); banks > 0; banks--) {
    const hash = r.u16();
    const bitmap = r.take(r.u8()); // TPMS_PCR_SELECTION: sizeofSelect is one byte
    if (hash !== TPM_ALG_SHA256) throw new TypeError(`TPMS_ATTEST: quotes a non-SHA-256 bank (0x${hash.toString(16)})`);
    bitmap.forEach((bits, byte) => {
      for (let bit = 0; bit < 8; bit++) if (bits & (1 << bit)) pcrs.push(byte * 8 + bit);
    });
  }
  const pcrDigest = r.tpm2b();
  r.end();
  return { magic, type, qualifiedSigner, extraData, clock, resetCount, restartCount, safe, firmwareVersion, pcrs, pcrDigest };
}
