// The map-server daemon in a network namespace: the OOR and lispers.net Map-Registers of the
// bundled captures, replayed from a namespace holding each xTR's address, are accepted and
// answered with a Map-Notify whose HMAC verifies with the site key; a forged one is refused and
// counted; registrations survive a restart through the snapshot file.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { verifyAuthentication } from '../src/lisp/auth.js';
import { decodeControl } from '../src/lisp/control.js';
import { bundledCaptures } from '../src/node/bundled-captures.js';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import { lispPackets } from '../src/node/lisp-capture.js';
import { readCapture } from '../src/node/pcap-file.js';
import type { RegisterPlan } from './support/register-send.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (CAP_NET_ADMIN) for network namespaces';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const SENDER = fileURLToPath(new URL('./support/register-send.js', import.meta.url));

const labs: NetnsLab[] = [];
// Map-servers of a failed test must not outlive it (they would keep the test process alive).
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const lab of labs) await lab.destroy();
});

interface Scenario {
  readonly capture: string;
  readonly server: string;
  readonly site: string;
}

// Each capture's map-server address and the site section that admits its registrations.
const SCENARIOS: readonly Scenario[] = [
  {
    capture: 'oor-hub.pcap',
    server: '198.18.0.1',
    site: 'name: oor\n    keys: [ { key-id: 0, algorithm: hmac-sha1, password: lisp-test-key } ]\n    prefixes: [ { prefix: 192.0.2.0/24 }, { prefix: "2001:db8::/32" } ]',
  },
  {
    capture: 'lispers-sha256-register.pcap',
    server: '198.18.0.2',
    site: 'name: lispers\n    keys: [ { key-id: 0, algorithm: hmac-sha256, password: sha256-test-pass } ]\n    prefixes: [ { prefix: 192.0.2.0/24 } ]',
  },
  {
    capture: 'lispers-crypto-eid-register.pcap',
    server: '198.18.0.2',
    site: 'name: crypto\n    keys: [ { key-id: 0, algorithm: hmac-sha256, password: crypto-eid-key } ]\n    prefixes: [ { prefix: "[1000]fd00::/8" } ]\n    require-signature: true',
  },
];

function startMapServer(namespace: string, config: string): Promise<{ child: ChildProcess; out: string[] }> {
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CLI, 'map-server', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out: string[] = [];
  const err: string[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(...c.toString().split('\n').filter(Boolean)));
  child.stderr.on('data', (c: Buffer) => err.push(...c.toString().split('\n').filter(Boolean)));
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      // 'ready': the signal handlers are in place (a SIGUSR1 before them would end the process).
      if (err.some((l) => l.includes('"message":"ready"'))) {
        clearInterval(poll);
        resolve({ child, out });
      }
    }, 50);
    child.once('exit', (code) => {
      clearInterval(poll);
      reject(new Error(`map-server exited with ${code}: ${err.join(' | ')}`));
    });
  });
}

