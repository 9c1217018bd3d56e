// Builds whole IPv4/IPv6 + UDP packets around a payload, as a capture with LINKTYPE_RAW holds
// them: a correct IPv4 header checksum and (unless asked for zero) a correct UDP checksum.
// Tests put only 198.18.0.0/15 (RFC 2544 benchmarking) addresses in the outer header.
import { internetChecksum, parseIpv4, parseIpv6, udpChecksum, type IpHeader } from '../../src/lisp/index.js';

export const LISP_DATA_PORT = 4341;
export const LISP_CONTROL_PORT = 4342;

const UDP = 17;

export interface UdpPacketSpec {
  /** IPv4 or IPv6 text; source and destination must be of the same family. */
  readonly source: string;
  readonly destination: string;
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly payload: Uint8Array;
  /** IPv4 TTL or IPv6 hop limit; default 64. */
  readonly ttl?: number;
  /** IPv4 TOS or IPv6 traffic class; default 0. */
  readonly tos?: number;
  /** IPv4 identification; default 0. */
  readonly identification?: number;
  /** IPv4 DF bit; default false. */
  readonly dontFragment?: boolean;
  /** IPv6 flow label; default 0. */
  readonly flowLabel?: number;
  /** Default 'computed'. Zero is legal for IPv4 only (RFC 6935 tunnels aside). */
  readonly udpChecksum?: 'computed' | 'zero';
}

/** The IpHeader (src/lisp/ip-udp.ts) a spec describes: the pseudo-header for the UDP checksum. */
export function ipHeaderOf(spec: UdpPacketSpec): IpHeader {
  if (isIpv6(spec.source) !== isIpv6(spec.destination)) {
    throw new RangeError(`mixed address families: ${spec.source} -> ${spec.destination}`);
  }
  return isIpv6(spec.source)
    ? {
        version: 6,
        trafficClass: spec.tos ?? 0,
        flowLabel: spec.flowLabel ?? 0,
        hopLimit: spec.ttl ?? 64,
        source: spec.source,
        destination: spec.destination,
      }
    : {
        version: 4,
        tos: spec.tos ?? 0,
        identification: spec.identification ?? 0,
        dontFragment: spec.dontFragment ?? false,
        ttl: spec.ttl ?? 64,
        source: spec.source,
        destination: spec.destination,
      };
}

/** The UDP header and payload, with the checksum over the pseudo-header of `ip`. */
export function udpDatagram(ip: IpHeader, spec: UdpPacketSpec): Uint8Array {
  const length = 8 + spec.payload.length;
  if (length > 0xffff) throw new RangeError(`UDP datagram of ${length} bytes`);
  const datagram = new Uint8Array(length);
  const view = new DataView(datagram.buffer);
  view.setUint16(0, checkPort(spec.sourcePort));
  view.setUint16(2, checkPort(spec.destinationPort));
  view.setUint16(4, length);
  datagram.set(spec.payload, 8);
  if ((spec.udpChecksum ?? 'computed') === 'computed') view.setUint16(6, udpChecksum(ip, datagram));
  return datagram;
}

/** A complete IPv4 or IPv6 packet (no options, no extension headers) carrying one UDP datagram. */
export function ipUdpPacket(spec: UdpPacketSpec): Uint8Array {
  const ip = ipHeaderOf(spec);
  const datagram = udpDatagram(ip, spec);
  let header: Uint8Array;
  if (ip.version === 4) {
    header = new Uint8Array(20);
    const view = new DataView(header.buffer);
    view.setUint8(0, 0x45);
    view.setUint8(1, ip.tos);
    view.setUint16(2, 20 + datagram.length);
    view.setUint16(4, ip.identification);
    view.setUint16(6, ip.dontFragment ? 0x4000 : 0);
    view.setUint8(8, ip.ttl);
    view.setUint8(9, UDP);
    header.set(addressBytes(ip.source), 12);
    header.set(addressBytes(ip.destination), 16);
    view.setUint16(10, internetChecksum(header));
  } else {
    header = new Uint8Array(40);
    const view = new DataView(header.buffer);
    view.setUint32(0, ((6 << 28) | (ip.trafficClass << 20) | ip.flowLabel) >>> 0);
    view.setUint16(4, datagram.length);
    view.setUint8(6, UDP);
    view.setUint8(7, ip.hopLimit);
    header.set(addressBytes(ip.source), 8);
    header.set(addressBytes(ip.destination), 24);
  }
  const packet = new Uint8Array(header.length + datagram.length);
  packet.set(header, 0);
  packet.set(datagram, header.length);
  return packet;
}

/** A LISP control message on UDP 4342 (from 4342 unless another source port is given). */
export function controlPacket(payload: Uint8Array, options: Partial<Omit<UdpPacketSpec, 'payload'>> = {}): Uint8Array {
  return ipUdpPacket({
    source: '198.18.0.1',
    destination: '198.18.0.2',
    sourcePort: LISP_CONTROL_PORT,
    destinationPort: LISP_CONTROL_PORT,
    ...options,
    payload,
  });
}

/** A LISP-encapsulated data packet on UDP 4341: `payload` is the 8-byte header and the inner packet. */
export function dataPacket(payload: Uint8Array, options: Partial<Omit<UdpPacketSpec, 'payload'>> = {}): Uint8Array {
  return ipUdpPacket({
    source: '198.18.0.1',
    destination: '198.18.0.2',
    sourcePort: LISP_DATA_PORT,
    destinationPort: LISP_DATA_PORT,
    ...options,
    payload,
  });
}

function isIpv6(text: string): boolean {
  return text.includes(':');
}

function addressBytes(text: string): Uint8Array {
  const bytes = isIpv6(text) ? parseIpv6(text) : parseIpv4(text);
  if (!bytes) throw new RangeError(`not an IP address: ${text}`);
  return bytes;
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`bad UDP port ${port}`);
  return port;
}
