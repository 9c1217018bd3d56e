// A lab of lispnode xTRs in network namespaces on this machine, for the demo, the end-to-end
// tests and the benchmarks: namespaces joined by veth pairs on 198.18.0.0/24, one xTR process per
// node with its config and keys in a temporary folder, and a teardown that removes everything it
// made (processes, namespaces, interfaces, files) — and can prove it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { queryStatus } from '../ops/status-client.js';
import { newDataKey } from '../xtr/data-key.js';
import type { XtrStats } from '../xtr/xtr-node.js';

const exec = promisify(execFile);
const CLI = fileURLToPath(new URL('../../cli.js', import.meta.url));

export interface LabNodeSpec {
  /** Short name, used in namespace and interface names. */
  readonly name: string;
  /** Underlay address in 198.18.0.0/24. */
  readonly locator: string;
  /** A P-256 private key (PEM): the node then has this crypto-EID (in fd00::/8) besides `eids`. */
  readonly cryptoEidKey?: string;
  /** Local EIDs: prefix and the address assigned on the TUN (the "workload"). */
  readonly eids: readonly { readonly prefix: string; readonly address: string }[];
  /** Static map-cache entries besides the other nodes' EIDs (e.g. for a host replaying a peer's traffic). */
  readonly mapCache?: readonly { readonly prefix: string; readonly locators: readonly string[] }[];
  /** The TUN's routes (tun.routes); default: the other nodes' EID prefixes. */
  readonly routes?: readonly string[];
}

export interface LabOptions {
  readonly nodes: readonly LabNodeSpec[];
  readonly encryption: 'required' | 'off';
  readonly suite?: 2 | 5;
  readonly backend?: 'native' | 'node';
  /** Extra namespaces on the underlay without an xTR (e.g. a replayer), name -> locator. */
  readonly hosts?: Readonly<Record<string, string>>;
  /**
   * A map-server node: started first, in its own namespace; every xTR registers with it and
   * resolves through it instead of carrying static mappings of the others. `sites` replaces the
   * default single site (all nodes' EID prefixes, key-id 0, HMAC-SHA-256 with `password`).
   */
  readonly mapServer?: {
    readonly name: string;
    readonly locator: string;
    readonly password: string;
    readonly sites?: readonly Record<string, unknown>[];
    /** Crypto-EID prefixes of the map-server (config form, e.g. { prefix: 'fd00::/8' }). */
    readonly cryptoEidPrefixes?: readonly Record<string, unknown>[];
    /** More top-level keys of its config (e.g. `attestation`). */
    readonly extra?: Readonly<Record<string, unknown>>;
  };
  /**
   * Lab id (1–8 lowercase letters or digits) in namespace and interface names; default: from the pid
   * and a random number. Give distinct ids to labs that one process runs at the same time, since
   * destroy() removes every namespace named `ln<id>-…`.
   */
  readonly id?: string;
  /**
   * Serve Prometheus metrics: every daemon on 127.0.0.1 of its own namespace (xTRs :9464, the
   * map-server :9465; `scrape` fetches them). Default off.
   */
  readonly metrics?: boolean;
}

export interface LabNode extends LabNodeSpec {
  readonly namespace: string;
  readonly role: 'xtr' | 'map-server';
  readonly configFile: string;
  /** The daemon's status socket (in the lab's folder). */
  readonly statusSocket: string;
  readonly process: ChildProcess;
  readonly stderr: string[];
  readonly stdout: string[];
}

