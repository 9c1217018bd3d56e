// The fuzz harness: feeds mutated real and generated LISP messages, and random bytes, to every
// decoder. A decoder may accept or reject; it may never throw. An accepted control message must
// also re-encode and decode to the same value (the decoders never invent state).
import { isDeepStrictEqual } from 'node:util';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { readAddress } from '../../src/lisp/address.js';
import { verifyAuthentication } from '../../src/lisp/auth.js';
import { ByteReader } from '../../src/lisp/bytes.js';
import { decodeControl, encodeControl } from '../../src/lisp/control.js';
import { decodeDataHeader, encodeDataHeader } from '../../src/lisp/data-header.js';
import { decodeSafely, type DecodeResult } from '../../src/lisp/errors.js';
import { readEidRecord } from '../../src/lisp/records.js';
import { bundledCaptures } from '../../src/node/bundled-captures.js';
import { lispPackets } from '../../src/node/lisp-capture.js';
import { readCapture } from '../../src/node/pcap-file.js';
import { controlMessageArb, dataHeaderArb } from '../support/arbitraries.js';
import { nextInput, prng } from './mutate.js';

export interface FuzzReport {
  readonly inputs: number;
  readonly decoderCalls: number;
  readonly accepted: number;
  readonly rejected: Readonly<Record<string, number>>;
  /** Exceptions that escaped a decoder or a re-encode, with a reproducer. */
  readonly escapes: readonly { readonly target: string; readonly error: string; readonly inputHex: string }[];
  readonly seconds: number;
}

/** Real packets from the captures plus generated messages of every type. */
export function fuzzSeeds(seed: number): Uint8Array[] {
  const seeds: Uint8Array[] = [];
  for (const capture of bundledCaptures()) {
    const read = readCapture(readFileSync(capture.path));
    if (read.ok) for (const p of lispPackets(read.packets)) seeds.push(p.payload.slice());
  }
  for (const m of fc.sample(controlMessageArb, { seed, numRuns: 300 })) seeds.push(encodeControl(m));
  for (const h of fc.sample(dataHeaderArb, { seed, numRuns: 30 })) seeds.push(encodeDataHeader(h));
  return seeds;
}

type Target = (input: Uint8Array) => DecodeResult<unknown> | { ok: boolean; reason?: string };

const TARGETS: Readonly<Record<string, Target>> = {
  control(input) {
    const decoded = decodeControl(input);
    if (decoded.ok) {
      // Decoded values must be encodable, and decode back to themselves.
      const again = decodeControl(encodeControl(decoded.value));
      if (!again.ok || !isDeepStrictEqual(again.value, decoded.value)) throw new Error('re-encode changed the message');
    }
    return decoded;
  },
  dataHeader: (input) => decodeDataHeader(input),
  // Addresses and records sit inside messages; start them at an input-chosen offset so they see
  // the bytes of real records rather than message headers.
  address: (input) => decodeSafely((quirks) => readAddress(new ByteReader(input, innerOffset(input)), quirks)),
  eidRecord: (input) => decodeSafely((quirks) => readEidRecord(new ByteReader(input, innerOffset(input)), quirks)),
  authentication(input) {
    const verdict = verifyAuthentication(input, (keyId) => ({ keyId, algorithmId: 1, secret: new Uint8Array(4) }));
    return verdict.ok ? { ok: true } : { ok: false, reason: verdict.reason };
  },
  capture(input) {
    const read = readCapture(input);
    if (read.ok) lispPackets(read.packets);
    return read.ok ? { ok: true } : { ok: false, reason: read.error.reason };
  },
};

export function fuzz(options: { readonly inputs: number; readonly seed: number; readonly seeds?: readonly Uint8Array[] }): FuzzReport {
  const seeds = options.seeds ?? fuzzSeeds(options.seed);
  const random = prng(options.seed);
  const rejected: Record<string, number> = {};
  const escapes: { target: string; error: string; inputHex: string }[] = [];
  let accepted = 0;
  let decoderCalls = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < options.inputs; i++) {
    const input = nextInput(random, seeds);
    for (const [name, target] of Object.entries(TARGETS)) {
      // The capture parser gets its own file-shaped inputs below; skip it for bare messages.
      if (name === 'capture') continue;
      decoderCalls++;
      run(name, target, input);
    }
    if (i % 50 === 0) {
      decoderCalls++;
      run('capture', TARGETS.capture!, captureLike(input));
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { inputs: options.inputs, decoderCalls, accepted, rejected, escapes, seconds };

  function run(name: string, target: Target, input: Uint8Array): void {
    try {
      const result = target(input);
      if (result.ok) accepted++;
      else {
        const reason = `${name}:${'error' in result ? result.error.reason : result.reason}`;
        rejected[reason] = (rejected[reason] ?? 0) + 1;
      }
    } catch (error) {
      if (escapes.length < 20) escapes.push({ target: name, error: String(error), inputHex: Buffer.from(input).toString('hex') });
      else escapes.length++;
    }
  }
}

function innerOffset(input: Uint8Array): number {
  return input.length === 0 ? 0 : (input[input.length - 1] ?? 0) % Math.min(input.length, 48);
}

/** A one-packet pcap around the input, so the capture path sees near-valid files. */
function captureLike(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(24 + 16 + input.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, 262144, true);
  v.setUint32(20, 101, true); // raw IP
  v.setUint32(32, input.length, true);
  v.setUint32(36, input.length, true);
  out.set(input, 40);
  return out;
}
