// End to end: `lispnode replay` re-sends the bundled OOR and lispers.net captures at lispnode daemons
// in a namespace lab. (1) The clear data packets xTR1 (198.18.0.11) sent to xTR2 (.12), replayed
// with their original sources from a host that is neither (.50), reach an xTR at .12 and leave its
// TUN byte for byte, in order (seen through `lispnode capture --decrypted`); replayed from the
// host's own address instead, the ETR refuses them (their source is no locator of the inner
// source). (2) lispers.net's HMAC-SHA-256 Map-Register, replayed from .12 at a map-server at .2,
// is answered with a Map-Notify that verifies with the site key.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { verifyAuthentication } from '../src/lisp/auth.js';
import { decodeControl } from '../src/lisp/control.js';
import { bundledCaptures } from '../src/node/bundled-captures.js';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import { replayPlan, type ReplayCommandOptions } from '../src/node/ops/replay-command.js';
import { readCapture } from '../src/node/pcap-file.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (CAP_NET_ADMIN) for network namespaces, TUN devices and transparent sockets';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const PCAP_DIR = fileURLToPath(new URL('../../pcap/', import.meta.url));
const DATA_CAPTURES = ['oor-hub.pcap', 'lispers-data.pcap', 'oor-lispersxtr.pcap'].map((f) => join(PCAP_DIR, f));

const runDir = mkdtempSync(join(tmpdir(), 'lispnode-replay-run-'));
process.env.LISPNODE_RUN_DIR = runDir;