async function stats(ms: { child: ChildProcess; out: string[] }): Promise<{ registrations: number; counters: Record<string, number> }> {
  const before = ms.out.length;
  ms.child.kill('SIGUSR1');
  // Generous: a loaded machine delays the signal handler.
  for (let i = 0; i < 500; i++) {
    const line = ms.out.slice(before).find((l) => l.startsWith('{"stats"'));
    if (line) return (JSON.parse(line) as { stats: { registrations: number; counters: Record<string, number> } }).stats;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('no stats from the map-server');
}

async function stop(ms: { child: ChildProcess }): Promise<void> {
  const exited = new Promise((r) => ms.child.once('exit', r));
  ms.child.kill('SIGTERM');
  await exited;
}

for (const scenario of SCENARIOS) {
  test(`map-server: ${scenario.capture} Map-Registers replayed from the xTRs' addresses are accepted and Map-Notified`, { skip, timeout: 60_000 }, async () => {
    const capture = bundledCaptures().find((c) => c.file === scenario.capture);
    const read = capture && readCapture(readFileSync(capture.path));
    assert.ok(capture?.siteKey && read?.ok);
    const key = capture.siteKey;
    // Each distinct Map-Register once (the hub capture holds every packet twice), per sender.
    const bySender = new Map<string, Map<string, Uint8Array>>();
    for (const p of lispPackets(read.packets)) {
      if (p.kind !== 'control' || !p.message.ok || p.message.value.type !== 'map-register') continue;
      const list = bySender.get(p.source) ?? new Map<string, Uint8Array>();
      list.set(Buffer.from(p.payload).toString('hex'), p.payload);
      bySender.set(p.source, list);
    }
    assert.ok(bySender.size > 0);
    const hosts: Record<string, string> = { ms: scenario.server };
    [...bySender.keys()].forEach((address, i) => (hosts[`x${i}`] = address));
    const lab = await NetnsLab.create({ nodes: [], encryption: 'off', hosts });
    labs.push(lab);
    const msNamespace = lab.hosts.find((h) => h.locator === scenario.server)?.namespace ?? '';
    const config = join(lab.dir, 'ms.yaml');
    const snapshot = join(lab.dir, 'registrations.json');
    writeFileSync(config, `listen: { address: ${scenario.server} }\nsnapshot-file: ${snapshot}\ncrypto-eid-prefixes: [ { prefix: "[1000]fd00::/8", derivation: lispers } ]\nsites:\n  - ${scenario.site}\n`);
    let ms = await startMapServer(msNamespace, config);
    for (const [sender, payloads] of bySender) {
      const plan: RegisterPlan = { bind: sender, target: scenario.server, payloads: [...payloads.values()].map((p) => Buffer.from(p).toString('base64')), waitMs: 300 };
      const planFile = join(lab.dir, `plan-${sender}.json`);
      writeFileSync(planFile, JSON.stringify(plan));
      const ns = lab.hosts.find((h) => h.locator === sender)?.namespace ?? '';
      const report = JSON.parse(await run(ns, process.execPath, [SENDER, planFile])) as { replies: { from: string; payload: string }[] };
      assert.equal(report.replies.length, payloads.size, `one Map-Notify per Map-Register from ${sender}`);
      for (const reply of report.replies) {
        const bytes = new Uint8Array(Buffer.from(reply.payload, 'base64'));
        const decoded = decodeControl(bytes);
        assert.ok(decoded.ok && decoded.value.type === 'map-notify', 'a Map-Notify');
        assert.deepEqual(verifyAuthentication(bytes, (id) => (id === key.keyId ? key : undefined)), { ok: true, keyId: key.keyId }, 'its HMAC verifies with the site key');
        assert.equal(reply.from, scenario.server);
      }
    }
    // A forged copy (one flipped bit after the auth field) is refused and counted.
    const [sender, payloads] = [...bySender][0] ?? ['', new Map<string, Uint8Array>()];
    const forged = Uint8Array.from([...payloads.values()][0] ?? []);
    forged[forged.length - 30] = (forged[forged.length - 30] ?? 0) ^ 0x01;
    const forgedPlan = join(lab.dir, 'forged.json');
    writeFileSync(forgedPlan, JSON.stringify({ bind: sender, target: scenario.server, payloads: [Buffer.from(forged).toString('base64')], waitMs: 300 } satisfies RegisterPlan));
    const forgedReport = JSON.parse(await run(lab.hosts.find((h) => h.locator === sender)?.namespace ?? '', process.execPath, [SENDER, forgedPlan])) as { replies: unknown[] };
    assert.equal(forgedReport.replies.length, 0, 'no Map-Notify for a forgery');
    const before = await stats(ms);
    assert.ok(before.registrations >= 1, `registrations held: ${before.registrations}`);
    assert.ok(Object.values(before.counters).reduce((a, b) => a + b, 0) >= 1, `the forgery is counted: ${JSON.stringify(before.counters)}`);
    // A restart keeps the registrations through the snapshot file.
    await stop(ms);
    ms = await startMapServer(msNamespace, config);
    const afterRestart = await stats(ms);
    assert.equal(afterRestart.registrations, before.registrations, 'the snapshot restores every registration');
    await stop(ms);
    await lab.destroy();
    assert.deepEqual(await lab.leftovers(), []);
    labs.splice(labs.indexOf(lab), 1);
  });
}
