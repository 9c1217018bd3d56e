// The other end of the status socket (status-server.ts), for `lispnode status` and the tests: one
// request line, one answer line, a deadline, and errors an operator can act on.
import { readdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { runDir } from '../config/operations-config.js';

/** The status could not be had; the message says what to do about it. */
export class StatusClientError extends Error {
  override readonly name = 'StatusClientError';
}

const EXPLAIN: Readonly<Record<string, string>> = {
  ENOENT: 'no such socket (is the daemon running? is this its status-socket?)',
  ECONNREFUSED: 'connection refused (the daemon is not running; the socket file is stale)',
  EACCES: 'permission denied (the status socket is root-only)',
  ENOTSOCK: 'not a socket',
};

/** Sends `{command, ...extra}` to the socket at `path` and returns the answer's result. */
export function queryStatus(path: string, command: string, options: { readonly timeoutMs?: number; readonly extra?: Readonly<Record<string, unknown>> } = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffered = '';
    const fail = (message: string): void => {
      socket.destroy();
      reject(new StatusClientError(`${path}: ${message}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${options.timeoutMs ?? 5000} ms`), options.timeoutMs ?? 5000);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify({ ...options.extra, command })}\n`));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(EXPLAIN[error.code ?? ''] ?? error.message);
    });
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.destroy();
      let reply: { ok?: unknown; result?: unknown; error?: unknown };
      try {
        reply = JSON.parse(buffered.slice(0, nl)) as typeof reply;
      } catch {
        reject(new StatusClientError(`${path}: the answer is not JSON`));
        return;
      }
      if (reply.ok === true) resolve(reply.result);
      else reject(new StatusClientError(`${path}: the daemon refused: ${String(reply.error)}`));
    });
    socket.on('end', () => {
      clearTimeout(timer);
      if (!buffered.includes('\n')) fail('closed without an answer');
    });
  });
}

/**
 * The socket to ask when none is named: the only status socket in /run/lispnode (capture sockets,
 * `*.capture.sock`, are not). With none or several the operator has to say which (the error lists
 * them).
 */
export function findStatusSocket(dir = runDir()): string {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.sock') && !n.endsWith('.capture.sock'));
  } catch {
    names = [];
  }
  const only = names.length === 1 ? names[0] : undefined;
  if (only !== undefined) return join(dir, only);
  if (names.length === 0) throw new StatusClientError(`no status socket in ${dir} (is a lispnode daemon running? use --socket for another path)`);
  throw new StatusClientError(`several status sockets in ${dir}, name one with --socket: ${names.map((n) => join(dir, n)).join(', ')}`);
}
