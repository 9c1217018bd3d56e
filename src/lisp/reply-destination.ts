// Where a control message may be sent in answer to a stranger's datagram. The destination of a
// Map-Reply, a forwarded Map-Request or a probe reply comes from the datagram itself (an ITR-RLOC,
// an ECM's inner UDP source port, the outer source port), so it is attacker-chosen input: port 0
// made Node's dgram throw synchronously and end the daemon, and a loopback, multicast or broadcast
// address would aim the daemon at the node itself or at a whole link. Each such destination is a
// named refusal that the caller counts, never a send.
import { parseIpv4, parseIpv6 } from './ip-text.js';

export const REPLY_DESTINATION_REFUSALS = [
  /** Port 0 (or not a 16-bit port): no socket can send there. */
  'reply-port-invalid',
  /** 0.0.0.0/8, ::, loopback, multicast, broadcast, IPv6 link-local (no scope): not a peer. */
  'reply-address-not-unicast',
  /** Not an address of the family our socket speaks. */
  'reply-address-wrong-family',
] as const;
export type ReplyDestinationRefusal = (typeof REPLY_DESTINATION_REFUSALS)[number];

/**
 * undefined when `address:port` is a peer of `family` we may answer; else why not. A loopback
 * destination is allowed only when `origin` (the datagram's outer source) is loopback itself: the
 * kernel drops loopback sources arriving from outside, so only a local tool (lig) gets there.
 */
export function replyDestinationRefusal(address: string, port: number, family?: 4 | 6, origin?: string): ReplyDestinationRefusal | undefined {
  const refusal = configuredDestinationRefusal(address, port, family);
  if (refusal) return refusal;
  const kind = classify(addressBytes(address)?.b ?? new Uint8Array(0));
  if (kind === 'unicast') return undefined;
  if (kind === 'loopback' && origin !== undefined) {
    const from = addressBytes(origin);
    if (from && classify(from.b) === 'loopback') return undefined;
  }
  return 'reply-address-not-unicast';
}

/** The part of the check for destinations from our own configuration: a real port of our family. */
export function configuredDestinationRefusal(address: string, port: number, family?: 4 | 6): ReplyDestinationRefusal | undefined {
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) return 'reply-port-invalid';
  const found = addressFamily(address);
  if (found === undefined) return 'reply-address-not-unicast';
  return family !== undefined && found !== family ? 'reply-address-wrong-family' : undefined;
}

/** 4 or 6 for IP address text, undefined for anything else. */
export function addressFamily(text: string): 4 | 6 | undefined {
  return addressBytes(text)?.family;
}

function addressBytes(text: string): { readonly family: 4 | 6; readonly b: Uint8Array } | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { family: 4, b: v4 };
  const v6 = parseIpv6(text);
  return v6 && { family: 6, b: v6 };
}

function classify(b: Uint8Array): 'unicast' | 'loopback' | 'other' {
  if (b.length === 4) {
    const first = b[0] ?? 0;
    if (first === 127) return 'loopback';
    if (first === 0 || first >= 224 || b.every((x) => x === 255)) return 'other'; // this network, multicast, class E, broadcast
    return 'unicast';
  }
  if (b[0] === 0xff) return 'other'; // multicast
  if (b[0] === 0xfe && ((b[1] ?? 0) & 0xc0) === 0x80) return 'other'; // link-local: needs a scope we do not have
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return classify(b.subarray(12));
  if (b.subarray(0, 15).every((x) => x === 0)) return b[15] === 1 ? 'loopback' : b[15] === 0 ? 'other' : 'unicast';
  return 'unicast';
}
