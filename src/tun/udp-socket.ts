// TypeScript face of the addon's batched UDP socket (src/tun/native/udp.cc), the LISP data plane's
// transport on port 4341. One recvmmsg/sendmmsg moves a whole batch between the socket and
// caller-owned buffers with headroom (wireguard-go's conn.Bind is the model); endpoints travel in
// typed arrays, so the hot path makes no string or object per datagram. dgram stays for control
// (4342): it makes one syscall per datagram (~125 kpps here) and cannot accept the zero UDPv6
// checksums lispers.net sends (UDP_NO_CHECK6_RX), nor set TOS or PMTU discovery.
//
// Address slots: slot i of an `addresses` Uint8Array is bytes [16i, 16i + 16), an IPv6 address in
// network byte order; an IPv4 address is stored IPv4-mapped (::ffff:a.b.c.d, RFC 4291 §2.5.5.2), so
// one layout serves both families and a dual-stack socket reports IPv4 sources the same way. Slot i
// of a `ports` Uint16Array is the port in host order. IPv6 scope ids are not carried.
import { isIPv4, isIPv6 } from 'node:net';
import { constants as osConstants } from 'node:os';
import { nativeClass } from './native-addon.js';

/** Bytes per address slot. */
export const ADDRESS_SLOT_BYTES = 16;

/**
 * IP_MTU_DISCOVER / IPV6_MTU_DISCOVER: 'do' sets DF and fails a datagram larger than the path MTU
 * with EMSGSIZE; 'dont' clears DF (routers may fragment); 'want' is the kernel's default (DF, local
 * fragmentation above the known path MTU); 'probe' sets DF and ignores the learned path MTU.
 */
export type PmtuDiscovery = 'dont' | 'want' | 'do' | 'probe';

export interface BatchUdpSocketOptions {
  readonly family: 4 | 6;
  /** Local address to bind: '0.0.0.0' / '::' for all, or one of the node's addresses. */
  readonly address: string;
  /** Local port; 0 for an ephemeral one (read it back from `socket.port`). */
  readonly port: number;
  /**
   * Family 6 only: IPV6_V6ONLY = 0, so a socket bound to '::' also receives (and sends) IPv4, whose
   * addresses then appear IPv4-mapped. Default false: the socket is IPv6 only, whatever the
   * net.ipv6.bindv6only sysctl says.
   */
  readonly dualStack?: boolean;
  /** SO_RCVBUF in bytes (the kernel doubles it); as root SO_RCVBUFFORCE, past net.core.rmem_max. */
  readonly receiveBuffer?: number;
  /** SO_SNDBUF in bytes (the kernel doubles it); as root SO_SNDBUFFORCE, past net.core.wmem_max. */
  readonly sendBuffer?: number;
  /**
   * SO_REUSEADDR. Default false, because for UDP on Linux it lets a second socket that also sets it
   * bind the same address and port, and the last one bound then takes the unicast datagrams: a
   * second daemon would silently steal the traffic instead of failing with EADDRINUSE.
   */
  readonly reuseAddress?: boolean;
  /**
   * Send a zero UDP checksum: UDP_NO_CHECK6_TX for IPv6 (RFC 6935/6936 allow it for tunnels),
   * SO_NO_CHECK for IPv4. Default false. Zero-checksum IPv6 is always accepted on receipt
   * (UDP_NO_CHECK6_RX), whatever this says.
   */
  readonly zeroChecksumTx?: boolean;
  /**
   * IP_TRANSPARENT / IPV6_TRANSPARENT: `address` need not be one of this host's, and datagrams leave
   * with it as their source (the kernel still writes the headers and checksums). Needs
   * CAP_NET_ADMIN. Replies reach this socket only if routed to this host. Default false.
   */
  readonly transparent?: boolean;
  /** IP_TOS / IPV6_TCLASS of every datagram sent, 0–255 (DSCP << 2 | ECN). */
  readonly tos?: number;
  readonly pmtuDiscovery?: PmtuDiscovery;
}

