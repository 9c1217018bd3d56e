// The map-server daemon: one UDP 4342 socket (dgram: control traffic is light) in front of the
// sans-IO register handler, expiry on a timer, and a snapshot file so a restart keeps every
// registration (and the replay memory, so a restart opens no replay window). A reload swaps in a
// register handler built from the new sites and hands it the registrations (re-checked against
// the new configuration, as after a restart); the request handler follows it.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { MESSAGE_TYPE } from '../../lisp/message-type.js';
import { NamedCounters } from '../../lisp/named-counters.js';
import { RegisterHandler } from '../../lisp/map-server/register-handler.js';
import type { MapServerState } from '../../lisp/map-server/request-handler.js';
import { RequestHandler } from '../../lisp/map-server/request-handler.js';
import type { MapServerFileConfig } from '../config/map-server-config.js';
import type { Logger } from '../log.js';
import { ControlSender, ReceiveGuard } from '../receive-guard.js';
import type { DaemonMetrics } from '../ops/metrics.js';
import type { ReloadPlan } from '../ops/reload.js';
import type { MapServerStatusReport, ReloadSummary } from '../ops/status-report.js';
import { registerMapServerMetrics } from './map-server-metrics.js';
import { diffMapServerConfig } from './map-server-reload.js';
import { buildMapServerStatus } from './map-server-status.js';

const SNAPSHOT_EVERY_MS = 10_000;

/** What the daemon counts itself (the handlers count drops, refusals and reply kinds). */
const EVENTS = [
  'map-register-received',
  'map-register-accepted',
  'map-register-dropped',
  'record-registered',
  'record-refreshed',
  'record-deregistered',
  'record-refused',
  'map-notify-sent',
  'map-request-received',
] as const;

/** What became of each datagram on the socket: exactly one of these per datagram received. */
const DATAGRAM_OUTCOMES = ['map-register', 'ecm', 'unsupported-type', 'handler-error'] as const;

export interface MapServerStats {
  readonly registrations: number;
  /** Live registrations per site. */
  readonly sites: Readonly<Record<string, number>>;
  readonly received: number;
  readonly sent: number;
  readonly counters: Readonly<Record<string, number>>;
  /** Every datagram received, by what became of it (the handlers' counters say more). */
  readonly datagrams: { readonly received: number; readonly outcomes: Readonly<Record<string, number>> };
}

export class MapServerNode {
  private handler: RegisterHandler;
  private readonly requests: RequestHandler;
  private readonly events = new NamedCounters(EVENTS);
  /** Counters of register handlers replaced by reloads, so totals never go back. */
  private readonly carried = new Map<string, number>();
  private received = 0;
  private sent = 0;
  private readonly outcomes = new NamedCounters(DATAGRAM_OUTCOMES);
  private readonly guard: ReceiveGuard;
  private readonly sender: ControlSender;
  private dirty = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly startedAt = Date.now();

  private constructor(
    private config: MapServerFileConfig,
    private readonly log: Logger,
    private readonly socket: Socket,
  ) {
    this.guard = new ReceiveGuard(log, 'map-server 4342');
    this.sender = new ControlSender(socket, config.listen.family, log);
    this.handler = new RegisterHandler(config.server);
    // Through getters: the request handler reads whichever register handler is current.
    const current = (): RegisterHandler => this.handler;
    const state: MapServerState = {
      get config() {
        return current().config;
      },
      get store() {
        return current().store;
      },
    };
    this.requests = new RequestHandler(state, { family: config.listen.family });
  }

