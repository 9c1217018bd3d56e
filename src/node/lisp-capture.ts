// Finds the LISP packets in a capture: outer IP + UDP on 4341 (data) or 4342 (control), decoded
// with the wire codec. Pure: `lispnode decode`, the capture tests and the demo share it.
import { ByteReader } from '../lisp/bytes.js';
import { decodeControl, readControl, type ControlMessage } from '../lisp/control.js';
import { CONTROL_IN_DATA_IID, DATA_HEADER_LENGTH, decodeDataHeader, type DataHeader } from '../lisp/data-header.js';
import { decodeSafely, type DecodeResult } from '../lisp/errors.js';
import { formatIpv4, formatIpv6 } from '../lisp/ip-text.js';
import { readIpUdp, type IpHeader } from '../lisp/ip-udp.js';
import { networkPayload } from './link-layer.js';
import type { CapturedPacket } from './pcap-file.js';

export const LISP_DATA_PORT = 4341;
export const LISP_CONTROL_PORT = 4342;

interface Endpoints {
  readonly frame: number;
  readonly timestampNs: bigint;
  readonly source: string;
  readonly destination: string;
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** The UDP payload (a view into the capture). */
  readonly payload: Uint8Array;
}

export type LispPacket =
  | (Endpoints & { readonly kind: 'control'; readonly message: DecodeResult<ControlMessage> })
  | (Endpoints & { readonly kind: 'data'; readonly header: DecodeResult<DataHeader>; readonly inner: InnerPayload });

/** What follows a data header. */
export type InnerPayload =
  | { readonly kind: 'ip'; readonly summary: string }
  | { readonly kind: 'encrypted'; readonly length: number }
  | { readonly kind: 'control'; readonly message: DecodeResult<ControlMessage> }
  | { readonly kind: 'none' };

/** LISP packets of a capture in frame order; frames that are not LISP over UDP are skipped. */
export function lispPackets(captured: readonly CapturedPacket[]): LispPacket[] {
  const out: LispPacket[] = [];
  for (const frame of captured) {
    const packet = lispPacket(frame);
    if (packet) out.push(packet);
  }
  return out;
}

function lispPacket(frame: CapturedPacket): LispPacket | undefined {
  const net = networkPayload(frame.linkType, frame.data);
  if (!net.ok || ipProtocol(net.packet) !== UDP) return undefined;
  const outer = decodeSafely(() => {
    const r = new ByteReader(net.packet);
    const headers = readIpUdp(r, { verifyChecksums: false });
    return { ...headers, payload: net.packet.subarray(r.offset, r.offset + headers.payloadLength) };
  });
  if (!outer.ok) return undefined;
  const { ip, udp, payload } = outer.value;
  const ends: Endpoints = {
    frame: frame.index,
    timestampNs: frame.timestampNs,
    source: ip.source,
    destination: ip.destination,
    sourcePort: udp.sourcePort,
    destinationPort: udp.destinationPort,
    payload,
  };
  const ports = [udp.sourcePort, udp.destinationPort];
  if (ports.includes(LISP_CONTROL_PORT)) return { ...ends, kind: 'control', message: decodeControl(payload) };
  if (ports.includes(LISP_DATA_PORT)) {
    const header = decodeDataHeader(payload);
    return { ...ends, kind: 'data', header, inner: header.ok ? innerPayload(header.value, payload.subarray(DATA_HEADER_LENGTH)) : { kind: 'none' } };
  }
  return undefined;
}

const UDP = 17;

function ipProtocol(packet: Uint8Array): number | undefined {
  const version = (packet[0] ?? 0) >>> 4;
  return version === 4 ? packet[9] : version === 6 ? packet[6] : undefined;
}

function innerPayload(header: DataHeader, rest: Uint8Array): InnerPayload {
  if (rest.length === 0) return { kind: 'none' };
  if (header.keyId !== 0) return { kind: 'encrypted', length: rest.length };
  if (header.instanceId === CONTROL_IN_DATA_IID) {
    // NAT traversal: an Info message follows directly, or an IPv4/UDP-wrapped control message.
    const message = decodeSafely((quirks) => {
      const r = new ByteReader(rest);
      if ((rest[0] ?? 0) >>> 4 === 4) {
        const { payloadLength } = readIpUdp(r, { verifyChecksums: false });
        return readControl(r.sub(payloadLength, 'control message'), quirks);
      }
      return readControl(r, quirks);
    });
    return { kind: 'control', message };
  }
  return { kind: 'ip', summary: summarizeIp(rest) };
}

const PROTOCOL_NAMES: Readonly<Record<number, string>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6' };

/** "IPv4 192.0.2.2 -> 192.0.2.18 ICMP 8/0" — enough to tell packets apart in a listing. */
export function summarizeIp(p: Uint8Array): string {
  const version = (p[0] ?? 0) >>> 4;
  let header: Pick<IpHeader, 'source' | 'destination'>;
  let protocol: number;
  let l4: number;
  if (version === 4 && p.length >= 20) {
    header = { source: formatIpv4(p.subarray(12, 16)), destination: formatIpv4(p.subarray(16, 20)) };
    protocol = p[9] ?? 0;
    l4 = ((p[0] ?? 0) & 0x0f) * 4;
  } else if (version === 6 && p.length >= 40) {
    header = { source: formatIpv6(p.subarray(8, 24)), destination: formatIpv6(p.subarray(24, 40)) };
    protocol = p[6] ?? 0;
    l4 = 40;
  } else {
    return `not IP (${p.length} bytes, version ${version})`;
  }
  const name = PROTOCOL_NAMES[protocol] ?? `proto ${protocol}`;
  const detail =
    (protocol === 1 || protocol === 58) && p.length >= l4 + 2
      ? ` ${p[l4]}/${p[l4 + 1]}`
      : (protocol === 6 || protocol === 17) && p.length >= l4 + 4
        ? ` ${((p[l4] ?? 0) << 8) | (p[l4 + 1] ?? 0)} -> ${((p[l4 + 2] ?? 0) << 8) | (p[l4 + 3] ?? 0)}`
        : '';
  return `IPv${version} ${header.source} -> ${header.destination} ${name}${detail}`;
}
