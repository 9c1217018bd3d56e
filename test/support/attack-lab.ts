// The lab of the attack suite (test/attack*.e2e.test.ts, `npm run attack`): a map-server, two
// encrypting xTRs (suite 5, crypto-EIDs) that register with it and resolve each other through it
// (forwarded Map-Requests, so the ETRs answer with their RFC 8061 keys), and a hostile host on the
// same underlay. The hostile host runs the scripts of test/support (hostile-host.js, attack-flood.js,
// hostile-etr.js) in its namespace; spoofing a peer's locator is IP_TRANSPARENT there.
//
//   x1   198.18.0.1   192.0.2.0/28  (192.0.2.1),  crypto-EID in fd00::/8
//   x2   198.18.0.2   192.0.2.16/28 (192.0.2.17), crypto-EID in fd00::/8
//   ms   198.18.0.10  one site: 192.0.2.0/24 (more-specifics), fd00::/8 (crypto-EIDs), one key
//   evil 198.18.0.66  the hostile host; as a site member it serves 192.0.2.64/28 (192.0.2.65)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { deriveCryptoEid, exportPrivateKeyPem, generateP256KeyPair } from '../../src/crypto/index.js';
import { formatIpv6 } from '../../src/lisp/ip-text.js';
import { NetnsLab, run } from '../../src/node/lab/netns-lab.js';
import type { MapServerStatusReport, XtrStatusReport } from '../../src/node/ops/status-report.js';
import { readCapture, type CapturedPacket } from '../../src/node/pcap-file.js';

export const SITE_PASSWORD = 'attack-suite-site-secret';
export const X1 = { name: 'x1', locator: '198.18.0.1', prefix: '192.0.2.0/28', eid: '192.0.2.1' } as const;
export const X2 = { name: 'x2', locator: '198.18.0.2', prefix: '192.0.2.16/28', eid: '192.0.2.17' } as const;
export const MS = { name: 'ms', locator: '198.18.0.10' } as const;
export const EVIL = { name: 'evil', locator: '198.18.0.66', prefix: '192.0.2.64/28', eid: '192.0.2.65' } as const;
export type DaemonName = 'x1' | 'x2' | 'ms';
export const DAEMONS: readonly DaemonName[] = ['ms', 'x1', 'x2'];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface PingResult {
  readonly sent: number;
  readonly received: number;
}

export const lossOf = (p: PingResult): number => (p.sent === 0 ? 1 : (p.sent - p.received) / p.sent);
export const formatPing = (p: PingResult): string => `${p.received}/${p.sent} (${(100 * lossOf(p)).toFixed(1)} % loss)`;

export type XtrStatus = XtrStatusReport;
export type MapServerStatus = MapServerStatusReport;

export class AttackLab {
  private trimmer: NodeJS.Timeout | undefined;

  private constructor(
    readonly lab: NetnsLab,
    readonly cryptoEids: Readonly<Record<'x1' | 'x2', string>>,
  ) {}

  /** Builds the lab and waits until both xTRs are registered and reach each other (IPv4 and crypto-EID). */
  static async start(id: string): Promise<AttackLab> {
    const keys = [generateP256KeyPair((n) => randomBytes(n)), generateP256KeyPair((n) => randomBytes(n))] as const;
    const [eid1, eid2] = keys.map((k) => formatIpv6(deriveCryptoEid({ iid: 0, spki: k.spki }).eid)) as [string, string];
    const lab = await NetnsLab.create({
      id,
      nodes: [
        { name: X1.name, locator: X1.locator, eids: [{ prefix: X1.prefix, address: X1.eid }], cryptoEidKey: exportPrivateKeyPem(keys[0]), routes: [X2.prefix, EVIL.prefix, 'fd00::/8'] },
        { name: X2.name, locator: X2.locator, eids: [{ prefix: X2.prefix, address: X2.eid }], cryptoEidKey: exportPrivateKeyPem(keys[1]), routes: [X1.prefix, EVIL.prefix, 'fd00::/8'] },
      ],
      encryption: 'required',
      suite: 5,
      hosts: { [EVIL.name]: EVIL.locator },
      mapServer: {
        name: MS.name,
        locator: MS.locator,
        password: SITE_PASSWORD,
        cryptoEidPrefixes: [{ prefix: 'fd00::/8' }],
        sites: [{ name: 'overlay', keys: [{ 'key-id': 0, password: SITE_PASSWORD }], prefixes: [{ prefix: '192.0.2.0/24' }, { prefix: 'fd00::/8' }] }],
      },
    });
    const attack = new AttackLab(lab, { x1: eid1, x2: eid2 });
    try {
      // The lab keeps every log line of its daemons; floods make many (send errors to fake locators).
      attack.trimmer = setInterval(() => {
        for (const n of lab.nodes) for (const lines of [n.stderr, n.stdout]) if (lines.length > 2000) lines.splice(0, lines.length - 1000);
      }, 1000);
      attack.trimmer.unref();
      await attack.settle();
      return attack;
    } catch (error) {
      await attack.destroy();
      throw error;
    }
  }

