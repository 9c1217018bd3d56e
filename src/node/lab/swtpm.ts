// A private software TPM for one test file or demo node: swtpm on random localhost ports with its
// state in a fresh temporary directory, so test files can run in parallel (and as root on CI)
// without sharing anything. `reboot()` is a power cycle: PCRs reset, persistent objects and NV survive.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SwtpmHandle {
  /** For TPM2TOOLS_TCTI / Tpm.open(). */
  readonly tcti: string;
  readonly stateDir: string;
  readonly port: number;
  /** TPM_INIT through the control channel, then TPM2_Startup(CLEAR), like a power cycle. */
  reboot(): Promise<void>;
  /** Kills swtpm and removes its state; safe to call twice. */
  stop(): Promise<void>;
}

const NEEDED = ['swtpm', 'swtpm_ioctl', 'tpm2_startup', 'tpm2_getrandom'];

/** Why swtpm tests cannot run here (a missing program), or undefined if they can. */
export function swtpmMissing(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const missing = NEEDED.filter((tool) => !dirs.some((dir) => existsSync(join(dir, tool))));
  return missing.length === 0 ? undefined : `not installed: ${missing.join(', ')} (apt-get install swtpm swtpm-tools tpm2-tools)`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * With `namespace`, swtpm runs inside that network namespace (its loopback must be up), for a
 * node process running there; the TCTI is then only reachable from inside it.
 */
export async function startSwtpm(options: { readonly namespace?: string } = {}): Promise<SwtpmHandle> {
  const stateDir = await mkdtemp(join(tmpdir(), 'lispnode-swtpm-'));
  try {
    for (let attempt = 0; attempt < 8; attempt++) {
      const port = 20000 + 2 * Math.floor(Math.random() * 19999); // port and port+1 within 20000-60000
      const handle = await launch(stateDir, port, options.namespace);
      if (handle) return handle;
    }
    throw new Error('swtpm: no free port pair found in 8 attempts');
  } catch (error) {
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
}

/** Starts swtpm on `port`/`port+1`; undefined if a port was taken (the caller picks others). */
async function launch(stateDir: string, port: number, namespace: string | undefined): Promise<SwtpmHandle | undefined> {
  const pidFile = join(stateDir, 'swtpm.pid');
  // `ip netns exec` execs the command, so the child's pid stays swtpm's own.
  const where = (command: string, args: string[]): [string, string[]] => (namespace ? ['ip', ['netns', 'exec', namespace, command, ...args]] : [command, args]);
  const child = spawn(
    ...where('swtpm', [
      'socket', '--tpm2',
      '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
      '--tpmstate', `dir=${stateDir}`,
      '--flags', 'not-need-init,startup-clear',
      '--pid', `file=${pidFile}`]),
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));
  child.once('error', (error) => (stderr += String(error)));
  // A test process that dies without stop() must not leave swtpm behind.
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const tcti = `swtpm:host=127.0.0.1,port=${port}`;
  const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    if (running) {
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
      if (!killed) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  };

  // swtpm writes its pid file only after binding both ports, so our pid in it proves that the
  // ports are ours (a bare connect could reach another test file's swtpm on the same port).
  const deadline = Date.now() + 10_000;
  while (running && Date.now() < deadline && (await readFile(pidFile, 'utf8').catch(() => '')).trim() !== String(child.pid)) {
    await sleep(10);
  }
  if (!running || Date.now() >= deadline) {
    await stop();
    if (/Address already in use/i.test(stderr)) return undefined;
    throw new Error(`swtpm did not start on port ${port}: ${stderr.trim() || 'no output'}`);
  }
  // Listening is not answering: wait for a command to go through.
  for (;;) {
    try {
      await run(...where('tpm2_getrandom', ['--hex', '1']), { env });
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`swtpm on port ${port} does not answer: ${String(error)}`, { cause: error });
      }
      await sleep(20);
    }
  }

  return {
    tcti,
    stateDir,
    port,
    reboot: async () => {
      await run(...where('swtpm_ioctl', ['--tcp', `127.0.0.1:${port + 1}`, '-i']));
      await run(...where('tpm2_startup', ['-c']), { env });
    },
    stop: async () => {
      await stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
