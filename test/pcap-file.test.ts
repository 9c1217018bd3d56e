import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  CaptureError,
  LINKTYPE_ETHERNET,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_NULL,
  LINKTYPE_RAW,
  readCapture,
  writePcap,
} from '../src/node/pcap-file.js';
import type { CaptureErrorReason, CaptureResult, CapturedPacket } from '../src/node/pcap-file.js';
import { ethernetFrame, networkPayload } from '../src/node/link-layer.js';
import { prng } from './support/prng.js';

// ---------------------------------------------------------------------------------------------
// Reference captures

interface Reference {
  readonly file: string;
  readonly format: 'pcap' | 'pcapng';
  readonly frames: number;
  readonly firstEpoch: string;
}

// frames: `tshark -r FILE -T fields -e frame.number | wc -l`; firstEpoch: frame.time_epoch of
// frame 1 (TShark 4.0.17), cut to the microsecond, the resolution of all five files.
const REFERENCES: readonly Reference[] = [
  { file: 'oor-hub.pcap', format: 'pcap', frames: 68, firstEpoch: '1795885632.679467' },
  { file: 'oor-lispersxtr.pcap', format: 'pcap', frames: 61, firstEpoch: '1795886009.396907' },
  { file: 'lispers-data.pcap', format: 'pcap', frames: 8, firstEpoch: '1795886059.567545' },
  { file: 'lispers-sha256-register.pcap', format: 'pcapng', frames: 2, firstEpoch: '1795887262.581015' },
  { file: 'lispers-crypto-eid-register.pcap', format: 'pcapng', frames: 4, firstEpoch: '1795887258.260090' },
];

function captureUrl(file: string): URL {
  return new URL(`../../pcap/${file}`, import.meta.url); // compiled tests live in dist/test/
}

function load(file: string): Uint8Array {
  return new Uint8Array(readFileSync(captureUrl(file)));
}

function packetsOf(result: CaptureResult): readonly CapturedPacket[] {
  if (!result.ok) assert.fail(`capture rejected: ${result.error.reason}: ${result.error.message}`);
  return result.packets;
}

function failureOf(result: CaptureResult): CaptureError {
  if (result.ok) assert.fail(`expected a rejected capture, got ${result.packets.length} packets`);
  return result.error;
}

function epochMicros(timestampNs: bigint): string {
  const micros = timestampNs / 1000n;
  return `${micros / 1_000_000n}.${(micros % 1_000_000n).toString().padStart(6, '0')}`;
}

const PCAPNG_MAGIC = [0x0a, 0x0d, 0x0d, 0x0a];

