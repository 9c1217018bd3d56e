// End to end in network namespaces: the reference controller, a map-server and two nodes. Each
// node onboards (register → uuid → config) over TLS pinned to the controller's root CA — one with
// its device key in a software TPM, one with key files — then brings up the mesh network instance
// of its signed config as an xTR: a crypto-EID for its ECO, registered with the map-server under
// the instance's credential, and encrypted traffic between the two ECOs' EIDs.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import type { MapServerStats } from '../src/node/map-server/map-server-node.js';
import { startSwtpm, swtpmMissing, type SwtpmHandle } from './support/swtpm.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const skip = process.getuid?.() !== 0 ? 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices' : swtpmMissing();
const dir = mkdtempSync(join(tmpdir(), 'lispnode-onboarding-e2e-'));
const children: ChildProcess[] = [];
const labs: NetnsLab[] = [];
const tpms: SwtpmHandle[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const lab of labs) await lab.destroy();
  for (const tpm of tpms) await tpm.stop();
  rmSync(dir, { recursive: true, force: true });
});

const PASSWORD = 'overlay-site-secret';
const CONTROLLER = '198.18.0.20';

interface Proc {
  readonly child: ChildProcess;
  readonly lines: string[];
}

/** Each process gets its own run directory, so status and capture sockets never collide. */
function start(namespace: string, args: string[]): Proc {
  const runDir = mkdtempSync(join(dir, 'run-'));
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LISPNODE_RUN_DIR: runDir } });
  children.push(child);
  const lines: string[] = [];
  const collect = (chunk: Buffer): void => void lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { child, lines };
}

async function waitFor(proc: Proc, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<string> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const line = proc.lines.find((l) => pattern.test(l));
    if (line) return line;
    if (proc.child.exitCode !== null) break;
  }
  assert.fail(`${what}: not seen. Output:\n${proc.lines.join('\n')}`);
}

async function cli(...args: string[]): Promise<string> {
  return run(undefined, process.execPath, [CLI, ...args]);
}

