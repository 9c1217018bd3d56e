// Capture-file codec: reads classic libpcap and pcapng, writes classic pcap. Pure — bytes in,
// bytes out — so the daemon, the tests and the fuzzer share it without touching the filesystem.
//
// Reading never throws: every bounds violation becomes a CaptureError in the result. Internally
// the parsers throw CaptureError from the one bounds-checked read path and `readCapture` turns
// it into `{ ok: false }`, which keeps the happy path free of per-read result objects.

/** Link types (https://www.tcpdump.org/linktypes.html) that link-layer.ts knows how to strip. */
export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_LINUX_SLL2 = 276;

export interface CapturedPacket {
  /** 1-based frame number, as Wireshark counts. */
  readonly index: number;
  readonly timestampNs: bigint;
  readonly linkType: number;
  /** The captured bytes: a view into the input, not a copy. */
  readonly data: Uint8Array;
  readonly originalLength: number;
}

export type CaptureErrorReason =
  /** Neither a pcap magic nor a pcapng section header with a valid byte-order magic. */
  | 'bad-magic'
  /** A format version this reader does not know (pcap major 2, pcapng major 1 only). */
  | 'unsupported-version'
  /** The input ends inside the pcap file header or a pcapng section header's fixed part. */
  | 'truncated-header'
  /** The input ends inside a pcap record or a pcapng block. */
  | 'truncated-record'
  /** A pcapng block length that is too small, unaligned, disagrees with its trailer, or is too
   *  short for the fields and packet data the block claims to hold. */
  | 'bad-block-length'
  /** An Enhanced/Simple Packet Block naming an interface no IDB of its section described. */
  | 'unknown-interface'
  /** A malformed option this reader interprets (if_tsresol, if_tsoffset). */
  | 'bad-option';

export class CaptureError extends Error {
  override readonly name = 'CaptureError';

  constructor(
    readonly reason: CaptureErrorReason,
    /** Byte offset in the input where the problem was found. */
    readonly offset: number,
    message: string,
  ) {
    super(`${message} (at byte ${offset})`);
  }
}

export type CaptureResult =
  | { readonly ok: true; readonly packets: readonly CapturedPacket[] }
  | { readonly ok: false; readonly error: CaptureError };

export function readCapture(bytes: Uint8Array): CaptureResult {
  try {
    return { ok: true, packets: readPackets(bytes) };
  } catch (error) {
    if (error instanceof CaptureError) return { ok: false, error };
    throw error; // anything else is a bug in this module, not bad input
  }
}

// ---------------------------------------------------------------------------------------------
// Bounds-checked reads

/** A byte-order-aware window on the input. Reads past `end` throw a CaptureError with `reason`,
 *  so a field that overruns its pcapng block is caught even when the file goes on. */
interface Span {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly littleEndian: boolean;
  readonly end: number;
  readonly reason: CaptureErrorReason;
}

function need(w: Span, offset: number, length: number): void {
  if (length < 0 || offset + length > w.end) {
    throw new CaptureError(w.reason, offset, `need ${length} bytes, ${Math.max(w.end - offset, 0)} left`);
  }
}

function u8(w: Span, offset: number): number {
  need(w, offset, 1);
  return w.view.getUint8(offset);
}

function u16(w: Span, offset: number): number {
  need(w, offset, 2);
  return w.view.getUint16(offset, w.littleEndian);
}

function u32(w: Span, offset: number): number {
  need(w, offset, 4);
  return w.view.getUint32(offset, w.littleEndian);
}

function i64(w: Span, offset: number): bigint {
  need(w, offset, 8);
  return w.view.getBigInt64(offset, w.littleEndian);
}

// ---------------------------------------------------------------------------------------------
// Shared by both formats

/** Nanoseconds = ticks * num / den. Exact for every decimal resolution down to 1 ns; binary
 *  fractions and sub-nanosecond resolutions are floored. */
interface TickScale {
  readonly num: bigint;
  readonly den: bigint;
}

const MICROSECONDS: TickScale = { num: 1000n, den: 1n };
const NANOSECONDS: TickScale = { num: 1n, den: 1n };

function ticksToNs(ticks: bigint, scale: TickScale): bigint {
  return (ticks * scale.num) / scale.den;
}

/** The one place a packet is built, for pcap records and pcapng EPBs/SPBs alike. The data
 *  must lie inside `w`, whose reason says what an overrun means for the caller's format. */
