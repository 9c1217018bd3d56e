// The registering xTR of test/map-server.e2e.test.ts, run inside a lab namespace that holds the
// original xTR's address (`ip netns exec <ns> node register-send.js <plan.json>`): sends captured
// Map-Register payloads to the map-server from one socket and prints, as one JSON line, every
// reply that came back within the wait (base64), so the test can check the Map-Notifies.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';

export interface RegisterPlan {
  readonly bind: string;
  readonly target: string;
  readonly payloads: readonly string[];
  readonly waitMs: number;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: register-send.js <plan.json>');
  const plan = JSON.parse(readFileSync(file, 'utf8')) as RegisterPlan;
  const socket = createSocket('udp4');
  const replies: { from: string; port: number; payload: string }[] = [];
  socket.on('message', (msg, from) => replies.push({ from: from.address, port: from.port, payload: msg.toString('base64') }));
  await new Promise<void>((resolve) => socket.bind(0, plan.bind, resolve));
  for (const payload of plan.payloads) {
    socket.send(Buffer.from(payload, 'base64'), 4342, plan.target);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, plan.waitMs));
  socket.close();
  process.stdout.write(`${JSON.stringify({ replies })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
