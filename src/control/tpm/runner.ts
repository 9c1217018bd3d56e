// Runs tpm2-tools against one TCTI, one operation at a time. A TPM executes one command at a
// time and swtpm serves one connection at a time, and an operation is often several tool calls
// that share saved contexts (a policy session, a loaded parent), so operations on the same TCTI
// queue behind each other process-wide. Without a resource manager (swtpm) the tools leave
// transient objects and sessions loaded, and the TPM has only ~3 slots of each: every operation
// ends by flushing them (eve-security.md §6, gotcha 1).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolFailure, TpmUnavailableError } from './errors.js';

export interface TpmRunnerOptions {
  /** Directory holding the tpm2_* binaries; default: found on PATH. */
  readonly toolsDir?: string;
  /** Per tool call; a TPM that does not answer in time is unavailable. Default 60 s. */
  readonly timeoutMs?: number;
  /**
   * Flush transient objects and sessions after each operation. Default: on, except for the
   * kernel resource manager (`device:/dev/tpmrm*`), which flushes each connection's own.
   */
  readonly flush?: boolean;
}

/** What an operation may do with its tool calls and its private scratch directory. */
export interface ToolSession {
  /** Runs `tool args`; `stdin` carries secrets so they never appear on argv. Resolves to stdout. */
  run(tool: string, args: readonly string[], stdin?: Uint8Array): Promise<Buffer>;
  /** A path in the scratch directory (mode 0700, removed after the operation). */
  path(name: string): string;
  /** Writes a scratch file with mode 0600 and returns its path. */
  write(name: string, data: Uint8Array): Promise<string>;
  /**
   * Pre-creates an empty mode-0600 scratch file for a tool to write a secret into: the tools
   * open outputs with fopen(), which keeps an existing file's mode instead of applying umask.
   */
  secretOutput(name: string): Promise<string>;
  read(name: string): Promise<Uint8Array>;
  /** Flushes transient objects mid-operation, keeping saved sessions (a policy in progress). */
  flushTransients(): Promise<void>;
}

interface Lane {
  tail: Promise<unknown>;
  /** The last flush failed: flush first before the next operation. */
  dirty: boolean;
}

const lanes = new Map<string, Lane>();

function laneFor(tcti: string): Lane {
  let lane = lanes.get(tcti);
  if (!lane) {
    lane = { tail: Promise.resolve(), dirty: false };
    lanes.set(tcti, lane);
  }
  return lane;
}

const MAX_OUTPUT = 16 * 1024 * 1024;

export class TpmRunner {
  private readonly timeoutMs: number;
  private readonly flushes: boolean;
  private readonly lane: Lane;

  constructor(
    readonly tcti: string,
    private readonly options: TpmRunnerOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.flushes = options.flush ?? !tcti.startsWith('device:/dev/tpmrm');
    this.lane = laneFor(tcti);
  }

  /** Runs `body` after every earlier operation on this TCTI, with its own scratch directory. */
  operation<T>(body: (session: ToolSession) => Promise<T>): Promise<T> {
    const result = this.lane.tail.then(() => this.exclusive(body));
    this.lane.tail = result.catch(() => undefined);
    return result;
  }

  private async exclusive<T>(body: (session: ToolSession) => Promise<T>): Promise<T> {
    if (this.lane.dirty) await this.flushAll();
    const dir = await mkdtemp(join(tmpdir(), 'lispnode-tpm-'));
    const session: ToolSession = {
      run: (tool, args, stdin) => this.exec(tool, args, stdin),
      path: (name) => join(dir, name),
      write: async (name, data) => {
        const file = join(dir, name);
        await writeFile(file, data, { mode: 0o600 });
        return file;
      },
      secretOutput: (name) => session.write(name, new Uint8Array(0)),
      read: async (name) => new Uint8Array(await readFile(join(dir, name))),
      flushTransients: () => this.flush('-t'),
    };
    try {
      return await body(session);
    } finally {
      await this.flushAll();
      await rm(dir, { recursive: true, force: true });
    }
  }

  // A flush that fails must not turn the operation's own result into a failure (a key may
  // already be persisted); the lane is marked so the next operation flushes before it starts,
  // and a TPM that went away fails that operation with TpmUnavailableError anyway.
  private async flushAll(): Promise<void> {
    if (!this.flushes) return;
    try {
      // One type per call: tpm2_flushcontext honours only the last of -t/-l/-s (tried).
      await this.flush('-t');
      await this.flush('-l');
      await this.flush('-s');
      this.lane.dirty = false;
    } catch {
      this.lane.dirty = true;
    }
  }

  private async flush(kind: '-t' | '-l' | '-s'): Promise<void> {
    if (this.flushes) await this.exec('tpm2_flushcontext', [kind]);
  }

  private exec(tool: string, args: readonly string[], stdin?: Uint8Array): Promise<Buffer> {
    const file = this.options.toolsDir === undefined ? tool : join(this.options.toolsDir, tool);
    return new Promise((resolve, reject) => {
      const child = execFile(
        file,
        args,
        {
          encoding: 'buffer',
          timeout: this.timeoutMs,
          maxBuffer: MAX_OUTPUT,
          env: { ...process.env, TPM2TOOLS_TCTI: this.tcti },
        },
        (error, stdout, stderr) => {
          if (!error) {
            resolve(stdout);
            return;
          }
          const code = (error as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'EACCES') {
            reject(new TpmUnavailableError(tool, undefined, `tpm2-tools are not installed (${file}: ${code})`));
          } else if (error.killed) {
            reject(new TpmUnavailableError(tool, undefined, `no answer from the TPM within ${this.timeoutMs} ms (${this.tcti})`));
          } else {
            reject(toolFailure(tool, stderr.toString('utf8')));
          }
        },
      );
      // Tools that take no stdin may exit before reading it: ignore the broken pipe.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(stdin === undefined ? undefined : Buffer.from(stdin));
    });
  }
}
