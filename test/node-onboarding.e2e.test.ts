// End to end in network namespaces: the reference controller, a map-server and two nodes. Each
// node onboards (register → uuid → config) over TLS pinned to the controller's root CA — one with
// its device key and vault in a software TPM, one with key files — then brings up the mesh network
// instance of its signed config as an xTR: a crypto-EID for its ECO, registered with the
// map-server under the instance's credential, and encrypted traffic between the two ECOs' EIDs.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import type { MapServerStats } from '../src/node/map-server/map-server-node.js';
import type { NodeStatusReport } from '../src/node/ops/status-report.js';
import { cli, measuredTpm, nodeHome, NODE_LAB, nodeLab, setupController, startIn, stopAll, teardown, waitFor, type Proc } from '../src/node/lab/node-processes.js';
import { swtpmMissing } from '../src/node/lab/swtpm.js';

const skip = process.getuid?.() !== 0 ? 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices' : swtpmMissing();
const t = teardown('lispnode-onboarding-e2e-');
const { dir, children, tpms } = t;
after(() => t.run());

const PASSWORD = 'overlay-site-secret';

/** Every file under `folder` whose bytes contain `text`. */
function filesContaining(folder: string, text: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' })
    .map((f) => join(folder, f))
    .filter((f) => statSync(f).isFile() && readFileSync(f).includes(text));
}

test('controller + map-server + two nodes: onboarding, the signed mesh config, crypto-EIDs registered, encrypted pings between the ECOs', { skip, timeout: 120_000 }, async () => {
  const { controllerDir, onboarding } = await setupController(dir, { address: NODE_LAB.ctl, mapServer: NODE_LAB.ms, credential: PASSWORD, serials: ['SN-1', 'SN-2'], attestation: 'none' });

  const { lab, ns } = await nodeLab((o) => NetnsLab.create(o), { credential: PASSWORD });
  t.labs.push(lab);
  const ctl = startIn(ns('ctl'), ['controller', 'run', '--dir', controllerDir, '--listen', NODE_LAB.ctl, '--port', '8443'], dir, children);
  await waitFor(ctl, /"controller started"/, 'the controller');

  // n1 keeps its device key and vault in a software TPM inside its namespace; n2 has no TPM.
  const tpm = await measuredTpm(ns('n1'), tpms);
  const nodes = new Map<string, Proc>();
  for (const [name, serial] of [['n1', 'SN-1'], ['n2', 'SN-2']] as const) {
    const config = nodeHome(join(dir, name), { controllerDir, onboarding, serial, locator: NODE_LAB[name], tpm: name === 'n1' ? { mode: 'required', tcti: tpm.tcti } : { mode: 'none' } });
    nodes.set(name, startIn(ns(name), ['run', '--config', config], dir, children));
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
  for (let i = 0; i < 100 && (await lab.stats<MapServerStats>('ms')).registrations < 4; i++) await new Promise((r) => setTimeout(r, 100));
  const ms = await lab.stats<MapServerStats>('ms');
  assert.equal(ms.registrations, 4, `${JSON.stringify(ms)}\n${[...nodes.values()].map((p) => p.lines.join('\n')).join('\n----\n')}`);
  // The site requires the registration signature, so accepted means signed and verified.
  assert.equal(ms.counters['map-register-accepted'], ms.counters['map-register-received'], JSON.stringify(ms.counters));

  // `lispnode status` on each node: the control plane's state and its mesh xTR's, live.
  for (const [name, proc] of nodes) {
    const socket = (JSON.parse(await waitFor(proc, /"message":"ready"/, `${name} ready`)) as { statusSocket: string }).statusSocket;
    const report = JSON.parse(await cli('status', '--socket', socket, '--json')) as NodeStatusReport;
    assert.equal(report.role, 'node');
    assert.equal(report.node.controller, 'connected');
    assert.equal(report.node.vault.status, name === 'n1' ? 'unlocked' : 'plain');
    assert.equal(report.node.mesh[0]?.eid, eids.get(name));
    assert.equal(report.xtr?.role, 'xtr', 'the mesh xTR reports inside the node');
    const text = await cli('status', '--socket', socket);
    assert.match(text, new RegExp(`^node ${report.node.uuid ?? '?'}: controller connected`, 'm'));
    assert.match(text, name === 'n1' ? /^vault: unlocked \(.*\), key fingerprint [0-9a-f]{16}$/m : /^key store: .* — NO TPM/m);
  }

  // Encrypted pings between the ECOs' EIDs (the first may be spent on resolution).
  const target = eids.get('n2') ?? '';
  await run(ns('n1'), 'ping', ['-6', '-c', '2', '-W', '2', target]).catch(() => undefined);
  const ping = await run(ns('n1'), 'ping', ['-6', '-c', '5', '-i', '0.2', '-W', '2', target]);
  assert.match(ping, / 0% packet loss/, ping);

  // The map-server credential the mesh carries is a node secret: in n1's vault-encrypted store it
  // is nowhere on disk in clear; n2, without a TPM, keeps it in a plain store, as it says.
  assert.deepEqual(filesContaining(join(dir, 'n1', 'state'), PASSWORD), []);
  assert.ok(filesContaining(join(dir, 'n2', 'state', 'secrets'), PASSWORD).length > 0);

  await stopAll([...nodes.values(), ctl]);
  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), []);
});
