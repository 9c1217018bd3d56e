// Measuring a lab: ping and iperf3 inside network namespaces, their output parsed into numbers,
// and a guard that tears labs down on every way out (normal end, error, SIGINT/SIGTERM). Shared by
// `lispnode demo` and the overlay benchmark. Every process started here is tracked, so an
// interrupted run can kill what is still running (`stopAll`) before its labs are torn down.
import { spawn, type ChildProcess } from 'node:child_process';
import { NetnsLab, type LabOptions } from './netns-lab.js';

/** What `ping` reported: counts, loss and round-trip times in milliseconds. */
export interface PingResult {
  readonly transmitted: number;
  readonly received: number;
  readonly lossPercent: number;
  readonly rtt?: { readonly min: number; readonly avg: number; readonly max: number; readonly mdev: number };
}

/** Parses iputils `ping`'s summary ("3 packets transmitted, 3 received, 0% packet loss", "rtt min/avg/max/mdev = …"). */
export function parsePing(output: string): PingResult | undefined {
  const counts = /(\d+) packets transmitted, (\d+) (?:packets )?received,(?: \+\d+ \w+,)* ([\d.]+)% packet loss/.exec(output);
  if (!counts) return undefined;
  const result = { transmitted: Number(counts[1]), received: Number(counts[2]), lossPercent: Number(counts[3]) };
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(output);
  if (!rtt) return result;
  return { ...result, rtt: { min: Number(rtt[1]), avg: Number(rtt[2]), max: Number(rtt[3]), mdev: Number(rtt[4]) } };
}

/** One iperf3 test as the receiving side saw it. */
export interface IperfResult {
  readonly protocol: 'tcp' | 'udp';
  /** Seconds measured (after the omitted warm-up). */
  readonly seconds: number;
  /** Payload bits per second that arrived. */
  readonly receivedBitsPerSecond: number;
  /** Payload bits per second the sender sent. */
  readonly sentBitsPerSecond: number;
  /** TCP: retransmissions seen by the sender. */
  readonly retransmits?: number;
  /** UDP: datagrams sent, datagrams that arrived, datagrams lost (gaps in iperf3's sequence numbers). */
  readonly packetsSent?: number;
  readonly packetsReceived?: number;
  readonly lostPercent?: number;
}

interface IperfSum {
  readonly seconds?: number;
  readonly bytes?: number;
  readonly bits_per_second?: number;
  readonly retransmits?: number;
  readonly packets?: number;
  readonly lost_packets?: number;
  readonly lost_percent?: number;
}
interface IperfJson {
  readonly error?: string;
  readonly end?: { readonly sum?: IperfSum; readonly sum_sent?: IperfSum; readonly sum_received?: IperfSum };
}

/** Parses `iperf3 -J` client output (TCP or UDP). Throws with iperf3's own error text when the test failed. */
export function parseIperf3(json: string, protocol: 'tcp' | 'udp'): IperfResult {
  let parsed: IperfJson;
  try {
    parsed = JSON.parse(json) as IperfJson;
  } catch {
    throw new Error(`iperf3 printed no JSON: ${json.slice(0, 200)}`);
  }
  if (parsed.error) throw new Error(`iperf3: ${parsed.error}`);
  const sent = parsed.end?.sum_sent;
  const received = parsed.end?.sum_received;
  if (!sent || !received) throw new Error('iperf3: no end-of-test summary');
  const seconds = received.seconds ?? sent.seconds ?? 0;
  if (protocol === 'tcp') {
    return {
      protocol,
      seconds,
      receivedBitsPerSecond: received.bits_per_second ?? 0,
      sentBitsPerSecond: sent.bits_per_second ?? 0,
      ...(sent.retransmits !== undefined ? { retransmits: sent.retransmits } : {}),
    };
  }
  // UDP: the receiver's sum counts the datagrams it expected (by sequence number) and the gaps.
  const expected = received.packets ?? 0;
  const lost = received.lost_packets ?? 0;
  return {
    protocol,
    seconds,
    receivedBitsPerSecond: received.bits_per_second ?? 0,
    sentBitsPerSecond: sent.bits_per_second ?? 0,
    packetsSent: sent.packets ?? expected,
    packetsReceived: expected - lost,
    lostPercent: received.lost_percent ?? (expected > 0 ? (100 * lost) / expected : 0),
  };
}

