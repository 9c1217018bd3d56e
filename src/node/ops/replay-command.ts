// `lispnode replay FILE.pcap… --to LOCATOR`: checks the arguments (CommandError: exit 2), reads the
// captures, selects their LISP datagrams, re-sends them (replay.ts) and says what to print.
import { readFileSync } from 'node:fs';
import { decodeControl } from '../../lisp/control.js';
import { decodeDataHeader } from '../../lisp/data-header.js';
import { describeControl, describeDataHeader } from '../../lisp/describe.js';
import { CommandError } from '../eid-command.js';
import { lispPackets } from '../lisp-capture.js';
import { readCapture } from '../pcap-file.js';
import { replay, type ReplayReply } from './replay.js';
import { canonicalAddress, selectForReplay, type ReplayDatagram } from './replay-select.js';

export interface ReplayCommandOptions {
  readonly to: string;
  readonly fromOriginalSources?: boolean;
  readonly rate: string;
  readonly kind: string;
  readonly onlySource: readonly string[];
  readonly onlyDestination: readonly string[];
  readonly unique?: boolean;
  readonly dataPort: string;
  readonly controlPort: string;
  readonly replies: string;
  readonly json?: boolean;
}

export interface ReplayCommandResult {
  readonly lines: readonly string[];
  /** 0: every datagram left; 1: some did not. */
  readonly exitCode: 0 | 1;
}

/** A decimal integer option in [min, max], or CommandError. */
export function integerOption(option: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) throw new CommandError(`${option}: expected an integer ${min}..${max}, got '${text}'`);
  return n;
}

function addressOption(option: string, text: string): string {
  const a = canonicalAddress(text);
  if (!a) throw new CommandError(`${option}: expected an IPv4 or IPv6 address, got '${text}'`);
  return a.text;
}

const KINDS: Readonly<Record<string, readonly ('data' | 'control')[]>> = { all: ['data', 'control'], data: ['data'], control: ['control'] };

/** Reads and selects; throws CommandError for bad arguments or an unreadable file. */
export function replayPlan(files: readonly string[], o: ReplayCommandOptions): ReplayDatagram[] {
  const kinds = KINDS[o.kind];
  if (!kinds) throw new CommandError(`--kind: expected all, data or control, got '${o.kind}'`);
  const selection = {
    kinds: new Set(kinds),
    sources: o.onlySource.map((a) => addressOption('--only-source', a)),
    destinations: o.onlyDestination.map((a) => addressOption('--only-destination', a)),
    unique: o.unique === true,
    dataPort: integerOption('--data-port', o.dataPort, 1, 65535),
    controlPort: integerOption('--control-port', o.controlPort, 1, 65535),
  };
  const seen = new Set<string>();
  return files.flatMap((file) => {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      throw new CommandError(`cannot read ${file}: ${(error as Error).message}`);
    }
    const capture = readCapture(bytes);
    if (!capture.ok) throw new CommandError(`${file}: not a readable capture (${capture.error.reason}): ${capture.error.message}`);
    return selectForReplay(file, lispPackets(capture.packets), selection, seen);
  });
}

function describeReply(r: ReplayReply): string {
  const message = r.fromPort === 4341 || r.toPort === 4341 ? decodeDataHeader(r.payload) : undefined;
  if (message) return message.ok ? `LISP-data ${describeDataHeader(message.value)}` : `undecodable (${message.error.message})`;
  const control = decodeControl(r.payload);
  return control.ok ? describeControl(control.value) : `undecodable (${control.error.message})`;
}

export async function runReplay(files: readonly string[], o: ReplayCommandOptions): Promise<ReplayCommandResult> {
  const target = addressOption('--to', o.to);
  const rate = integerOption('--rate', o.rate, 0, 1_000_000);
  const replyWaitMs = integerOption('--replies', o.replies, 0, 600_000);
  const datagrams = replayPlan(files, o);
  const report = await replay(datagrams, { target, keepSources: o.fromOriginalSources === true, rate, replyWaitMs }).catch((error: unknown) => {
    // Opening a source socket failed: the user's setup, not a bug (openBatchUdpSocket names a hint).
    throw new CommandError((error as Error).message);
  });
  const exitCode = report.errors.length === 0 ? 0 : 1;
  const counts = { data: datagrams.filter((d) => d.kind === 'data').length, control: datagrams.filter((d) => d.kind === 'control').length };
  if (o.json) {
    const replies = report.replies.map((r) => ({ from: r.from, fromPort: r.fromPort, to: r.to, toPort: r.toPort, message: describeReply(r), payload: Buffer.from(r.payload).toString('base64') }));
    return { lines: [JSON.stringify({ target, selected: counts, sent: report.sent, errors: report.errors, sources: report.sources, replies })], exitCode };
  }
  return {
    lines: [
      ...report.errors.map((e) => `error: ${e}`),
      ...report.replies.map((r) => `reply ${r.from}:${r.fromPort} -> ${r.to}:${r.toPort} ${describeReply(r)}`),
      `replayed ${report.sent} of ${datagrams.length} datagrams (data ${counts.data}, control ${counts.control}) to ${target} from ${report.sources.length} source(s)${report.replies.length > 0 || replyWaitMs > 0 ? `; ${report.replies.length} replies` : ''}`,
    ],
    exitCode,
  };
}