  get evilNamespace(): string {
    return this.lab.hosts[0]?.namespace ?? '';
  }

  namespace(name: DaemonName): string {
    return this.lab.node(name).namespace;
  }

  xtr(name: 'x1' | 'x2'): Promise<XtrStatus> {
    return this.lab.status<XtrStatus>(name);
  }

  mapServer(): Promise<MapServerStatus> {
    return this.lab.status<MapServerStatus>(MS.name);
  }

  /** Whether the daemon's process runs and its status socket answers. */
  async alive(name: DaemonName): Promise<boolean> {
    const p = this.lab.node(name).process;
    if (p.exitCode !== null || p.signalCode !== null) return false;
    return this.lab.status(name).then(
      () => true,
      () => false,
    );
  }

  /** How a daemon ended: its exit code or signal and the last lines it logged. */
  lastWords(name: DaemonName): string {
    const n = this.lab.node(name);
    return `exit ${n.process.exitCode ?? n.process.signalCode ?? 'none (status socket silent)'}: ${n.stderr.slice(-4).join(' | ')}`;
  }

  /** Restarts every daemon that died (an attack that killed one must not spoil the next test). */
  async revive(): Promise<void> {
    for (const name of DAEMONS) if (!(await this.alive(name))) await this.lab.restart(name);
    await this.settle();
  }