const running = new Set<ChildProcess>();

/** Kills every process this module started that is still running (for SIGINT handlers and finally blocks). */
export function stopAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** `command args…` inside `namespace` (`ip netns exec`), tracked; resolves with stdout, rejects with stderr on failure. */
export function runIn(namespace: string, command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', namespace, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (code === 0) resolve(stdout);
      else {
        const why = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms?)` : ''}` : `exit ${code}`;
        const error = new Error(`${command} ${args.join(' ')} in ${namespace}: ${why}: ${(stderr || stdout).trim().slice(0, 400)}`);
        Object.assign(error, { stdout });
        reject(error);
      }
    });
  });
}

/** Pings `target` from `namespace`; resolves with the parsed summary even when packets were lost. */
export async function ping(namespace: string, target: string, count = 5, intervalSeconds = 0.2): Promise<PingResult> {
  let output: string;
  try {
    output = await runIn(namespace, 'ping', ['-c', String(count), '-i', String(intervalSeconds), '-W', '2', '-n', target], 30_000);
  } catch (error) {
    // ping exits 1 when replies were missing: that is a result, not a failure.
    output = (error as { stdout?: string }).stdout ?? '';
    if (!parsePing(output)) throw error;
  }
  const parsed = parsePing(output);
  if (!parsed) throw new Error(`cannot read ping's summary: ${output.slice(0, 200)}`);
  return parsed;
}

/** A running `iperf3 -s` in a namespace (all addresses, port 5201, one test at a time). */
export interface Iperf3Server {
  stop(): Promise<void>;
}

export function startIperf3Server(namespace: string, port = 5201): Promise<Iperf3Server> {
  const child = spawn('ip', ['netns', 'exec', namespace, 'iperf3', '-s', '-p', String(port), '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      running.delete(child);
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      void stop();
      reject(new Error(`iperf3 server in ${namespace} did not start: ${output.trim()}`));
    }, 5000);
    const onData = (c: Buffer): void => {
      output += c.toString('utf8');
      if (output.includes('Server listening')) {
        clearTimeout(deadline);
        resolve({ stop });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(deadline);
      running.delete(child);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(deadline);
      running.delete(child);
      reject(new Error(`iperf3 server in ${namespace} exited (${code}): ${output.trim()}`));
    });
  });
}

export interface Iperf3Options {
  readonly protocol: 'tcp' | 'udp';
  readonly seconds: number;
  /** Seconds at the start left out of the result (TCP slow start, ARP, first keys). */
  readonly omitSeconds?: number;
  /** UDP payload bytes per datagram. */
  readonly length?: number;
  /** UDP target rate, e.g. '3G'; '0' is unlimited. */
  readonly bitrate?: string;
  /** Socket buffer size (`-w`, e.g. '4M'): the TCP window, or both UDP sockets' buffers. */
  readonly window?: string;
  readonly port?: number;
}

/** Runs an iperf3 client from `namespace` to `target` and returns what the receiver saw. */
export async function iperf3(namespace: string, target: string, options: Iperf3Options): Promise<IperfResult> {
  const args = ['-c', target, '-p', String(options.port ?? 5201), '-t', String(options.seconds), '-J', '--connect-timeout', '3000'];
  if (options.window) args.push('-w', options.window);
  if (options.omitSeconds) args.push('-O', String(options.omitSeconds));
  if (options.protocol === 'udp') args.push('-u', '-b', options.bitrate ?? '0', ...(options.length ? ['-l', String(options.length)] : []));
  let output: string;
  try {
    output = await runIn(namespace, 'iperf3', args, (options.seconds + (options.omitSeconds ?? 0) + 15) * 1000);
  } catch (error) {
    // iperf3 -J reports its own errors as JSON on stdout with exit 1.
    const stdout = (error as { stdout?: string }).stdout ?? '';
    if (stdout.includes('"error"')) parseIperf3(stdout, options.protocol);
    throw error;
  }
  return parseIperf3(output, options.protocol);
}

