// End to end: the clear LISP data packets of the OOR and lispers.net captures (pcap/README.md),
// replayed from a namespace holding the original sender's locator at a lispnode ETR holding the
// original receiver's, come out of the node's TUN byte-identical to their inner packets, in order.
// Both directions of the captures: a node at 198.18.0.12 receiving from .11, and a node at .11
// receiving from .12. Each packet leaves from its original UDP source port (OOR 4341, lispers.net
// a hashed one); the ETR does not look at it. The node's kernel answers the echo requests and
// TCP SYNs through our ITR; the capture on the TUN keeps only packets to the node's own EIDs, so
// those answers stay out of the comparison.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import { lispPackets } from '../src/node/lisp-capture.js';
import { networkPayload } from '../src/node/link-layer.js';
import { readCapture } from '../src/node/pcap-file.js';
import type { ReplayPlan, ReplayReport } from './support/replay-send.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';

const REPLAY_SCRIPT = fileURLToPath(new URL('./support/replay-send.js', import.meta.url));
const PCAP_DIR = fileURLToPath(new URL('../../pcap/', import.meta.url));
const CAPTURES = ['oor-hub.pcap', 'lispers-data.pcap', 'oor-lispersxtr.pcap'] as const;

/**
 * The two xTRs of the captures: locator, EID prefixes and the host address inside them, and an
 * address in their prefix that no captured packet uses (the capture probe's destination).
 */
