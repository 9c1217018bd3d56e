// Map-Register (RFC 9301 §5.6), Map-Notify and Map-Notify-Ack (§5.7): one layout, three types.
// They share the authentication block at byte 12 that auth.ts computes and verifies.
import type { ByteReader, ByteWriter } from './bytes.js';
import type { Quirk } from './errors.js';
import { MESSAGE_TYPE } from './message-type.js';
import { readEidRecord, writeEidRecord, type EidRecord } from './records.js';
import { readTrailer } from './trailer.js';
import { writeXtrIdentity, type XtrIdentity } from './xtr-identity.js';

/** Key-ID/Algorithm-ID (RFC 9301 §5.6; IANA "LISP Algorithm ID"). */
export const AUTH_ALGORITHM = { none: 0, hmacSha1: 1, hmacSha256: 2 } as const;

interface Authenticated {
  readonly nonce: bigint;
  readonly keyId: number;
  readonly algorithmId: number;
  /** Announced length = authData.length; zeros until auth.ts fills in the MAC. */
  readonly authData: Uint8Array;
  readonly records: readonly EidRecord[];
  readonly xtrIdentity?: XtrIdentity;
  readonly trailer?: Uint8Array;
}

export interface MapRegister extends Authenticated {
  readonly type: 'map-register';
  /** P: the map-server should answer Map-Requests for these EIDs itself. */
  readonly proxyReply: boolean;
  /** S: LISP-SEC capable. */
  readonly securityCapable: boolean;
  /** M: acknowledge with a Map-Notify. */
  readonly wantMapNotify: boolean;
  /** T: time the registration out after the record TTL rather than the default 3 minutes. */
  readonly useTtlForTimeout: boolean;
  /** Other bits (OOR: R 0x01000000; lispers.net: merge 0x400, mobile 0x200, refresh 0x1000). */
  readonly reservedFlags: number;
}

export interface MapNotify extends Authenticated {
  readonly type: 'map-notify' | 'map-notify-ack';
  /** R (NAT traversal): RTR authentication data follows. Kept with the other bits. */
  readonly reservedFlags: number;
}

const REGISTER = {
  proxyReply: 0x08000000,
  securityCapable: 0x04000000,
  xtrIdentity: 0x02000000,
  useTtlForTimeout: 0x00000800,
  wantMapNotify: 0x00000100,
} as const;
const REGISTER_RESERVED = 0x0dffff00 & ~(REGISTER.proxyReply | REGISTER.securityCapable | REGISTER.xtrIdentity | REGISTER.useTtlForTimeout | REGISTER.wantMapNotify);
const NOTIFY_XTR_IDENTITY = 0x08000000;
const NOTIFY_RESERVED = 0x0fffff00 & ~NOTIFY_XTR_IDENTITY;

/** Offset of the authentication data in all three messages. */
export const AUTH_DATA_OFFSET = 16;

export function readMapRegister(r: ByteReader, quirks: Quirk[]): MapRegister {
  const word0 = r.u32('Map-Register header');
  const body = readAuthenticatedBody(r, quirks, word0, (word0 & REGISTER.xtrIdentity) !== 0, false);
  return {
    type: 'map-register',
    proxyReply: (word0 & REGISTER.proxyReply) !== 0,
    securityCapable: (word0 & REGISTER.securityCapable) !== 0,
    wantMapNotify: (word0 & REGISTER.wantMapNotify) !== 0,
    useTtlForTimeout: (word0 & REGISTER.useTtlForTimeout) !== 0,
    reservedFlags: word0 & REGISTER_RESERVED,
    ...body,
  };
}

export function readMapNotify(r: ByteReader, quirks: Quirk[]): MapNotify {
  const word0 = r.u32('Map-Notify header');
  const type = word0 >>> 28 === MESSAGE_TYPE.mapNotify ? 'map-notify' : 'map-notify-ack';
  const body = readAuthenticatedBody(r, quirks, word0, (word0 & NOTIFY_XTR_IDENTITY) !== 0, true);
  return { type, reservedFlags: word0 & NOTIFY_RESERVED, ...body };
}

function readAuthenticatedBody(r: ByteReader, quirks: Quirk[], word0: number, xtrAnnounced: boolean, isNotify: boolean): Authenticated {
  const nonce = r.u64('nonce');
  const keyId = r.u8('Key ID');
  const algorithmId = r.u8('Algorithm ID');
  const authLength = r.u16('Authentication Data Length');
  const authData = r.take(authLength, 'Authentication Data');
  const records: EidRecord[] = [];
  for (let i = 0; i < (word0 & 0xff); i++) records.push(readEidRecord(r, quirks));
  // lispers.net copies the Map-Register's xTR-ID/site-ID into its Map-Notify without setting I.
  const copiedTrailer = isNotify && !xtrAnnounced && r.remaining === 24;
  const { xtrIdentity, trailer } = readTrailer(r, quirks, xtrAnnounced, copiedTrailer ? 'map-notify-trailer' : 'trailing-bytes');
  return { nonce, keyId, algorithmId, authData, records, ...(xtrIdentity && { xtrIdentity }), ...(trailer && { trailer }) };
}

export function writeMapRegister(w: ByteWriter, m: MapRegister): void {
  if ((m.reservedFlags & ~REGISTER_RESERVED) !== 0) throw new RangeError('reservedFlags holds named bits');
  const word0 =
    (MESSAGE_TYPE.mapRegister << 28) |
    (m.proxyReply ? REGISTER.proxyReply : 0) |
    (m.securityCapable ? REGISTER.securityCapable : 0) |
    (m.xtrIdentity ? REGISTER.xtrIdentity : 0) |
    (m.useTtlForTimeout ? REGISTER.useTtlForTimeout : 0) |
    (m.wantMapNotify ? REGISTER.wantMapNotify : 0) |
    m.reservedFlags;
  writeAuthenticated(w, word0, m);
}

export function writeMapNotify(w: ByteWriter, m: MapNotify): void {
  if ((m.reservedFlags & ~NOTIFY_RESERVED) !== 0) throw new RangeError('reservedFlags holds named bits');
  const type = m.type === 'map-notify' ? MESSAGE_TYPE.mapNotify : MESSAGE_TYPE.mapNotifyAck;
  writeAuthenticated(w, (type << 28) | (m.xtrIdentity ? NOTIFY_XTR_IDENTITY : 0) | m.reservedFlags, m);
}

function writeAuthenticated(w: ByteWriter, word0: number, m: Authenticated): void {
  if (m.records.length > 255) throw new RangeError('at most 255 records per message');
  w.u32((word0 | m.records.length) >>> 0).u64(m.nonce);
  w.u8(m.keyId).u8(m.algorithmId).u16(m.authData.length).bytes(m.authData);
  for (const e of m.records) writeEidRecord(w, e);
  if (m.trailer) w.bytes(m.trailer);
  if (m.xtrIdentity) writeXtrIdentity(w, m.xtrIdentity);
}
