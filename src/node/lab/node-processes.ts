// lispnode processes in network namespaces for the node end-to-end tests and the demo: the CLI run inside a
// namespace with its output collected, waiting for a log line, one-shot CLI commands, a node's
// home (trust files copied from the controller, node.yaml), and a software TPM that has been
// through a measured boot.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { run, type LabOptions, type NetnsLab } from './netns-lab.js';
import { startSwtpm, type SwtpmHandle } from './swtpm.js';

export const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));

export interface Proc {
  readonly child: ChildProcess;
  readonly lines: string[];
}

/** `lispnode <args>` in `namespace`, with its own run directory (status and capture sockets never collide). */
export function startIn(namespace: string, args: readonly string[], scratch: string, children: ChildProcess[]): Proc {
  const runDir = mkdtempSync(join(scratch, 'run-'));
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LISPNODE_RUN_DIR: runDir } });
  children.push(child);
  const lines: string[] = [];
  const collect = (chunk: Buffer): void => void lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { child, lines };
}

export async function waitFor(proc: Proc, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<string> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const line = proc.lines.find((l) => pattern.test(l));
    if (line) return line;
    if (proc.child.exitCode !== null) break;
  }
  throw new Error(`${what}: not seen. Output:\n${proc.lines.join('\n')}`);
}

export async function stopAll(procs: readonly Proc[]): Promise<void> {
  for (const proc of procs) {
    if (proc.child.exitCode !== null) continue;
    const exited = new Promise((r) => proc.child.once('exit', r));
    proc.child.kill('SIGTERM');
    await exited;
  }
}

/** A one-shot `lispnode` command in the root namespace. */
export function cli(...args: string[]): Promise<string> {
  return run(undefined, process.execPath, [CLI, ...args]);
}

/** A node's home folder: the controller's trust files and a node.yaml; returns the config path. */
export function nodeHome(home: string, o: { controllerDir: string; onboarding: { cert: string; key: string }; serial: string; locator: string; tpm: Record<string, string>; pollInterval?: number }): string {
  mkdirSync(home, { recursive: true });
  copyFileSync(join(o.controllerDir, 'server'), join(home, 'server'));
  copyFileSync(join(o.controllerDir, 'root-certificate.pem'), join(home, 'root-certificate.pem'));
  const file = join(home, 'node.yaml');
  writeFileSync(
    file,
    stringify({
      'state-dir': 'state',
      controller: { 'server-file': 'server', 'root-ca-file': 'root-certificate.pem', 'poll-interval': o.pollInterval ?? 2 },
      onboarding: { 'cert-file': o.onboarding.cert, 'key-file': o.onboarding.key, serial: o.serial },
      tpm: o.tpm,
      underlay: { address: o.locator },
    }),
  );
  return file;
}

export const measurement = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Extends a PCR of the swtpm inside `namespace` (only reachable from there). */
export function extendPcr(namespace: string, tpm: SwtpmHandle, pcr: number, text: string): Promise<string> {
  return run(namespace, 'env', [`TPM2TOOLS_TCTI=${tpm.tcti}`, 'tpm2_pcrextend', `${pcr}:sha256=${measurement(text)}`]);
}

/** A software TPM in `namespace` after the firmware's part of a measured boot (PCR 0–4, 7, 14). */
export async function measuredTpm(namespace: string, tpms: SwtpmHandle[]): Promise<SwtpmHandle> {
  await run(namespace, 'ip', ['link', 'set', 'lo', 'up']);
  const tpm = await startSwtpm({ namespace });
  tpms.push(tpm);
  for (const pcr of [0, 1, 2, 3, 4, 7, 14]) await extendPcr(namespace, tpm, pcr, `boot stage ${pcr}`);
  return tpm;
}

export interface ControllerSetup {
  readonly controllerDir: string;
  readonly onboarding: { readonly cert: string; readonly key: string };
}

/**
 * A controller data directory (`controller init` for `address`), an onboarding certificate, and
 * the devices pre-registered with one mesh: an overlay instance (IID 1000, fd00::/8) whose
 * map-server is `mapServer` with `credential`, and one ECO per device.
 */