for (const ref of REFERENCES) {
  void test(`${ref.file}: frames, first timestamp and link layer agree with tshark`, () => {
    const bytes = load(ref.file);
    assert.equal(ref.format === 'pcapng', PCAPNG_MAGIC.every((b, i) => bytes[i] === b));
    const packets = packetsOf(readCapture(bytes));

    assert.equal(packets.length, ref.frames);
    assert.equal(epochMicros(packets[0]?.timestampNs ?? -1n), ref.firstEpoch);
    packets.forEach((packet, i) => {
      assert.equal(packet.index, i + 1);
      assert.equal(packet.linkType, LINKTYPE_ETHERNET);
      assert.equal(packet.data.length, packet.originalLength); // nothing was cut by a snap length
      const payload = networkPayload(packet.linkType, packet.data);
      assert.ok(payload.ok, `frame ${packet.index}: ${payload.ok ? '' : payload.reason}`);
      assert.equal(payload.ipVersion, 4);
      assert.equal(payload.packet.length, packet.data.length - 14);
      assert.equal(payload.packet.buffer, bytes.buffer, 'payload must be a view, not a copy');
    });
  });

  void test(`${ref.file}: writePcap round-trips what readCapture returned`, () => {
    const bytes = load(ref.file);
    const packets = packetsOf(readCapture(bytes));
    const written = writePcap(packets, LINKTYPE_ETHERNET);
    assert.deepEqual(packetsOf(readCapture(written)), packets);
    if (ref.format === 'pcap') {
      // The originals are themselves LE microsecond pcaps with snaplen 262144: byte for byte.
      assert.deepEqual(written, bytes);
    }
  });

  void test(`${ref.file}: tshark reads the written pcap as it reads the original`, () => {
    const packets = packetsOf(readCapture(load(ref.file)));
    const dir = mkdtempSync(join(tmpdir(), 'lispnode-pcap-'));
    try {
      const path = join(dir, 'written.pcap');
      writeFileSync(path, writePcap(packets, LINKTYPE_ETHERNET));
      assert.equal(tsharkSummary(path), tsharkSummary(fileURLToPath(captureUrl(ref.file))));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** One line per frame; execFileSync throws if tshark exits non-zero (a file it cannot read). */
function tsharkSummary(path: string): string {
  const fields = ['frame.number', 'frame.time_epoch', 'frame.len', 'frame.cap_len', 'frame.protocols'];
  const args = ['-r', path, '-T', 'fields', ...fields.flatMap((field) => ['-e', field])];
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.notEqual(out.length, 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Robustness: truncations and byte flips never throw

/** Either a well-formed packet list inside the input, or a CaptureError: never anything else. */
function assertSane(input: Uint8Array, result: CaptureResult): void {
  if (!result.ok) {
    assert.ok(result.error instanceof CaptureError);
    assert.ok(Number.isSafeInteger(result.error.offset) && result.error.offset >= 0);
    return;
  }
  result.packets.forEach((packet, i) => {
    assert.equal(packet.index, i + 1);
    assert.equal(packet.data.buffer, input.buffer);
    assert.ok(packet.data.byteOffset + packet.data.length <= input.byteOffset + input.length);
    const payload = networkPayload(packet.linkType, packet.data); // fuzzes the link layer too
    if (payload.ok) assert.equal(payload.packet.buffer, input.buffer);
  });
}

const TRUNCATION_REASONS: ReadonlySet<CaptureErrorReason> = new Set(['truncated-header', 'truncated-record']);

for (const ref of REFERENCES) {
  void test(`${ref.file}: every truncation is rejected as truncated or yields whole packets`, () => {
    const bytes = load(ref.file);
    for (let length = 0; length < bytes.length; length++) {
      const prefix = bytes.subarray(0, length);
      const result = readCapture(prefix);
      assertSane(prefix, result);
      if (!result.ok) {
        assert.ok(TRUNCATION_REASONS.has(result.error.reason), `prefix ${length}: ${result.error.reason}`);
      } else {
        assert.ok(result.packets.length < ref.frames, `prefix ${length} cannot hold every frame`);
      }
    }
  });

  void test(`${ref.file}: random byte flips never throw`, () => {
    const original = load(ref.file);
    const random = prng(0x5eed ^ original.length);
    let rejected = 0;
    for (let round = 0; round < 3000; round++) {
      const mutated = original.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) {
        // Half the flips hit the first 256 bytes, where the file and section headers and the
        // first records' lengths are; uniform flips would mostly land in packet data.
        const span = random() < 0.5 ? Math.min(256, mutated.length) : mutated.length;
        mutated[Math.floor(random() * span)] = Math.floor(random() * 256);
      }
      const result = readCapture(mutated);
      assertSane(mutated, result);
      if (!result.ok) rejected++;
    }
    // Both outcomes must occur, or the flips are not reaching the parser's decisions.
    assert.ok(rejected > 100 && rejected < 2900, `${rejected} of 3000 rejected`);
  });
}

// ---------------------------------------------------------------------------------------------
// Synthetic captures for the format corners the reference files do not use

/** Little builder for test captures in either byte order. */
class Bytes {
  private readonly parts: number[] = [];

  constructor(private readonly littleEndian: boolean) {}

  u8(...values: number[]): this {
    this.parts.push(...values);
    return this;
  }

  u16(value: number): this {
    const b = [value >>> 8, value & 0xff];
    return this.u8(...(this.littleEndian ? b.reverse() : b));
  }

  u32(value: number): this {
    const b = [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
    return this.u8(...(this.littleEndian ? b.reverse() : b));
  }

  raw(bytes: Uint8Array): this {
    return this.u8(...bytes);
  }

  get length(): number {
    return this.parts.length;
  }

  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function concat(...chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function classicPcap(magic: number, littleEndian: boolean, subsecond: number, data: Uint8Array): Uint8Array {
  const b = new Bytes(littleEndian).u32(magic).u16(2).u16(4).u32(0).u32(0).u32(65535).u32(LINKTYPE_RAW);
  return b.u32(1_700_000_000).u32(subsecond).u32(data.length).u32(data.length + 10).raw(data).done();
}

/** A pcapng block: type, total length, body padded to 4, total length. */
function block(littleEndian: boolean, type: number, body: Uint8Array): Uint8Array {
  const padded = concat(body, new Uint8Array((4 - (body.length % 4)) % 4));
  const total = padded.length + 12;
  return new Bytes(littleEndian).u32(type).u32(total).raw(padded).u32(total).done();
}

function sectionHeader(littleEndian: boolean, major = 1): Uint8Array {
  const body = new Bytes(littleEndian).u32(0x1a2b3c4d).u16(major).u16(0).u32(0xffffffff).u32(0xffffffff);
  return block(littleEndian, 0x0a0d0d0a, body.done());
}

/** An IDB, with an if_tsresol option when `tsresol` is given. */
function interfaceBlock(littleEndian: boolean, linkType: number, tsresol?: readonly number[]): Uint8Array {
  const body = new Bytes(littleEndian).u16(linkType).u16(0).u32(0);
  if (tsresol !== undefined) {
    body.u16(9).u16(tsresol.length).u8(...tsresol);
    while (body.length % 4 !== 0) body.u8(0);
    body.u16(0).u16(0);
  }
  return block(littleEndian, 1, body.done());
}

function enhancedBlock(littleEndian: boolean, interfaceId: number, ticks: bigint, data: Uint8Array): Uint8Array {
  const body = new Bytes(littleEndian)
    .u32(interfaceId)
    .u32(Number(ticks >> 32n))
    .u32(Number(ticks & 0xffffffffn))
    .u32(data.length)
    .u32(data.length)
    .raw(data);
  return block(littleEndian, 6, body.done());
}

function simpleBlock(littleEndian: boolean, data: Uint8Array): Uint8Array {
  return block(littleEndian, 3, new Bytes(littleEndian).u32(data.length).raw(data).done());
}

const IPV4 = Uint8Array.from([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
const IPV6 = concat(Uint8Array.from([0x60, 0, 0, 0, 0, 0, 59, 64]), new Uint8Array(32));

void test('classic pcap: all four magics, microsecond and nanosecond', () => {
  const cases = [
    { magic: 0xa1b2c3d4, littleEndian: false, subsecond: 123456, expected: 1_700_000_000_123_456_000n },
    { magic: 0xa1b2c3d4, littleEndian: true, subsecond: 123456, expected: 1_700_000_000_123_456_000n },
    { magic: 0xa1b23c4d, littleEndian: false, subsecond: 123456789, expected: 1_700_000_000_123_456_789n },
    { magic: 0xa1b23c4d, littleEndian: true, subsecond: 123456789, expected: 1_700_000_000_123_456_789n },
  ];
  for (const { magic, littleEndian, subsecond, expected } of cases) {
    const [packet, ...rest] = packetsOf(readCapture(classicPcap(magic, littleEndian, subsecond, IPV4)));
    assert.equal(rest.length, 0);
    assert.deepEqual(packet, {
      index: 1,
      timestampNs: expected,
      linkType: LINKTYPE_RAW,
      data: IPV4,
      originalLength: IPV4.length + 10,
    });
  }
});

void test('pcapng: both byte orders, if_tsresol, SPB, skipped blocks, several sections', () => {
  const be = false;
  const le = true;
  const capture = concat(
    sectionHeader(be),
    interfaceBlock(be, LINKTYPE_RAW, [9]), // nanoseconds
    block(be, 0x00000004, Uint8Array.from([0, 0, 0, 0])), // name resolution: skipped
    enhancedBlock(be, 0, 1_700_000_000_123_456_789n, IPV4),
    simpleBlock(be, IPV6.subarray(0, 39)), // odd length: exercises padding
    sectionHeader(le),
    interfaceBlock(le, LINKTYPE_ETHERNET), // default microseconds
    interfaceBlock(le, LINKTYPE_NULL, [0x80 | 10]), // 2^-10 s ticks
    enhancedBlock(le, 1, 1024n * 3n + 512n, IPV6),
    enhancedBlock(le, 0, 1_700_000_000_000_001n, IPV4),
  );
  const packets = packetsOf(readCapture(capture));
  const summary = packets.map((p) => [p.index, p.timestampNs, p.linkType, p.data.length, p.originalLength]);
  assert.deepEqual(summary, [
    [1, 1_700_000_000_123_456_789n, LINKTYPE_RAW, 20, 20],
    [2, 0n, LINKTYPE_RAW, 39, 39], // an SPB carries no timestamp
    [3, 3_500_000_000n, LINKTYPE_NULL, 40, 40],
    [4, 1_700_000_000_000_001_000n, LINKTYPE_ETHERNET, 20, 20],
  ]);
  assert.deepEqual(packets[2]?.data, IPV6);
});

void test('pcapng: if_tsresol beyond nanoseconds is floored', () => {
  const capture = concat(
    sectionHeader(true),
    interfaceBlock(true, LINKTYPE_RAW, [12]),
    enhancedBlock(true, 0, 1_000_000_000_999n, IPV4),
  );
  assert.equal(packetsOf(readCapture(capture))[0]?.timestampNs, 1_000_000_000n);
});

function rejects(bytes: Uint8Array, reason: CaptureErrorReason, offset?: number): void {
  const error = failureOf(readCapture(bytes));
  assert.equal(error.reason, reason, error.message);
  if (offset !== undefined) assert.equal(error.offset, offset);
}

void test('malformed captures are rejected with a reason and an offset', () => {
  const good = concat(sectionHeader(true), interfaceBlock(true, LINKTYPE_RAW), enhancedBlock(true, 0, 0n, IPV4));
  const idbEnd = sectionHeader(true).length + interfaceBlock(true, LINKTYPE_RAW).length;

  rejects(new Uint8Array(0), 'truncated-header', 0);
  rejects(Uint8Array.from([0xd4, 0xc3, 0xb2]), 'truncated-header', 0);
  rejects(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 'bad-magic', 0);
  rejects(classicPcap(0xa1b2c3d4, true, 0, IPV4).subarray(0, 23), 'truncated-header');
  rejects(classicPcap(0xa1b2c3d4, true, 0, IPV4).subarray(0, 30), 'truncated-record', 24);
  rejects(classicPcap(0xa1b2c3d4, true, 0, IPV4).subarray(0, 50), 'truncated-record', 40);

  const unsupported = classicPcap(0xa1b2c3d4, true, 0, IPV4);
  unsupported[4] = 3;
  rejects(unsupported, 'unsupported-version', 4);
  rejects(sectionHeader(true, 2), 'unsupported-version');

  const badOrder = good.slice();
  badOrder[8] = 0;
  rejects(badOrder, 'bad-magic', 8);

  const badTrailer = good.slice();
  badTrailer[good.length - 1] = 1;
  rejects(badTrailer, 'bad-block-length');

  const unaligned = good.slice();
  unaligned[idbEnd + 4] = (unaligned[idbEnd + 4] ?? 0) + 1;
  rejects(unaligned, 'bad-block-length', idbEnd + 4);

  const overlongData = good.slice();
  overlongData[idbEnd + 20] = 200; // captured length beyond the block
  rejects(overlongData, 'bad-block-length');

  rejects(concat(sectionHeader(true), enhancedBlock(true, 0, 0n, IPV4)), 'unknown-interface');
  rejects(concat(sectionHeader(true), simpleBlock(true, IPV4)), 'unknown-interface');
  // Interfaces do not survive into the next section.
  rejects(concat(good, sectionHeader(true), enhancedBlock(true, 0, 0n, IPV4)), 'unknown-interface');
  rejects(concat(sectionHeader(true), interfaceBlock(true, LINKTYPE_RAW, [6, 6])), 'bad-option');
});

void test('readCapture accepts a view into a larger buffer', () => {
  const capture = classicPcap(0xa1b2c3d4, true, 7, IPV4);
  const framed = concat(Uint8Array.from([9, 9, 9]), capture, Uint8Array.from([9]));
  const view = framed.subarray(3, 3 + capture.length);
  assert.deepEqual(packetsOf(readCapture(view))[0]?.data, IPV4);
});

void test('writePcap: header fields, microsecond flooring, snap length, bad input', () => {
  const written = writePcap([{ timestampNs: 5_000_001_999n, data: IPV4 }], LINKTYPE_RAW);
  const view = new DataView(written.buffer);
  assert.equal(view.getUint32(0, true), 0xa1b2c3d4);
  assert.equal(view.getUint32(16, true), 262144);
  assert.equal(view.getUint32(20, true), LINKTYPE_RAW);
  assert.deepEqual(packetsOf(readCapture(written))[0]?.timestampNs, 5_000_001_000n);

  const jumbo = new Uint8Array(262144 + 100);
  const [cut] = packetsOf(readCapture(writePcap([{ timestampNs: 0n, data: jumbo }], LINKTYPE_RAW)));
  assert.equal(cut?.data.length, 262144);
  assert.equal(cut?.originalLength, jumbo.length);

  assert.throws(() => writePcap([{ timestampNs: -1n, data: IPV4 }], LINKTYPE_RAW), RangeError);
  assert.throws(() => writePcap([{ timestampNs: 2n ** 32n * 1_000_000_000n, data: IPV4 }], LINKTYPE_RAW), RangeError);
  assert.throws(() => writePcap([], -1), RangeError);
  assert.deepEqual(packetsOf(readCapture(writePcap([], LINKTYPE_ETHERNET))), []);
});

// ---------------------------------------------------------------------------------------------
// Link layer

function ipOf(linkType: number, frame: Uint8Array): { readonly version: 4 | 6; readonly packet: Uint8Array } {
  const payload = networkPayload(linkType, frame);
  if (!payload.ok) assert.fail(`not an IP payload: ${payload.reason}`);
  return { version: payload.ipVersion, packet: payload.packet };
}

void test('ethernetFrame wraps IPv4 and IPv6, and networkPayload unwraps them without copying', () => {
  for (const [ip, version, etherType] of [
    [IPV4, 4, [0x08, 0x00]],
    [IPV6, 6, [0x86, 0xdd]],
  ] as const) {
    const frame = ethernetFrame(ip);
    assert.deepEqual([...frame.subarray(0, 14)], [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, ...etherType]);
    const { version: got, packet } = ipOf(LINKTYPE_ETHERNET, frame);
    assert.equal(got, version);
    assert.deepEqual(packet, ip);
    assert.equal(packet.buffer, frame.buffer);
  }
  assert.throws(() => ethernetFrame(Uint8Array.from([0x20, 0])), RangeError);
  assert.throws(() => ethernetFrame(new Uint8Array(0)), RangeError);
});

void test('networkPayload strips VLAN tags, Linux SLL/SLL2, BSD loopback and raw IP', () => {
  const macs = new Uint8Array(12);
  const tag = (tpid: number): Uint8Array => Uint8Array.from([tpid >> 8, tpid & 0xff, 0x00, 0x2a]);
  const ipv4Type = Uint8Array.from([0x08, 0x00]);
  const sll = concat(new Uint8Array(14), Uint8Array.from([0x86, 0xdd]), IPV6);
  const sll2 = concat(Uint8Array.from([0x08, 0x00]), new Uint8Array(18), IPV4);

  assert.deepEqual(ipOf(LINKTYPE_ETHERNET, concat(macs, tag(0x8100), ipv4Type, IPV4)).packet, IPV4);
  assert.deepEqual(ipOf(LINKTYPE_ETHERNET, concat(macs, tag(0x88a8), tag(0x8100), ipv4Type, IPV4)).packet, IPV4);
  assert.deepEqual(ipOf(LINKTYPE_LINUX_SLL, sll), { version: 6, packet: IPV6 });
  assert.deepEqual(ipOf(LINKTYPE_LINUX_SLL2, sll2), { version: 4, packet: IPV4 });
  assert.deepEqual(ipOf(LINKTYPE_NULL, concat(Uint8Array.from([2, 0, 0, 0]), IPV4)), { version: 4, packet: IPV4 });
  assert.deepEqual(ipOf(LINKTYPE_NULL, concat(Uint8Array.from([0, 0, 0, 30]), IPV6)), { version: 6, packet: IPV6 });
  assert.deepEqual(ipOf(LINKTYPE_NULL, concat(Uint8Array.from([28, 0, 0, 0]), IPV6)), { version: 6, packet: IPV6 });
  assert.deepEqual(ipOf(LINKTYPE_RAW, IPV6), { version: 6, packet: IPV6 });
});

void test('networkPayload trims Ethernet padding to the IP length', () => {
  const padded = concat(ethernetFrame(IPV4), new Uint8Array(26)); // a 60-byte minimum frame
  assert.deepEqual(ipOf(LINKTYPE_ETHERNET, padded).packet, IPV4);
});

void test('networkPayload failures', () => {
  const arp = concat(new Uint8Array(12), Uint8Array.from([0x08, 0x06]), new Uint8Array(28));
  const threeTags = concat(new Uint8Array(12), ...Array.from({ length: 3 }, () => Uint8Array.from([0x81, 0, 0, 1])));
  const mislabelled = concat(new Uint8Array(12), Uint8Array.from([0x86, 0xdd]), IPV4, new Uint8Array(20));
  const cases: readonly (readonly [number, Uint8Array, string])[] = [
    [147, IPV4, 'unsupported-link-type'],
    [LINKTYPE_ETHERNET, arp, 'not-ip'],
    [LINKTYPE_ETHERNET, concat(threeTags, Uint8Array.from([0x08, 0x00]), IPV4), 'not-ip'],
    [LINKTYPE_ETHERNET, mislabelled, 'not-ip'],
    [LINKTYPE_ETHERNET, new Uint8Array(13), 'truncated'],
    [LINKTYPE_ETHERNET, ethernetFrame(IPV4).subarray(0, 30), 'truncated'],
    [LINKTYPE_LINUX_SLL, new Uint8Array(15), 'truncated'],
    [LINKTYPE_LINUX_SLL2, Uint8Array.from([0x08, 0x00, 0]), 'truncated'],
    [LINKTYPE_NULL, Uint8Array.from([2, 0, 0]), 'truncated'],
    [LINKTYPE_NULL, concat(Uint8Array.from([7, 0, 0, 0]), IPV4), 'not-ip'],
    [LINKTYPE_RAW, new Uint8Array(0), 'truncated'],
    [LINKTYPE_RAW, Uint8Array.from([0x50, 0, 0, 0]), 'not-ip'],
  ];
  for (const [linkType, frame, reason] of cases) {
    assert.deepEqual(networkPayload(linkType, frame), { ok: false, reason }, `${linkType}/${reason}`);
  }
});
