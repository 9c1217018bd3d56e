// Which packets of a capture `lispnode replay` re-sends, and to which port: the LISP datagrams (data
// and control) found by lisp-capture.ts, narrowed by kind and by original outer addresses. Pure.
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../../lisp/ip-text.js';
import type { LispPacket } from '../lisp-capture.js';

/** One datagram to re-send: its UDP payload, its original source, and the target's port for it. */
export interface ReplayDatagram {
  /** "oor-hub.pcap frame 12", for error messages. */
  readonly where: string;
  readonly kind: 'data' | 'control';
  /** The original outer source (canonical text) and UDP source port. */
  readonly source: string;
  readonly sourcePort: number;
  /** The port it goes to at the target: the data or the control port, by kind. */
  readonly port: number;
  readonly payload: Uint8Array;
}

export interface ReplaySelection {
  readonly kinds: ReadonlySet<'data' | 'control'>;
  /** Only packets from these original outer sources (canonical text); empty = any. */
  readonly sources: readonly string[];
  /** Only packets to these original outer destinations (canonical text); empty = any. */
  readonly destinations: readonly string[];
  /** Skip a datagram identical (addresses, ports, payload) to one already selected: a capture taken
   *  on a bridge holds each packet twice, once into and once out of it. */
  readonly unique: boolean;
  readonly dataPort: number;
  readonly controlPort: number;
}

/** IPv4 or IPv6 text in canonical form, or undefined. */
export function canonicalAddress(text: string): { readonly text: string; readonly family: 4 | 6 } | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { text: formatIpv4(v4), family: 4 };
  const v6 = parseIpv6(text);
  return v6 ? { text: formatIpv6(v6), family: 6 } : undefined;
}

/** The datagrams of one capture (`name` labels them) that the selection keeps, in capture order. */
export function selectForReplay(name: string, packets: readonly LispPacket[], selection: ReplaySelection, seen = new Set<string>()): ReplayDatagram[] {
  const out: ReplayDatagram[] = [];
  for (const p of packets) {
    if (!selection.kinds.has(p.kind)) continue;
    if (selection.sources.length > 0 && !selection.sources.includes(p.source)) continue;
    if (selection.destinations.length > 0 && !selection.destinations.includes(p.destination)) continue;
    if (selection.unique) {
      const key = `${p.source} ${p.sourcePort} ${p.destination} ${p.destinationPort} ${Buffer.from(p.payload).toString('base64')}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    out.push({
      where: `${name} frame ${p.frame}`,
      kind: p.kind,
      source: p.source,
      sourcePort: p.sourcePort,
      port: p.kind === 'data' ? selection.dataPort : selection.controlPort,
      payload: p.payload,
    });
  }
  return out;
}