/** Runs a command in the root namespace or inside `namespace`. */
export async function run(namespace: string | undefined, command: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  const [file, argv] = namespace ? ['ip', ['netns', 'exec', namespace, command, ...args]] : [command, [...args]];
  const { stdout } = await exec(file, argv, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  return stdout;
}

export class NetnsLab {
  readonly nodes: LabNode[] = [];
  readonly hosts: { readonly namespace: string; readonly locator: string }[] = [];
  private readonly bridge: string;
  private readonly underlay: string;
  private metrics = false;
  private constructor(
    readonly id: string,
    readonly dir: string,
  ) {
    this.bridge = `lnbr${id}`;
    this.underlay = `ln${id}-u`;
  }

  /** Namespaces are named `ln<id>-<node>`; <id> is short so interface names stay under 16 chars. */
  static async create(options: LabOptions): Promise<NetnsLab> {
    if (options.id !== undefined && !/^[a-z0-9]{1,8}$/.test(options.id)) throw new RangeError(`lab id ${JSON.stringify(options.id)}: 1-8 lowercase letters or digits`);
    // Fixed width, so two labs' ids can never run into each other (12345 = 1234+5 = 123+45).
    const id = options.id ?? `${String(process.pid % 10000).padStart(4, '0')}${String(Math.floor(Math.random() * 100)).padStart(2, '0')}`;
    const lab = new NetnsLab(id, mkdtempSync(join(tmpdir(), 'lispnode-lab-')));
    try {
      await lab.build(options);
      return lab;
    } catch (error) {
      await lab.destroy();
      throw error;
    }
  }

  private async build(options: LabOptions): Promise<void> {
    this.metrics = options.metrics ?? false;
    // A bridge in its own namespace plays the underlay switch, as in the reference captures.
    await run(undefined, 'ip', ['netns', 'add', this.underlay]);
    await run(this.underlay, 'ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    await run(this.underlay, 'ip', ['link', 'set', this.bridge, 'up']);
    const ms = options.mapServer;
    const all = [
      ...options.nodes.map((n) => ({ name: n.name, locator: n.locator })),
      ...(ms ? [{ name: ms.name, locator: ms.locator }] : []),
      ...Object.entries(options.hosts ?? {}).map(([name, locator]) => ({ name, locator })),
    ];
    for (const { name, locator } of all) {
      const ns = `ln${this.id}-${name}`;
      await run(undefined, 'ip', ['netns', 'add', ns]);
      await run(ns, 'ip', ['link', 'set', 'lo', 'up']);
      const outside = `v${this.id}${name}`.slice(0, 15);
      await run(this.underlay, 'ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await run(this.underlay, 'ip', ['link', 'set', outside, 'master', this.bridge, 'up']);
      await run(ns, 'ip', ['addr', 'add', `${locator}/24`, 'dev', 'eth0']);
      await run(ns, 'ip', ['link', 'set', 'eth0', 'up']);
      if (!options.nodes.some((n) => n.name === name) && name !== ms?.name) this.hosts.push({ namespace: ns, locator });
    }
    if (ms) {
      const sites = ms.sites ?? [
        { name: 'overlay', keys: [{ 'key-id': 0, password: ms.password }], prefixes: options.nodes.flatMap((n) => n.eids.map((e) => ({ prefix: e.prefix }))) },
      ];
      const file = join(this.dir, `${ms.name}.yaml`);
      writeFileSync(file, stringify({ listen: { address: ms.locator }, 'snapshot-file': `${ms.name}-registrations.json`, 'crypto-eid-prefixes': ms.cryptoEidPrefixes ?? [], sites, ...ms.extra, ...this.operations(ms.name) }));
      this.nodes.push(await this.startRole({ name: ms.name, locator: ms.locator, eids: [] }, 'map-server', file));
    }
    const keys = new Map<string, string>();
    for (const node of options.nodes) keys.set(node.name, options.encryption === 'required' ? newDataKey(join(this.dir, `${node.name}.key`)) : '');
    for (const node of options.nodes) {
      const others = options.nodes.filter((n) => n !== node);
      const config = {
        ...this.operations(node.name),
        tun: {
          name: 'lisp0',
          ...(node.routes
            ? { routes: node.routes }
            : ms && { routes: [...others.flatMap((o) => o.eids.map((e) => e.prefix)), ...(others.some((o) => o.cryptoEidKey) ? ['fd00::/8'] : [])] }),
        },
        ...(node.cryptoEidKey && { 'crypto-eid': { 'key-file': this.writeFile(`${node.name}-eid.pem`, node.cryptoEidKey) } }),
        underlay: { address: node.locator },
        'local-eids': node.eids.map((e) => ({ prefix: e.prefix, address: e.address })),
        ...(ms && {
          'map-servers': [{ address: ms.locator, key: { 'key-id': 0, password: ms.password } }],
          'map-resolvers': [{ address: ms.locator }],
        }),
        'map-cache': [
          ...(ms ? [] : others.flatMap((o) => o.eids.map((e) => ({ prefix: e.prefix, locators: [{ address: o.locator }] })))),
          ...(node.mapCache ?? []).map((e) => ({ prefix: e.prefix, locators: e.locators.map((address) => ({ address })) })),
        ],
        encryption:
          options.encryption === 'required'
            ? {
                mode: 'required',
                'cipher-suite': options.suite ?? 5,
                backend: options.backend ?? 'native',
                'private-key-file': `${node.name}.key`,
                // With a map-server, keys are agreed in the Map-Request/Map-Reply exchange instead.
                peers: ms ? [] : others.map((o) => ({ locator: o.locator, 'public-key': keys.get(o.name) ?? '' })),
              }
            : { mode: 'off' },
      };
      const file = join(this.dir, `${node.name}.yaml`);
      writeFileSync(file, stringify(config));
      this.nodes.push(await this.startRole(node, 'xtr', file));
    }
  }

  /** The daemons' shared settings: a status socket in the lab's folder, metrics if asked for. */
  private operations(name: string): Record<string, unknown> {
    return { 'status-socket': join(this.dir, `${name}.sock`), ...(this.metrics && { metrics: {} }) };
  }

  /** Writes a file into the lab's folder (mode 0600) and returns its name. */
  private writeFile(name: string, content: string): string {
    writeFileSync(join(this.dir, name), content, { mode: 0o600 });
    return name;
  }

  /** Starts `lispnode <role> --config <file>` in the node's namespace; resolves once it is ready (status socket up). */
  private startRole(spec: LabNodeSpec, role: 'xtr' | 'map-server', configFile: string): Promise<LabNode> {
    const namespace = `ln${this.id}-${spec.name}`;
    const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, CLI, role, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const node: LabNode = { ...spec, namespace, role, configFile, statusSocket: join(this.dir, `${spec.name}.sock`), process: child, stderr: [], stdout: [] };
    const lines = (sink: string[]) => (chunk: Buffer) => sink.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    child.stdout.on('data', lines(node.stdout));
    child.stderr.on('data', lines(node.stderr));
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`${role} ${spec.name} did not start in 10 s: ${node.stderr.join(' | ')}`)), 10_000);
      const poll = setInterval(() => {
        if (node.stderr.some((l) => l.includes('"message":"ready"'))) {
          clearTimeout(deadline);
          clearInterval(poll);
          resolve(node);
        }
      }, 50);
      child.once('exit', (code) => {
        clearTimeout(deadline);
        clearInterval(poll);
        reject(new Error(`${role} ${spec.name} exited with ${code}: ${node.stderr.join(' | ')}`));
      });
    });
  }

  node(name: string): LabNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no lab node ${name}`);
    return n;
  }

  /**
   * Captures UDP 4341 on a node's underlay interface while `during` runs; returns the pcap file.
   * tshark says "Capturing on" a little before it really captures, so a warm-up (e.g. one ping)
   * must show up in its live output first.
   */
  async capture(node: string, warmUp: () => Promise<unknown>, during: () => Promise<void>): Promise<string> {
    const file = join(this.dir, `${node}-${Date.now()}.pcap`);
    const tshark = spawn('ip', ['netns', 'exec', this.node(node).namespace, 'tshark', '-i', 'eth0', '-f', 'udp port 4341', '-w', file, '-P', '-l'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    tshark.stdout.on('data', (c: Buffer) => (out += c.toString()));
    for (let i = 0; i < 100 && out.trim() === ''; i++) {
      await warmUp().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
    try {
      if (out.trim() === '') throw new Error('tshark captured nothing during the warm-up');
      await during();
    } finally {
      // Let the last replies reach the capture buffer before stopping it.
      await new Promise((r) => setTimeout(r, 500));
      const exited = new Promise((r) => tshark.once('exit', r));
      tshark.kill('SIGINT');
      await exited;
    }
    return file;
  }

  /** Stops a node's process (SIGTERM) and starts it again with the same configuration; a dead one is only started. */
  async restart(name: string): Promise<void> {
    const old = this.node(name);
    if (old.process.exitCode === null && old.process.signalCode === null) {
      const exited = new Promise((r) => old.process.once('exit', r));
      old.process.kill('SIGTERM');
      await exited;
    }
    const spec: LabNodeSpec = {
      name: old.name,
      locator: old.locator,
      eids: old.eids,
      ...(old.cryptoEidKey && { cryptoEidKey: old.cryptoEidKey }),
      ...(old.mapCache && { mapCache: old.mapCache }),
      ...(old.routes && { routes: old.routes }),
    };
    const fresh = await this.startRole(spec, old.role, old.configFile);
    this.nodes.splice(this.nodes.indexOf(old), 1, fresh);
  }

  /** The node's status report, from its status socket (ops/status-report.ts). */
  async status<T>(name: string): Promise<T> {
    return (await queryStatus(this.node(name).statusSocket, 'status', { timeoutMs: 10_000 })) as T;
  }

  /** Changes a node's configuration file (parsed YAML, edited in place by `edit`). */
  editConfig(name: string, edit: (config: Record<string, unknown>) => void): void {
    const file = this.node(name).configFile;
    const config = parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    edit(config);
    writeFileSync(file, stringify(config));
  }

  /** Sends SIGHUP and returns the node's log line about the reload (its message starts with "reload"). */
  async reload(name: string): Promise<{ readonly level: string; readonly message: string } & Record<string, unknown>> {
    const node = this.node(name);
    const before = node.stderr.length;
    node.process.kill('SIGHUP');
    for (let i = 0; i < 500; i++) {
      const line = node.stderr.slice(before).find((l) => l.includes('"message":"reload'));
      if (line) return JSON.parse(line) as { level: string; message: string };
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no reload log line from ${name}: ${node.stderr.slice(before).join(' | ')}`);
  }

  /** The node's Prometheus metrics, fetched with curl inside its namespace. */
  async scrape(name: string): Promise<string> {
    const node = this.node(name);
    return run(node.namespace, 'curl', ['-sf', `http://127.0.0.1:${node.role === 'xtr' ? 9464 : 9465}/metrics`]);
  }

  /** The node's counters, asked for with SIGUSR1. */
  async stats<T = XtrStats>(name: string): Promise<T> {
    const node = this.node(name);
    const before = node.stdout.length;
    node.process.kill('SIGUSR1');
    // Generous: a loaded machine (a benchmark beside the tests) delays the signal handler.
    for (let i = 0; i < 500; i++) {
      const line = node.stdout.slice(before).find((l) => l.startsWith('{"stats"'));
      if (line) return (JSON.parse(line) as { stats: T }).stats;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no stats from ${name}`);
  }

  /** Stops every xTR (SIGTERM, then SIGKILL), deletes the namespaces and the folder. */
  async destroy(): Promise<void> {
    await Promise.all(
      this.nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            if (n.process.exitCode !== null || n.process.signalCode !== null) return resolve();
            const kill = setTimeout(() => n.process.kill('SIGKILL'), 5000);
            n.process.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            n.process.kill('SIGTERM');
          }),
      ),
    );
    const namespaces = (await run(undefined, 'ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '').filter((ns) => ns.startsWith(`ln${this.id}-`));
    for (const ns of namespaces) await run(undefined, 'ip', ['netns', 'del', ns]).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** What is left of this lab: namespaces and xTR processes (empty after destroy). */
  async leftovers(): Promise<string[]> {
    const namespaces = (await run(undefined, 'ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '').filter((ns) => ns.startsWith(`ln${this.id}-`));
    const processes = this.nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null).map((n) => `xTR ${n.name}`);
    return [...namespaces, ...processes];
  }
}
