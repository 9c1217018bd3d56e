// The daemon's capture socket: `/run/lispnode/<role>-<name>.capture.sock` (mode 0600, so root —
// whoever may read the daemon's keys anyway — is the only one who can capture). Each connection
// is one capture session; while any runs, the daemon holds this module's PacketTap, which turns
// what it sees into pcap records and writes them to every session. A reader too slow for the
// traffic loses records (counted, reported at the end), never stalls the data path.
import { chmodSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, extname, join } from 'node:path';
import { STATUS_SOCKET_DIR } from '../config/operations-config.js';
import type { Logger } from '../log.js';
import { LINKTYPE_RAW, pcapRecord } from '../pcap-file.js';
import { FRAME, frame, nowNs, STOP_LINE, underlayRecord, type CaptureAnswer, type CaptureRequest, type CaptureStatus } from './capture-wire.js';
import type { Endpoint, PacketTap, TapDirection } from './packet-tap.js';

/** Where the capture sockets live: beside the status sockets; LISPNODE_RUN_DIR moves them (tests). */
export function runDirectory(): string {
  return process.env.LISPNODE_RUN_DIR ?? STATUS_SOCKET_DIR;
}

/** `<run dir>/<role>-<name>.capture.sock`; `name` is the config file's name without extension. */
export function captureSocketPath(role: string, name: string): string {
  return join(runDirectory(), `${role}-${name}.capture.sock`);
}

/** The instance name of a config file: /etc/lispnode/site1.yaml -> site1. */
export function configName(configFile: string): string {
  return basename(configFile, extname(configFile));
}

/** A session whose socket holds more than this unsent is too slow: records are dropped. */
const MAX_BUFFERED = 8 << 20;

interface Session {
  readonly socket: Socket;
  readonly decrypted: boolean;
  readonly dropped: { underlay: number; decrypted: number };
}

export interface CaptureServerOptions {
  readonly role: string;
  readonly configFile: string;
  /** What the underlay stream holds (CaptureAccepted.underlay). */
  readonly underlay: readonly string[];
  /** Whether the daemon can show decrypted inner packets (an xTR can, a map-server has none). */
  readonly inner: boolean;
  readonly log: Logger;
  /** Installs the tap in the data path while sessions run; undefined when the last one ends. */
  readonly attach: (tap: PacketTap | undefined) => void;
}

export class CaptureServer implements PacketTap {
  private readonly sessions = new Set<Session>();
  private readonly connections = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
    private readonly options: CaptureServerOptions,
  ) {}

  underlay(direction: TapDirection, local: Endpoint, remote: Endpoint, payload: Uint8Array): void {
    const record = frame(FRAME.underlay, underlayRecord(nowNs(), direction, local, remote, payload));
    for (const s of this.sessions) this.send(s, record, 'underlay');
  }

  inner(_direction: TapDirection, packet: Uint8Array): void {
    let record: Uint8Array | undefined;
    for (const s of this.sessions) {
      if (!s.decrypted) continue;
      record ??= frame(FRAME.decrypted, pcapRecord({ timestampNs: nowNs(), data: packet }));
      this.send(s, record, 'decrypted');
    }
  }

  private send(s: Session, bytes: Uint8Array, stream: 'underlay' | 'decrypted'): void {
    if (s.socket.writableLength > MAX_BUFFERED) s.dropped[stream]++;
    else s.socket.write(bytes);
  }

  /**
   * Listens on the role's capture socket. Never throws: capture is an aid, so a socket that
   * cannot be made (no permission, another live daemon holds it) is logged and leaves the
   * daemon without capture (undefined).
   */
  static async start(options: CaptureServerOptions): Promise<CaptureServer | undefined> {
    const path = captureSocketPath(options.role, configName(options.configFile));
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
      if (await answers(path)) throw new Error('another running daemon holds it');
      try {
        unlinkSync(path); // a stale socket of a daemon that did not stop cleanly
      } catch {
        // none there
      }
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      });
      chmodSync(path, 0o600);
      const capture = new CaptureServer(server, path, options);
      server.on('connection', (socket) => capture.accept(socket));
      server.unref();
      return capture;
    } catch (error) {
      options.log.log('warn', 'capture socket not available; lispnode capture will not reach this daemon', { path, error: (error as Error).message });
      return undefined;
    }
  }

  private accept(socket: Socket): void {
    let line = '';
    let session: Session | undefined;
    this.connections.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.connections.delete(socket);
      if (session) this.end(session);
    });
    socket.on('data', (chunk: Buffer) => {
      line += chunk.toString('utf8');
      if (!session) {
        const newline = line.indexOf('\n');
        if (newline < 0) {
          if (line.length > 4096) socket.destroy();
          return;
        }
        session = this.open(socket, line.slice(0, newline));
        line = line.slice(newline + 1);
      }
      if (session && line.includes(STOP_LINE)) this.stop(session);
      else if (line.length > 4096) socket.destroy();
    });
  }

  /** Answers a request line: a session that starts now, or a refusal (undefined). */
  private open(socket: Socket, requestLine: string): Session | undefined {
    const reply = (answer: CaptureAnswer): void => void socket.write(`${JSON.stringify(answer)}\n`);
    let request: Partial<CaptureRequest>;
    try {
      request = JSON.parse(requestLine) as Partial<CaptureRequest>;
    } catch {
      request = {};
    }
    const decrypted = request.decrypted === true;
    const refusal = request.capture !== 1 ? 'not a capture request' : decrypted && !this.options.inner ? `a ${this.options.role} has no decrypted packets to capture` : undefined;
    if (refusal) {
      reply({ ok: false, error: refusal });
      socket.end();
      return undefined;
    }
    const session: Session = { socket, decrypted, dropped: { underlay: 0, decrypted: 0 } };
    reply({ ok: true, role: this.options.role, name: configName(this.options.configFile), linkType: LINKTYPE_RAW, underlay: this.options.underlay });
    this.sessions.add(session);
    this.options.attach(this);
    // That a capture ran, and whether it was decrypted, belongs in the daemon's log (an audit trail).
    this.options.log.log(decrypted ? 'warn' : 'info', decrypted ? 'capture started, with DECRYPTED inner packets' : 'capture started', { sessions: this.sessions.size });
    return session;
  }

  /** The client asked to stop: the status frame, then the end of the stream. */
  private stop(session: Session): void {
    if (!this.sessions.has(session)) return;
    this.end(session);
    const status: CaptureStatus = { dropped: session.dropped };
    session.socket.end(frame(FRAME.status, new TextEncoder().encode(JSON.stringify(status))));
  }

  private end(session: Session): void {
    if (!this.sessions.delete(session)) return;
    if (this.sessions.size === 0) this.options.attach(undefined);
    this.options.log.log('info', 'capture ended', { droppedUnderlay: session.dropped.underlay, droppedDecrypted: session.dropped.decrypted });
  }

  /** Ends every session and removes the socket. */
  async close(): Promise<void> {
    for (const s of [...this.sessions]) this.stop(s);
    this.options.attach(undefined);
    // A client that does not close its end must not hold the daemon's shutdown.
    const timer = setTimeout(() => this.connections.forEach((s) => s.destroy()), 1000);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    clearTimeout(timer);
  }
}

/** Whether a live server answers on `path` (a stale socket file refuses the connection). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
