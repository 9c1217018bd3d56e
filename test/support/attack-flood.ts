// The mutation flood of the attack suite, run in the hostile host's namespace (`ip netns exec <ns>
// node attack-flood.js <plan.json>`): datagrams built from valid LISP messages (the reference
// captures in pcap/ and the project's encoders, aimed at the lab's EIDs and locators), mutated,
// plus pure random ones, sent round-robin at every target, paced, reproducible from the seed. It
// prints one JSON line: how many of each kind went to each target.
//
// Kinds (tags `<target>/<kind>`):
//   verbatim       a seed as it is (valid Map-Requests with key offers, Map-Registers under the
//                  plan's key, Map-Replies, SMRs, data packets, ...)
//   mutated        1-4 stacked byte mutations of a seed (test/fuzz/mutate.ts: flips, boundary
//                  values in 16-bit fields, inserts, deletes, truncation, extension, splices)
//   length-lie     a seed with a length or count field lied about (record count, ITR-RLOC count,
//                  LCAF length, ECM inner IP and UDP lengths)
//   ecm-port-zero  an ECM seed whose inner UDP source port is 0 (checksum 0: "none"), then maybe
//                  mutated further
//   random         0-1400 random bytes
// With `sparePortZero` no datagram whose ECM decodes with inner source port 0 is sent (the next
// candidate is drawn instead): for looking past that one known crash on code that still has it.
import { readFileSync } from 'node:fs';
import { decodeControl } from '../../src/lisp/control.js';
import { bundledCaptures } from '../../src/node/bundled-captures.js';
import { lispPackets } from '../../src/node/lisp-capture.js';
import { readCapture } from '../../src/node/pcap-file.js';
import { openBatchUdpSocket } from '../../src/tun/udp-socket.js';
import { nextInput } from '../fuzz/mutate.js';
import { generatedSeeds } from './attack-messages.js';
import { pacedSend, type PacedReport } from './paced-send.js';
import { prng } from './prng.js';

export interface FloodTarget {
  readonly name: string;
  readonly address: string;
  readonly port: 4341 | 4342;
  readonly count: number;
}

export interface AttackFloodPlan {
  /** Our address (the hostile host's locator). */
  readonly bind: string;
  readonly targets: readonly FloodTarget[];
  /** All targets together. */
  readonly perSecond: number;
  readonly deadlineMs: number;
  readonly seed: number;
  /** What the generated seeds aim at. */
  readonly lab: { readonly eids: readonly string[]; readonly locators: readonly string[]; readonly password: string };
  readonly sparePortZero?: boolean;
}

export type AttackFloodReport = PacedReport & { readonly seeds: { readonly control: number; readonly data: number } };

const MAX_DATAGRAM = 1400;

/** The flood's datagram source: deterministic from the seed. */
export class FloodSource {
  private readonly random: () => number;
  private readonly control: Uint8Array[];
  private readonly data: Uint8Array[];
  private readonly ecm: Uint8Array[];