  /** Resident memory of a daemon in kB (VmRSS of /proc/<pid>/status); 0 once it is gone. */
  rss(name: DaemonName): number {
    const pid = this.lab.node(name).process.pid;
    try {
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  }

  /**
   * Waits until both xTRs are registered and x1 <-> x2 answer pings (IPv4 and crypto-EID), so an
   * attack starts from a working overlay and a previous attack's damage has healed (or shows).
   */
  async settle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const name of ['x1', 'x2'] as const) {
      while ((await this.xtr(name)).registrations[0]?.state !== 'registered') {
        if (Date.now() > deadline) throw new Error(`${name} did not register`);
        await sleep(100);
      }
    }
    const paths = [
      ['x1', X2.eid],
      ['x2', X1.eid],
      ['x1', this.cryptoEids.x2],
      ['x2', this.cryptoEids.x1],
    ] as const;
    for (const [from, to] of paths) {
      for (;;) {
        const p = await this.ping(from, to, { count: 2, intervalMs: 100, waitS: 1 });
        if (p.received === p.sent) break;
        if (Date.now() > deadline) throw new Error(`${from} -> ${to} does not answer: ${formatPing(p)}`);
        await sleep(200);
      }
    }
  }

  /** `count` pings from a node's namespace to `to`; `marker` (hex, up to 16 bytes) fills the payload. */
  async ping(from: 'x1' | 'x2', to: string, o: { readonly count: number; readonly intervalMs: number; readonly waitS?: number; readonly marker?: string }): Promise<PingResult> {
    const args = ['-q', '-c', String(o.count), '-i', String(o.intervalMs / 1000), '-W', String(o.waitS ?? 1), ...(o.marker ? ['-p', o.marker] : []), to];
    const out = await run(this.namespace(from), 'ping', args, 120_000).catch((error: { stdout?: string }) => error.stdout ?? '');
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    return { sent: Number(m?.[1] ?? o.count), received: Number(m?.[2] ?? 0) };
  }

  /** Pings x1 -> x2 (IPv4) every `intervalMs` while `during` runs; returns both results. */
  async pingDuring<T>(during: () => Promise<T>, intervalMs = 50): Promise<{ readonly result: T; readonly ping: PingResult }> {
    const ns = this.namespace('x1');
    const child = spawn('ip', ['netns', 'exec', ns, 'ping', '-i', String(intervalMs / 1000), '-W', '1', X2.eid], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    const stop = async (): Promise<void> => {
      child.kill('SIGINT');
      await exited;
    };
    let result: T;
    try {
      result = await during();
      // Replies to the last requests are still on their way.
      await sleep(1000);
    } finally {
      await stop();
    }
    return { result, ping: pingSummary(out) };
  }

  /** UDP counters of /proc/net/snmp inside a namespace (they are per network namespace). */
  async udpSnmp(namespace: string): Promise<Record<string, number>> {
    const lines = (await run(namespace, 'cat', ['/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Udp:'));
    const names = (lines[0] ?? '').split(/\s+/).slice(1);
    const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
    return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
  }

  /**
   * Runs one of test/support's hostile scripts in the hostile host's namespace with `plan` (as
   * JSON in a file) and returns the JSON object it prints last.
   */
  async hostile<R>(script: 'hostile-host' | 'attack-flood', plan: unknown, timeoutMs = 120_000): Promise<R> {
    const file = join(this.lab.dir, `${script}-${Date.now()}-${Math.floor(Math.random() * 1e6)}.json`);
    writeFileSync(file, JSON.stringify(plan));
    const path = fileURLToPath(new URL(`./${script}.js`, import.meta.url));
    const out = await run(this.evilNamespace, process.execPath, [path, file], timeoutMs);
    return JSON.parse(out.trim().split('\n').pop() ?? '{}') as R;
  }

  /** Starts test/support/hostile-etr.js in the hostile namespace; resolves once it is registered. */
  async hostileEtr(plan: unknown): Promise<{ readonly stop: () => Promise<string> }> {
    const file = join(this.lab.dir, `hostile-etr-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify(plan));
    const path = fileURLToPath(new URL('./hostile-etr.js', import.meta.url));
    const child = spawn('ip', ['netns', 'exec', this.evilNamespace, process.execPath, path, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const stop = async (): Promise<string> => {
      child.kill('SIGTERM');
      await exited;
      return out;
    };
    for (let i = 0; i < 100 && !out.includes('"registered"'); i++) await sleep(100);
    if (!out.includes('"registered"')) {
      await stop();
      throw new Error(`the hostile ETR did not register: ${out} ${err}`);
    }
    return { stop };
  }

  /**
   * Captures on a daemon's interface (`eth0`, the underlay, or `lisp0`, its TUN) while `during`
   * runs; returns the captured packets.
   */
  async capture(name: 'x1' | 'x2', iface: 'eth0' | 'lisp0', filter: string, during: () => Promise<void>): Promise<readonly CapturedPacket[]> {
    const file = join(this.lab.dir, `${name}-${iface}-${Date.now()}.pcap`);
    const tshark = spawn('ip', ['netns', 'exec', this.namespace(name), 'tshark', '-i', iface, '-f', filter, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    tshark.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise((r) => tshark.once('exit', r));
    try {
      for (let i = 0; i < 200 && !err.includes('Capturing on'); i++) await sleep(50);
      if (!err.includes('Capturing on')) throw new Error(`tshark did not start: ${err}`);
      // tshark says "Capturing on" a moment before it captures.
      await sleep(500);
      await during();
      await sleep(500);
    } finally {
      tshark.kill('SIGINT');
      await exited;
    }
    const read = readCapture(readFileSync(file));
    if (!read.ok) throw new Error(`capture ${file} unreadable`);
    return read.packets;
  }

  async destroy(): Promise<void> {
    if (this.trimmer) clearInterval(this.trimmer);
    await this.lab.destroy();
  }
}

/**
 * A stopped ping's figures from its per-reply lines: the last request may still have been on its
 * way when ping was stopped, so it is left out of both counts.
 */
/**
 * One lab for a test file: started by the first test that asks for it, destroyed after the last
 * (and shown to leave nothing behind). Labs of different files need different ids.
 */
export function attackLabPerFile(id: string): () => Promise<AttackLab> {
  let lab: Promise<AttackLab> | undefined;
  after(async () => {
    const started = lab;
    lab = undefined;
    const l = await started?.catch(() => undefined);
    if (!l) return;
    await l.destroy();
    assert.deepEqual(await l.lab.leftovers(), [], 'no namespace or process left');
  });
  return () => (lab ??= AttackLab.start(id));
}

function pingSummary(output: string): PingResult {
  const transmitted = Number(/(\d+) packets transmitted/.exec(output)?.[1] ?? 0);
  const answered = new Set([...output.matchAll(/bytes from [^\n]*icmp_seq=(\d+) /g)].map((m) => Number(m[1])));
  answered.delete(transmitted);
  return { sent: Math.max(0, transmitted - 1), received: answered.size };
}

/** How many of `packets` carry `marker` somewhere in their bytes. */
export function withMarker(packets: readonly CapturedPacket[], marker: string): number {
  const m = Buffer.from(marker);
  return packets.filter((p) => Buffer.from(p.data.buffer, p.data.byteOffset, p.data.length).includes(m)).length;
}

/** A ping -p pattern (hex) from text of at most 16 bytes. */
export function pingPattern(text: string): string {
  if (text.length > 16) throw new RangeError('ping patterns are at most 16 bytes');
  return Buffer.from(text).toString('hex');
}