  static async start(config: MapServerFileConfig, log: Logger, metrics?: DaemonMetrics): Promise<MapServerNode> {
    const socket = createSocket({ type: config.listen.family === 4 ? 'udp4' : 'udp6' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(config.listen.port, config.listen.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const node = new MapServerNode(config, log, socket);
    if (metrics) registerMapServerMetrics(metrics, node);
    node.restore();
    socket.on('message', (bytes, from) => node.receive(bytes, from));
    socket.on('error', (error) => log.log('error', 'map-server socket error', { error: error.message }));
    node.timers = [
      setInterval(() => {
        if (node.handler.expire(Date.now()).length > 0) node.dirty = true;
      }, 1000),
      setInterval(() => {
        try {
          node.saveSnapshot();
        } catch (error) {
          // A full disk or a removed directory must not stop the answers; the next round retries.
          log.log('error', 'snapshot not written', { file: config.snapshotFile, error: (error as Error).message });
        }
      }, SNAPSHOT_EVERY_MS),
    ];
    log.log('info', 'map-server started', { listen: `${config.listen.address}:${config.listen.port}`, sites: config.server.sites.length, registrations: node.handler.store.size });
    return node;
  }

  private receive(bytes: Buffer, from: RemoteInfo): void {
    this.received++;
    try {
      this.outcomes.add(this.dispatch(bytes, from));
    } catch (error) {
      this.outcomes.add('handler-error');
      this.guard.caught(error, { from: `${from.address}:${from.port}`, length: bytes.length });
    }
  }

  private dispatch(bytes: Buffer, from: RemoteInfo): (typeof DATAGRAM_OUTCOMES)[number] {
    const event = { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), source: { address: from.address, port: from.port } };
    const now = Date.now();
    switch ((bytes[0] ?? 0) >>> 4) {
      case MESSAGE_TYPE.mapRegister: {
        this.events.add('map-register-received');
        const verdict = this.handler.handle(event, now);
        if (verdict.kind === 'processed') {
          this.events.add('map-register-accepted');
          for (const r of verdict.records) {
            if (r.outcome === 'deregistered') {
              if (r.removed) this.events.add('record-deregistered');
            } else {
              this.events.add(`record-${r.outcome}`);
            }
          }
          if (verdict.mapNotify) this.events.add('map-notify-sent');
          this.dirty = true;
          this.send(verdict.actions, from.address);
        } else {
          this.events.add('map-register-dropped');
        }
        return 'map-register';
      }
      case MESSAGE_TYPE.ecm:
        this.events.add('map-request-received');
        this.send(this.requests.handle(event, now).actions, from.address);
        return 'ecm';
      default:
        return 'unsupported-type';
    }
  }

  /** Every destination here comes out of a datagram (its source, an ITR-RLOC, a registered RLOC). */
  private send(actions: readonly { readonly to: string; readonly port: number; readonly bytes: Uint8Array }[], origin: string): void {
    for (const action of actions) if (this.sender.send(action.bytes, action.port, action.to, { untrusted: { origin } })) this.sent++;
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
    const unsupported = this.outcomes.get('unsupported-type');
    const counters: Record<string, number> = {
      ...this.events.snapshot(),
      ...this.requests.counters.snapshot(),
      ...this.sender.refused.snapshot(),
      ...(unsupported > 0 && { 'unsupported-message': unsupported }),
      ...(this.guard.errors > 0 && { 'handler-error': this.guard.errors }),
    };
    for (const [name, n] of Object.entries(this.handler.counters.snapshot())) counters[name] = n;
    for (const [name, n] of this.carried) counters[name] = (counters[name] ?? 0) + n;
    return {
      registrations: this.handler.store.size,
      sites: Object.fromEntries(this.config.server.sites.map((s) => [s.name, this.handler.store.count(s.name)])),
      received: this.received,
      sent: this.sent,
      counters,
      datagrams: { received: this.received, outcomes: this.outcomes.snapshot() },
    };
  }

  /** The status socket's answer (ops/status-report.ts). */
  status(reloads: ReloadSummary, limit?: number): MapServerStatusReport {
    return buildMapServerStatus(
      {
        configFile: this.config.file,
        listen: `${this.config.listen.address}:${this.config.listen.port}`,
        startedAt: this.startedAt,
        reloads,
        server: this.config.server,
        store: this.handler.store,
        stats: this.stats(),
      },
      Date.now(),
      limit,
    );
  }

  /**
   * A reload to `next` (ops/reload.ts): a new register handler with the new sites takes the
   * registrations over; those the new configuration no longer admits are dropped (and logged),
   * exactly as a restart with the snapshot would. The socket and the counters carry on.
   */
  prepareReload(next: MapServerFileConfig): ReloadPlan {
    const diff = diffMapServerConfig(this.config, next);
    const handler = new RegisterHandler(next.server);
    return {
      restart: diff.restart,
      changes: diff.changes,
      apply: () => {
        const report = handler.restore(this.handler.store.snapshot(), Date.now());
        if (!report.ok) return Promise.reject(new Error(`registrations not carried over: ${report.error}`));
        for (const [name, n] of Object.entries(this.handler.counters.snapshot())) this.carried.set(name, (this.carried.get(name) ?? 0) + n);
        this.handler = handler;
        this.config = next;
        this.dirty = true;
        const dropped = report.dropped.map((d) => `registration -${d.key} (${d.reason})`);
        return Promise.resolve([...diff.details, ...(diff.changes.includes('/snapshot-file') ? [`snapshot-file ${next.snapshotFile ?? 'none'}`] : []), ...dropped]);
      },
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
