// The hostile host's sending loop (attack-flood.ts, hostile-host.ts): datagrams built into a
// batch in place, sent with sendmmsg through the project's batched UDP socket, paced to a rate so
// the receiver's kernel drops none, and bounded by a deadline. A full send buffer waits for room;
// a datagram the kernel refuses is counted with its errno, never thrown.
import { performance } from 'node:perf_hooks';
import { allocateUdpBatch, errnoName, writeAddressSlot, type BatchUdpSocket } from '../../src/tun/udp-socket.js';

const BATCH = 64;
const SLOT = 2048;

/** Where datagram i goes, and its length (its bytes are written into `slot`). */
export interface Datagram {
  readonly length: number;
  readonly address: string;
  readonly port: number;
  /** A name to count it under (the flood's kind, the target). */
  readonly tag: string;
}

export interface PacedReport {
  /** Per tag: datagrams the kernel took. */
  readonly sent: Record<string, number>;
  /** Per tag: datagrams the kernel refused. */
  readonly failed: Record<string, number>;
  readonly unsent: number;
  readonly elapsedMs: number;
  readonly firstErrno: string | undefined;
}

/**
 * Sends `total` datagrams, `build(i, slot)` writing datagram i into `slot` (2048 bytes) and saying
 * where it goes, at `perSecond` (one batch ahead of schedule at most), stopping after `deadlineMs`.
 */
export async function pacedSend(socket: BatchUdpSocket, total: number, perSecond: number, deadlineMs: number, build: (i: number, slot: Uint8Array) => Datagram): Promise<PacedReport> {
  const batch = allocateUdpBatch(BATCH, SLOT);
  const tags: string[] = [];
  const sent: Record<string, number> = {};
  const failed: Record<string, number> = {};
  const bump = (to: Record<string, number>, tag: string): void => {
    to[tag] = (to[tag] ?? 0) + 1;
  };
  const slotAddress = new Map<string, Uint8Array>();
  let firstErrno = 0;
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const elapsed = performance.now() - start;
    if (elapsed > deadlineMs) break;
    const due = Math.min(total, Math.floor((elapsed * perSecond) / 1000) + 1);
    if (i >= due) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    const n = Math.min(BATCH, due - i);
    for (let k = 0; k < n; k++) {
      const d = build(i + k, batch.packets[k] ?? new Uint8Array(0));
      batch.lengths[k] = d.length;
      let a = slotAddress.get(d.address);
      if (!a) {
        a = new Uint8Array(16);
        writeAddressSlot(a, 0, d.address);
        if (slotAddress.size < 4096) slotAddress.set(d.address, a);
      }
      batch.addresses.set(a, 16 * k);
      batch.ports[k] = d.port;
      tags[k] = d.tag;
    }
    let done = 0;
    while (done < n) {
      const r = socket.sendBatch(batch.packets.slice(done, n), batch.offsets.subarray(done), batch.lengths.subarray(done), batch.addresses.subarray(16 * done), batch.ports.subarray(done), n - done, batch.errnos.subarray(done));
      for (let k = done; k < done + r.consumed; k++) {
        const errno = batch.errnos[k] ?? 0;
        if (errno === 0) bump(sent, tags[k] ?? '?');
        else {
          bump(failed, tags[k] ?? '?');
          if (firstErrno === 0) firstErrno = errno;
        }
      }
      done += r.consumed;
      if (done < n) {
        if (performance.now() - start > deadlineMs) break;
        await new Promise<void>((resolve) => socket.waitWritable(resolve));
      }
    }
    i += done;
    if (done < n) break;
  }
  return { sent, failed, unsent: total - i, elapsedMs: Math.round(performance.now() - start), firstErrno: firstErrno === 0 ? undefined : errnoName(firstErrno) };
}
