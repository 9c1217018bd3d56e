// Map-Reply (RFC 9301 §5.4). A negative reply is a record with no locators and an action.
import type { ByteReader, ByteWriter } from './bytes.js';
import type { Quirk } from './errors.js';
import { MESSAGE_TYPE } from './message-type.js';
import { readEidRecord, writeEidRecord, type EidRecord } from './records.js';
import { readTrailer } from './trailer.js';

const F = { probe: 0x08000000, echoNonceCapable: 0x04000000, security: 0x02000000 } as const;
/** lispers.net writes a hop count at 0x0000ff00; keep whatever is there. */
const RESERVED_MASK = 0x01ffff00;

export interface MapReply {
  readonly type: 'map-reply';
  readonly probe: boolean;
  readonly echoNonceCapable: boolean;
  /** S: LISP-SEC data follows the records (kept in `trailer`). */
  readonly security: boolean;
  readonly reservedFlags: number;
  readonly nonce: bigint;
  readonly records: readonly EidRecord[];
  readonly trailer?: Uint8Array;
}

export function readMapReply(r: ByteReader, quirks: Quirk[]): MapReply {
  const word0 = r.u32('Map-Reply header');
  const nonce = r.u64('nonce');
  const records: EidRecord[] = [];
  for (let i = 0; i < (word0 & 0xff); i++) records.push(readEidRecord(r, quirks));
  const { trailer } = readTrailer(r, quirks, false);
  return {
    type: 'map-reply',
    probe: (word0 & F.probe) !== 0,
    echoNonceCapable: (word0 & F.echoNonceCapable) !== 0,
    security: (word0 & F.security) !== 0,
    reservedFlags: word0 & RESERVED_MASK,
    nonce,
    records,
    ...(trailer && { trailer }),
  };
}

export function writeMapReply(w: ByteWriter, m: MapReply): void {
  if (m.records.length > 255) throw new RangeError('a Map-Reply carries at most 255 records');
  if ((m.reservedFlags & ~RESERVED_MASK) !== 0) throw new RangeError('reservedFlags holds named bits');
  const word0 =
    (MESSAGE_TYPE.mapReply << 28) |
    (m.probe ? F.probe : 0) |
    (m.echoNonceCapable ? F.echoNonceCapable : 0) |
    (m.security ? F.security : 0) |
    m.reservedFlags |
    m.records.length;
  w.u32(word0 >>> 0).u64(m.nonce);
  for (const e of m.records) writeEidRecord(w, e);
  if (m.trailer) w.bytes(m.trailer);
}
