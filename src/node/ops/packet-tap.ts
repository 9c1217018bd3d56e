// The daemon's side of `lispnode capture`: what the data path shows a running capture. The daemon
// holds a PacketTap only while a capture runs (ops/capture-server.ts attaches and detaches it);
// otherwise its field is undefined and each batch pays one check. The batch helpers below take the
// daemon's own batch arrays, so a hook in the data path stays one line.
import { readAddressSlot } from '../../tun/udp-socket.js';

/** 'in': received (underlay) or about to be written to the TUN (inner); 'out': the other way. */
export type TapDirection = 'in' | 'out';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface PacketTap {
  /** A UDP datagram on the underlay (LISP data 4341 or control 4342): its payload as sent, or as
   *  received before any decryption. `local` is the daemon's socket, `remote` the peer. */
  underlay(direction: TapDirection, local: Endpoint, remote: Endpoint, payload: Uint8Array): void;
  /** An inner packet in clear: read from the TUN before sealing ('out'), or opened and checked
   *  for the TUN ('in'). Sensitive: the workloads' traffic, decrypted. */
  inner(direction: TapDirection, packet: Uint8Array): void;
}

const at = (offsets: number | Uint32Array, i: number): number => (typeof offsets === 'number' ? offsets : (offsets[i] ?? 0));

/** Shows `count` datagrams of a UDP batch: bufs[i][offsets[i], +lengths[i]), peer in slot i. */
export function tapUnderlayBatch(
  tap: PacketTap,
  direction: TapDirection,
  local: Endpoint,
  bufs: readonly Uint8Array[],
  offsets: number | Uint32Array,
  lengths: Uint32Array,
  addresses: Uint8Array,
  ports: Uint16Array,
  count: number,
): void {
  for (let i = 0; i < count; i++) {
    const start = at(offsets, i);
    const payload = (bufs[i] ?? new Uint8Array(0)).subarray(start, start + (lengths[i] ?? 0));
    tap.underlay(direction, local, { address: readAddressSlot(addresses, i), port: ports[i] ?? 0 }, payload);
  }
}

/** Shows `count` inner packets: bufs[i][offsets[i], +lengths[i]). */
export function tapInnerBatch(tap: PacketTap, direction: TapDirection, bufs: readonly Uint8Array[], offsets: number | Uint32Array, lengths: Uint32Array, count: number): void {
  for (let i = 0; i < count; i++) {
    const start = at(offsets, i);
    tap.inner(direction, (bufs[i] ?? new Uint8Array(0)).subarray(start, start + (lengths[i] ?? 0)));
  }
}
