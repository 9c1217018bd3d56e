// Attestation-gated overlay membership, end to end in network namespaces: a controller issuing
// 30-second attestation tickets, a map-server whose site requires them (trusting the
// controller's signing certificate), and two nodes with software TPMs after a measured boot. Both
// attest, carry their tickets in their Map-Registers and talk. Then n2's PCR 14 changes (a config
// file measured again): its next attestation is refused, its ticket is not renewed, the map-server
// refuses its refreshes and counts them, its EID drops out when the ticket expires, and traffic to
// it stops once the clamped map-cache entry runs out — while n1, still attested, stays registered.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import type { MapServerStats } from '../src/node/map-server/map-server-node.js';
import type { MapServerStatusReport } from '../src/node/ops/status-report.js';
import { extendPcr, measuredTpm, nodeHome, NODE_LAB, nodeLab, setupController, startIn, stopAll, teardown, waitFor, type Proc } from '../src/node/lab/node-processes.js';
import { swtpmMissing, type SwtpmHandle } from '../src/node/lab/swtpm.js';

const skip = process.getuid?.() !== 0 ? 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices' : swtpmMissing();
const t = teardown('lispnode-membership-e2e-');
const { dir, children, tpms } = t;
after(() => t.run());

const PASSWORD = 'overlay-site-secret';
const TICKET_SECONDS = 30;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function ping(namespace: string, eid: string): Promise<boolean> {
  return run(namespace, 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '1', eid]).then(
    (out) => !/ 100% packet loss/.test(out),
    () => false,
  );
}

test('attested nodes register with tickets and talk; a node whose attestation is refused drops out when its ticket expires', { skip, timeout: 240_000 }, async () => {
  const { controllerDir, onboarding } = await setupController(dir, { address: NODE_LAB.ctl, mapServer: NODE_LAB.ms, credential: PASSWORD, serials: ['SN-1', 'SN-2'], attestation: 'tpm' });

  const { lab, ns } = await nodeLab((o) => NetnsLab.create(o), { credential: PASSWORD, ticketSigningCert: join(controllerDir, 'signing.cert.pem') });
  t.labs.push(lab);
  const ctl = startIn(ns('ctl'), ['controller', 'run', '--dir', controllerDir, '--listen', NODE_LAB.ctl, '--port', '8443', '--ticket-lifetime', String(TICKET_SECONDS)], dir, children);
  await waitFor(ctl, /"controller started"/, 'the controller');

  const nodes = new Map<'n1' | 'n2', Proc>();
  const tpmOf = new Map<'n1' | 'n2', SwtpmHandle>();
  for (const [name, serial] of [['n1', 'SN-1'], ['n2', 'SN-2']] as const) {
    const tpm = await measuredTpm(ns(name), tpms);
    tpmOf.set(name, tpm);
    const config = nodeHome(join(dir, name), { controllerDir, onboarding, serial, locator: NODE_LAB[name], tpm: { mode: 'required', tcti: tpm.tcti } });
    nodes.set(name, startIn(ns(name), ['run', '--config', config], dir, children));
  }
  const eids = new Map<string, string>();
  for (const [name, proc] of nodes) {
    eids.set(name, (JSON.parse(await waitFor(proc, /"mesh network instance up"/, `${name}'s mesh instance`, 30_000)) as { eid: string }).eid);
    await waitFor(proc, /"attestation ticket renewed"/, `${name}'s first ticket`, 30_000);
  }
  const eid2 = eids.get('n2') ?? '';
  const registered = async (eid: string): Promise<boolean> => (await lab.status<MapServerStatusReport>('ms')).registrations.some((r) => r.eid === `[1000]${eid}/128`);
  for (let i = 0; i < 100 && !((await registered(eids.get('n1') ?? '')) && (await registered(eid2))); i++) await sleep(100);
  assert.ok(await registered(eid2), 'n2 registered with its ticket');

  // Attested: they talk (the first packets may be spent on resolution).
  await ping(ns('n1'), eid2);
  assert.ok(await ping(ns('n1'), eid2), 'n1 reaches n2 while both are attested');

  // n2's configuration changes and is measured into PCR 14: its next attestation (at half the
  // ticket's lifetime) is refused, so its ticket is not renewed.
  await extendPcr(ns('n2'), tpmOf.get('n2') as SwtpmHandle, 14, 'config file edited');
  await waitFor(nodes.get('n2') as Proc, /refused the quote \(quote-failed\)/, "n2's refused attestation", 30_000);

  // The ticket expires; n2's refreshes are refused and counted; its EID leaves the map-server.
  let counters: Readonly<Record<string, number>> = {};
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(1000)) {
    counters = (await lab.stats<MapServerStats>('ms')).counters;
    if ((counters['record-attestation-ticket-expired'] ?? 0) + (counters['record-attestation-ticket-missing'] ?? 0) > 0 && !(await registered(eid2))) break;
  }
  assert.ok((counters['record-attestation-ticket-expired'] ?? 0) + (counters['record-attestation-ticket-missing'] ?? 0) > 0, `rejections counted: ${JSON.stringify(counters)}`);
  assert.equal(await registered(eid2), false, "n2's EID is no longer registered");

  // Traffic to n2 stops once n1's cached mapping (TTL clamped to the ticket) runs out.
  let reachable = true;
  for (const deadline = Date.now() + 90_000; reachable && Date.now() < deadline; await sleep(2000)) reachable = await ping(ns('n1'), eid2);
  assert.equal(reachable, false, 'n1 can no longer reach n2');

  // n1, still attested, kept renewing and stays registered; n2 is alive and still trying.
  assert.ok(await registered(eids.get('n1') ?? ''), 'n1 is still registered');
  assert.ok((nodes.get('n1')?.lines.filter((l) => l.includes('"attestation ticket renewed"')).length ?? 0) >= 2, 'n1 renewed its ticket');
  assert.equal(nodes.get('n2')?.child.exitCode, null, 'n2 keeps running');

  await stopAll([...nodes.values(), ctl]);
  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), []);
});