function appendPacket(
  packets: CapturedPacket[],
  w: Span,
  dataOffset: number,
  capturedLength: number,
  originalLength: number,
  timestampNs: bigint,
  linkType: number,
): void {
  need(w, dataOffset, capturedLength);
  packets.push({
    index: packets.length + 1,
    timestampNs,
    linkType,
    data: w.bytes.subarray(dataOffset, dataOffset + capturedLength),
    originalLength,
  });
}

const PCAPNG_SHB = 0x0a0d0d0a;

interface ClassicFormat {
  readonly littleEndian: boolean;
  readonly fraction: TickScale;
}

/** Classic pcap magics as read big-endian from the first four bytes. */
const CLASSIC_FORMATS: ReadonlyMap<number, ClassicFormat> = new Map([
  [0xa1b2c3d4, { littleEndian: false, fraction: MICROSECONDS }],
  [0xd4c3b2a1, { littleEndian: true, fraction: MICROSECONDS }],
  [0xa1b23c4d, { littleEndian: false, fraction: NANOSECONDS }],
  [0x4d3cb2a1, { littleEndian: true, fraction: NANOSECONDS }],
]);

function readPackets(bytes: Uint8Array): CapturedPacket[] {
  const file: Span = {
    bytes,
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    littleEndian: false,
    end: bytes.byteLength,
    reason: 'truncated-header',
  };
  const magic = u32(file, 0);
  if (magic === PCAPNG_SHB) return readPcapng(file);
  const format = CLASSIC_FORMATS.get(magic);
  if (format === undefined) {
    throw new CaptureError('bad-magic', 0, `unknown capture magic 0x${magic.toString(16).padStart(8, '0')}`);
  }
  return readClassic({ ...file, littleEndian: format.littleEndian }, format.fraction);
}

// ---------------------------------------------------------------------------------------------
// Classic pcap: 24-byte file header, then 16-byte record headers each followed by its data

const CLASSIC_HEADER_LENGTH = 24;
const CLASSIC_RECORD_HEADER_LENGTH = 16;

/** libpcap's LT_LINKTYPE(): the upper bits of the field carry FCS length flags. */
const CLASSIC_LINKTYPE_MASK = 0x03ffffff;

function readClassic(header: Span, fraction: TickScale): CapturedPacket[] {
  need(header, 0, CLASSIC_HEADER_LENGTH);
  const major = u16(header, 4);
  if (major !== 2) throw new CaptureError('unsupported-version', 4, `pcap version ${major} is not 2`);
  const linkType = u32(header, 20) & CLASSIC_LINKTYPE_MASK;

  const records: Span = { ...header, reason: 'truncated-record' };
  const packets: CapturedPacket[] = [];
  let offset = CLASSIC_HEADER_LENGTH;
  while (offset < records.end) {
    need(records, offset, CLASSIC_RECORD_HEADER_LENGTH); // so a cut header reports its start
    const seconds = u32(records, offset);
    const subsecond = u32(records, offset + 4);
    const capturedLength = u32(records, offset + 8);
    const originalLength = u32(records, offset + 12);
    const timestampNs = BigInt(seconds) * 1_000_000_000n + ticksToNs(BigInt(subsecond), fraction);
    const dataOffset = offset + CLASSIC_RECORD_HEADER_LENGTH;
    appendPacket(packets, records, dataOffset, capturedLength, originalLength, timestampNs, linkType);
    offset = dataOffset + capturedLength;
  }
  return packets;
}

// ---------------------------------------------------------------------------------------------
// pcapng: a sequence of blocks [type, total length, body..., total length]

const PCAPNG_IDB = 0x00000001;
const PCAPNG_SPB = 0x00000003;
const PCAPNG_EPB = 0x00000006;
const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d; // as read little-endian
const PCAPNG_BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
const PCAPNG_BLOCK_OVERHEAD = 12;

const OPT_ENDOFOPT = 0;
const IF_TSRESOL = 9;
const IF_TSOFFSET = 14;

interface Interface {
  readonly linkType: number;
  readonly snapLength: number;
  readonly scale: TickScale;
  readonly offsetNs: bigint;
}

/** A block, seen as a window on its body: reads stop at the trailing length. */
interface Block extends Span {
  readonly type: number;
  /** Offset of the body, just after the leading block length. */
  readonly start: number;
  readonly next: number;
}