export async function setupController(
  dir: string,
  o: { readonly address: string; readonly mapServer: string; readonly credential: string; readonly serials: readonly string[]; readonly attestation: 'none' | 'tpm' },
): Promise<ControllerSetup> {
  const controllerDir = join(dir, 'controller');
  await cli('controller', 'init', '--dir', controllerDir, '--name', o.address, '--port', '8443');
  const onboarding = { cert: join(dir, 'onboard.cert.pem'), key: join(dir, 'onboard.key.pem') };
  await cli('controller', 'onboarding-cert', '--cert', onboarding.cert, '--key', onboarding.key);
  const mesh = join(dir, 'mesh.yaml');
  writeFileSync(
    mesh,
    stringify({
      'network-instances': [{ name: 'overlay', 'instance-id': 1000, 'eid-prefix': 'fd00::/8', 'map-servers': [{ address: o.mapServer, credential: o.credential }] }],
      apps: [{ name: 'eco', network: 'overlay' }],
    }),
  );
  for (const serial of o.serials) {
    await cli('controller', 'device', 'add', '--dir', controllerDir, '--serial', serial, '--onboarding-cert', onboarding.cert, '--mesh', mesh, '--attestation', o.attestation);
  }
  return { controllerDir, onboarding };
}

/** What an end-to-end test starts and must stop: processes, labs, software TPMs, a scratch folder. */
export interface Teardown {
  readonly dir: string;
  readonly children: ChildProcess[];
  readonly labs: { destroy(): Promise<void> }[];
  readonly tpms: SwtpmHandle[];
  /** Kills what still runs, destroys the labs, stops the TPMs, removes the folder. */
  run(): Promise<void>;
}

export function teardown(prefix: string): Teardown {
  const t: Teardown = {
    dir: mkdtempSync(join(tmpdir(), prefix)),
    children: [],
    labs: [],
    tpms: [],
    async run() {
      for (const child of t.children) if (child.exitCode === null) child.kill('SIGKILL');
      for (const lab of t.labs) await lab.destroy();
      for (const tpm of t.tpms) await tpm.stop();
      rmSync(t.dir, { recursive: true, force: true });
    },
  };
  return t;
}

/** Where the node labs put things: the controller, two nodes and the map-server. */
export const NODE_LAB = { ctl: '198.18.0.20', n1: '198.18.0.1', n2: '198.18.0.2', ms: '198.18.0.10' } as const;

/**
 * The namespaces of a node lab: the controller's and the nodes' (hosts: the processes are started
 * with `startIn`) and a map-server for instance 1000's crypto-EIDs in fd00::/8, signed
 * registrations required — and attestation tickets too when `ticketSigningCert` is given.
 */
export async function nodeLab(
  create: (options: LabOptions) => Promise<NetnsLab>,
  o: { readonly credential: string; readonly ticketSigningCert?: string; readonly id?: string },
): Promise<{ readonly lab: NetnsLab; readonly ns: (name: 'ctl' | 'n1' | 'n2') => string }> {
  const { ms, ...hosts } = NODE_LAB;
  const lab = await create({
    nodes: [],
    encryption: 'required',
    hosts,
    ...(o.id !== undefined && { id: o.id }),
    mapServer: {
      name: 'ms',
      locator: ms,
      password: o.credential,
      cryptoEidPrefixes: [{ prefix: '[1000]fd00::/8' }],
      sites: [
        {
          name: 'overlay',
          keys: [{ 'key-id': 0, password: o.credential }],
          prefixes: [{ prefix: '[1000]fd00::/8' }],
          'require-registration-signature': true,
          ...(o.ticketSigningCert !== undefined && { 'require-attestation-ticket': true }),
        },
      ],
      ...(o.ticketSigningCert !== undefined && { extra: { attestation: { 'controller-signing-certs': [o.ticketSigningCert] } } }),
    },
  });
  return { lab, ns: (name) => lab.hosts.find((h) => h.locator === NODE_LAB[name])?.namespace ?? '' };
}