/** What one sendBatch did. */
export interface SendBatchResult {
  /**
   * Packets [0, consumed) were dealt with: each sent or failed. consumed < count only when the
   * socket's send buffer is full (EAGAIN): resume from `consumed` once `waitWritable` calls back.
   */
  readonly consumed: number;
  readonly sent: number;
  /** Packets that failed on their own (EMSGSIZE, ENETUNREACH, EACCES, ...) and were skipped. */
  readonly errors: number;
  /** errno (positive, Linux numbering; name it with `errnoName`) of the first failure; 0 if none. */
  readonly firstErrno: number;
}

export interface BatchUdpStats {
  readonly received: number;
  readonly receivedBytes: number;
  /** recvmmsg calls that returned datagrams. */
  readonly recvCalls: number;
  /** Datagrams longer than their buffer's room: cut to it (the kernel discards the rest). */
  readonly truncated: number;
  /** The kernel's count of datagrams dropped for this socket (full receive buffer; SO_MEMINFO). */
  readonly kernelDrops: number;
  readonly sent: number;
  readonly sentBytes: number;
  readonly sendCalls: number;
  readonly sendErrors: number;
  /** errno of the latest per-packet send failure, 0 if none yet. */
  readonly lastSendErrno: number;
  /** sendBatch calls that stopped at a full send buffer (EAGAIN). */
  readonly wouldBlock: number;
  /** The kernel's SO_RCVBUF / SO_SNDBUF (twice what was asked); the last values once closed. */
  readonly receiveBuffer: number;
  readonly sendBuffer: number;
}

export interface BatchUdpSocket {
  readonly family: 4 | 6;
  /** The local address as bound (canonical text). */
  readonly address: string;
  /** The local port as bound: the ephemeral port when 0 was asked. */
  readonly port: number;
  readonly closed: boolean;
  /**
   * Receives up to `count` (default packets.length) waiting datagrams without blocking. Datagram i
   * lands in packets[i] at `offset` (the headroom, left untouched); lengths[i] is its length, slot i
   * of addresses/ports its source. Returns how many arrived, 0 when none was waiting. A datagram
   * longer than packets[i].length - offset is cut to fit and counted in stats().truncated.
   * Throws (having received nothing) on a bad argument.
   */
  recvBatch(packets: readonly Uint8Array[], offset: number, lengths: Uint32Array, addresses: Uint8Array, ports: Uint16Array, count?: number): number;
  /**
   * Sends packets[i].subarray(offsets[i], offsets[i] + lengths[i]) to slot i of addresses/ports, for
   * i in [0, count) (default packets.length), without blocking. A packet that fails on its own is
   * counted and skipped, never thrown; errnos[i], when given, is 0 for a sent packet and the errno
   * of a failed one (for i < consumed). Throws (having sent nothing) on a bad argument.
   */
  sendBatch(
    packets: readonly Uint8Array[],
    offsets: Uint32Array,
    lengths: Uint32Array,
    addresses: Uint8Array,
    ports: Uint16Array,
    count?: number,
    errnos?: Int32Array,
  ): SendBatchResult;
  /**
   * Calls `onReadable` whenever datagrams are waiting, until stopReading or close; replaces an
   * earlier callback. Level-triggered: drain with recvBatch, or it is called again on the next turn
   * of the event loop. A reading socket keeps the process alive. An exception the callback throws
   * becomes the process's 'uncaughtException'.
   */
  startReading(onReadable: () => void): void;
  /** Stops calling the readable callback; idempotent, also after close. */
  stopReading(): void;
  /** Calls `onWritable` once, when the send buffer has room again (after a short sendBatch). */
  waitWritable(onWritable: () => void): void;
  /** Closes the socket: stops the watchers, then the descriptor. Idempotent. */
  close(): void;
  stats(): BatchUdpStats;
}

