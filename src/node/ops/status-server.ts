// The daemon's status socket: a unix domain socket speaking newline-delimited JSON. A request is
// one line `{"command":"status"}`; the answer is one line `{"ok":true,"result":…}` or
// `{"ok":false,"error":"…"}`. The socket is 0600 in a 0700 directory (root only: it shows the
// whole overlay's state), never left behind on stop, and a live daemon's socket is never taken
// over by a second one.
import { chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { runDir } from '../config/operations-config.js';

/** A request line is at most this long: the socket is root-only, but a bound is cheap. */
const MAX_REQUEST = 64 * 1024;

export type StatusHandler = (request: Readonly<Record<string, unknown>>) => unknown;

/** The status socket could not be opened: `path` names it, the message says why. */
export class StatusSocketError extends Error {
  override readonly name = 'StatusSocketError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`status socket ${path}: ${message}`);
  }
}

export class StatusServer {
  private readonly clients = new Set<Socket>();

  private constructor(
    readonly path: string,
    private readonly server: Server,
  ) {}

  /** Listens on `path`; `handlers` maps command names to their answers (thrown errors become `ok: false`). */
  static async listen(path: string, handlers: Readonly<Record<string, StatusHandler>>): Promise<StatusServer> {
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Our own directory is kept at 0700 even if someone loosened it (an operator's is left alone);
    // a directory someone else owns stays as it is, and listen() says whether we may use it.
    if (dir === runDir()) {
      try {
        chmodSync(dir, 0o700);
      } catch {
        // not ours to change
      }
    }
    await removeStale(path);
    const server = createServer();
    const status = new StatusServer(path, server);
    server.on('connection', (socket) => status.serve(socket, handlers));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(new StatusSocketError(path, error.code ?? error.message)));
      // bind(2) happens inside listen(), synchronously: the umask makes the socket 0600 from birth.
      const umask = process.umask(0o177);
      try {
        server.listen(path, () => resolve());
      } finally {
        process.umask(umask);
      }
    });
    chmodSync(path, 0o600);
    return status;
  }

  private serve(socket: Socket, handlers: Readonly<Record<string, StatusHandler>>): void {
    this.clients.add(socket);
    socket.on('close', () => this.clients.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_REQUEST && !buffered.includes('\n')) {
        socket.end(`${JSON.stringify({ ok: false, error: 'request too long' })}\n`);
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line !== '') socket.write(`${answer(line, handlers)}\n`);
      }
    });
  }

  /** Stops listening, drops the clients and removes the socket file. */
  async close(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.path, { force: true });
  }
}

function answer(line: string, handlers: Readonly<Record<string, StatusHandler>>): string {
  let request: unknown;
  try {
    request = JSON.parse(line);
  } catch {
    return JSON.stringify({ ok: false, error: 'not JSON' });
  }
  if (typeof request !== 'object' || request === null || typeof (request as { command?: unknown }).command !== 'string') {
    return JSON.stringify({ ok: false, error: 'expected {"command": "…"}' });
  }
  const command = (request as { command: string }).command;
  const handler = Object.hasOwn(handlers, command) ? handlers[command] : undefined;
  if (!handler) return JSON.stringify({ ok: false, error: `unknown command ${JSON.stringify(command)} (known: ${Object.keys(handlers).join(', ')})` });
  try {
    return JSON.stringify({ ok: true, result: handler(request as Record<string, unknown>) }, (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
  } catch (error) {
    return JSON.stringify({ ok: false, error: (error as Error).message });
  }
}

/**
 * A socket file left by a daemon that died without cleaning up is removed; one that still answers
 * belongs to a running daemon, and one that is not a socket is not ours to delete.
 */
async function removeStale(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new StatusSocketError(path, 'exists and is not a socket');
  const alive = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new StatusSocketError(path, 'in use by a running daemon (another instance with the same status socket?)');
  rmSync(path, { force: true });
}
