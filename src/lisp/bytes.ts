import { DecodeError } from './errors.js';

/**
 * Bounds-checked big-endian reader over a byte range. Every read checks the remaining length
 * first and throws DecodeError('truncated') with the absolute offset, so no RangeError can
 * escape a decoder.
 */
export class ByteReader {
  private pos: number;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** The last readable offset (exclusive). */
  get limit(): number {
    return this.end;
  }

  need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      throw new DecodeError('truncated', this.pos, `${what} needs ${n} bytes, ${this.end - this.pos} left`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  /** A copy, so decoded values never alias (and pin) a large receive buffer. */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    // Not bytes.slice(): on a Buffer that is a view, and the value would alias the input.
    const out = new Uint8Array(n);
    out.set(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  peekU16(what: string): number {
    this.need(2, what);
    return this.view.getUint16(this.pos);
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }

  /** A reader over the next n bytes; this reader moves past them. */
  sub(n: number, what: string): ByteReader {
    this.need(n, what);
    const inner = new ByteReader(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return inner;
  }

  /** A reader that continues from here but may not pass `limit`. */
  until(limit: number): ByteReader {
    return new ByteReader(this.bytes, this.pos, Math.min(limit, this.end));
  }

  /** Moves to an absolute offset inside the range (used after a bounded sub-parse). */
  seek(offset: number): void {
    if (offset < this.pos || offset > this.end) {
      throw new DecodeError('bad-length', this.pos, `cannot move to ${offset}`);
    }
    this.pos = offset;
  }
}

/** Encoders take typed values; a number that does not fit its field is a caller's bug. */
function checkField(v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`value ${v} does not fit a field of maximum ${max}`);
  }
}

/** For sub-fields packed by hand (flags, map-version, flow label): refuse what would spill over. */
export function checkBits(value: number, bits: number, name: string): number {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new RangeError(`${name} ${value} does not fit ${bits} bits`);
  }
  return value;
}

/** Growable big-endian writer; encoders build messages with it and take one final copy. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  get length(): number {
    return this.pos;
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  u8(v: number): this {
    checkField(v, 0xff);
    this.reserve(1);
    this.view.setUint8(this.pos++, v);
    return this;
  }

  u16(v: number): this {
    checkField(v, 0xffff);
    this.reserve(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }

  u32(v: number): this {
    checkField(v, 0xffffffff);
    this.reserve(4);
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
    return this;
  }

  u64(v: bigint): this {
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`value ${v} does not fit 64 bits`);
    this.reserve(8);
    this.view.setBigUint64(this.pos, v);
    this.pos += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Overwrites a 16-bit field written earlier (lengths known only after the body). */
  patchU16(at: number, v: number): void {
    checkField(v, 0xffff);
    this.view.setUint16(at, v);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));
}
