// The capture socket's protocol, shared by the daemon (capture-server.ts) and `lispnode capture`
// (capture-client.ts). The client sends one JSON line (CaptureRequest); the daemon answers one JSON
// line (CaptureAccepted or a refusal), then frames: type (1 byte), length (4 bytes, big-endian),
// body. Underlay and decrypted frames carry a finished pcap record, so the client only appends;
// a status frame (JSON) answers the client's `stop` line, after which the daemon closes.
import { ByteWriter } from '../../lisp/bytes.js';
import { writeIpUdp, type IpHeader } from '../../lisp/ip-udp.js';
import { pcapRecord } from '../pcap-file.js';
import type { Endpoint, TapDirection } from './packet-tap.js';

export const FRAME = { underlay: 0, decrypted: 1, status: 2 } as const;
export type FrameType = (typeof FRAME)[keyof typeof FRAME];
export const FRAME_HEADER_LENGTH = 5;

/** The line a client sends to stop: the daemon answers with a status frame and closes. */
export const STOP_LINE = 'stop\n';

export interface CaptureRequest {
  readonly capture: 1;
  readonly decrypted: boolean;
}

export interface CaptureAccepted {
  readonly ok: true;
  readonly role: string;
  readonly name: string;
  /** The pcap link type of both streams' records. */
  readonly linkType: number;
  /** What the underlay stream holds, e.g. ['data 4341']: control traffic only once the control
   *  plane calls the tap too. */
  readonly underlay: readonly string[];
}

export type CaptureAnswer = CaptureAccepted | { readonly ok: false; readonly error: string };

export interface CaptureStatus {
  /** Records the daemon dropped because this client did not read fast enough. */
  readonly dropped: { readonly underlay: number; readonly decrypted: number };
}

export function frame(type: FrameType, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_LENGTH + body.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, FRAME_HEADER_LENGTH);
  return out;
}

/** Wall-clock nanoseconds with the microseconds performance.now() has. */
export function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

/**
 * The pcap record (LINKTYPE_RAW) of an underlay datagram. The daemon sees UDP payloads, not the
 * wire: the IP and UDP headers are rebuilt from the endpoints (addresses, ports and payload exact;
 * TTL 64, DF, ID 0 and a computed checksum stand in for what the kernel wrote).
 */
export function underlayRecord(timestampNs: bigint, direction: TapDirection, local: Endpoint, remote: Endpoint, payload: Uint8Array): Uint8Array {
  const [from, to] = direction === 'out' ? [local, remote] : [remote, local];
  const ip: IpHeader = from.address.includes(':')
    ? { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, source: from.address, destination: to.address }
    : { version: 4, tos: 0, identification: 0, dontFragment: true, ttl: 64, source: from.address, destination: to.address };
  const w = new ByteWriter();
  writeIpUdp(w, ip, { sourcePort: from.port, destinationPort: to.port, checksum: 'computed' }, payload);
  return pcapRecord({ timestampNs, data: w.finish() });
}

/** Splits a byte stream into the answer line and then frames. */
export class FrameReader {
  private buffer = new Uint8Array(0);
  private answered = false;

  /** Feeds bytes; returns the answer (once) and the complete frames so far. */
  push(chunk: Uint8Array): { answer?: CaptureAnswer; frames: { type: number; body: Uint8Array }[] } {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer);
    joined.set(chunk, this.buffer.length);
    let offset = 0;
    let answer: CaptureAnswer | undefined;
    if (!this.answered) {
      const newline = joined.indexOf(0x0a);
      if (newline < 0) {
        this.buffer = joined;
        return { frames: [] };
      }
      answer = JSON.parse(Buffer.from(joined.subarray(0, newline)).toString('utf8')) as CaptureAnswer;
      this.answered = true;
      offset = newline + 1;
    }
    const frames: { type: number; body: Uint8Array }[] = [];
    const view = new DataView(joined.buffer, joined.byteOffset, joined.byteLength);
    while (joined.length - offset >= FRAME_HEADER_LENGTH) {
      const length = view.getUint32(offset + 1);
      if (joined.length - offset - FRAME_HEADER_LENGTH < length) break;
      frames.push({ type: joined[offset] ?? 0, body: joined.subarray(offset + FRAME_HEADER_LENGTH, offset + FRAME_HEADER_LENGTH + length) });
      offset += FRAME_HEADER_LENGTH + length;
    }
    this.buffer = joined.slice(offset);
    return { ...(answer && { answer }), frames };
  }
}