test('controller + map-server + two nodes: onboarding, the signed mesh config, crypto-EIDs registered, encrypted pings between the ECOs', { skip, timeout: 120_000 }, async () => {
  const controllerDir = join(dir, 'controller');
  await cli('controller', 'init', '--dir', controllerDir, '--name', CONTROLLER, '--port', '8443');
  await cli('controller', 'onboarding-cert', '--cert', join(dir, 'onboard.cert.pem'), '--key', join(dir, 'onboard.key.pem'));
  writeFileSync(
    join(dir, 'mesh.yaml'),
    stringify({
      'network-instances': [{ name: 'overlay', 'instance-id': 1000, 'eid-prefix': 'fd00::/8', 'map-servers': [{ address: '198.18.0.10', credential: PASSWORD }] }],
      apps: [{ name: 'eco', network: 'overlay' }],
    }),
  );
  for (const serial of ['SN-1', 'SN-2']) await cli('controller', 'device', 'add', '--dir', controllerDir, '--serial', serial, '--onboarding-cert', join(dir, 'onboard.cert.pem'), '--mesh', join(dir, 'mesh.yaml'));

  const lab = await NetnsLab.create({
    nodes: [],
    encryption: 'required',
    hosts: { ctl: CONTROLLER, n1: '198.18.0.1', n2: '198.18.0.2' },
    mapServer: {
      name: 'ms',
      locator: '198.18.0.10',
      password: PASSWORD,
      cryptoEidPrefixes: [{ prefix: '[1000]fd00::/8' }],
      sites: [{ name: 'overlay', keys: [{ 'key-id': 0, password: PASSWORD }], prefixes: [{ prefix: '[1000]fd00::/8', 'accept-more-specifics': true }], 'require-registration-signature': true }],
    },
  });
  labs.push(lab);
  const ns = (name: string): string => lab.hosts.find((h) => h.locator === { ctl: CONTROLLER, n1: '198.18.0.1', n2: '198.18.0.2' }[name])?.namespace ?? '';
  const ctl = start(ns('ctl'), ['controller', 'run', '--dir', controllerDir, '--listen', CONTROLLER, '--port', '8443']);
  await waitFor(ctl, /"controller started"/, 'the controller');

  // n1 keeps its device key in a software TPM inside its namespace; n2 has no TPM (key files).
  await run(ns('n1'), 'ip', ['link', 'set', 'lo', 'up']);
  const tpm = await startSwtpm({ namespace: ns('n1') });
  tpms.push(tpm);
  // Firmware's part of a measured boot (the vault refuses to seal while PCR 0 or 4 is zero).
  for (const pcr of [0, 1, 2, 3, 4, 7, 14]) {
    await run(ns('n1'), 'env', [`TPM2TOOLS_TCTI=${tpm.tcti}`, 'tpm2_pcrextend', `${pcr}:sha256=${createHash('sha256').update(`boot stage ${pcr}`).digest('hex')}`]);
  }
  const nodes = new Map<string, Proc>();
  for (const [name, serial, locator] of [['n1', 'SN-1', '198.18.0.1'], ['n2', 'SN-2', '198.18.0.2']] as const) {
    const home = join(dir, name);
    mkdirSync(home);
    copyFileSync(join(controllerDir, 'server'), join(home, 'server'));
    copyFileSync(join(controllerDir, 'root-certificate.pem'), join(home, 'root-certificate.pem'));
    writeFileSync(
      join(home, 'node.yaml'),
      stringify({
        'state-dir': 'state',
        controller: { 'server-file': 'server', 'root-ca-file': 'root-certificate.pem', 'poll-interval': 2 },
        onboarding: { 'cert-file': join(dir, 'onboard.cert.pem'), 'key-file': join(dir, 'onboard.key.pem'), serial },
        tpm: name === 'n1' ? { mode: 'required', tcti: tpm.tcti } : { mode: 'none' },
        underlay: { address: locator },
      }),
    );
    nodes.set(name, start(ns(name), ['run', '--config', join(home, 'node.yaml')]));
  }
  const eids = new Map<string, string>();
  for (const [name, proc] of nodes) {
    const up = JSON.parse(await waitFor(proc, /"mesh network instance up"/, `${name}'s mesh instance`)) as { eid: string; instanceId: number };
    assert.equal(up.instanceId, 1000);
    assert.match(up.eid, /^fd/);
    eids.set(name, up.eid);
  }
  assert.match(nodes.get('n1')?.lines.find((l) => l.includes('"node started"')) ?? '', /TPM/i, 'n1 runs on the TPM');
  assert.match(nodes.get('n2')?.lines.join('\n') ?? '', /NO TPM/, 'n2 says loudly it has no TPM');
  assert.ok(nodes.get('n1')?.lines.some((l) => l.includes('"vault unlocked"') && l.includes('created and sealed')), 'n1 sealed a new vault key in its TPM');
  assert.match(nodes.get('n2')?.lines.join('\n') ?? '', /secrets are stored unencrypted/, 'n2 says its secrets are not encrypted');
  const devices = await cli('controller', 'device', 'list', '--dir', controllerDir);
  assert.equal(devices.split('\n').filter((l) => l.includes(' registered ')).length, 2, devices);

  // Both crypto-EIDs registered (with their signatures) under the instance's credential: each
  // node registers its EID and its hash-EID name, which carries the public key.
  for (let i = 0; i < 100; i++) {
    const ms = await lab.stats<MapServerStats>('ms');
    if (ms.registrations >= 4) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const ms = await lab.stats<MapServerStats>('ms');
  assert.equal(ms.registrations, 4, `${JSON.stringify(ms)}\n${[...nodes.values()].map((p) => p.lines.join('\n')).join('\n----\n')}`);
  // The site requires the registration signature, so accepted means signed and verified.
  assert.equal(ms.counters['map-register-accepted'], ms.counters['map-register-received'], JSON.stringify(ms.counters));

  // Encrypted pings between the ECOs' EIDs (the first may be spent on resolution).
  const target = eids.get('n2') ?? '';
  await run(ns('n1'), 'ping', ['-6', '-c', '2', '-W', '2', target]).catch(() => undefined);
  const ping = await run(ns('n1'), 'ping', ['-6', '-c', '5', '-i', '0.2', '-W', '2', target]);
  assert.match(ping, / 0% packet loss/, ping);

  for (const proc of [...nodes.values(), ctl]) {
    const exited = new Promise((r) => proc.child.once('exit', r));
    proc.child.kill('SIGTERM');
    await exited;
  }
  await lab.destroy();
  labs.splice(labs.indexOf(lab), 1);
  assert.deepEqual(await lab.leftovers(), []);
});