/** 945e6 -> '945 Mb/s', 2.3e9 -> '2.30 Gb/s'. */
export function formatBits(bitsPerSecond: number): string {
  return bitsPerSecond >= 1e9 ? `${(bitsPerSecond / 1e9).toFixed(2)} Gb/s` : `${(bitsPerSecond / 1e6).toFixed(0)} Mb/s`;
}

/** 1234567 -> '1.23 MB', 2345 -> '2.3 kB', 12 -> '12 B'. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(2)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}

/** 123456 -> '123 kpps', 1.2e6 -> '1.20 Mpps'. */
export function formatPps(pps: number): string {
  return pps >= 1e6 ? `${(pps / 1e6).toFixed(2)} Mpps` : `${(pps / 1e3).toFixed(1)} kpps`;
}

/** Does `command` exist on PATH? */
export function hasCommand(command: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(command, ['--version'], { stdio: 'ignore' });
    child.once('error', () => resolve(false));
    child.once('exit', () => resolve(true));
  });
}

/**
 * Labs with a guaranteed teardown: `create` tracks each lab from the moment it starts building,
 * `destroyAll` (for a finally block) stops the measuring processes and destroys every lab, and
 * while `trapSignals` is in force SIGINT/SIGTERM do the same before the process exits (128 + signal).
 */
export class LabGuard {
  private readonly pending = new Set<Promise<NetnsLab | undefined>>();
  private readonly labs = new Set<NetnsLab>();
  private destroying: Promise<string[]> | undefined;
  /** The signal that interrupted the run, once one did: errors after it are the teardown's doing. */
  interrupted: NodeJS.Signals | undefined;

  /** NetnsLab.create, tracked; refused once a teardown has begun. */
  create(options: LabOptions): Promise<NetnsLab> {
    if (this.interrupted || this.destroying) return Promise.reject(new Error(`interrupted (${this.interrupted ?? 'teardown'}): no new lab`));
    const creating = NetnsLab.create(options);
    const settled = creating.then(
      (lab) => {
        this.labs.add(lab);
        return lab;
      },
      () => undefined,
    );
    this.pending.add(settled);
    void settled.finally(() => this.pending.delete(settled));
    return creating;
  }

  /** Stops measuring processes, destroys every lab (also those still being built); returns what is left of them. */
  destroyAll(): Promise<string[]> {
    this.destroying ??= this.teardown().finally(() => (this.destroying = undefined));
    return this.destroying;
  }

  private async teardown(): Promise<string[]> {
    stopAll();
    const left: string[] = [];
    while (this.pending.size > 0 || this.labs.size > 0) {
      await Promise.all([...this.pending]);
      for (const lab of [...this.labs]) {
        this.labs.delete(lab);
        await lab.destroy().catch(() => undefined);
        left.push(...(await lab.leftovers().catch(() => [`lab ${lab.id}: cannot list namespaces`])));
      }
    }
    // Whatever the interrupted flow started meanwhile (its namespace is gone now, so nothing new can start in it).
    stopAll();
    return left;
  }

  /** Until the returned function is called, SIGINT/SIGTERM tear the labs down and exit; a second signal exits at once. */
  trapSignals(say: (line: string) => void): () => void {
    const handler = (signal: NodeJS.Signals): void => {
      const code = signal === 'SIGINT' ? 130 : 143;
      if (this.interrupted) process.exit(code);
      this.interrupted = signal;
      say(`\n${signal}: tearing the lab down`);
      this.destroyAll().then(
        (left) => {
          if (left.length > 0) say(`left behind: ${left.join(', ')}`);
          process.exit(code);
        },
        () => process.exit(code),
      );
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
    return () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    };
  }
}

/** The TUN MTU an xTR reported when it started, from its JSON log on stderr. */
export function tunMtu(lab: NetnsLab, node: string): number | undefined {
  const line = lab.node(node).stderr.find((l) => l.includes('xTR started'));
  const match = line ? /"mtu":(\d+)/.exec(line) : null;
  return match ? Number(match[1]) : undefined;
}
