// The replayer of test/capture-replay.e2e.test.ts, run inside a lab namespace that holds the
// original sender's locator (`ip netns exec <ns> node replay-send.js <plan.json>`): sends captured
// LISP data payloads, in order, each from its original UDP source port, to the target's port, and
// prints one JSON line with what it sent. The sending is `lispnode replay`'s (src/node/ops/replay.ts).
import { readFileSync } from 'node:fs';
import { replay } from '../../src/node/ops/replay.js';

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
  const datagrams = plan.packets.map((p, i) => ({
    where: `packet ${i}`,
    kind: 'data' as const,
    source: plan.bind,
    sourcePort: p.sourcePort,
    port: plan.port,
    payload: new Uint8Array(Buffer.from(p.payload, 'base64')),
  }));
  const report = await replay(datagrams, { target: plan.target, keepSources: true, rate: Math.round(1000 / plan.gapMs), replyWaitMs: 0 });
  const ports = [...new Set(plan.packets.map((p) => p.sourcePort))];
  process.stdout.write(`${JSON.stringify({ sent: report.sent, errors: report.errors, ports } satisfies ReplayReport)}\n`);
}

await main();
