// End to end: `lispnode capture` against a running, encrypting xTR in a namespace lab. The
// underlay pcap opens in tshark as LISP data with key-id bits and never shows the marker the pings
// carry; the --decrypted pcap shows the pings in clear (marker included), is mode 0600, and is
// announced on stderr and in the daemon's log. --count and --duration stop it; a decrypted file
// name without "decrypted", an existing decrypted file and a missing daemon are refused (exit 2).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

// ping -p repeats a pattern of at most 16 bytes.
const MARKER = 'ln-capture-mark';
const MARKER_HEX = Buffer.from(MARKER).toString('hex');

// Capture sockets of this test's daemons go here, not to /run/lispnode (the lab's daemons inherit it).
const runDir = mkdtempSync(join(tmpdir(), 'lispnode-capture-run-'));
process.env.LISPNODE_RUN_DIR = runDir;
const out = mkdtempSync(join(tmpdir(), 'lispnode-capture-out-'));

const labs: NetnsLab[] = [];
after(async () => {
  for (const lab of labs) await lab.destroy();
  rmSync(runDir, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
});

interface Finished {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts `lispnode capture …`; resolves `started` once it says it is capturing. */
function startCapture(args: readonly string[]): { started: Promise<void>; done: Promise<Finished> } {
  const child = spawn(process.execPath, [CLI, 'capture', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let stdout = '';
  let stderr = '';
  let onStart: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (onStart = resolve));
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (stderr.includes('capturing from')) onStart();
  });
  const done = new Promise<Finished>((resolve) => child.once('exit', (status) => resolve({ status, stdout, stderr })));
  void done.then(() => onStart());
  return { started, done };
}

function cli(...args: string[]): Finished {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: process.env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function tsharkFields(file: string, filter: string, fields: readonly string[]): Promise<string[][]> {
  const text = await run(undefined, 'tshark', ['-r', file, '-Y', filter, '-T', 'fields', '-E', 'occurrence=f', ...fields.flatMap((f) => ['-e', f])]);
  return text.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
}

test('lispnode capture: underlay and decrypted pcaps of a running xTR, readable by tshark', { skip, timeout: 120_000 }, async (t) => {
  const lab = await NetnsLab.create({
    nodes: [
      { name: 'cap1', locator: '198.18.0.31', eids: [{ prefix: '192.0.2.32/28', address: '192.0.2.33' }] },
      { name: 'cap2', locator: '198.18.0.32', eids: [{ prefix: '192.0.2.48/28', address: '192.0.2.49' }] },
    ],
    encryption: 'required',
  });
  labs.push(lab);
  const node = lab.node('cap1');
  assert.ok(existsSync(join(runDir, 'xtr-cap1.capture.sock')), 'the daemon made its capture socket');
  assert.equal(statSync(join(runDir, 'xtr-cap1.capture.sock')).mode & 0o777, 0o600, 'only its owner may capture');

  const underlay = join(out, 'underlay.pcap');
  const decrypted = join(out, 'inner-decrypted.pcap');
  const capture = startCapture(['--name', 'cap1', '-w', underlay, '--decrypted', decrypted, '--count', '8']);
  await capture.started;
  const ping = await run(node.namespace, 'ping', ['-c', '6', '-i', '0.2', '-W', '2', '-p', MARKER_HEX, '192.0.2.49']);
  assert.match(ping, / 0% packet loss/);
  const result = await capture.done;
  t.diagnostic(`capture: ${result.stdout.trim()} | ${result.stderr.trim().replace(/\n/g, ' | ')}`);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /WARNING: .*inner-decrypted\.pcap will hold DECRYPTED inner packets/);
  assert.match(result.stdout, /^8 underlay packets written to .*underlay\.pcap; \d+ decrypted packets to .*inner-decrypted\.pcap/);
  assert.ok(node.stderr.some((l) => l.includes('capture started, with DECRYPTED inner packets') && l.includes('"level":"warn"')), 'the daemon logs the decrypted capture');

  for (const file of [underlay, decrypted]) assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is mode 0600`);
  // The underlay: LISP data, encrypted (key-id 1), between the two locators, marker invisible.
  const data = await tsharkFields(underlay, 'lisp-data', ['ip.src', 'ip.dst', 'udp.dstport', 'lisp-data.flags']);
  assert.equal(data.length, 8, 'tshark reads the 8 packets as LISP data');
  for (const [src, dst, port, flags] of data) {
    assert.ok([src, dst].sort().join(' ') === '198.18.0.31 198.18.0.32', `${src} -> ${dst}`);
    assert.equal(port === '4341' || src === '198.18.0.31', true);
    assert.equal(Number(flags) & 0x03, 1, 'key-id 1: encrypted');
  }
  assert.equal(readFileSync(underlay).includes(MARKER), false, 'the marker never appears in the underlay capture');
  const decoded = cli('decode', underlay);
  assert.equal(decoded.status, 0, 'lispnode decode reads it back without a decode error');
  assert.equal(decoded.stdout.split('\n').filter((l) => / LISP-data .*encrypted \d+ bytes/.test(l)).length, 8);
  // The decrypted side: the echo requests and replies in clear.
  const icmp = await tsharkFields(decrypted, 'icmp', ['ip.src', 'ip.dst', 'icmp.type']);
  assert.ok(icmp.some(([s, d, type]) => s === '192.0.2.33' && d === '192.0.2.49' && type === '8'), 'echo requests from the TUN');
  assert.ok(icmp.some(([s, d, type]) => s === '192.0.2.49' && d === '192.0.2.33' && type === '0'), 'echo replies decrypted for the TUN');
  assert.equal(readFileSync(decrypted).includes(MARKER), true, 'the marker is visible once decrypted');
  for (let i = 0; i < 50 && !node.stderr.some((l) => l.includes('capture ended')); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(node.stderr.some((l) => l.includes('"capture ended"')), 'the daemon detaches the tap when the client stops');

  // --duration, with nothing to capture: an empty but valid pcap.
  const quiet = join(out, 'quiet.pcap');
  const started = Date.now();
  const idle = await startCapture(['--name', 'cap1', '-w', quiet, '--duration', '1']).done;
  assert.equal(idle.status, 0, idle.stderr);
  assert.ok(Date.now() - started >= 1000, 'ran for the duration');
  assert.match(idle.stdout, /^0 underlay packets written/);
  assert.equal((await run(undefined, 'tshark', ['-r', quiet])).trim(), '', 'tshark reads the empty capture');

  // Refusals: exit 2, one line, no file written or overwritten.
  const named = cli('capture', '--name', 'cap1', '-w', join(out, 'x.pcap'), '--decrypted', join(out, 'inner.pcap'), '--count', '1');
  assert.equal(named.status, 2);
  assert.match(named.stderr, /^lispnode: --decrypted .*inner\.pcap: the file name must contain "decrypted"/);
  writeFileSync(join(out, 'old-decrypted.pcap'), 'keep me');
  const exists = cli('capture', '--name', 'cap1', '-w', join(out, 'y.pcap'), '--decrypted', join(out, 'old-decrypted.pcap'), '--count', '1');
  assert.equal(exists.status, 2);
  assert.match(exists.stderr, /old-decrypted\.pcap exists: a decrypted capture never overwrites a file/);
  assert.equal(readFileSync(join(out, 'old-decrypted.pcap'), 'utf8'), 'keep me');
  assert.equal(existsSync(join(out, 'y.pcap')), false, 'no empty underlay file left behind');
  const missing = cli('capture', '--name', 'nosuchnode', '-w', join(out, 'z.pcap'), '--count', '1');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot reach .*xtr-nosuchnode\.capture\.sock \(ENOENT\): is the daemon running\?/);

  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), [], 'no namespace or process left');
  assert.equal(existsSync(join(runDir, 'xtr-cap1.capture.sock')), false, 'the daemon removed its capture socket');
  labs.splice(labs.indexOf(lab), 1);
});

test('lispnode capture also records the control plane: the Map-Request and Map-Reply of a resolution, on 4342', { skip, timeout: 120_000 }, async () => {
  const lab = await NetnsLab.create({
    nodes: [
      { name: 'cc1', locator: '198.18.0.41', eids: [{ prefix: '192.0.2.64/28', address: '192.0.2.65' }] },
      { name: 'cc2', locator: '198.18.0.42', eids: [{ prefix: '192.0.2.80/28', address: '192.0.2.81' }] },
    ],
    encryption: 'required',
    mapServer: { name: 'ccms', locator: '198.18.0.40', password: 'capture-site-secret' },
  });
  labs.push(lab);
  const file = join(out, 'control.pcap');
  const capture = startCapture(['--name', 'cc1', '-w', file, '--duration', '4']);
  await capture.started;
  // The first packets to cc2 make cc1 resolve its EID through the map-server.
  await run(lab.node('cc1').namespace, 'ping', ['-c', '3', '-i', '0.3', '-W', '2', '192.0.2.81']).catch(() => undefined);
  const result = await capture.done;
  assert.equal(result.status, 0, result.stderr);
  const control = await tsharkFields(file, 'lisp', ['ip.src', 'ip.dst', 'udp.srcport', 'udp.dstport', 'lisp.type']);
  // ECM (8) out to the map-resolver, Map-Reply (2) back from the ETR or the map-server.
  const types = new Set(control.map((row) => row[4]));
  assert.ok(types.has('8') && types.has('2'), `control messages seen: ${JSON.stringify(control)}`);
  assert.ok(control.some((row) => row[0] === '198.18.0.41' && row[1] === '198.18.0.40' && row[3] === '4342'), 'the Map-Request went out to the map-resolver on 4342');
});
