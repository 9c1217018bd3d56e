// Re-sends captured LISP datagrams at one target, paced, and collects what comes back. With
// `keepSources` each datagram leaves from its original source address and port: one transparent
// batched UDP socket (IP_TRANSPARENT, CAP_NET_ADMIN) per source, so the kernel still builds the IP
// and UDP headers and checksums, and the source need not be an address of this host. Without it,
// one socket on an ephemeral port. `lispnode replay` and the capture tests share this sender.
import { performance } from 'node:perf_hooks';
import { allocateUdpBatch, errnoName, openBatchUdpSocket, readAddressSlot, writeAddressSlot, type BatchUdpSocket } from '../../tun/udp-socket.js';
import { canonicalAddress, type ReplayDatagram } from './replay-select.js';

export interface ReplayOptions {
  /** The target's address; every datagram goes there, to its `port`. */
  readonly target: string;
  readonly keepSources: boolean;
  /** Datagrams per second; 0 sends as fast as the socket takes them. */
  readonly rate: number;
  /** After the last datagram, how long to keep listening for replies (0: do not listen). */
  readonly replyWaitMs: number;
}

export interface ReplayReply {
  /** Who answered, and to which of our sockets. */
  readonly from: string;
  readonly fromPort: number;
  readonly to: string;
  readonly toPort: number;
  readonly payload: Uint8Array;
}

export interface ReplayReport {
  readonly sent: number;
  /** One line per datagram that did not leave: where it came from and why. */
  readonly errors: readonly string[];
  /** The source endpoints used ("198.18.0.11:4341"). */
  readonly sources: readonly string[];
  readonly replies: readonly ReplayReply[];
}

/** The sockets of a replay, one per source endpoint, opened on first use. */
class SourceSockets {
  private readonly sockets = new Map<string, BatchUdpSocket>();
  private readonly batch = allocateUdpBatch(16, 65536);
  readonly replies: ReplayReply[] = [];

  constructor(
    private readonly family: 4 | 6,
    private readonly keepSources: boolean,
    private readonly listen: boolean,
  ) {}

  get(d: ReplayDatagram): BatchUdpSocket {
    const address = this.keepSources ? d.source : this.family === 4 ? '0.0.0.0' : '::';
    const port = this.keepSources ? d.sourcePort : 0;
    const key = `${address} ${port}`;
    let socket = this.sockets.get(key);
    if (!socket) {
      socket = openBatchUdpSocket({ family: this.family, address, port, transparent: this.keepSources });
      const s = socket;
      if (this.listen) s.startReading(() => this.receive(s));
      this.sockets.set(key, socket);
    }
    return socket;
  }

  private receive(socket: BatchUdpSocket): void {
    const b = this.batch;
    for (;;) {
      const n = socket.recvBatch(b.packets, 0, b.lengths, b.addresses, b.ports);
      for (let i = 0; i < n; i++) {
        this.replies.push({ from: readAddressSlot(b.addresses, i), fromPort: b.ports[i] ?? 0, to: socket.address, toPort: socket.port, payload: (b.packets[i] ?? new Uint8Array(0)).slice(0, b.lengths[i]) });
      }
      if (n < b.packets.length) return;
    }
  }

  endpoints(): string[] {
    return [...this.sockets.values()].map((s) => (s.family === 6 ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`));
  }

  close(): void {
    for (const s of this.sockets.values()) s.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends one datagram; waits for room when the send buffer is full. Returns an errno name or ''. */
async function sendOne(socket: BatchUdpSocket, batch: ReturnType<typeof allocateUdpBatch>): Promise<string> {
  for (;;) {
    const r = socket.sendBatch(batch.packets, batch.offsets, batch.lengths, batch.addresses, batch.ports, 1, batch.errnos);
    if (r.consumed === 1) return r.sent === 1 ? '' : errnoName(batch.errnos[0] ?? 0);
    await new Promise<void>((resolve) => socket.waitWritable(resolve));
  }
}

/**
 * Sends `datagrams` in order to `options.target`. A datagram that cannot leave (its source is of the
 * other address family, the kernel refuses it) is reported in `errors` and skipped; opening a
 * socket can throw (EPERM without CAP_NET_ADMIN, EADDRINUSE when a local daemon holds the source).
 */
export async function replay(datagrams: readonly ReplayDatagram[], options: ReplayOptions): Promise<ReplayReport> {
  const target = canonicalAddress(options.target);
  if (!target) throw new TypeError(`replay: target '${options.target}' is not an IPv4 or IPv6 address`);
  const sockets = new SourceSockets(target.family, options.keepSources, options.replyWaitMs > 0);
  const batch = allocateUdpBatch(1, 65536);
  writeAddressSlot(batch.addresses, 0, target.text);
  const packet = batch.packets[0] ?? new Uint8Array(0);
  const errors: string[] = [];
  let sent = 0;
  const start = performance.now();
  try {
    for (const [i, d] of datagrams.entries()) {
      if (options.rate > 0) await sleep(start + (i * 1000) / options.rate - performance.now());
      if (options.keepSources && canonicalAddress(d.source)?.family !== target.family) {
        errors.push(`${d.where}: its source ${d.source} is not IPv${target.family} like the target`);
        continue;
      }
      if (d.payload.length > packet.length) {
        errors.push(`${d.where}: ${d.payload.length} bytes do not fit a UDP datagram`);
        continue;
      }
      packet.set(d.payload, 0);
      batch.lengths[0] = d.payload.length;
      batch.ports[0] = d.port;
      const failure = await sendOne(sockets.get(d), batch);
      if (failure === '') sent++;
      else errors.push(`${d.where}: ${failure}`);
    }
    if (options.replyWaitMs > 0) await sleep(options.replyWaitMs);
    return { sent, errors, sources: sockets.endpoints(), replies: sockets.replies };
  } finally {
    sockets.close();
  }
}