/** Buffers for one batch: `slots` packets of `slotBytes` each, views into one ArrayBuffer. */
export interface UdpBatch {
  readonly packets: readonly Uint8Array[];
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  readonly addresses: Uint8Array;
  readonly ports: Uint16Array;
  readonly errnos: Int32Array;
}

export function allocateUdpBatch(slots: number, slotBytes: number): UdpBatch {
  if (!Number.isSafeInteger(slots) || slots < 0) throw new RangeError(`allocateUdpBatch: slots must be a non-negative integer, got ${slots}`);
  if (!Number.isSafeInteger(slotBytes) || slotBytes < 0) throw new RangeError(`allocateUdpBatch: slotBytes must be a non-negative integer, got ${slotBytes}`);
  const memory = new ArrayBuffer(slots * slotBytes);
  const packets: Uint8Array[] = [];
  for (let i = 0; i < slots; i++) packets.push(new Uint8Array(memory, i * slotBytes, slotBytes));
  return {
    packets,
    offsets: new Uint32Array(slots),
    lengths: new Uint32Array(slots),
    addresses: new Uint8Array(slots * ADDRESS_SLOT_BYTES),
    ports: new Uint16Array(slots),
    errnos: new Int32Array(slots),
  };
}

// ---- address slots (off the hot path) ----

function parseIpv4(text: string): number[] | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').map(Number);
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!isIPv6(text) || text.includes('%')) return undefined;
  const out = new Uint8Array(16);
  let head = text;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail);
    if (v4 === undefined) return undefined;
    out.set(v4, 12);
    // Two placeholder groups stand for the IPv4 tail while the groups are counted.
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string | undefined): string[] => (part === undefined || part === '' ? [] : part.split(':'));
  const left = groupsOf(halves[0]);
  const right = groupsOf(halves[1]);
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 1 ? 0 : missing).fill('0'), ...right];
  for (let i = 0; i < 8; i++) {
    const group = groups[i] ?? '';
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
    // The IPv4 tail was written already; its placeholders must not overwrite it.
    if (tail.includes('.') && i >= 6) continue;
    const value = parseInt(group, 16);
    out[2 * i] = value >> 8;
    out[2 * i + 1] = value & 0xff;
  }
  return out;
}

function checkSlot(addresses: Uint8Array, slot: number, what: string): void {
  if (!Number.isSafeInteger(slot) || slot < 0 || (slot + 1) * ADDRESS_SLOT_BYTES > addresses.length) {
    throw new RangeError(`${what}: slot ${slot} is outside addresses (${addresses.length} bytes, ${Math.floor(addresses.length / ADDRESS_SLOT_BYTES)} slots)`);
  }
}

/** Writes `address` (IPv4 or IPv6 text; IPv4 as IPv4-mapped) into slot `slot` of `addresses`. */
export function writeAddressSlot(addresses: Uint8Array, slot: number, address: string): void {
  checkSlot(addresses, slot, 'writeAddressSlot');
  const base = slot * ADDRESS_SLOT_BYTES;
  const v4 = parseIpv4(address);
  if (v4 !== undefined) {
    addresses.fill(0, base, base + 10);
    addresses[base + 10] = 0xff;
    addresses[base + 11] = 0xff;
    addresses.set(v4, base + 12);
    return;
  }
  const v6 = parseIpv6(address);
  if (v6 === undefined) {
    const reason = address.includes('%') ? ' (scope ids are not supported)' : '';
    throw new TypeError(`writeAddressSlot: not an IPv4 or IPv6 address: '${address}'${reason}`);
  }
  addresses.set(v6, base);
}

/** Whether slot `slot` holds an IPv4(-mapped) address. */
export function addressSlotFamily(addresses: Uint8Array, slot: number): 4 | 6 {
  checkSlot(addresses, slot, 'addressSlotFamily');
  const base = slot * ADDRESS_SLOT_BYTES;
  for (let i = 0; i < 10; i++) if (addresses[base + i] !== 0) return 6;
  return addresses[base + 10] === 0xff && addresses[base + 11] === 0xff ? 4 : 6;
}

