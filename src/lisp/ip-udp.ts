// The inner IPv4/IPv6 + UDP headers of an Encapsulated Control Message (RFC 9301 §5.8), with
// checksums. Also the Internet checksum used wherever the daemon writes IP packets itself.
import { checkBits, type ByteReader, type ByteWriter } from './bytes.js';
import { DecodeError } from './errors.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from './ip-text.js';

export type IpHeader =
  | {
      readonly version: 4;
      readonly tos: number;
      readonly identification: number;
      readonly dontFragment: boolean;
      readonly ttl: number;
      readonly source: string;
      readonly destination: string;
    }
  | {
      readonly version: 6;
      readonly trafficClass: number;
      readonly flowLabel: number;
      readonly hopLimit: number;
      readonly source: string;
      readonly destination: string;
    };

export interface UdpHeader {
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** lispers.net sends 0 (allowed for IPv4, RFC 6935 tunnels for IPv6); others compute it. */
  readonly checksum: 'computed' | 'zero';
}

const UDP = 17;

/** RFC 1071 ones'-complement sum, folded; `initial` carries a pseudo-header sum. */
export function onesComplementSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  const even = bytes.length & ~1;
  for (let i = 0; i < even; i += 2) sum += ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0);
  if (even !== bytes.length) sum += (bytes[even] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

export function internetChecksum(bytes: Uint8Array, initial = 0): number {
  return ~onesComplementSum(bytes, initial) & 0xffff;
}

function pseudoHeaderSum(ip: IpHeader, udpLength: number): number {
  const src = addressBytes(ip, ip.source);
  const dst = addressBytes(ip, ip.destination);
  // IPv6 widens length and next-header to 32 bits; below 64 KiB the sum is the same as IPv4's.
  return onesComplementSum(dst, onesComplementSum(src, UDP + udpLength));
}

function addressBytes(ip: IpHeader, text: string): Uint8Array {
  const bytes = ip.version === 4 ? parseIpv4(text) : parseIpv6(text);
  if (!bytes) throw new RangeError(`not an IPv${ip.version} address: ${text}`);
  return bytes;
}

/** UDP checksum over pseudo-header, UDP header (checksum field zero) and payload. 0 becomes 0xffff. */
export function udpChecksum(ip: IpHeader, udpHeaderAndPayload: Uint8Array): number {
  const c = internetChecksum(udpHeaderAndPayload, pseudoHeaderSum(ip, udpHeaderAndPayload.length));
  return c === 0 ? 0xffff : c;
}

/**
 * Reads an IPv4 (no options, unfragmented) or IPv6 (no extension headers) header and the UDP
 * header behind it. Checksums are verified unless the caller reads a capture, where checksum
 * offload leaves outgoing packets with checksums the NIC never filled in.
 */
export function readIpUdp(r: ByteReader, checks: { readonly verifyChecksums: boolean } = { verifyChecksums: true }): { ip: IpHeader; udp: UdpHeader; payloadLength: number } {
  const at = r.offset;
  const version = (r.bytes[at] ?? 0) >>> 4;
  let ip: IpHeader;
  let udpLength: number;
  if (version === 4) {
    const header = r.take(20, 'inner IPv4 header');
    if ((header[0] ?? 0) !== 0x45) throw new DecodeError('bad-value', at, 'inner IPv4 header with options');
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    const fragment = view.getUint16(6);
    if ((fragment & 0x3fff) !== 0) throw new DecodeError('bad-value', at + 6, 'fragmented inner IPv4 packet');
    if (header[9] !== UDP) throw new DecodeError('bad-value', at + 9, `inner protocol ${header[9]} is not UDP`);
    if (checks.verifyChecksums && internetChecksum(header) !== 0) throw new DecodeError('bad-checksum', at + 10, 'inner IPv4 header checksum');
    const total = view.getUint16(2);
    if (total < 28) throw new DecodeError('bad-length', at + 2, `inner IPv4 total length ${total}`);
    udpLength = total - 20;
    ip = {
      version: 4,
      tos: view.getUint8(1),
      identification: view.getUint16(4),
      dontFragment: (fragment & 0x4000) !== 0,
      ttl: view.getUint8(8),
      source: formatIpv4(header.subarray(12, 16)),
      destination: formatIpv4(header.subarray(16, 20)),
    };
  } else if (version === 6) {
    const header = r.take(40, 'inner IPv6 header');
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    if (header[6] !== UDP) throw new DecodeError('bad-value', at + 6, `inner next header ${header[6]} is not UDP`);
    const word0 = view.getUint32(0);
    udpLength = view.getUint16(4);
    ip = {
      version: 6,
      trafficClass: (word0 >>> 20) & 0xff,
      flowLabel: word0 & 0xfffff,
      hopLimit: view.getUint8(7),
      source: formatIpv6(header.subarray(8, 24)),
      destination: formatIpv6(header.subarray(24, 40)),
    };
  } else {
    throw new DecodeError('bad-ip-version', at, `inner IP version ${version}`);
  }
  const udpAt = r.offset;
  r.need(udpLength, 'inner UDP datagram');
  if (udpLength < 8) throw new DecodeError('bad-length', udpAt, `inner UDP length ${udpLength}`);
  const datagram = r.bytes.subarray(udpAt, udpAt + udpLength);
  const dv = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  if (dv.getUint16(4) !== udpLength) throw new DecodeError('bad-length', udpAt + 4, 'inner UDP length disagrees with the IP header');
  const sent = dv.getUint16(6);
  if (checks.verifyChecksums && sent !== 0 && internetChecksum(datagram, pseudoHeaderSum(ip, udpLength)) !== 0) {
    throw new DecodeError('bad-checksum', udpAt + 6, 'inner UDP checksum');
  }
  const udp: UdpHeader = { sourcePort: dv.getUint16(0), destinationPort: dv.getUint16(2), checksum: sent === 0 ? 'zero' : 'computed' };
  r.skip(8, 'inner UDP header');
  return { ip, udp, payloadLength: udpLength - 8 };
}

export function writeIpUdp(w: ByteWriter, ip: IpHeader, udp: UdpHeader, payload: Uint8Array): void {
  const udpLength = 8 + payload.length;
  checkBits(udpLength + (ip.version === 4 ? 20 : 0), 16, 'inner IP/UDP length');
  const datagram = new Uint8Array(udpLength);
  const dv = new DataView(datagram.buffer);
  dv.setUint16(0, checkBits(udp.sourcePort, 16, 'UDP source port'));
  dv.setUint16(2, checkBits(udp.destinationPort, 16, 'UDP destination port'));
  dv.setUint16(4, udpLength);
  datagram.set(payload, 8);
  if (udp.checksum === 'computed') dv.setUint16(6, udpChecksum(ip, datagram));
  if (ip.version === 4) {
    const header = new Uint8Array(20);
    const hv = new DataView(header.buffer);
    hv.setUint8(0, 0x45);
    hv.setUint8(1, checkBits(ip.tos, 8, 'TOS'));
    hv.setUint16(2, 20 + udpLength);
    hv.setUint16(4, checkBits(ip.identification, 16, 'identification'));
    hv.setUint16(6, ip.dontFragment ? 0x4000 : 0);
    hv.setUint8(8, checkBits(ip.ttl, 8, 'TTL'));
    hv.setUint8(9, UDP);
    header.set(addressBytes(ip, ip.source), 12);
    header.set(addressBytes(ip, ip.destination), 16);
    hv.setUint16(10, internetChecksum(header));
    w.bytes(header);
  } else {
    const word0 = (6 << 28) | (checkBits(ip.trafficClass, 8, 'traffic class') << 20) | checkBits(ip.flowLabel, 20, 'flow label');
    w.u32(word0 >>> 0).u16(udpLength).u8(UDP).u8(ip.hopLimit);
    w.bytes(addressBytes(ip, ip.source)).bytes(addressBytes(ip, ip.destination));
  }
  w.bytes(datagram);
}
