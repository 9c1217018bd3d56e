// Link-layer framing around IP packets: strips the headers of the link types captures use, and
// wraps IP packets in Ethernet for writing captures. Pure, and allocation-free on the strip path
// apart from the result: payloads are subarrays of the frame.

import {
  LINKTYPE_ETHERNET,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_NULL,
  LINKTYPE_RAW,
} from './pcap-file.js';

export type IpVersion = 4 | 6;

export type LinkLayerFailure = 'unsupported-link-type' | 'not-ip' | 'truncated';

export type NetworkPayload =
  | { readonly ok: true; readonly ipVersion: IpVersion; readonly packet: Uint8Array }
  | { readonly ok: false; readonly reason: LinkLayerFailure };

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100; // 802.1Q
const ETHERTYPE_QINQ = 0x88a8; // 802.1ad service tag
const MAX_VLAN_TAGS = 2;

const ETHERNET_HEADER_LENGTH = 14;
const SLL_HEADER_LENGTH = 16;
const SLL2_HEADER_LENGTH = 20;
const NULL_HEADER_LENGTH = 4;

const AF_INET = 2;
/** BSD loopback AF_INET6 differs by OS: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30. */
const AF_INET6_VALUES: ReadonlySet<number> = new Set([24, 28, 30]);

const MIN_HEADER_LENGTH: Readonly<Record<IpVersion, number>> = { 4: 20, 6: 40 };

// Failures carry no data, so they are shared instead of allocated per frame.
const UNSUPPORTED: NetworkPayload = { ok: false, reason: 'unsupported-link-type' };
const NOT_IP: NetworkPayload = { ok: false, reason: 'not-ip' };
const TRUNCATED: NetworkPayload = { ok: false, reason: 'truncated' };

/** The IP packet inside a captured frame of the given link type, as a subarray of `frame`. */
export function networkPayload(linkType: number, frame: Uint8Array): NetworkPayload {
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      return ethernetPayload(frame);
    case LINKTYPE_RAW:
      return rawPayload(frame);
    case LINKTYPE_LINUX_SLL:
      return byEtherType(be16(frame, 14), frame, SLL_HEADER_LENGTH);
    case LINKTYPE_LINUX_SLL2:
      return byEtherType(be16(frame, 0), frame, SLL2_HEADER_LENGTH);
    case LINKTYPE_NULL:
      return loopbackPayload(frame);
    default:
      return UNSUPPORTED;
  }
}

/** Big-endian u16 at `offset`, or undefined past the end of the frame. */
function be16(frame: Uint8Array, offset: number): number | undefined {
  const high = frame[offset];
  const low = frame[offset + 1];
  return high === undefined || low === undefined ? undefined : (high << 8) | low;
}

function ethernetPayload(frame: Uint8Array): NetworkPayload {
  let typeOffset = ETHERNET_HEADER_LENGTH - 2;
  let etherType = be16(frame, typeOffset);
  for (let tags = 0; tags < MAX_VLAN_TAGS && isVlanTag(etherType); tags++) {
    typeOffset += 4; // tag control information, then the next EtherType
    etherType = be16(frame, typeOffset);
  }
  return byEtherType(etherType, frame, typeOffset + 2);
}

function isVlanTag(etherType: number | undefined): boolean {
  return etherType === ETHERTYPE_VLAN || etherType === ETHERTYPE_QINQ;
}

function byEtherType(etherType: number | undefined, frame: Uint8Array, headerLength: number): NetworkPayload {
  if (etherType === undefined || frame.length < headerLength) return TRUNCATED;
  if (etherType === ETHERTYPE_IPV4) return ipPacket(frame.subarray(headerLength), 4);
  if (etherType === ETHERTYPE_IPV6) return ipPacket(frame.subarray(headerLength), 6);
  return NOT_IP;
}

function rawPayload(frame: Uint8Array): NetworkPayload {
  const first = frame[0];
  if (first === undefined) return TRUNCATED;
  const version = first >> 4;
  return version === 4 || version === 6 ? ipPacket(frame, version) : NOT_IP;
}

/** The 4-byte address family is in the capturing host's byte order. Families are small, so a
 *  big-endian host leaves the high half zero; otherwise the family is the byte-swapped high half
 *  (Wireshark's heuristic too). */
function loopbackPayload(frame: Uint8Array): NetworkPayload {
  const high = be16(frame, 0);
  const low = be16(frame, 2);
  if (high === undefined || low === undefined) return TRUNCATED;
  const family = high === 0 ? low : ((high & 0xff) << 8) | (high >> 8);
  const packet = frame.subarray(NULL_HEADER_LENGTH);
  if (family === AF_INET) return ipPacket(packet, 4);
  if (AF_INET6_VALUES.has(family)) return ipPacket(packet, 6);
  return NOT_IP;
}

/** Checks the version nibble agrees with the link layer, and trims to the IP length so that
 *  Ethernet's padding of short frames (to 60 bytes) does not reach the IP decoder. A length
 *  longer than the bytes present (a snap-length cut) is left for the decoder to judge. */
function ipPacket(packet: Uint8Array, version: IpVersion): NetworkPayload {
  const first = packet[0];
  if (first === undefined || packet.length < MIN_HEADER_LENGTH[version]) return TRUNCATED;
  if (first >> 4 !== version) return NOT_IP;
  const declared = declaredLength(packet, version);
  const trimmed = declared >= MIN_HEADER_LENGTH[version] && declared < packet.length;
  return { ok: true, ipVersion: version, packet: trimmed ? packet.subarray(0, declared) : packet };
}

/** Total length from the IP header; 0 for an IPv6 jumbogram, whose length is in an option. */
function declaredLength(packet: Uint8Array, version: IpVersion): number {
  if (version === 4) return be16(packet, 2) ?? 0;
  const payloadLength = be16(packet, 4) ?? 0;
  return payloadLength === 0 ? 0 : 40 + payloadLength;
}

/** Fixed locally administered addresses: captures written by lispnode show one "wire". */
const SOURCE_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01] as const;
const DESTINATION_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02] as const;

/** Wraps an IP packet in an Ethernet II header (02:00:00:00:00:01 -> 02:00:00:00:00:02), the
 *  EtherType taken from the version nibble. Throws RangeError for anything but IPv4/IPv6. */
export function ethernetFrame(ipPacket: Uint8Array): Uint8Array {
  const version = (ipPacket[0] ?? 0) >> 4;
  if (version !== 4 && version !== 6) throw new RangeError(`not an IP packet (version ${version})`);
  const etherType = version === 4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6;
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + ipPacket.length);
  frame.set(DESTINATION_MAC, 0);
  frame.set(SOURCE_MAC, 6);
  frame[12] = etherType >> 8;
  frame[13] = etherType & 0xff;
  frame.set(ipPacket, ETHERNET_HEADER_LENGTH);
  return frame;
}
