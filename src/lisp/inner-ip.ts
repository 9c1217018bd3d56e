// Reading the inner (EID) IP header in place, on the data-plane hot path: no allocation.

export const IPV4_SOURCE = 12;
export const IPV4_DESTINATION = 16;
export const IPV6_SOURCE = 8;
export const IPV6_DESTINATION = 24;

export type IpFamily = 4 | 6;

/** 4, 6, or 0 when the first nibble is neither (or the packet is too short for its header). */
export function ipFamily(buf: Uint8Array, offset: number, length: number): IpFamily | 0 {
  const version = (buf[offset] ?? 0) >>> 4;
  if (version === 4 && length >= 20) return 4;
  if (version === 6 && length >= 40) return 6;
  return 0;
}

/**
 * The packet's own length from its header (IPv4 total length; IPv6 40 + payload length), or -1
 * when the header is inconsistent with the bytes available. Decryptors pad (suite 2 with spaces),
 * so the ETR trims to this.
 */
export function ipPacketLength(buf: Uint8Array, offset: number, available: number, family: IpFamily): number {
  const declared =
    family === 4
      ? ((buf[offset + 2] ?? 0) << 8) | (buf[offset + 3] ?? 0)
      : 40 + (((buf[offset + 4] ?? 0) << 8) | (buf[offset + 5] ?? 0));
  const minimum = family === 4 ? ((buf[offset] ?? 0) & 0x0f) * 4 : 40;
  return declared >= minimum && minimum >= (family === 4 ? 20 : 40) && declared <= available ? declared : -1;
}

export function sourceOffset(family: IpFamily): number {
  return family === 4 ? IPV4_SOURCE : IPV6_SOURCE;
}

export function destinationOffset(family: IpFamily): number {
  return family === 4 ? IPV4_DESTINATION : IPV6_DESTINATION;
}