/** The text of slot `slot`: dotted IPv4 for an IPv4-mapped address, RFC 5952 IPv6 otherwise. */
export function readAddressSlot(addresses: Uint8Array, slot: number): string {
  checkSlot(addresses, slot, 'readAddressSlot');
  const base = slot * ADDRESS_SLOT_BYTES;
  const byte = (i: number): number => addresses[base + i] ?? 0;
  if (addressSlotFamily(addresses, slot) === 4) return `${byte(12)}.${byte(13)}.${byte(14)}.${byte(15)}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((byte(2 * i) << 8) | byte(2 * i + 1));
  // RFC 5952 §4.2: '::' replaces the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

const ERRNO_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

/** The symbolic name of a positive errno ('EMSGSIZE'), or 'errno N' when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

// ---- the addon ----

interface NativeUdpSocket {
  readonly port: number;
  recvBatch(packets: readonly Uint8Array[], offset: number, lengths: Uint32Array, addresses: Uint8Array, ports: Uint16Array, count: number): number;
  sendBatch(
    packets: readonly Uint8Array[],
    offsets: Uint32Array,
    lengths: Uint32Array,
    addresses: Uint8Array,
    ports: Uint16Array,
    count: number,
    result: Int32Array,
    errnos: Int32Array | undefined,
  ): number;
  startReading(onReadable: () => void): void;
  stopReading(): void;
  waitWritable(onWritable: () => void): void;
  stats(): BatchUdpStats;
  close(): void;
}

type NativeUdpSocketConstructor = new (
  family: number,
  address: Uint8Array,
  port: number,
  flags: number,
  receiveBuffer: number,
  sendBuffer: number,
  tos: number,
  pmtud: number,
) => NativeUdpSocket;

// udp.cc's constructor flags.
const FLAG_DUAL_STACK = 1;
const FLAG_ZERO_CHECKSUM_TX = 2;
const FLAG_REUSE_ADDRESS = 4;
const FLAG_TRANSPARENT = 8;
const PMTUD_VALUES: Readonly<Record<PmtuDiscovery, number>> = { dont: 0, want: 1, do: 2, probe: 3 };

class NativeBatchUdpSocket implements BatchUdpSocket {
  readonly #native: NativeUdpSocket;
  readonly #result = new Int32Array(3);
  #closed = false;

  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;

  constructor(native: NativeUdpSocket, family: 4 | 6, address: string) {
    this.#native = native;
    this.family = family;
    this.address = address;
    this.port = native.port;
  }

  get closed(): boolean {
    return this.#closed;
  }

  recvBatch(packets: readonly Uint8Array[], offset: number, lengths: Uint32Array, addresses: Uint8Array, ports: Uint16Array, count = packets.length): number {
    return this.#native.recvBatch(packets, offset, lengths, addresses, ports, count);
  }

  sendBatch(
    packets: readonly Uint8Array[],
    offsets: Uint32Array,
    lengths: Uint32Array,
    addresses: Uint8Array,
    ports: Uint16Array,
    count = packets.length,
    errnos?: Int32Array,
  ): SendBatchResult {
    const result = this.#result;
    const consumed = this.#native.sendBatch(packets, offsets, lengths, addresses, ports, count, result, errnos);
    return { consumed, sent: result[0] ?? 0, errors: result[1] ?? 0, firstErrno: result[2] ?? 0 };
  }

  startReading(onReadable: () => void): void {
    this.#native.startReading(onReadable);
  }

  stopReading(): void {
    this.#native.stopReading();
  }

  waitWritable(onWritable: () => void): void {
    this.#native.waitWritable(onWritable);
  }

  close(): void {
    this.#native.close();
    this.#closed = true;
  }

  stats(): BatchUdpStats {
    return this.#native.stats();
  }
}

const OPEN_HINTS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'another socket is bound to this address and port',
  EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE',
  EADDRNOTAVAIL: 'no interface in this network namespace has that address',
  EAFNOSUPPORT: 'the kernel has no support for this address family',
  EPERM: 'a transparent socket needs CAP_NET_ADMIN',
};

function describeOpenError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const system = error as Error & { code?: unknown };
  const hint = typeof system.code === 'string' ? OPEN_HINTS[system.code] : undefined;
  if (hint === undefined) return error;
  const described = new Error(`${error.message} (${hint})`, { cause: error });
  for (const key of ['code', 'errno', 'syscall', 'address', 'port'] as const) {
    if (key in error) Object.defineProperty(described, key, { value: (error as unknown as Record<string, unknown>)[key], enumerable: true });
  }
  return described;
}

function checkInteger(name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) throw new RangeError(`openBatchUdpSocket: ${name} must be an integer in [${min}, ${max}], got ${value}`);
}

/**
 * Opens, configures and binds a non-blocking batched UDP socket. Throws TypeError/RangeError for
 * bad options; a Node-style system error (code, errno, syscall, address, port) when the kernel
 * refuses, e.g. "bind EADDRINUSE 127.0.0.1:4341: address already in use (another socket is bound
 * to this address and port)"; and Error when the addon is not built.
 */
export function openBatchUdpSocket(options: BatchUdpSocketOptions): BatchUdpSocket {
  const { family, address, port } = options;
  if (family !== 4 && family !== 6) throw new RangeError(`openBatchUdpSocket: family must be 4 or 6, got ${String(family)}`);
  if (family === 4 ? !isIPv4(address) : !isIPv6(address) || address.includes('%')) {
    throw new TypeError(`openBatchUdpSocket: address must be ${family === 4 ? 'IPv4' : 'IPv6 (without a scope id)'} text for family ${family}, got '${address}'`);
  }
  checkInteger('port', port, 0, 65535);
  checkInteger('receiveBuffer', options.receiveBuffer, 1, 2 ** 30);
  checkInteger('sendBuffer', options.sendBuffer, 1, 2 ** 30);
  checkInteger('tos', options.tos, 0, 255);
  if (options.dualStack === true && family !== 6) throw new RangeError('openBatchUdpSocket: dualStack needs family 6');
  const slot = new Uint8Array(ADDRESS_SLOT_BYTES);
  writeAddressSlot(slot, 0, address);
  const flags =
    (options.dualStack === true ? FLAG_DUAL_STACK : 0) |
    (options.zeroChecksumTx === true ? FLAG_ZERO_CHECKSUM_TX : 0) |
    (options.reuseAddress === true ? FLAG_REUSE_ADDRESS : 0) |
    (options.transparent === true ? FLAG_TRANSPARENT : 0);
  const pmtud = options.pmtuDiscovery === undefined ? -1 : PMTUD_VALUES[options.pmtuDiscovery];
  if (pmtud === undefined) throw new RangeError(`openBatchUdpSocket: pmtuDiscovery must be one of ${Object.keys(PMTUD_VALUES).join(', ')}`);

  const UdpSocket = nativeClass<NativeUdpSocketConstructor>('UdpSocket');
  let native: NativeUdpSocket;
  try {
    native = new UdpSocket(family, slot, port, flags, options.receiveBuffer ?? 0, options.sendBuffer ?? 0, options.tos ?? -1, pmtud);
  } catch (error) {
    throw describeOpenError(error);
  }
  const text = readAddressSlot(slot, 0);
  // An IPv6 socket bound to an IPv4-mapped address keeps the IPv6 spelling.
  return new NativeBatchUdpSocket(native, family, family === 6 && addressSlotFamily(slot, 0) === 4 ? `::ffff:${text}` : text);
}
