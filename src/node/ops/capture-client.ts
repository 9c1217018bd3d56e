// `lispnode capture`'s side of the capture socket: asks the running daemon for a capture, appends
// the pcap records it streams to the underlay file and (when asked for) the decrypted file, and
// stops after a count, a duration or an interrupt, getting the daemon's drop count on the way out.
import { closeSync, fchmodSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { connect } from 'node:net';
import { LINKTYPE_RAW, pcapFileHeader } from '../pcap-file.js';
import { FRAME, FrameReader, STOP_LINE, type CaptureAccepted, type CaptureRequest, type CaptureStatus } from './capture-wire.js';

export interface CaptureOptions {
  readonly socketPath: string;
  /** The underlay pcap. */
  readonly write: string;
  /** The decrypted pcap: created, never overwritten, mode 0600. */
  readonly decrypted?: string;
  /** Stop after this many underlay packets. */
  readonly count?: number;
  readonly durationMs?: number;
  /** Settles when the user wants to stop (SIGINT, SIGTERM). */
  readonly interrupted: Promise<void>;
  readonly onStart?: (accepted: CaptureAccepted) => void;
}

export interface CaptureResult {
  readonly underlay: number;
  readonly decrypted: number;
  /** Records the daemon could not send us in time; undefined when it went away first. */
  readonly dropped: CaptureStatus['dropped'] | undefined;
  readonly endedBy: 'count' | 'duration' | 'interrupt' | 'daemon';
}

/** A failure the user can act on (no daemon, a refused request, an existing decrypted file). */
export class CaptureError extends Error {}

/** A pcap file being appended to. */
class PcapSink {
  readonly fd: number;
  records = 0;

  constructor(
    readonly path: string,
    exclusive: boolean,
  ) {
    this.fd = openSync(path, exclusive ? 'wx' : 'w', 0o600);
    // Mode 0600 also when an existing underlay file is overwritten (open's mode applies to new files only).
    fchmodSync(this.fd, 0o600);
    // Written before the daemon answers; the daemon streams LINKTYPE_RAW (checked on its answer).
    writeSync(this.fd, pcapFileHeader(LINKTYPE_RAW));
  }

  append(record: Uint8Array): void {
    writeSync(this.fd, record);
    this.records++;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function openSink(path: string, exclusive: boolean): PcapSink {
  try {
    return new PcapSink(path, exclusive);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new CaptureError(`${path} exists: a decrypted capture never overwrites a file`);
    throw new CaptureError(`cannot create ${path} (${code ?? (error as Error).message})`);
  }
}

export async function capture(o: CaptureOptions): Promise<CaptureResult> {
  // The decrypted file first: it is the one that refuses to exist already.
  const decrypted = o.decrypted === undefined ? undefined : openSink(o.decrypted, true);
  let underlay: PcapSink;
  try {
    underlay = openSink(o.write, false);
  } catch (error) {
    if (decrypted) {
      decrypted.close();
      unlinkSync(decrypted.path);
    }
    throw error;
  }
  const sinks = [underlay, ...(decrypted ? [decrypted] : [])];
  let started = false;
  try {
    return await stream(o, underlay, decrypted, () => (started = true));
  } finally {
    for (const s of sinks) s.close();
    // Nothing was captured: leave no empty files behind a refusal.
    if (!started) for (const s of sinks) unlinkSync(s.path);
  }
}

function stream(o: CaptureOptions, underlay: PcapSink, decrypted: PcapSink | undefined, onAccepted: () => void): Promise<CaptureResult> {
  return new Promise((resolve, reject) => {
    const socket = connect(o.socketPath);
    const reader = new FrameReader();
    let endedBy: CaptureResult['endedBy'] | undefined;
    let dropped: CaptureStatus['dropped'] | undefined;
    let timer: NodeJS.Timeout | undefined;
    const stop = (why: NonNullable<typeof endedBy>): void => {
      if (endedBy) return;
      endedBy = why;
      if (timer) clearTimeout(timer);
      socket.write(STOP_LINE);
    };
    socket.once('connect', () => {
      const request: CaptureRequest = { capture: 1, decrypted: decrypted !== undefined };
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      const { answer, frames } = reader.push(chunk);
      if (answer) {
        if (!answer.ok) {
          socket.destroy();
          reject(new CaptureError(`the daemon refused: ${answer.error}`));
          return;
        }
        if (answer.linkType !== LINKTYPE_RAW) {
          socket.destroy();
          reject(new CaptureError(`the daemon streams link type ${answer.linkType}, this lispnode writes ${LINKTYPE_RAW}`));
          return;
        }
        onAccepted();
        o.onStart?.(answer);
        if (o.durationMs !== undefined) timer = setTimeout(() => stop('duration'), o.durationMs);
        void o.interrupted.then(() => stop('interrupt'));
        if (o.count === 0) stop('count');
      }
      for (const f of frames) {
        if (f.type === FRAME.underlay && (o.count === undefined || underlay.records < o.count)) {
          underlay.append(f.body);
          if (underlay.records === o.count) stop('count');
        } else if (f.type === FRAME.decrypted) {
          decrypted?.append(f.body);
        } else if (f.type === FRAME.status) {
          dropped = (JSON.parse(Buffer.from(f.body).toString('utf8')) as CaptureStatus).dropped;
        }
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      const hint = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? ': is the daemon running? (its log says where its capture socket is)' : '';
      reject(new CaptureError(`cannot reach ${o.socketPath} (${error.code ?? error.message})${hint}`));
    });
    socket.once('close', () => {
      if (timer) clearTimeout(timer);
      resolve({ underlay: underlay.records, decrypted: decrypted?.records ?? 0, dropped, endedBy: endedBy ?? 'daemon' });
    });
  });
}
