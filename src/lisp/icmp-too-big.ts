// ICMP "Fragmentation Needed" (IPv4, RFC 792/1191) and ICMPv6 "Packet Too Big" (RFC 4443) for
// inner packets the ITR cannot carry: written back into the TUN so the sending workload lowers
// its path MTU. Pure: builds bytes; the rate limiter takes `now`.
import { internetChecksum, onesComplementSum } from './ip-udp.js';
import type { IpFamily } from './inner-ip.js';

const ICMP = 1;
const ICMPV6 = 58;
/** RFC 4443: as much of the invoking packet as fits without exceeding the minimum IPv6 MTU. */
const IPV6_MIN_MTU = 1280;
/** RFC 1812 §4.3.2.3: quote as much as fits in 576 bytes. */
const IPV4_QUOTE_LIMIT = 576;

/** Never answer an ICMP error with another (RFC 1122 §3.2.2, RFC 4443 §2.4). */
function isIcmpError(packet: Uint8Array, family: IpFamily): boolean {
  if (family === 4) {
    const headerLength = ((packet[0] ?? 0) & 0x0f) * 4;
    const fragmentOffset = (((packet[6] ?? 0) & 0x1f) << 8) | (packet[7] ?? 0);
    // Only the first fragment is ever answered.
    if (fragmentOffset !== 0) return true;
    return packet[9] === ICMP && [3, 4, 5, 11, 12].includes(packet[headerLength] ?? 0);
  }
  return packet[6] === ICMPV6 && (packet[40] ?? 0) < 128;
}

/**
 * The ICMP error telling the inner packet's source that at most `mtu` bytes fit. Returns
 * undefined where no error may be sent (an ICMP error, a later fragment). The error comes from
 * the packet's destination address, so the sender's stack matches it to its flow.
 */
export function packetTooBig(packet: Uint8Array, family: IpFamily, mtu: number): Uint8Array | undefined {
  if (isIcmpError(packet, family)) return undefined;
  return family === 4 ? fragmentationNeeded(packet, mtu) : packetTooBig6(packet, mtu);
}

function fragmentationNeeded(packet: Uint8Array, mtu: number): Uint8Array {
  const quote = packet.subarray(0, Math.min(packet.length, IPV4_QUOTE_LIMIT - 28));
  const out = new Uint8Array(28 + quote.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, 0x45);
  v.setUint16(2, out.length);
  v.setUint8(8, 64);
  v.setUint8(9, ICMP);
  out.set(packet.subarray(16, 20), 12); // source: the unreachable destination
  out.set(packet.subarray(12, 16), 16); // destination: the sender
  v.setUint16(10, internetChecksum(out.subarray(0, 20)));
  v.setUint8(20, 3); // destination unreachable
  v.setUint8(21, 4); // fragmentation needed and DF set
  v.setUint16(26, Math.min(mtu, 0xffff));
  out.set(quote, 28);
  v.setUint16(22, internetChecksum(out.subarray(20)));
  return out;
}

function packetTooBig6(packet: Uint8Array, mtu: number): Uint8Array {
  const quote = packet.subarray(0, Math.min(packet.length, IPV6_MIN_MTU - 48));
  const out = new Uint8Array(48 + quote.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x60000000);
  v.setUint16(4, 8 + quote.length);
  v.setUint8(6, ICMPV6);
  v.setUint8(7, 64);
  out.set(packet.subarray(24, 40), 8);
  out.set(packet.subarray(8, 24), 24);
  v.setUint8(40, 2); // packet too big
  v.setUint32(44, mtu);
  out.set(quote, 48);
  const pseudo = onesComplementSum(out.subarray(8, 40), ICMPV6 + 8 + quote.length);
  v.setUint16(42, internetChecksum(out.subarray(40), pseudo));
  return out;
}

/** A token bucket: `burst` messages at once, refilled at `perSecond`. */
export class RateLimiter {
  private tokens: number;
  private last: number | undefined;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  allow(now: number): boolean {
    if (this.last !== undefined) this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
