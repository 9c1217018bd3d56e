// End to end: 100,000 forged, truncated, replayed and wrongly keyed LISP data packets sent at an
// encrypting (suite 5) ETR are dropped and counted, each under its reason, while a ping between
// the EIDs keeps working through the same ETR. The attack comes from the real peer's namespace (so
// the outer source is the peer's locator, 198.18.0.1) and from a stranger's (198.18.0.66); the
// replays are genuine packets of that peer captured on the ETR's underlay a moment before.
// Every datagram is accounted for: the kernel's UDP counters in the ETR's namespace say whether
// any was lost before the socket (the sender is paced so that none is).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { parse } from 'yaml';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import { lispPackets } from '../src/node/lisp-capture.js';
import { readCapture } from '../src/node/pcap-file.js';
import type { XtrStats } from '../src/node/xtr/xtr-node.js';
import type { FloodKind, FloodPlan, FloodReport } from './support/flood-send.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';

const FLOOD_SCRIPT = fileURLToPath(new URL('./support/flood-send.js', import.meta.url));

const NODES = [
  { name: 'a', locator: '198.18.0.1', eids: [{ prefix: '192.0.2.0/28', address: '192.0.2.1' }, { prefix: '2001:db8:1::/64', address: '2001:db8:1::1' }] },
  { name: 'b', locator: '198.18.0.2', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.17' }, { prefix: '2001:db8:2::/64', address: '2001:db8:2::1' }] },
] as const;
const STRANGER = '198.18.0.66';

/** 80,000 from the peer's namespace, 20,000 from the stranger's. */
const FROM_PEER: Readonly<Record<FloodKind, number>> = {
  truncated: 8000,
  'garbage-short': 8000,
  garbage: 16000,
  'garbage-old': 8000,
  'no-key': 8000,
  clear: 8000,
  'wrong-key': 12000,
  replay: 8000,
  'wrong-instance': 4000,
};
const FROM_STRANGER: Readonly<Partial<Record<FloodKind, number>>> = { truncated: 4000, garbage: 4000, 'wrong-key': 4000, replay: 4000, clear: 4000 };

/** The one drop reason each kind must land on, by who sent it (src/lisp/etr.ts's order of checks). */
const REASON_FROM_PEER: Readonly<Record<FloodKind, string>> = {
  truncated: 'etr-truncated',
  'garbage-short': 'etr-too-short',
  garbage: 'etr-icv-mismatch',
  'garbage-old': 'etr-too-old',
  'no-key': 'etr-no-key',
  clear: 'etr-clear-refused',
  'wrong-key': 'etr-icv-mismatch',
  replay: 'etr-replayed',
  'wrong-instance': 'etr-unknown-instance',
};
/** A stranger has no keys: anything with key-id bits is etr-no-key. */
const REASON_FROM_STRANGER: Readonly<Record<FloodKind, string>> = {
  ...REASON_FROM_PEER,
  'garbage-short': 'etr-no-key',
  garbage: 'etr-no-key',
  'garbage-old': 'etr-no-key',
  'wrong-key': 'etr-no-key',
  replay: 'etr-no-key',
};

const FLOOD_MS = 5000;

const labs: NetnsLab[] = [];
after(async () => {
  for (const lab of labs) await lab.destroy();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** UDP counters of /proc/net/snmp inside a namespace (they are per network namespace). */
async function udpSnmp(namespace: string): Promise<Record<string, number>> {
  const lines = (await run(namespace, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/).slice(1);
  const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
}

function etrDrops(stats: XtrStats): Record<string, number> {
  return Object.fromEntries(Object.entries(stats.drops).filter(([r]) => r.startsWith('etr-')));
}

function minus(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) out[k] = v - (before[k] ?? 0);
  return out;
}

const sum = (r: Readonly<Record<string, number | undefined>>): number => Object.values(r).reduce<number>((a, b) => a + (b ?? 0), 0);

/** Captures a's data packets arriving on b's underlay while `during` runs; returns their UDP payloads. */
async function captureGenuine(lab: NetnsLab, during: () => Promise<void>): Promise<Uint8Array[]> {
  const file = join(lab.dir, 'genuine.pcap');
  const filter = `udp dst port 4341 and src host ${NODES[0].locator}`;
  const tshark = spawn('ip', ['netns', 'exec', lab.node('b').namespace, 'tshark', '-i', 'eth0', '-f', filter, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  tshark.stderr.on('data', (c: Buffer) => (err += c.toString()));
  try {
    for (let i = 0; i < 200 && !err.includes('Capturing on'); i++) await sleep(50);
    assert.match(err, /Capturing on/, `tshark started: ${err}`);
    // tshark says "Capturing on" a moment before it captures; a missed first ping only means fewer replays.
    await sleep(300);
    await during();
  } finally {
    await sleep(500);
    const exited = new Promise((r) => tshark.once('exit', r));
    tshark.kill('SIGINT');
    await exited;
  }
  const capture = readCapture(readFileSync(file));
  assert.ok(capture.ok, 'the capture reads');
  return lispPackets(capture.packets)
    .filter((p) => p.kind === 'data' && p.destination === NODES[1].locator && p.header.ok && p.header.value.keyId === 1 && p.inner.kind === 'encrypted')
    .map((p) => p.payload.slice());
}

async function flood(namespace: string, plan: FloodPlan, file: string): Promise<FloodReport> {
  writeFileSync(file, JSON.stringify(plan));
  const out = await run(namespace, process.execPath, [FLOOD_SCRIPT, file], 60_000);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as FloodReport;
}

function pingLoss(output: string): { transmitted: number; received: number } {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(output);
  assert.ok(m, `ping summary in\n${output}`);
  return { transmitted: Number(m[1]), received: Number(m[2]) };
}

test('ETR under a flood of 100,000 bad packets: each dropped under its reason, real traffic keeps flowing', { skip, timeout: 60_000 }, async (t) => {
  const started = performance.now();
  const lab = await NetnsLab.create({ nodes: NODES, encryption: 'required', suite: 5, hosts: { evil: STRANGER } });
  labs.push(lab);
  const peerNs = lab.node('a').namespace;
  const bNs = lab.node('b').namespace;
  const strangerNs = lab.hosts.find((h) => h.locator === STRANGER)?.namespace ?? '';

  // 1. Genuine encrypted packets from a to b, to replay later.
  const genuine = await captureGenuine(lab, async () => {
    const v4 = await run(peerNs, 'ping', ['-c', '8', '-i', '0.1', '-W', '2', NODES[1].eids[0].address]);
    const v6 = await run(peerNs, 'ping', ['-c', '4', '-i', '0.1', '-W', '2', NODES[1].eids[1].address]);
    assert.match(v4, / 0% packet loss/, v4);
    assert.match(v6, / 0% packet loss/, v6);
  });
  assert.ok(genuine.length >= 6, `captured genuine encrypted packets from a (${genuine.length})`);

  // b's public key, as a's config carries it: the wrong-key attacker seals with its own pair against it.
  const aConfig = parse(readFileSync(join(lab.dir, 'a.yaml'), 'utf8')) as { encryption: { peers: { locator: string; 'public-key': string }[] } };
  const bPublic = aConfig.encryption.peers.find((p) => p.locator === NODES[1].locator)?.['public-key'] ?? '';
  const basePlan = {
    target: NODES[1].locator,
    port: 4341,
    replays: genuine.map((p) => Buffer.from(p).toString('base64')),
    targetPublicKey: bPublic,
    innerV4: { source: NODES[0].eids[0].address, destination: NODES[1].eids[0].address },
    innerV6: { source: NODES[0].eids[1].address, destination: NODES[1].eids[1].address },
    durationMs: FLOOD_MS,
    deadlineMs: 20_000,
  };

  // 2. The flood, with a ping a -> b running through it and b's counters sampled every second.
  const before = await lab.stats('b');
  const snmpBefore = await udpSnmp(bNs);
  const floodStart = performance.now();
  let flooding = true;
  const samples: XtrStats[] = [];
  let samplerError: unknown;
  const sampler = (async () => {
    while (flooding) {
      await sleep(1000);
      if (flooding) samples.push(await lab.stats('b'));
    }
  })().catch((error: unknown) => {
    samplerError = error;
  });
  const [fromPeer, fromStranger, pingOut] = await Promise.all([
    flood(peerNs, { ...basePlan, bind: NODES[0].locator, counts: FROM_PEER, seed: 1 }, join(lab.dir, 'flood-peer.json')),
    flood(strangerNs, { ...basePlan, bind: STRANGER, counts: FROM_STRANGER, seed: 2 }, join(lab.dir, 'flood-stranger.json')),
    (async () => {
      await sleep(200);
      // ping exits non-zero when it lost everything; its summary is asserted below either way.
      return run(peerNs, 'ping', ['-c', '100', '-i', '0.05', '-W', '1', NODES[1].eids[0].address]).catch((error: unknown) => String((error as { stdout?: unknown }).stdout ?? error));
    })(),
  ]).finally(() => {
    flooding = false;
  });
  await sampler;
  assert.equal(samplerError, undefined, 'b answered every SIGUSR1 during the flood');
  const floodMs = performance.now() - floodStart;
  await sleep(500); // let b drain its socket
  const afterStats = await lab.stats('b');
  const snmpAfter = await udpSnmp(bNs);

  // What was sent, and where each kind must land.
  for (const report of [fromPeer, fromStranger]) {
    assert.deepEqual(report.failed, {}, `no send failed (${report.firstErrno ?? ''})`);
    assert.equal(report.unsent, 0, 'the sender finished before its deadline');
  }
  const sentTotal = sum(fromPeer.sent) + sum(fromStranger.sent);
  assert.equal(sentTotal, sum(FROM_PEER) + sum(FROM_STRANGER));
  assert.ok(sentTotal >= 100_000, `${sentTotal} bad datagrams sent`);
  const expected: Record<string, number> = {};
  for (const [kind, n] of Object.entries(fromPeer.sent)) expected[REASON_FROM_PEER[kind as FloodKind]] = (expected[REASON_FROM_PEER[kind as FloodKind]] ?? 0) + n;
  for (const [kind, n] of Object.entries(fromStranger.sent)) expected[REASON_FROM_STRANGER[kind as FloodKind]] = (expected[REASON_FROM_STRANGER[kind as FloodKind]] ?? 0) + n;

  const drops = minus(etrDrops(afterStats), etrDrops(before));
  const udpIn = afterStats.underlay.in - before.underlay.in;
  const tunOut = afterStats.tun.out - before.tun.out;
  const snmp = minus(snmpAfter, snmpBefore);
  // InErrors counts every datagram the kernel dropped on receipt (RcvbufErrors, a full socket buffer, included).
  const kernelDrops = snmp.InErrors ?? 0;
  const ping = pingLoss(pingOut);
  t.diagnostic(`sent ${sentTotal} bad datagrams (peer's namespace ${sum(fromPeer.sent)} in ${fromPeer.elapsedMs} ms, stranger's ${sum(fromStranger.sent)} in ${fromStranger.elapsedMs} ms); flood and ping took ${Math.round(floodMs)} ms`);
  t.diagnostic(`b: underlay in +${udpIn}, tun out +${tunOut}, ETR drops ${JSON.stringify(drops)}`);
  t.diagnostic(`b's namespace UDP counters: ${JSON.stringify(snmp)}; ping ${ping.received}/${ping.transmitted}`);

  // b's own bookkeeping: every datagram it read was delivered or dropped under a reason.
  assert.equal(udpIn, sum(drops) + tunOut, 'underlay in = ETR drops + TUN out');
  // Only the reasons provoked, nothing else (a genuine packet dropped would show up here).
  assert.deepEqual(Object.keys(drops).sort(), Object.keys(expected).sort(), 'exactly the provoked reasons');
  // Lost before the socket: the kernel counts them in InErrors (RcvbufErrors); the pacing keeps it at 0.
  const lost = sentTotal - sum(drops);
  assert.equal(lost, kernelDrops, `datagrams not read by b (${lost}) = the kernel's UDP receive drops in b's namespace (${kernelDrops})`);
  if (lost === 0) {
    assert.deepEqual(drops, expected, 'every bad datagram counted once, under its own reason');
  } else {
    for (const [reason, n] of Object.entries(expected)) assert.ok((drops[reason] ?? 0) <= n && (drops[reason] ?? 0) >= n - lost, `${reason}: ${drops[reason]} of ${n}`);
  }
  assert.ok(lost <= sentTotal / 100, `at most 1% lost to a full receive buffer (${lost})`);

  // Real traffic kept flowing, during the flood and not just after it.
  assert.ok(ping.transmitted - ping.received <= 2, `ping through the flood lost ${ping.transmitted - ping.received} of ${ping.transmitted}\n${pingOut}`);
  assert.ok(tunOut >= ping.received, `b delivered the ping requests (${tunOut} >= ${ping.received})`);
  const during = [before, ...samples];
  assert.ok(samples.length >= 3, `b answered SIGUSR1 during the flood (${samples.length} samples)`);
  for (let i = 1; i < during.length; i++) {
    const prev = during[i - 1] as XtrStats;
    const cur = during[i] as XtrStats;
    if (cur.underlay.in - prev.underlay.in < 1000) continue; // the flood was over by then
    assert.ok(cur.tun.out > prev.tun.out, `tun.out grew between samples ${i - 1} and ${i} while b received ${cur.underlay.in - prev.underlay.in} datagrams`);
  }

  // 3. b is still alive and answers both ways.
  assert.equal(lab.node('b').process.exitCode, null, 'b is still running');
  for (const [from, to] of [['a', NODES[1].eids[0].address], ['a', NODES[1].eids[1].address], ['b', NODES[0].eids[0].address]] as const) {
    const out = await run(lab.node(from).namespace, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', to]);
    assert.match(out, / 0% packet loss/, `${from} -> ${to} after the flood\n${out}`);
  }

  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), [], 'no namespace or process left');
  labs.splice(labs.indexOf(lab), 1);
  t.diagnostic(`test took ${Math.round(performance.now() - started)} ms`);
});