function readPcapng(file: Span): CapturedPacket[] {
  const packets: CapturedPacket[] = [];
  let frames = file; // replaced at offset 0, which readPackets saw is a section header
  let interfaces: Interface[] = [];
  for (let offset = 0; offset < file.end; ) {
    if (u32(frames, offset) === PCAPNG_SHB) {
      frames = sectionFrames(file, offset);
      interfaces = []; // interface ids are numbered per section
    }
    const block = blockAt(frames, offset);
    switch (block.type) {
      case PCAPNG_SHB:
        checkSectionVersion(block);
        break;
      case PCAPNG_IDB:
        interfaces.push(interfaceDescription(block));
        break;
      case PCAPNG_EPB:
        enhancedPacket(packets, block, interfaces);
        break;
      case PCAPNG_SPB:
        simplePacket(packets, block, interfaces);
        break;
      default:
        break; // statistics, name resolution, custom, ...: skipped by length
    }
    offset = block.next;
  }
  return packets;
}

/** The window for a section's blocks. The SHB type is a palindrome, readable in either order;
 *  the byte-order magic after the block length says which order the section uses. */
function sectionFrames(file: Span, offset: number): Span {
  const magic = u32({ ...file, littleEndian: true, reason: 'truncated-header' }, offset + 8);
  if (magic !== PCAPNG_BYTE_ORDER_MAGIC && magic !== PCAPNG_BYTE_ORDER_MAGIC_SWAPPED) {
    throw new CaptureError('bad-magic', offset + 8, 'bad pcapng byte-order magic');
  }
  return { ...file, littleEndian: magic === PCAPNG_BYTE_ORDER_MAGIC, reason: 'truncated-record' };
}

function blockAt(frames: Span, offset: number): Block {
  const type = u32(frames, offset);
  const totalLength = u32(frames, offset + 4);
  if (totalLength < PCAPNG_BLOCK_OVERHEAD || totalLength % 4 !== 0) {
    throw new CaptureError('bad-block-length', offset + 4, `block length ${totalLength}`);
  }
  need(frames, offset, totalLength);
  const trailer = offset + totalLength - 4;
  if (u32(frames, trailer) !== totalLength) {
    throw new CaptureError('bad-block-length', trailer, `trailing block length differs from ${totalLength}`);
  }
  return {
    bytes: frames.bytes,
    view: frames.view,
    littleEndian: frames.littleEndian,
    end: trailer,
    reason: 'bad-block-length',
    type,
    start: offset + 8,
    next: offset + totalLength,
  };
}

function checkSectionVersion(block: Block): void {
  const major = u16(block, block.start + 4);
  if (major !== 1) {
    throw new CaptureError('unsupported-version', block.start + 4, `pcapng version ${major} is not 1`);
  }
}

function interfaceDescription(block: Block): Interface {
  const linkType = u16(block, block.start);
  const snapLength = u32(block, block.start + 4);
  let scale = MICROSECONDS; // the pcapng default when if_tsresol is absent
  let offsetNs = 0n;
  for (let offset = block.start + 8; offset < block.end; ) {
    const code = u16(block, offset);
    const length = u16(block, offset + 2);
    const value = offset + 4;
    need(block, value, length);
    if (code === OPT_ENDOFOPT) break;
    if (code === IF_TSRESOL) scale = tickScale(block, value, length);
    if (code === IF_TSOFFSET) offsetNs = secondsOption(block, value, length);
    offset = value + padTo4(length);
  }
  return { linkType, snapLength, scale, offsetNs };
}

/** if_tsresol: one byte; high bit clear = 10^-n seconds per tick, set = 2^-n. */
function tickScale(block: Block, value: number, length: number): TickScale {
  if (length !== 1) throw new CaptureError('bad-option', value, `if_tsresol length ${length}`);
  const code = u8(block, value);
  const exponent = BigInt(code & 0x7f);
  if ((code & 0x80) !== 0) return { num: 1_000_000_000n, den: 2n ** exponent };
  return exponent <= 9n ? { num: 10n ** (9n - exponent), den: 1n } : { num: 1n, den: 10n ** (exponent - 9n) };
}

/** if_tsoffset: signed whole seconds to add to every timestamp of the interface. */
function secondsOption(block: Block, value: number, length: number): bigint {
  if (length !== 8) throw new CaptureError('bad-option', value, `if_tsoffset length ${length}`);
  return i64(block, value) * 1_000_000_000n;
}

