// Encapsulated Control Message (RFC 9301 §5.8): a control message inside an IP/UDP header.
import type { ByteReader, ByteWriter } from './bytes.js';
import { DecodeError, type Quirk } from './errors.js';
import { readIpUdp, writeIpUdp, type IpHeader, type UdpHeader } from './ip-udp.js';
import { MESSAGE_TYPE } from './message-type.js';
import { readTrailer } from './trailer.js';

const F = {
  security: 0x08000000,
  ddt: 0x04000000,
  toEtr: 0x02000000,
  toMapServer: 0x01000000,
  rtrProcess: 0x00400000, // NAT traversal draft: an RTR must process it
  relayedByRtr: 0x00200000,
} as const;
const RESERVED_MASK = 0x00ffffff & ~(F.rtrProcess | F.relayedByRtr);

export interface Ecm<Inner> {
  readonly type: 'ecm';
  /** S: LISP-SEC authentication data follows the inner message (kept in `trailer`). */
  readonly security: boolean;
  readonly ddt: boolean;
  /** E: a map-server forwarding a Map-Request to the registering ETR. */
  readonly toEtr: boolean;
  /** M: destined to a map-server. */
  readonly toMapServer: boolean;
  readonly rtrProcess: boolean;
  readonly relayedByRtr: boolean;
  readonly reservedFlags: number;
  readonly ip: IpHeader;
  readonly udp: UdpHeader;
  readonly message: Inner;
  readonly trailer?: Uint8Array;
}

/** An ECM with no flag set: spread it and add ip, udp and message. */
export const ECM_DEFAULTS = {
  type: 'ecm',
  security: false,
  ddt: false,
  toEtr: false,
  toMapServer: false,
  rtrProcess: false,
  relayedByRtr: false,
  reservedFlags: 0,
} as const;

/** `readInner` decodes the encapsulated message; passed in so ECM does not depend on the dispatcher. */
export function readEcm<Inner>(r: ByteReader, quirks: Quirk[], readInner: (r: ByteReader) => Inner): Ecm<Inner> {
  const word0 = r.u32('ECM header');
  const { ip, udp, payloadLength } = readIpUdp(r);
  const inner = r.sub(payloadLength, 'encapsulated message');
  inner.need(1, 'encapsulated message');
  const innerType = (inner.bytes[inner.offset] ?? 0) >>> 4;
  if (innerType === MESSAGE_TYPE.ecm) throw new DecodeError('too-deep', inner.offset, 'an ECM inside an ECM');
  const message = readInner(inner);
  const { trailer } = readTrailer(r, quirks, false);
  return {
    type: 'ecm',
    security: (word0 & F.security) !== 0,
    ddt: (word0 & F.ddt) !== 0,
    toEtr: (word0 & F.toEtr) !== 0,
    toMapServer: (word0 & F.toMapServer) !== 0,
    rtrProcess: (word0 & F.rtrProcess) !== 0,
    relayedByRtr: (word0 & F.relayedByRtr) !== 0,
    reservedFlags: word0 & RESERVED_MASK,
    ip,
    udp,
    message,
    ...(trailer && { trailer }),
  };
}

export function writeEcm<Inner>(w: ByteWriter, m: Ecm<Inner>, encodeInner: (inner: Inner) => Uint8Array): void {
  if ((m.reservedFlags & ~RESERVED_MASK) !== 0) throw new RangeError('reservedFlags holds named bits');
  const word0 =
    (MESSAGE_TYPE.ecm << 28) |
    (m.security ? F.security : 0) |
    (m.ddt ? F.ddt : 0) |
    (m.toEtr ? F.toEtr : 0) |
    (m.toMapServer ? F.toMapServer : 0) |
    (m.rtrProcess ? F.rtrProcess : 0) |
    (m.relayedByRtr ? F.relayedByRtr : 0) |
    m.reservedFlags;
  w.u32(word0 >>> 0);
  writeIpUdp(w, m.ip, m.udp, encodeInner(m.message));
  if (m.trailer) w.bytes(m.trailer);
}
