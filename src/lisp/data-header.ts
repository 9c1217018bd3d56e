// The 8-byte LISP data header (RFC 9300 §5.3) and the RFC 8061 key-id bits. Written in place
// into a packet's headroom on the hot path; read without allocating more than the result.
import { DecodeError, type DecodeResult, type Quirk } from './errors.js';

export const DATA_HEADER_LENGTH = 8;
/** IID 0xFFFFFF marks a control message carried in a data header (NAT traversal). */
export const CONTROL_IN_DATA_IID = 0xffffff;

const N = 0x80;
const L = 0x40;
const E = 0x20;
const V = 0x10;
const I = 0x08;
const R = 0x04;

export type KeyId = 0 | 1 | 2 | 3;

/** The 24-bit field after the flags: a nonce (N), a map-version pair (V), or nothing. */
export type NonceField =
  | { readonly kind: 'none' }
  | { readonly kind: 'nonce'; readonly nonce: number; readonly echoRequest: boolean }
  | { readonly kind: 'map-version'; readonly source: number; readonly destination: number };

export interface DataHeader {
  readonly nonceField: NonceField;
  /** Present when I is set; a receiver treats absence as instance 0. */
  readonly instanceId?: number;
  /** Locator-status bits when L is set: 8 of them with an IID, else 32. */
  readonly locatorStatusBits?: number;
  /** The R bit (reserved; send 0, ignore). Kept so captures re-encode. */
  readonly reservedBit: boolean;
  /** RFC 8061: 0 = clear, 1..3 = which key sealed the payload. */
  readonly keyId: KeyId;
}

export function decodeDataHeader(bytes: Uint8Array, offset = 0): DecodeResult<DataHeader> {
  if (bytes.length - offset < DATA_HEADER_LENGTH) {
    return fail('truncated', offset, `a LISP data header needs 8 bytes, ${Math.max(0, bytes.length - offset)} left`);
  }
  const flags = bytes[offset] ?? 0;
  const field = (((bytes[offset + 1] ?? 0) << 16) | ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0)) >>> 0;
  const word1 = (((bytes[offset + 4] ?? 0) << 24) | ((bytes[offset + 5] ?? 0) << 16) | ((bytes[offset + 6] ?? 0) << 8) | (bytes[offset + 7] ?? 0)) >>> 0;
  if ((flags & N) !== 0 && (flags & V) !== 0) return fail('conflicting-flags', offset, 'N and V are both set');
  const quirks: Quirk[] = [];
  // RFC 9300 §5.3: fields whose flag is clear are ignored on receipt (E without N included).
  let nonceField: NonceField;
  if ((flags & N) !== 0) nonceField = { kind: 'nonce', nonce: field, echoRequest: (flags & E) !== 0 };
  else if ((flags & V) !== 0) nonceField = { kind: 'map-version', source: field >>> 12, destination: field & 0xfff };
  else nonceField = { kind: 'none' };
  if (((flags & (N | V)) === 0 && field !== 0) || (flags & (N | E)) === E) quirks.push({ quirk: 'ignored-bits', offset });
  const hasIid = (flags & I) !== 0;
  const hasLsbs = (flags & L) !== 0;
  const lsbs = hasIid ? word1 & 0xff : word1;
  if (!hasLsbs && lsbs !== 0) quirks.push({ quirk: 'ignored-bits', offset: offset + 4 });
  const header: DataHeader = {
    nonceField,
    reservedBit: (flags & R) !== 0,
    keyId: (flags & 0x03) as KeyId,
    ...(hasIid && { instanceId: word1 >>> 8 }),
    ...(hasLsbs && { locatorStatusBits: lsbs }),
  };
  return { ok: true, value: header, quirks };
}

function fail(reason: 'truncated' | 'conflicting-flags', offset: number, detail: string): DecodeResult<never> {
  return { ok: false, error: new DecodeError(reason, offset, detail) };
}

/** Writes the header at `offset` (headroom in front of the payload); returns the bytes written. */
export function writeDataHeader(out: Uint8Array, offset: number, h: DataHeader): number {
  if (out.length - offset < DATA_HEADER_LENGTH) throw new RangeError('no room for a LISP data header');
  const iid = h.instanceId;
  const lsbs = h.locatorStatusBits;
  if (iid !== undefined && (iid < 0 || iid > 0xffffff || !Number.isInteger(iid))) throw new RangeError(`instance-id ${iid} does not fit 24 bits`);
  if (lsbs !== undefined && (lsbs < 0 || lsbs > (iid === undefined ? 0xffffffff : 0xff))) throw new RangeError('locator-status bits do not fit');
  let flags = h.keyId | (h.reservedBit ? R : 0) | (iid !== undefined ? I : 0) | (lsbs !== undefined ? L : 0);
  let field = 0;
  switch (h.nonceField.kind) {
    case 'none':
      break;
    case 'nonce':
      flags |= N | (h.nonceField.echoRequest ? E : 0);
      field = h.nonceField.nonce;
      break;
    case 'map-version':
      if (h.nonceField.source > 0xfff || h.nonceField.destination > 0xfff) throw new RangeError('map-versions are 12 bits');
      flags |= V;
      field = (h.nonceField.source << 12) | h.nonceField.destination;
      break;
  }
  if (field < 0 || field > 0xffffff) throw new RangeError('nonce / map-version does not fit 24 bits');
  const word1 = iid !== undefined ? ((iid << 8) | (lsbs ?? 0)) >>> 0 : (lsbs ?? 0) >>> 0;
  out[offset] = flags;
  out[offset + 1] = field >>> 16;
  out[offset + 2] = (field >>> 8) & 0xff;
  out[offset + 3] = field & 0xff;
  out[offset + 4] = word1 >>> 24;
  out[offset + 5] = (word1 >>> 16) & 0xff;
  out[offset + 6] = (word1 >>> 8) & 0xff;
  out[offset + 7] = word1 & 0xff;
  return DATA_HEADER_LENGTH;
}

export function encodeDataHeader(h: DataHeader): Uint8Array {
  const out = new Uint8Array(DATA_HEADER_LENGTH);
  writeDataHeader(out, 0, h);
  return out;
}