const XTRS = {
  xtr1: { locator: '198.18.0.11', probe: '192.0.2.14', eids: [{ prefix: '192.0.2.0/28', address: '192.0.2.2' }, { prefix: '2001:db8:1::/64', address: '2001:db8:1::2' }] },
  xtr2: { locator: '198.18.0.12', probe: '192.0.2.30', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.18' }, { prefix: '2001:db8:2::/64', address: '2001:db8:2::2' }] },
} as const;

const labs: NetnsLab[] = [];
after(async () => {
  for (const lab of labs) await lab.destroy();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Replayed {
  readonly where: string;
  readonly sourcePort: number;
  readonly payload: Uint8Array;
}

/** The data packets from `source` to `destination` in the captures, in capture order (duplicates kept). */
function dataPackets(source: string, destination: string): Replayed[] {
  const out: Replayed[] = [];
  for (const name of CAPTURES) {
    const capture = readCapture(readFileSync(join(PCAP_DIR, name)));
    assert.ok(capture.ok, `${name} reads`);
    for (const p of lispPackets(capture.packets)) {
      if (p.kind !== 'data' || p.source !== source || p.destination !== destination) continue;
      const where = `${name} frame ${p.frame}`;
      assert.equal(p.destinationPort, 4341, where);
      assert.ok(p.header.ok, `${where}: the header decodes`);
      assert.equal(p.header.value.keyId, 0, `${where}: clear`);
      assert.equal(p.header.value.instanceId ?? 0, 0, `${where}: instance 0`);
      assert.equal(p.inner.kind, 'ip', `${where}: an IP packet inside`);
      out.push({ where, sourcePort: p.sourcePort, payload: p.payload.slice() });
    }
  }
  return out;
}

/**
 * Captures packets entering the node through its TUN (to its own EIDs) while `during` runs. tshark
 * prints "Capturing on" a moment before packets are really captured, and stops some time after
 * SIGINT; so a probe marks both ends: an echo request from the node's kernel to `probe` (an
 * address in the sender's prefix), which leaves through the TUN. Capture starts for real once
 * tshark has seen a probe, and is complete once it has seen the one sent after `during`. The
 * probes are left out of the result.
 */
async function captureTun(lab: NetnsLab, node: string, eidPrefixes: readonly string[], probe: string, during: () => Promise<void>): Promise<Uint8Array[]> {
  const file = join(lab.dir, `${node}-tun.pcapng`);
  const namespace = lab.node(node).namespace;
  const filter = [...eidPrefixes.map((p) => `dst net ${p}`), `dst host ${probe}`].join(' or ');
  const tshark = spawn('ip', ['netns', 'exec', namespace, 'tshark', '-i', 'lisp0', '-f', filter, '-w', file, '-P', '-l'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let summaries = '';
  tshark.stderr.on('data', (c: Buffer) => (err += c.toString()));
  tshark.stdout.on('data', (c: Buffer) => (summaries += c.toString()));
  const probesSeen = (): number => summaries.split('\n').filter((l) => l.includes(` ${probe} `)).length;
  const probeUntilSeen = async (count: number): Promise<void> => {
    for (let i = 0; i < 50 && probesSeen() < count; i++) {
      await run(namespace, 'ping', ['-c', '1', '-W', '0.2', probe]).catch(() => undefined);
      for (let j = 0; j < 10 && probesSeen() < count; j++) await sleep(20);
    }
    assert.ok(probesSeen() >= count, `tshark saw probe ${count} on the TUN: ${err}`);
  };
  try {
    for (let i = 0; i < 200 && !err.includes('Capturing on'); i++) await sleep(50);
    assert.match(err, /Capturing on/, `tshark started: ${err}`);
    await probeUntilSeen(1);
    await during();
    await probeUntilSeen(probesSeen() + 1);
  } finally {
    const exited = new Promise((r) => tshark.once('exit', r));
    tshark.kill('SIGINT');
    await exited;
  }
  const capture = readCapture(readFileSync(file));
  assert.ok(capture.ok, 'the TUN capture reads');
  const packets = capture.packets.map((frame) => {
    const ip = networkPayload(frame.linkType, frame.data);
    assert.ok(ip.ok, `frame ${frame.index} (link type ${frame.linkType}) is an IP packet`);
    assert.equal(frame.data.length, frame.originalLength, `frame ${frame.index} captured whole`);
    return ip.packet.slice();
  });
  const probeBytes = probe.split('.').map(Number);
  const isProbe = (p: Uint8Array): boolean => (p[0] ?? 0) >> 4 === 4 && probeBytes.every((b, i) => p[16 + i] === b);
  return packets.filter((p) => !isProbe(p));
}

for (const [receiver, sender] of [
  ['xtr2', 'xtr1'],
  ['xtr1', 'xtr2'],
] as const) {
  const to = XTRS[receiver];
  const from = XTRS[sender];
  test(`capture replay: ${from.locator} -> ${to.locator}, inner packets leave our TUN byte for byte`, { skip, timeout: 60_000 }, async (t) => {
    const started = performance.now();
    const replayed = dataPackets(from.locator, to.locator);
    const perCapture = CAPTURES.map((name) => `${name} ${replayed.filter((r) => r.where.startsWith(`${name} `)).length}`);
    for (const name of CAPTURES) assert.ok(replayed.some((r) => r.where.startsWith(`${name} `)), `${name} holds data packets ${from.locator} -> ${to.locator}`);
    const lab = await NetnsLab.create({
      nodes: [{ name: receiver, locator: to.locator, eids: to.eids, mapCache: from.eids.map((e) => ({ prefix: e.prefix, locators: [from.locator] })) }],
      encryption: 'off',
      hosts: { [sender]: from.locator },
    });
    labs.push(lab);
    const senderNs = lab.hosts.find((h) => h.locator === from.locator)?.namespace ?? '';
    const plan: ReplayPlan = {
      bind: from.locator,
      target: to.locator,
      port: 4341,
      gapMs: 5,
      packets: replayed.map((r) => ({ sourcePort: r.sourcePort, payload: Buffer.from(r.payload).toString('base64') })),
    };
    const planFile = join(lab.dir, 'replay.json');
    writeFileSync(planFile, JSON.stringify(plan));
    const before = await lab.stats(receiver);
    let report: ReplayReport | undefined;
    const captured = await captureTun(
      lab,
      receiver,
      to.eids.map((e) => e.prefix),
      from.probe,
      async () => {
        const out = await run(senderNs, process.execPath, [REPLAY_SCRIPT, planFile], 30_000);
        report = JSON.parse(out.trim().split('\n').pop() ?? '{}') as ReplayReport;
        // Until the node has written them all into its TUN (bounded; checked below).
        for (let i = 0; i < 50 && (await lab.stats(receiver)).tun.out - before.tun.out < replayed.length; i++) await sleep(20);
      },
    );
    const stats = await lab.stats(receiver);
    assert.ok(report, 'the replayer reported');
    assert.deepEqual(report.errors, [], 'every packet sent');
    assert.equal(report.sent, replayed.length);
    t.diagnostic(`replayed ${replayed.length} packets (${perCapture.join(', ')}) from source ports ${report.ports.join(', ')}; captured ${captured.length} on the TUN; node: underlay in +${stats.underlay.in - before.underlay.in}, tun out +${stats.tun.out - before.tun.out}, drops ${JSON.stringify(stats.drops)}`);

    assert.deepEqual(
      Object.keys(stats.drops).filter((r) => r.startsWith('etr-')),
      [],
      'no ETR drops',
    );
    assert.equal(stats.underlay.in - before.underlay.in, replayed.length, 'the node received every packet');
    assert.equal(stats.tun.out - before.tun.out, replayed.length, 'the node delivered every packet');
    assert.equal(captured.length, replayed.length, 'as many packets on the TUN as replayed');
    for (const [i, r] of replayed.entries()) {
      const inner = r.payload.subarray(8);
      assert.ok(Buffer.from(captured[i] ?? []).equals(inner), `packet ${i} (${r.where}): the TUN packet equals the inner packet byte for byte`);
    }

    await lab.destroy();
    assert.deepEqual(await lab.leftovers(), [], 'no namespace or process left');
    labs.splice(labs.indexOf(lab), 1);
    t.diagnostic(`test took ${Math.round(performance.now() - started)} ms`);
  });
}
