// Renders decoded capture packets as `lispnode decode` prints them: one line, or one JSON object.
import { describeControl, describeDataHeader, jsonReplacer } from '../lisp/describe.js';
import type { DecodeResult } from '../lisp/errors.js';
import type { InnerPayload, LispPacket } from './lisp-capture.js';

function seconds(ns: bigint): string {
  const us = ns / 1000n;
  return `${us / 1_000_000n}.${(us % 1_000_000n).toString().padStart(6, '0')}`;
}

function outcome<T>(r: DecodeResult<T>, describe: (v: T) => string): string {
  if (!r.ok) return `DECODE ERROR ${r.error.message}`;
  const quirks = r.quirks.length ? ` (quirks: ${r.quirks.map((q) => `${q.quirk}@${q.offset}`).join(', ')})` : '';
  return describe(r.value) + quirks;
}

function describeInner(inner: InnerPayload): string {
  switch (inner.kind) {
    case 'ip':
      return ` | ${inner.summary}`;
    case 'encrypted':
      return ` | encrypted ${inner.length} bytes`;
    case 'control':
      return ` | control-in-data ${outcome(inner.message, describeControl)}`;
    case 'none':
      return '';
  }
}

export function packetLine(p: LispPacket): string {
  const head = `${String(p.frame).padStart(4)} ${seconds(p.timestampNs)} ${p.source}:${p.sourcePort} -> ${p.destination}:${p.destinationPort}`;
  if (p.kind === 'control') return `${head} ${outcome(p.message, describeControl)}`;
  return `${head} LISP-data ${outcome(p.header, describeDataHeader)}${p.header.ok ? describeInner(p.inner) : ''}`;
}

function resultJson<T>(r: DecodeResult<T>): object {
  return r.ok
    ? { value: r.value, quirks: r.quirks }
    : { error: { reason: r.error.reason, offset: r.error.offset, message: r.error.message } };
}

export function packetJson(p: LispPacket): string {
  const common = {
    frame: p.frame,
    time: seconds(p.timestampNs),
    source: p.source,
    sourcePort: p.sourcePort,
    destination: p.destination,
    destinationPort: p.destinationPort,
    kind: p.kind,
  };
  const body =
    p.kind === 'control'
      ? { message: resultJson(p.message) }
      : {
          header: resultJson(p.header),
          inner: p.inner.kind === 'control' ? { kind: 'control', message: resultJson(p.inner.message) } : p.inner,
        };
  return JSON.stringify({ ...common, ...body }, jsonReplacer);
}

/** True when the packet or the control message it carries failed to decode. */
export function hasDecodeError(p: LispPacket): boolean {
  if (p.kind === 'control') return !p.message.ok;
  return !p.header.ok || (p.inner.kind === 'control' && !p.inner.message.ok);
}
