// Info-Request / Info-Reply (NAT traversal, draft-ietf-lisp-nat-traversal §5; lispers.net's
// variant differs only in what it puts in the fields, see docs/interop.md).
import { readAddress, writeAddress, type Address } from './address.js';
import type { ByteReader, ByteWriter } from './bytes.js';
import type { Quirk } from './errors.js';
import { MESSAGE_TYPE } from './message-type.js';
import { readTrailer } from './trailer.js';

const REPLY = 0x08000000;
const RESERVED_MASK = 0x07ffffff;

export interface InfoMessage {
  readonly type: 'info-request' | 'info-reply';
  readonly reservedFlags: number;
  readonly nonce: bigint;
  readonly keyId: number;
  readonly algorithmId: number;
  readonly authData: Uint8Array;
  /** Minutes. */
  readonly ttl: number;
  readonly reserved: number;
  readonly eidMaskLength: number;
  readonly eid: Address;
  /**
   * The final field: AFI none in an IETF Info-Request, a hostname (AFI 17) in lispers.net's, and
   * the NAT-Traversal LCAF in an Info-Reply.
   */
  readonly trailingAddress: Address;
  readonly trailer?: Uint8Array;
}

export function readInfo(r: ByteReader, quirks: Quirk[]): InfoMessage {
  const word0 = r.u32('Info header');
  const nonce = r.u64('nonce');
  const keyId = r.u8('Key ID');
  const algorithmId = r.u8('Algorithm ID');
  const authData = r.take(r.u16('Authentication Data Length'), 'Authentication Data');
  const ttl = r.u32('TTL');
  const reserved = r.u8('Reserved');
  const eidMaskLength = r.u8('EID mask-len');
  const eid = readAddress(r, quirks);
  const trailingAddress = readAddress(r, quirks);
  const { trailer } = readTrailer(r, quirks, false);
  return {
    type: (word0 & REPLY) !== 0 ? 'info-reply' : 'info-request',
    reservedFlags: word0 & RESERVED_MASK,
    nonce,
    keyId,
    algorithmId,
    authData,
    ttl,
    reserved,
    eidMaskLength,
    eid,
    trailingAddress,
    ...(trailer && { trailer }),
  };
}

export function writeInfo(w: ByteWriter, m: InfoMessage): void {
  if ((m.reservedFlags & ~RESERVED_MASK) !== 0) throw new RangeError('reservedFlags holds named bits');
  w.u32(((MESSAGE_TYPE.info << 28) | (m.type === 'info-reply' ? REPLY : 0) | m.reservedFlags) >>> 0).u64(m.nonce);
  w.u8(m.keyId).u8(m.algorithmId).u16(m.authData.length).bytes(m.authData);
  w.u32(m.ttl).u8(m.reserved).u8(m.eidMaskLength);
  writeAddress(w, m.eid);
  writeAddress(w, m.trailingAddress);
  if (m.trailer) w.bytes(m.trailer);
}
