// `lispnode capture -w FILE [--decrypted FILE]`: checks the arguments (CommandError: exit 2), finds
// the running daemon's capture socket, runs the capture and says what to print.
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CommandError } from '../eid-command.js';
import { capture, CaptureError, type CaptureResult } from './capture-client.js';
import { captureSocketPath, configName, runDirectory } from './capture-server.js';
import { integerOption } from './replay-command.js';

export interface CaptureCommandOptions {
  readonly write: string;
  readonly decrypted?: string;
  readonly count?: string;
  readonly duration?: string;
  readonly config?: string;
  readonly name?: string;
  readonly socket?: string;
}

/** The capture socket the options name, or the only one in the run directory. */
export function resolveCaptureSocket(o: Pick<CaptureCommandOptions, 'config' | 'name' | 'socket'>): string {
  const given = [o.socket, o.config, o.name].filter((v) => v !== undefined).length;
  if (given > 1) throw new CommandError('give at most one of --socket, --config and --name');
  if (o.socket !== undefined) return o.socket;
  if (o.config !== undefined) return captureSocketPath('xtr', configName(o.config));
  if (o.name !== undefined) return captureSocketPath('xtr', o.name);
  let found: string[] = [];
  try {
    found = readdirSync(runDirectory()).filter((f) => f.endsWith('.capture.sock'));
  } catch {
    // no run directory: no daemon
  }
  const only = found[0];
  if (found.length === 1 && only !== undefined) return join(runDirectory(), only);
  throw new CommandError(
    found.length === 0
      ? `no running daemon offers a capture socket in ${runDirectory()} (start one, or name its socket with --socket)`
      : `several daemons run (${found.join(', ')}): choose one with --name, --config or --socket`,
  );
}

/** Why the file name must say so: a decrypted capture must not pass for an underlay one. */
function checkDecryptedName(path: string): void {
  if (!/decrypted/i.test(basename(path))) throw new CommandError(`--decrypted ${path}: the file name must contain "decrypted", so that the file cannot be mistaken for an ordinary capture`);
}

export interface CaptureCommandIo {
  readonly interrupted: Promise<void>;
  /** Warnings and progress for the operator (stderr). */
  readonly warn: (line: string) => void;
}

export async function runCaptureCommand(o: CaptureCommandOptions, io: CaptureCommandIo): Promise<string[]> {
  const count = o.count === undefined ? undefined : integerOption('--count', o.count, 1, 2 ** 32);
  const durationMs = o.duration === undefined ? undefined : integerOption('--duration', o.duration, 1, 7 * 86_400) * 1000;
  if (o.decrypted !== undefined) checkDecryptedName(o.decrypted);
  const socketPath = resolveCaptureSocket(o);
  if (o.decrypted !== undefined) {
    io.warn(`WARNING: ${o.decrypted} will hold DECRYPTED inner packets: the workloads' traffic in clear. It is created with mode 0600; keep it like a secret and delete it when done.`);
  }
  let result: CaptureResult;
  try {
    result = await capture({
      socketPath,
      write: o.write,
      ...(o.decrypted !== undefined && { decrypted: o.decrypted }),
      ...(count !== undefined && { count }),
      ...(durationMs !== undefined && { durationMs }),
      interrupted: io.interrupted,
      onStart: (a) => io.warn(`capturing from ${a.role} ${a.name} (underlay: ${a.underlay.join(', ')}${o.decrypted !== undefined ? '; decrypted inner packets' : ''}); ${count === undefined && durationMs === undefined ? 'Ctrl-C stops' : 'stops after --count/--duration or Ctrl-C'}`),
    });
  } catch (error) {
    if (error instanceof CaptureError) throw new CommandError(error.message);
    throw error;
  }
  const dropped = result.dropped ? result.dropped.underlay + result.dropped.decrypted : 0;
  return [
    `${result.underlay} underlay packets written to ${o.write}${o.decrypted !== undefined ? `; ${result.decrypted} decrypted packets to ${o.decrypted}` : ''}` +
      `${dropped > 0 ? `; ${dropped} dropped by the daemon (this reader was too slow)` : ''}${result.endedBy === 'daemon' ? '; the daemon ended the capture (it stopped?)' : ''}`,
  ];
}
