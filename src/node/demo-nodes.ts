// `lispnode demo`, part two: the whole system the way an operator runs it. A reference controller
// pre-registers two devices; two nodes, each with a software TPM after a measured boot, onboard
// over TLS pinned to the controller's root CA, attest, seal and escrow their vault keys, and run
// the controller's mesh network instance as an xTR whose registrations carry an attestation
// ticket; the map-server admits only ticketed EIDs. Their ECOs then ping each other, encrypted.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCommand, LabGuard, ping } from './lab/measure.js';
import type { NetnsLab } from './lab/netns-lab.js';
import { measuredTpm, nodeHome, NODE_LAB, nodeLab, setupController, startIn, stopAll, waitFor, type Proc } from './lab/node-processes.js';
import { swtpmMissing, type SwtpmHandle } from './lab/swtpm.js';
import type { MapServerStatusReport, NodeStatusReport } from './ops/status-report.js';
import { queryStatus } from './ops/status-client.js';

type Print = (line: string) => void;

const TICKET_SECONDS = 600;

export async function nodesDemo(print: Print): Promise<boolean> {
  print('== Nodes: a reference controller onboards two lispnode nodes with software TPMs; they attest, unlock their vaults, and join the overlay with attestation tickets');
  if (process.getuid?.() !== 0) {
    print('   skipped: this part builds network namespaces and TUN devices, which needs root (CAP_NET_ADMIN)');
    return true;
  }
  const missing = swtpmMissing() ?? ((await hasCommand('ip')) ? undefined : 'ip (iproute2)');
  if (missing !== undefined) {
    print(`   skipped: ${missing} (\`npm run demo\` installs the Debian packages)`);
    return true;
  }
  const dir = mkdtempSync(join(tmpdir(), 'lispnode-demo-'));
  const guard = new LabGuard();
  const untrap = guard.trapSignals(print);
  const children: ChildProcess[] = [];
  const tpms: SwtpmHandle[] = [];
  const procs: Proc[] = [];
  let lab: NetnsLab | undefined;
  let healthy = true;
  try {
    const started = Date.now();
    const credential = randomBytes(12).toString('base64');
    const { controllerDir, onboarding } = await setupController(dir, { address: NODE_LAB.ctl, mapServer: NODE_LAB.ms, credential, serials: ['SN-1', 'SN-2'], attestation: 'tpm' });
    const built = await nodeLab((o) => guard.create(o), { credential, ticketSigningCert: join(controllerDir, 'signing.cert.pem'), id: `n${String(process.pid % 100000).padStart(5, '0')}` });
    lab = built.lab;
    const { ns } = built;
    const ctl = startIn(ns('ctl'), ['controller', 'run', '--dir', controllerDir, '--listen', NODE_LAB.ctl, '--port', '8443', '--ticket-lifetime', String(TICKET_SECONDS)], dir, children);
    procs.push(ctl);
    await waitFor(ctl, /"controller started"/, 'the controller');
    print(`   controller: netns ${ns('ctl')}, https://${NODE_LAB.ctl}:8443; each node pins its root CA and server file`);
    print('   map-server ms: 198.18.0.10; its site admits crypto-EIDs only with a ticket signed by the controller');

    const nodes = new Map<'n1' | 'n2', Proc>();
    const homes = new Map<'n1' | 'n2', string>();
    for (const [name, serial] of [['n1', 'SN-1'], ['n2', 'SN-2']] as const) {
      const tpm = await measuredTpm(ns(name), tpms);
      homes.set(name, join(dir, name));
      const config = nodeHome(join(dir, name), { controllerDir, onboarding, serial, locator: NODE_LAB[name], tpm: { mode: 'required', tcti: tpm.tcti } });
      const proc = startIn(ns(name), ['run', '--config', config, '--log-level', 'info'], dir, children);
      procs.push(proc);
      nodes.set(name, proc);
    }
    const eids = new Map<string, string>();
    for (const [name, proc] of nodes) {
      eids.set(name, (JSON.parse(await waitFor(proc, /"mesh network instance up"/, `${name}'s mesh instance`, 30_000)) as { eid: string }).eid);
      await waitFor(proc, /"attestation ticket renewed"/, `${name}'s attestation ticket`, 30_000);
      print(`   node ${name}: netns ${ns(name)}, locator ${NODE_LAB[name]}, software TPM (measured boot: PCR 0-4, 7, 14), ECO crypto-EID ${eids.get(name) ?? '?'}`);
    }
    print(`onboarded, attested and ticketed in ${((Date.now() - started) / 1000).toFixed(1)} s (register -> uuid -> attest -> signed config -> mesh instance -> ticket)`);

    const status = async (name: 'n1' | 'n2'): Promise<NodeStatusReport> => (await queryStatus(statusSocket(nodes.get(name)), 'status', { timeoutMs: 10_000 })) as NodeStatusReport;
    for (const name of ['n1', 'n2'] as const) {
      const s = (await status(name)).node;
      print(`   ${name}: controller ${s.controller}; vault ${s.vault.status} (${s.vault.detail}); attestation ${s.attestation?.attested ? 'valid' : 'none'}; ticket until ${s.ticket?.notAfter ?? '-'}`);
    }
    const ms = await lab.status<MapServerStatusReport>('ms');
    const ticketed = ms.registrations.filter((r) => r.eid.endsWith('/128'));
    print(`map-server ms: ${ticketed.length} crypto-EIDs admitted with tickets (${ticketed.map((r) => r.eid).join(', ')})`);

    const [a, b] = [eids.get('n1') ?? '', eids.get('n2') ?? ''];
    await ping(ns('n1'), b, 2).catch(() => undefined); // the first packets resolve and agree keys
    const result = await ping(ns('n1'), b, 5);
    print(`ping ${a} -> ${b} (ECO to ECO, encrypted): ${result.received}/${result.transmitted} replies, ${result.lossPercent}% loss`);
    if (result.received === 0) healthy = false;
  } catch (error) {
    if (!guard.interrupted) print(`nodes failed: ${(error as Error).message}`);
    healthy = false;
  } finally {
    await stopAll(procs.filter((p) => p.child.exitCode === null));
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    for (const tpm of tpms) await tpm.stop();
    const left = await guard.destroyAll();
    untrap();
    rmSync(dir, { recursive: true, force: true });
    if (lab) {
      if (left.length === 0) print(`torn down: controller, nodes, software TPMs and map-server stopped, namespaces ln${lab.id}-* removed`);
      else {
        print(`teardown incomplete, left: ${left.join(', ')}`);
        healthy = false;
      }
    }
  }
  return healthy;
}

/** The status socket a daemon announced in its `ready` line. */
function statusSocket(proc: Proc | undefined): string {
  const line = proc?.lines.find((l) => l.includes('"message":"ready"'));
  const socket = line && (JSON.parse(line) as { statusSocket?: string }).statusSocket;
  if (!socket) throw new Error('the node announced no status socket');
  return socket;
}
