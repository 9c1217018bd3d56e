// Map-Request (RFC 9301 §5.2), including RLOC-probes, SMRs and the optional Map-Reply record.
import { readAddress, writeAddress, type Address } from './address.js';
import type { ByteReader, ByteWriter } from './bytes.js';
import type { Quirk } from './errors.js';
import { MESSAGE_TYPE } from './message-type.js';
import { readEidRecord, readRequestRecord, writeEidRecord, writeRequestRecord, type EidRecord, type RequestRecord } from './records.js';
import { readTrailer } from './trailer.js';
import { writeXtrIdentity, type XtrIdentity } from './xtr-identity.js';

const F = {
  authoritative: 0x08000000,
  mapDataPresent: 0x04000000,
  probe: 0x02000000,
  smr: 0x01000000,
  pitr: 0x00800000,
  smrInvoked: 0x00400000,
  xtrIdentity: 0x00100000, // RFC 9437 I bit
  localXtr: 0x00004000,
  dontMapReply: 0x00002000,
} as const;
/** Bits with no name here (RFC-reserved; lispers.net: 0x00200000 mobile, 0x8000 decent-NAT). */
const RESERVED_MASK = 0x00200000 | 0x000f8000;

export interface MapRequest {
  readonly type: 'map-request';
  readonly authoritative: boolean;
  readonly probe: boolean;
  readonly smr: boolean;
  readonly pitr: boolean;
  readonly smrInvoked: boolean;
  readonly localXtr: boolean;
  readonly dontMapReply: boolean;
  readonly reservedFlags: number;
  readonly nonce: bigint;
  readonly sourceEid: Address;
  /** 1 to 32 addresses the reply may go to; the first may carry a Security Key LCAF. */
  readonly itrRlocs: readonly Address[];
  readonly records: readonly RequestRecord[];
  /** Present when M is set: the requester's own mapping. */
  readonly mapReply?: EidRecord;
  readonly xtrIdentity?: XtrIdentity;
  readonly trailer?: Uint8Array;
}

export function readMapRequest(r: ByteReader, quirks: Quirk[]): MapRequest {
  const word0 = r.u32('Map-Request header');
  const irc = (word0 >>> 8) & 0x1f;
  const recordCount = word0 & 0xff;
  const nonce = r.u64('nonce');
  const sourceEid = readAddress(r, quirks);
  const itrRlocs: Address[] = [];
  for (let i = 0; i <= irc; i++) itrRlocs.push(readAddress(r, quirks));
  const records: RequestRecord[] = [];
  for (let i = 0; i < recordCount; i++) records.push(readRequestRecord(r, quirks));
  const mapReply = (word0 & F.mapDataPresent) !== 0 ? readEidRecord(r, quirks) : undefined;
  const { xtrIdentity, trailer } = readTrailer(r, quirks, (word0 & F.xtrIdentity) !== 0);
  return {
    type: 'map-request',
    authoritative: (word0 & F.authoritative) !== 0,
    probe: (word0 & F.probe) !== 0,
    smr: (word0 & F.smr) !== 0,
    pitr: (word0 & F.pitr) !== 0,
    smrInvoked: (word0 & F.smrInvoked) !== 0,
    localXtr: (word0 & F.localXtr) !== 0,
    dontMapReply: (word0 & F.dontMapReply) !== 0,
    reservedFlags: word0 & RESERVED_MASK,
    nonce,
    sourceEid,
    itrRlocs,
    records,
    ...(mapReply && { mapReply }),
    ...(xtrIdentity && { xtrIdentity }),
    ...(trailer && { trailer }),
  };
}

export function writeMapRequest(w: ByteWriter, m: MapRequest): void {
  if (m.itrRlocs.length < 1 || m.itrRlocs.length > 32) throw new RangeError('a Map-Request carries 1 to 32 ITR-RLOCs');
  if (m.records.length > 255) throw new RangeError('a Map-Request carries at most 255 records');
  if ((m.reservedFlags & ~RESERVED_MASK) !== 0) throw new RangeError('reservedFlags holds named bits');
  const word0 =
    (MESSAGE_TYPE.mapRequest << 28) |
    (m.authoritative ? F.authoritative : 0) |
    (m.mapReply ? F.mapDataPresent : 0) |
    (m.probe ? F.probe : 0) |
    (m.smr ? F.smr : 0) |
    (m.pitr ? F.pitr : 0) |
    (m.smrInvoked ? F.smrInvoked : 0) |
    (m.xtrIdentity ? F.xtrIdentity : 0) |
    (m.localXtr ? F.localXtr : 0) |
    (m.dontMapReply ? F.dontMapReply : 0) |
    m.reservedFlags |
    ((m.itrRlocs.length - 1) << 8) |
    m.records.length;
  w.u32(word0 >>> 0).u64(m.nonce);
  writeAddress(w, m.sourceEid);
  for (const a of m.itrRlocs) writeAddress(w, a);
  for (const q of m.records) writeRequestRecord(w, q);
  if (m.mapReply) writeEidRecord(w, m.mapReply);
  if (m.trailer) w.bytes(m.trailer);
  if (m.xtrIdentity) writeXtrIdentity(w, m.xtrIdentity);
}

export const MAP_REQUEST_DEFAULTS = {
  type: 'map-request',
  authoritative: false,
  probe: false,
  smr: false,
  pitr: false,
  smrInvoked: false,
  localXtr: false,
  dontMapReply: false,
  reservedFlags: 0,
} as const;