  constructor(plan: Pick<AttackFloodPlan, 'seed' | 'lab' | 'bind'>) {
    this.random = prng(plan.seed);
    const bytes = (n: number): Uint8Array => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(this.random() * 256);
      return out;
    };
    this.control = [];
    this.data = [];
    for (const capture of bundledCaptures()) {
      const read = readCapture(readFileSync(capture.path));
      if (!read.ok) continue;
      for (const p of lispPackets(read.packets)) (p.kind === 'control' ? this.control : this.data).push(p.payload.slice());
    }
    const generated = generatedSeeds({ ...plan.lab, own: plan.bind }, bytes);
    this.control.push(...generated.control);
    this.data.push(...generated.data);
    this.ecm = this.control.filter((s) => (s[0] ?? 0) >>> 4 === 8);
  }

  get seedCounts(): { readonly control: number; readonly data: number } {
    return { control: this.control.length, data: this.data.length };
  }

  /** The next datagram for `port`, its kind, into `slot`; returns its length. */
  next(port: 4341 | 4342, slot: Uint8Array, sparePortZero: boolean): { readonly kind: string; readonly length: number } {
    for (;;) {
      const { kind, bytes } = this.candidate(port);
      if (sparePortZero && ecmInnerPortZero(bytes)) continue;
      const length = Math.min(bytes.length, MAX_DATAGRAM, slot.length);
      slot.set(bytes.subarray(0, length));
      return { kind, length };
    }
  }

  private candidate(port: 4341 | 4342): { kind: string; bytes: Uint8Array } {
    const r = this.random();
    // Mostly the port's own kind of message, a third of the time the other kind.
    const own = port === 4341 ? this.data : this.control;
    const seeds = this.random() < 0.7 ? own : port === 4341 ? this.control : this.data;
    const pick = (from: readonly Uint8Array[]): Uint8Array => from[Math.floor(this.random() * from.length)] ?? new Uint8Array(0);
    if (r < 0.05) return { kind: 'verbatim', bytes: pick(seeds) };
    if (r < 0.15) return { kind: 'random', bytes: this.bytes(Math.floor(this.random() * (MAX_DATAGRAM + 1))) };
    if (r < 0.25) return { kind: 'length-lie', bytes: this.lie(pick(seeds)) };
    if (r < 0.3 && this.ecm.length > 0) {
      const zero = portZero(pick(this.ecm));
      return { kind: 'ecm-port-zero', bytes: this.random() < 0.5 ? zero : nextInput(this.random, [zero]) };
    }
    return { kind: 'mutated', bytes: nextInput(this.random, seeds) };
  }

  private bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(this.random() * 256);
    return out;
  }

  /** A count or length field set to a value it does not have. */
  private lie(seed: Uint8Array): Uint8Array {
    const out = seed.slice();
    const value = (bits: 8 | 16): number => {
      const edges = bits === 8 ? [0, 1, 0x1f, 0x20, 0x7f, 0xff] : [0, 1, 8, 27, 28, 0x7fff, 0xffff];
      return this.random() < 0.5 ? (edges[Math.floor(this.random() * edges.length)] ?? 0) : Math.floor(this.random() * (bits === 8 ? 256 : 65536));
    };
    const set16 = (at: number, v: number): void => {
      if (at + 1 < out.length) out.set([v >>> 8, v & 0xff], at);
    };
    // Inside an ECM the message starts behind the 4-byte header and the inner IP/UDP headers.
    const ecm = (out[0] ?? 0) >>> 4 === 8;
    const ipAt = 4;
    const inner = ecm ? ipAt + ((out[ipAt] ?? 0) >>> 4 === 6 ? 40 : 20) + 8 : 0;
    switch (Math.floor(this.random() * 5)) {
      case 0: // record count (Map-Request, Map-Reply, Map-Register, Map-Notify: byte 3)
        if (inner + 3 < out.length) out[inner + 3] = value(8);
        break;
      case 1: // Map-Request ITR-RLOC count (low 5 bits of byte 2)
        if (inner + 2 < out.length) out[inner + 2] = ((out[inner + 2] ?? 0) & 0xe0) | (value(8) & 0x1f);
        break;
      case 2: {
        // an LCAF's length (AFI 16387 = 0x4003, length 6 bytes further on)
        const at = Buffer.from(out.buffer, out.byteOffset, out.length).indexOf(Buffer.from([0x40, 0x03]), Math.floor(this.random() * out.length));
        if (at >= 0) set16(at + 6, value(16));
        break;
      }
      case 3: // ECM inner IP length (IPv4 total length / IPv6 payload length)
        if (ecm) set16(ipAt + ((out[ipAt] ?? 0) >>> 4 === 6 ? 4 : 2), value(16));
        break;
      default: // ECM inner UDP length
        if (ecm) set16(inner - 4, value(16));
        break;
    }
    return out;
  }
}

/** An ECM with its inner UDP source port (and checksum, so it need not be recomputed) zeroed. */
function portZero(ecm: Uint8Array): Uint8Array {
  const out = ecm.slice();
  const udp = 4 + ((out[4] ?? 0) >>> 4 === 6 ? 40 : 20);
  if (udp + 8 <= out.length) {
    out.set([0, 0], udp);
    out.set([0, 0], udp + 6);
  }
  return out;
}

function ecmInnerPortZero(bytes: Uint8Array): boolean {
  if ((bytes[0] ?? 0) >>> 4 !== 8) return false;
  const m = decodeControl(bytes);
  return m.ok && m.value.type === 'ecm' && m.value.udp.sourcePort === 0;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: attack-flood.js <plan.json>');
  const plan = JSON.parse(readFileSync(file, 'utf8')) as AttackFloodPlan;
  const source = new FloodSource(plan);
  // Round-robin over the targets, each until its count is reached.
  const order: number[] = [];
  const left = plan.targets.map((t) => t.count);
  for (let more = true; more; ) {
    more = false;
    plan.targets.forEach((_, t) => {
      if ((left[t] ?? 0) > 0) {
        order.push(t);
        left[t] = (left[t] ?? 0) - 1;
        more = true;
      }
    });
  }
  const socket = openBatchUdpSocket({ family: 4, address: plan.bind, port: 0, sendBuffer: 4 << 20 });
  try {
    const report = await pacedSend(socket, order.length, plan.perSecond, plan.deadlineMs, (i, slot) => {
      const target = plan.targets[order[i] ?? 0] ?? plan.targets[0];
      if (!target) throw new Error('no target');
      const d = source.next(target.port, slot, plan.sparePortZero ?? false);
      return { length: d.length, address: target.address, port: target.port, tag: `${target.name}/${d.kind}` };
    });
    process.stdout.write(`${JSON.stringify({ ...report, seeds: source.seedCounts } satisfies AttackFloodReport)}\n`);
  } finally {
    socket.close();
  }
}

if (process.argv[1]?.endsWith('attack-flood.js')) await main();
