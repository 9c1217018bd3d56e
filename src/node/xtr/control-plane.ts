// The xTR's control plane on UDP 4342 (dgram: control traffic is light): registration with the
// map-servers now; resolution and answering Map-Requests plug in beside it. The state machines are
// sans-IO; this file owns the socket, the clock (wall time: registration signatures carry it) and
// the timer that wakes them.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { MESSAGE_TYPE } from '../../lisp/message-type.js';
import { Registrar, type RegistrarAction, type RegistrarStatus } from '../../lisp/xtr-control/registrar.js';
import type { XtrConfig } from '../config/xtr-config.js';
import type { Logger } from '../log.js';

export const CONTROL_PORT = 4342;

export class XtrControlPlane {
  private timer: NodeJS.Timeout | undefined;
  private unsupported = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly registrar: Registrar | undefined,
    private readonly log: Logger,
  ) {}

  static async start(config: XtrConfig, log: Logger): Promise<XtrControlPlane | undefined> {
    if (config.mapServers.length === 0) return undefined;
    const socket = createSocket({ type: config.underlay.family === 4 ? 'udp4' : 'udp6' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(CONTROL_PORT, config.underlay.address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const registrar = new Registrar(
      {
        eids: config.localEids.map((e) => e.prefix),
        rlocs: [{ address: config.underlay.address }],
        mapServers: config.mapServers.map((m) => ({ address: m.address, port: m.port, key: m.key, proxyReply: m.proxyReply })),
        xtrId: randomBytes(16),
        siteId: 0n,
      },
      (n) => randomBytes(n),
    );
    const plane = new XtrControlPlane(socket, registrar, log);
    socket.on('message', (bytes, from) => plane.receive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), from.address, from.port));
    socket.on('error', (error) => log.log('error', 'control socket error', { error: error.message }));
    plane.act(registrar.start(Date.now()));
    return plane;
  }

  private receive(bytes: Uint8Array, address: string, port: number): void {
    const now = Date.now();
    switch ((bytes[0] ?? 0) >>> 4) {
      case MESSAGE_TYPE.mapNotify:
        if (this.registrar) this.act(this.registrar.mapNotify(bytes, { address, port }, now));
        return;
      default:
        this.unsupported++;
    }
  }

  /** Carries out the state machines' actions and re-arms the timer for their next deadline. */
  private act(actions: readonly RegistrarAction[]): void {
    for (const action of actions) {
      if (action.kind === 'send') this.socket.send(action.bytes, action.port, action.to);
    }
    if (this.timer) clearTimeout(this.timer);
    const next = this.registrar?.nextTimer();
    if (next !== undefined) {
      this.timer = setTimeout(() => this.act(this.registrar?.tick(Date.now()) ?? []), Math.max(0, next - Date.now()));
      this.timer.unref();
    }
  }

  status(): { readonly registration: RegistrarStatus | undefined; readonly unsupported: number } {
    return { registration: this.registrar?.status(), unsupported: this.unsupported };
  }

  /** Deregisters everything (TTL 0 to every map-server), then closes the socket once sent. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    const actions = this.registrar?.shutdown(Date.now()) ?? [];
    await Promise.all(
      actions.map((a) => (a.kind === 'send' ? new Promise<void>((resolve) => this.socket.send(a.bytes, a.port, a.to, () => resolve())) : Promise.resolve())),
    );
    this.socket.close();
    this.log.log('info', 'deregistered', { messages: actions.length });
  }
}
