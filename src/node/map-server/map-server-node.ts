// The map-server daemon: one UDP 4342 socket (dgram: control traffic is light) in front of the
// sans-IO register handler, expiry on a timer, and a snapshot file so a restart keeps every
// registration (and the replay memory, so a restart opens no replay window).
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { MESSAGE_TYPE } from '../../lisp/message-type.js';
import { RegisterHandler } from '../../lisp/map-server/register-handler.js';
import { RequestHandler } from '../../lisp/map-server/request-handler.js';
import type { MapServerFileConfig } from '../config/map-server-config.js';
import type { Logger } from '../log.js';

const SNAPSHOT_EVERY_MS = 10_000;

export interface MapServerStats {
  readonly registrations: number;
  readonly received: number;
  readonly sent: number;
  readonly counters: Readonly<Record<string, number>>;
}

export class MapServerNode {
  private readonly handler: RegisterHandler;
  private readonly requests: RequestHandler;
  private received = 0;
  private sent = 0;
  private unsupported = 0;
  private dirty = false;
  private timers: NodeJS.Timeout[] = [];

  private constructor(
    private readonly config: MapServerFileConfig,
    private readonly log: Logger,
    private readonly socket: Socket,
  ) {
    this.handler = new RegisterHandler(config.server);
    this.requests = new RequestHandler(this.handler);
  }

  static async start(config: MapServerFileConfig, log: Logger): Promise<MapServerNode> {
    const socket = createSocket({ type: config.listen.family === 4 ? 'udp4' : 'udp6' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(config.listen.port, config.listen.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const node = new MapServerNode(config, log, socket);
    node.restore();
    socket.on('message', (bytes, from) => node.receive(bytes, from));
    socket.on('error', (error) => log.log('error', 'map-server socket error', { error: error.message }));
    node.timers = [
      setInterval(() => {
        if (node.handler.expire(Date.now()).length > 0) node.dirty = true;
      }, 1000),
      setInterval(() => node.saveSnapshot(), SNAPSHOT_EVERY_MS),
    ];
    log.log('info', 'map-server started', { listen: `${config.listen.address}:${config.listen.port}`, sites: config.server.sites.length, registrations: node.handler.store.size });
    return node;
  }

  private receive(bytes: Buffer, from: RemoteInfo): void {
    this.received++;
    const event = { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), source: { address: from.address, port: from.port } };
    const now = Date.now();
    switch ((bytes[0] ?? 0) >>> 4) {
      case MESSAGE_TYPE.mapRegister: {
        const verdict = this.handler.handle(event, now);
        if (verdict.kind === 'processed') {
          this.dirty = true;
          this.send(verdict.actions);
        }
        return;
      }
      case MESSAGE_TYPE.ecm:
        this.send(this.requests.handle(event, now).actions);
        return;
      default:
        this.unsupported++;
    }
  }

  private send(actions: readonly { readonly to: string; readonly port: number; readonly bytes: Uint8Array }[]): void {
    for (const action of actions) {
      this.socket.send(action.bytes, action.port, action.to);
      this.sent++;
    }
  }

  private restore(): void {
    const file = this.config.snapshotFile;
    if (!file || !existsSync(file)) return;
    try {
      const report = this.handler.restore(JSON.parse(readFileSync(file, 'utf8')) as unknown, Date.now());
      this.log.log('info', 'registrations restored from the snapshot', { file, report });
    } catch (error) {
      // A broken snapshot must not keep the map-server down: xTRs re-register within a minute.
      this.log.log('error', 'snapshot not restored; starting empty', { file, error: (error as Error).message });
    }
  }

  private saveSnapshot(): void {
    const file = this.config.snapshotFile;
    if (!file || !this.dirty) return;
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.handler.store.snapshot()), { mode: 0o600 });
    renameSync(tmp, file);
    this.dirty = false;
  }

  stats(): MapServerStats {
    return {
      registrations: this.handler.store.size,
      received: this.received,
      sent: this.sent,
      counters: { ...this.handler.counters.snapshot(), ...this.requests.counters.snapshot(), ...(this.unsupported > 0 && { 'unsupported-message': this.unsupported }) },
    };
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.dirty = true;
    this.saveSnapshot();
    this.socket.close();
    this.log.log('info', 'map-server stopped', { registrations: this.handler.store.size });
  }
}
