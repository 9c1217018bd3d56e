// The replayer of test/capture-replay.e2e.test.ts, run inside a lab namespace that holds the
// original sender's locator (`ip netns exec <ns> node replay-send.js <plan.json>`): sends captured
// LISP data payloads, in order, each from its original UDP source port (one batched socket per
// port), to the target's 4341, and prints one JSON line with what it sent.
import { readFileSync } from 'node:fs';
import { allocateUdpBatch, errnoName, openBatchUdpSocket, writeAddressSlot, type BatchUdpSocket } from '../../src/tun/udp-socket.js';

export interface ReplayPlan {
  readonly bind: string;
  readonly target: string;
  readonly port: number;
  /** Pause between packets, so that they reach the target one by one and in order. */
  readonly gapMs: number;
  readonly packets: readonly { readonly sourcePort: number; readonly payload: string }[];
}

export interface ReplayReport {
  readonly sent: number;
  readonly errors: readonly string[];
  readonly ports: readonly number[];
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: replay-send.js <plan.json>');
  const plan = JSON.parse(readFileSync(file, 'utf8')) as ReplayPlan;
  const sockets = new Map<number, BatchUdpSocket>();
  for (const { sourcePort } of plan.packets) {
    if (!sockets.has(sourcePort)) sockets.set(sourcePort, openBatchUdpSocket({ family: 4, address: plan.bind, port: sourcePort }));
  }
  const batch = allocateUdpBatch(1, 65536);
  writeAddressSlot(batch.addresses, 0, plan.target);
  batch.ports[0] = plan.port;
  const packet = batch.packets[0] ?? new Uint8Array(0);
  let sent = 0;
  const errors: string[] = [];
  for (const [i, p] of plan.packets.entries()) {
    const payload = Buffer.from(p.payload, 'base64');
    packet.set(payload, 0);
    batch.lengths[0] = payload.length;
    const socket = sockets.get(p.sourcePort);
    const r = socket?.sendBatch(batch.packets, batch.offsets, batch.lengths, batch.addresses, batch.ports, 1, batch.errnos);
    if (r?.sent === 1) sent++;
    else errors.push(`packet ${i}: ${r ? (r.consumed === 0 ? 'EAGAIN' : errnoName(batch.errnos[0] ?? 0)) : 'no socket'}`);
    await new Promise((resolve) => setTimeout(resolve, plan.gapMs));
  }
  for (const socket of sockets.values()) socket.close();
  const report: ReplayReport = { sent, errors, ports: [...sockets.keys()] };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