function padTo4(length: number): number {
  return (length + 3) & ~3;
}

function interfaceAt(interfaces: readonly Interface[], id: number, offset: number): Interface {
  const found = interfaces[id];
  if (found === undefined) {
    throw new CaptureError('unknown-interface', offset, `no interface ${id} in this section`);
  }
  return found;
}

function enhancedPacket(packets: CapturedPacket[], block: Block, interfaces: readonly Interface[]): void {
  const { start } = block;
  const iface = interfaceAt(interfaces, u32(block, start), start);
  const ticks = (BigInt(u32(block, start + 4)) << 32n) | BigInt(u32(block, start + 8));
  const capturedLength = u32(block, start + 12);
  const originalLength = u32(block, start + 16);
  const timestampNs = ticksToNs(ticks, iface.scale) + iface.offsetNs;
  appendPacket(packets, block, start + 20, capturedLength, originalLength, timestampNs, iface.linkType);
}

/** An SPB has no timestamp (reported as 0) and no captured length: the data fills the block,
 *  up to the original length and interface 0's snap length (0 = unlimited). */
function simplePacket(packets: CapturedPacket[], block: Block, interfaces: readonly Interface[]): void {
  const iface = interfaceAt(interfaces, 0, block.start);
  const originalLength = u32(block, block.start);
  const dataOffset = block.start + 4;
  const room = block.end - dataOffset;
  const capturedLength = Math.min(originalLength, room, iface.snapLength === 0 ? room : iface.snapLength);
  appendPacket(packets, block, dataOffset, capturedLength, originalLength, 0n, iface.linkType);
}

// ---------------------------------------------------------------------------------------------
// Writing: classic little-endian microsecond pcap

const WRITE_SNAPLEN = 262144;
const MAX_SECONDS = 0xffffffffn;

export interface PacketToWrite {
  readonly timestampNs: bigint;
  readonly data: Uint8Array;
  /** Length on the wire; defaults to data.length. Lets a read capture round-trip exactly. */
  readonly originalLength?: number;
}

/** Writes a classic pcap (magic a1b2c3d4 little-endian, microseconds, snaplen 262144).
 *  Timestamps are floored to the microsecond; data beyond the snap length is cut, as a capture
 *  would, with the full length kept as the original length. Throws RangeError for a link type
 *  or timestamp the format cannot hold (a caller bug, not bad input). */
export function writePcap(packets: readonly PacketToWrite[], linkType: number): Uint8Array {
  const parts = [pcapFileHeader(linkType), ...packets.map(pcapRecord)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** The 24-byte file header of writePcap's format: a streaming writer sends it first. */
export function pcapFileHeader(linkType: number): Uint8Array {
  if (!Number.isInteger(linkType) || linkType < 0 || linkType > CLASSIC_LINKTYPE_MASK) {
    throw new RangeError(`link type ${linkType} does not fit a pcap header`);
  }
  const out = new Uint8Array(CLASSIC_HEADER_LENGTH);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xa1b2c3d4, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  // bytes 8..15: thiszone and sigfigs, always 0
  view.setUint32(16, WRITE_SNAPLEN, true);
  view.setUint32(20, linkType, true);
  return out;
}

/** One record (16-byte header and data) of writePcap's format: a streaming writer appends these. */
export function pcapRecord(packet: PacketToWrite): Uint8Array {
  const seconds = packet.timestampNs / 1_000_000_000n;
  if (packet.timestampNs < 0n || seconds > MAX_SECONDS) {
    throw new RangeError(`timestamp ${packet.timestampNs} ns does not fit a pcap record`);
  }
  const length = capturedLength(packet);
  const out = new Uint8Array(CLASSIC_RECORD_HEADER_LENGTH + length);
  const view = new DataView(out.buffer);
  view.setUint32(0, Number(seconds), true);
  view.setUint32(4, Number((packet.timestampNs % 1_000_000_000n) / 1000n), true);
  view.setUint32(8, length, true);
  view.setUint32(12, Math.max(packet.originalLength ?? 0, packet.data.length), true);
  out.set(packet.data.subarray(0, length), CLASSIC_RECORD_HEADER_LENGTH);
  return out;
}

function capturedLength(packet: PacketToWrite): number {
  return Math.min(packet.data.length, WRITE_SNAPLEN);
}