const labs: NetnsLab[] = [];
after(async () => {
  for (const lab of labs) await lab.destroy();
  rmSync(runDir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const OPTIONS: ReplayCommandOptions = {
  to: '198.18.0.12',
  rate: '200',
  kind: 'data',
  onlySource: ['198.18.0.11'],
  onlyDestination: ['198.18.0.12'],
  dataPort: '4341',
  controlPort: '4342',
  replies: '0',
};

/** The CLI arguments for OPTIONS (the test computes the same selection through replayPlan). */
const ARGS = ['--to', '198.18.0.12', '--rate', '200', '--kind', 'data', '--only-source', '198.18.0.11', '--only-destination', '198.18.0.12', '--json'];

interface ReplayJson {
  readonly selected: { readonly data: number; readonly control: number };
  readonly sent: number;
  readonly errors: readonly string[];
  readonly sources: readonly string[];
  readonly replies: readonly { readonly from: string; readonly fromPort: number; readonly message: string; readonly payload: string }[];
}

async function replayIn(namespace: string, args: readonly string[]): Promise<ReplayJson> {
  return JSON.parse((await run(namespace, process.execPath, [CLI, 'replay', ...args], 60_000)).trim()) as ReplayJson;
}

test('lispnode replay: captured data packets, from their original sources, leave an xTR\'s TUN byte for byte', { skip, timeout: 120_000 }, async (t) => {
  const expected = replayPlan(DATA_CAPTURES, OPTIONS);
  assert.ok(expected.length >= 30, `the captures hold data packets .11 -> .12 (${expected.length})`);
  const lab = await NetnsLab.create({
    nodes: [{ name: 'rx2', locator: '198.18.0.12', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.18' }, { prefix: '2001:db8:2::/64', address: '2001:db8:2::2' }], mapCache: [{ prefix: '192.0.2.0/28', locators: ['198.18.0.11'] }, { prefix: '2001:db8:1::/64', locators: ['198.18.0.11'] }] }],
    encryption: 'off',
    hosts: { rp: '198.18.0.50' },
  });
  labs.push(lab);
  const replayer = lab.hosts[0]?.namespace ?? '';

  // Watch the TUN side through the daemon's own tap.
  const decrypted = join(lab.dir, 'rx2-decrypted.pcap');
  const capture = spawn(process.execPath, [CLI, 'capture', '--name', 'rx2', '-w', join(lab.dir, 'rx2-underlay.pcap'), '--decrypted', decrypted], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let captureErr = '';
  capture.stderr.on('data', (c: Buffer) => (captureErr += c.toString()));
  for (let i = 0; i < 200 && !captureErr.includes('capturing from'); i++) await sleep(25);
  assert.match(captureErr, /capturing from xtr rx2/);

  const before = await lab.stats('rx2');
  const report = await replayIn(replayer, [...DATA_CAPTURES, '--from-original-sources', ...ARGS]);
  assert.deepEqual(report.errors, []);
  assert.equal(report.sent, expected.length);
  assert.deepEqual(report.selected, { data: expected.length, control: 0 });
  for (let i = 0; i < 100 && (await lab.stats('rx2')).tun.out - before.tun.out < expected.length; i++) await sleep(20);
  const stats = await lab.stats('rx2');
  const exited = new Promise((r) => capture.once('exit', r));
  capture.kill('SIGINT');
  await exited;
  t.diagnostic(`replayed ${report.sent} from ${report.sources.join(', ')}; rx2: underlay in +${stats.underlay.in - before.underlay.in}, tun out +${stats.tun.out - before.tun.out}, drops ${JSON.stringify(stats.drops)}`);
  assert.deepEqual(Object.keys(stats.drops).filter((r) => r.startsWith('etr-')), [], 'no ETR drops');
  assert.equal(stats.tun.out - before.tun.out, expected.length, 'every packet delivered');
  assert.ok(report.sources.every((s) => s.startsWith('198.18.0.11:')), `sent from the original locator: ${report.sources.join(', ')}`);

  const captured = readCapture(readFileSync(decrypted));
  assert.ok(captured.ok);
  // Packets to the node's own EIDs; the kernel's answers (to xTR1's EIDs) go the other way.
  const toTun = captured.packets.map((p) => p.data).filter((p) => (p[0] ?? 0) >> 4 === 4 ? p[16] === 192 && (p[19] ?? 0) >= 16 && (p[19] ?? 0) < 32 : p[24] === 0x20 && p[27] === 0xb8 && p[29] === 2);
  assert.equal(toTun.length, expected.length, 'as many packets written to the TUN as replayed');
  for (const [i, d] of expected.entries()) {
    assert.ok(Buffer.from(toTun[i] ?? []).equals(d.payload.subarray(8)), `packet ${i} (${d.where}): the TUN packet equals the captured inner packet`);
  }

  // From the replayer's own address the same packets are refused: their source is not xTR1's locator.
  const own = await replayIn(replayer, [join(PCAP_DIR, 'lispers-data.pcap'), ...ARGS]);
  assert.ok(own.sent > 0 && own.sources.every((s) => s.startsWith('0.0.0.0:')), JSON.stringify(own));
  await sleep(200);
  const refused = await lab.stats('rx2');
  assert.equal(refused.tun.out, stats.tun.out, 'nothing delivered');
  assert.ok(Object.keys(refused.drops).some((r) => r.startsWith('etr-') && (refused.drops[r] ?? 0) >= own.sent), `counted as ETR drops: ${JSON.stringify(refused.drops)}`);

  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), [], 'no namespace or process left');
  labs.splice(labs.indexOf(lab), 1);
});

test('lispnode replay: a lispers.net Map-Register replayed at a map-server gets an authenticated Map-Notify', { skip, timeout: 60_000 }, async () => {
  const key = bundledCaptures().find((c) => c.file === 'lispers-sha256-register.pcap')?.siteKey;
  assert.ok(key);
  const lab = await NetnsLab.create({
    nodes: [],
    encryption: 'off',
    mapServer: { name: 'ms', locator: '198.18.0.2', password: 'unused', sites: [{ name: 'lispers', keys: [{ 'key-id': 0, algorithm: 'hmac-sha256', password: 'sha256-test-pass' }], prefixes: [{ prefix: '192.0.2.0/24' }] }] },
    hosts: { x12: '198.18.0.12' },
  });
  labs.push(lab);
  const report = await replayIn(lab.hosts[0]?.namespace ?? '', [
    join(PCAP_DIR, 'lispers-sha256-register.pcap'),
    '--to', '198.18.0.2', '--from-original-sources', '--kind', 'control', '--only-source', '198.18.0.12', '--replies', '500', '--json',
  ]);
  assert.deepEqual(report.errors, []);
  assert.equal(report.sent, 1, 'the one Map-Register');
  assert.equal(report.replies.length, 1, `one reply: ${JSON.stringify(report.replies)}`);
  const reply = report.replies[0];
  assert.ok(reply);
  assert.equal(reply.from, '198.18.0.2');
  assert.match(reply.message, /^Map-Notify /);
  const bytes = new Uint8Array(Buffer.from(reply.payload, 'base64'));
  assert.ok(decodeControl(bytes).ok);
  assert.deepEqual(verifyAuthentication(bytes, (id) => (id === key.keyId ? key : undefined)), { ok: true, keyId: key.keyId }, 'its HMAC verifies with the site key');
  const ms = await lab.stats<{ registrations: number }>('ms');
  assert.equal(ms.registrations, 1);
  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), []);
  labs.splice(labs.indexOf(lab), 1);
});
