// The addon's batched UDP socket (src/tun/udp-socket.ts) on real sockets: batches of 1–500
// datagrams of 0–9000 bytes to and from dgram sockets and between two batched sockets on 127.0.0.1
// and ::1, sources and headroom checked; dual-stack; zero-checksum UDPv6 (crafted by a Python raw
// socket, and sent by the socket itself) accepted where dgram drops it; TOS/traffic class seen by a
// receiver; bind errors; per-packet send failures in a batch; a full send buffer and waitWritable;
// close. Scenarios that need their own routes or qdiscs run in a child in a fresh network namespace
// (`unshare --net`), which the kernel removes when the child exits.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { constants as osConstants } from 'node:os';
import { after, test } from 'node:test';
import {
  ADDRESS_SLOT_BYTES,
  addressSlotFamily,
  allocateUdpBatch,
  type BatchUdpSocket,
  type BatchUdpSocketOptions,
  errnoName,
  openBatchUdpSocket,
  readAddressSlot,
  type UdpBatch,
  writeAddressSlot,
} from '../src/tun/udp-socket.js';
import { prng } from './support/prng.js';

const MODULE_URL = new URL('../src/tun/udp-socket.js', import.meta.url).href;
const ERRNO = osConstants.errno;
const HEADROOM = 48;
const HEADROOM_FILL = 0xa5;
const MAX_DATAGRAM = 9000;
const BATCH_SIZES = [1, 2, 63, 64, 65, 500];
const RECEIVE_BUFFER = 64 << 20;
const TIMEOUT_MS = 5000;

interface Family {
  readonly family: 4 | 6;
  readonly loopback: string;
  readonly type: 'udp4' | 'udp6';
}

const FAMILIES: readonly Family[] = [
  { family: 4, loopback: '127.0.0.1', type: 'udp4' },
  { family: 6, loopback: '::1', type: 'udp6' },
];

const sockets: BatchUdpSocket[] = [];
const dgramSockets: dgram.Socket[] = [];

function openSocket(options: BatchUdpSocketOptions): BatchUdpSocket {
  const socket = openBatchUdpSocket(options);
  sockets.push(socket);
  return socket;
}

async function openDgram(type: 'udp4' | 'udp6', address: string, port = 0): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type });
  dgramSockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}

after(() => {
  for (const socket of sockets) socket.close();
  for (const socket of dgramSockets) {
    try {
      socket.close();
    } catch {
      // already closed
    }
  }
});

// ---- payloads ----

function payloadByte(seq: number, length: number, j: number): number {
  return (seq * 131 + length * 7 + j * 13 + (j >>> 8)) & 0xff;
}

function payload(seq: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let j = 0; j < length; j++) out[j] = payloadByte(seq, length, j);
  return out;
}

/** `count` sizes in [0, MAX_DATAGRAM], the extremes included when there is room for them. */
function sizesFor(count: number, seed: number): number[] {
  const next = prng(seed);
  const sizes = Array.from({ length: count }, () => Math.floor(next() * (MAX_DATAGRAM + 1)));
  if (count >= 2) {
    sizes[0] = 0;
    sizes[1] = MAX_DATAGRAM;
  }
  return sizes;
}

interface Datagram {
  readonly address: string;
  readonly port: number;
  readonly data: Buffer;
}

function assertDatagrams(received: readonly Datagram[], sizes: readonly number[], address: string, port: number, what: string): void {
  assert.equal(received.length, sizes.length, `${what}: count`);
  for (let i = 0; i < sizes.length; i++) {
    const datagram = received[i];
    assert.ok(datagram !== undefined);
    assert.equal(datagram.address, address, `${what}: source address of #${i}`);
    assert.equal(datagram.port, port, `${what}: source port of #${i}`);
    assert.equal(datagram.data.length, sizes[i], `${what}: length of #${i}`);
    assert.ok(datagram.data.equals(payload(i, sizes[i] ?? 0)), `${what}: bytes of #${i}`);
  }
}

// ---- batched receive and send ----

/**
 * Collects `count` datagrams from `socket` through startReading and recvBatch (64 slots, HEADROOM
 * bytes of headroom filled with a marker that must survive), then stops reading.
 */
function receiveBatched(socket: BatchUdpSocket, count: number, slotBytes = HEADROOM + MAX_DATAGRAM): Promise<Datagram[]> {
  const batch = allocateUdpBatch(64, slotBytes);
  const received: Datagram[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.stopReading();
      reject(new Error(`received ${received.length} of ${count} datagrams in ${TIMEOUT_MS} ms (stats ${JSON.stringify(socket.stats())})`));
    }, TIMEOUT_MS);
    const finish = (error?: Error): void => {
      clearTimeout(timer);
      socket.stopReading();
      if (error === undefined) resolve(received);
      else reject(error);
    };
    socket.startReading(() => {
      for (;;) {
        for (const packet of batch.packets) packet.fill(HEADROOM_FILL, 0, HEADROOM);
        const n = socket.recvBatch(batch.packets, HEADROOM, batch.lengths, batch.addresses, batch.ports);
        for (let i = 0; i < n; i++) {
          const packet = batch.packets[i] ?? new Uint8Array(0);
          if (!packet.subarray(0, HEADROOM).every((b) => b === HEADROOM_FILL)) {
            finish(new Error(`headroom of slot ${i} was written`));
            return;
          }
          const length = batch.lengths[i] ?? 0;
          received.push({
            address: readAddressSlot(batch.addresses, i),
            port: batch.ports[i] ?? -1,
            data: Buffer.from(packet.subarray(HEADROOM, HEADROOM + length)),
          });
        }
        if (received.length >= count) {
          finish();
          return;
        }
        if (n < batch.packets.length) return;
      }
    });
  });
}

/**
 * One sendBatch of datagram i = payload(i, sizes[i]) to address:port. Each packet sits at its own
 * offset (i % 40) in a buffer whose other bytes are 0xee, so a wrong slice shows at the receiver.
 */
function sendBatched(socket: BatchUdpSocket, sizes: readonly number[], address: string, port: number): UdpBatch {
  const batch = allocateUdpBatch(sizes.length, 40 + MAX_DATAGRAM + 40);
  for (let i = 0; i < sizes.length; i++) {
    const packet = batch.packets[i] ?? new Uint8Array(0);
    const offset = i % 40;
    const size = sizes[i] ?? 0;
    packet.fill(0xee);
    packet.set(payload(i, size), offset);
    batch.offsets[i] = offset;
    batch.lengths[i] = size;
    writeAddressSlot(batch.addresses, i, address);
    batch.ports[i] = port;
  }
  batch.errnos.fill(-1);
  const result = socket.sendBatch(batch.packets, batch.offsets, batch.lengths, batch.addresses, batch.ports, sizes.length, batch.errnos);
  assert.deepEqual(result, { consumed: sizes.length, sent: sizes.length, errors: 0, firstErrno: 0 });
  assert.ok(batch.errnos.every((e) => e === 0));
  return batch;
}

function receiveDgram(socket: dgram.Socket, count: number): Promise<Datagram[]> {
  const received: Datagram[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error(`dgram received ${received.length} of ${count} datagrams in ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    function onMessage(data: Buffer, rinfo: dgram.RemoteInfo): void {
      received.push({ address: rinfo.address, port: rinfo.port, data });
      if (received.length >= count) {
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(received);
      }
    }
    socket.on('message', onMessage);
  });
}

async function sendDgram(socket: dgram.Socket, sizes: readonly number[], address: string, port: number): Promise<void> {
  await Promise.all(
    sizes.map(
      (size, i) => new Promise<void>((resolve, reject) => socket.send(payload(i, size), port, address, (error) => (error ? reject(error) : resolve()))),
    ),
  );
}

// ---- child processes ----

interface ChildResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runChild(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// Prepended to every child script: the module under test as `m`, and helpers.
const CHILD_PRELUDE = `
const m = await import(process.env.UDP_MODULE);
const readable = (socket, ms = 2000) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => { socket.stopReading(); reject(new Error('nothing to read')); }, ms);
  socket.startReading(() => { clearTimeout(timer); socket.stopReading(); resolve(); });
});
`;

/**
 * Runs `script` (an ES module body; CHILD_PRELUDE first) with node in a fresh network namespace
 * after the `setup` shell commands, and returns what it printed as JSON.
 */
async function inFreshNetns<T>(setup: readonly string[], script: string): Promise<T> {
  const shell = ['set -e', 'ip link set lo up', ...setup, 'exec "$0" --input-type=module -e "$1"'].join('\n');
  const result = await runChild('unshare', ['--net', '--', 'sh', '-c', shell, process.execPath, CHILD_PRELUDE + script], {
    ...process.env,
    UDP_MODULE: MODULE_URL,
  });
  assert.equal(result.code, 0, `child in a fresh network namespace failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

// ---- address slots ----

test('address slots: IPv4 as IPv4-mapped, IPv6 in RFC 5952 text, bad text refused', () => {
  const slots = new Uint8Array(4 * ADDRESS_SLOT_BYTES);
  writeAddressSlot(slots, 0, '192.0.2.1');
  assert.deepEqual([...slots.subarray(0, 16)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
  assert.equal(addressSlotFamily(slots, 0), 4);
  assert.equal(readAddressSlot(slots, 0), '192.0.2.1');
  const cases: [string, string][] = [
    ['::1', '::1'],
    ['::', '::'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fd00:0:0:1::', 'fd00:0:0:1::'],
    ['fd00::0:0:1', 'fd00::1'],
    ['2001:db8::198.18.0.1', '2001:db8::c612:1'],
    ['::ffff:198.18.0.1', '198.18.0.1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
  ];
  for (const [text, canonical] of cases) {
    writeAddressSlot(slots, 3, text);
    assert.equal(readAddressSlot(slots, 3), canonical, text);
  }
  writeAddressSlot(slots, 1, '2001:db8::1');
  assert.equal(addressSlotFamily(slots, 1), 6);
  assert.deepEqual([...slots.subarray(16, 32)], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  for (const bad of ['1.2.3', '192.0.2.256', 'fe80::1%eth0', '1::2::3', 'x', '']) {
    assert.throws(() => writeAddressSlot(slots, 2, bad), TypeError, bad);
  }
  assert.throws(() => writeAddressSlot(slots, 4, '::1'), RangeError);
  assert.equal(errnoName(ERRNO.EMSGSIZE), 'EMSGSIZE');
  assert.equal(errnoName(ERRNO.ENETUNREACH), 'ENETUNREACH');
});

// ---- moving batches ----

for (const { family, loopback, type } of FAMILIES) {
  test(`IPv${family}: batches of 1–500 datagrams of 0–9000 bytes from dgram arrive intact, with their source and the headroom untouched`, async () => {
    const socket = openSocket({ family, address: loopback, port: 0, receiveBuffer: RECEIVE_BUFFER });
    const sender = await openDgram(type, loopback);
    for (const [index, count] of BATCH_SIZES.entries()) {
      const sizes = sizesFor(count, 100 * family + index);
      const arrival = receiveBatched(socket, count);
      await sendDgram(sender, sizes, loopback, socket.port);
      assertDatagrams(await arrival, sizes, loopback, sender.address().port, `batch of ${count}`);
    }
    assert.equal(socket.stats().kernelDrops, 0);
    assert.equal(socket.stats().truncated, 0);
  });

  test(`IPv${family}: one sendBatch of 1–500 datagrams reaches a dgram socket intact, from the socket's port`, async () => {
    const socket = openSocket({ family, address: loopback, port: 0 });
    const receiver = await openDgram(type, loopback);
    receiver.setRecvBufferSize(RECEIVE_BUFFER);
    for (const [index, count] of BATCH_SIZES.entries()) {
      const sizes = sizesFor(count, 200 * family + index);
      const arrival = receiveDgram(receiver, count);
      sendBatched(socket, sizes, loopback, receiver.address().port);
      assertDatagrams(await arrival, sizes, loopback, socket.port, `batch of ${count}`);
    }
  });

  test(`IPv${family}: batches of 1–500 datagrams between two batched sockets`, async () => {
    const sender = openSocket({ family, address: loopback, port: 0 });
    const receiver = openSocket({ family, address: loopback, port: 0, receiveBuffer: RECEIVE_BUFFER });
    const before = sender.stats();
    let total = 0;
    let bytes = 0;
    for (const [index, count] of BATCH_SIZES.entries()) {
      const sizes = sizesFor(count, 300 * family + index);
      const arrival = receiveBatched(receiver, count);
      sendBatched(sender, sizes, loopback, receiver.port);
      assertDatagrams(await arrival, sizes, loopback, sender.port, `batch of ${count}`);
      total += count;
      bytes += sizes.reduce((a, b) => a + b, 0);
    }
    const sent = sender.stats();
    assert.equal(sent.sent - before.sent, total);
    assert.equal(sent.sentBytes - before.sentBytes, bytes);
    assert.equal(sent.sendErrors, 0);
    const received = receiver.stats();
    assert.equal(received.received, total);
    assert.equal(received.receivedBytes, bytes);
    assert.ok(received.recvCalls < total, `recvmmsg calls (${received.recvCalls}) < datagrams (${total})`);
    assert.ok(received.receiveBuffer >= RECEIVE_BUFFER, `SO_RCVBUFFORCE as root: ${received.receiveBuffer}`);
  });
}

test('recvBatch: count bounds a batch; a datagram longer than its room is cut and counted', async () => {
  const sender = openSocket({ family: 4, address: '127.0.0.1', port: 0 });
  const receiver = openSocket({ family: 4, address: '127.0.0.1', port: 0 });
  sendBatched(sender, [10, 20, 30], '127.0.0.1', receiver.port);
  const batch = allocateUdpBatch(4, 8 + 25);
  const got: number[] = [];
  await new Promise<void>((resolve) => {
    receiver.startReading(() => {
      const n = receiver.recvBatch(batch.packets, 8, batch.lengths, batch.addresses, batch.ports, 2);
      assert.ok(n <= 2);
      got.push(...batch.lengths.subarray(0, n));
      if (got.length === 3) {
        receiver.stopReading();
        resolve();
      }
    });
  });
  assert.deepEqual(got, [10, 20, 25]);
  assert.equal(receiver.stats().truncated, 1);
  assert.ok(Buffer.from(batch.packets[0]?.subarray(8, 33) ?? []).equals(payload(2, 30).subarray(0, 25)));
});

// ---- dual stack ----

test('dual-stack: an IPv6 socket on :: receives IPv4 (source IPv4-mapped) and answers it; an IPv6-only one cannot', async () => {
  const socket = openSocket({ family: 6, address: '::', port: 0, dualStack: true, receiveBuffer: RECEIVE_BUFFER });
  const peer4 = await openDgram('udp4', '127.0.0.1');
  const peer6 = await openDgram('udp6', '::1');
  const arrival = receiveBatched(socket, 2);
  await sendDgram(peer4, [100], '127.0.0.1', socket.port);
  await new Promise((resolve) => setTimeout(resolve, 20));
  await sendDgram(peer6, [0, 200], '::1', socket.port);
  const [from4, from6] = await arrival;
  assert.deepEqual(from4 && { address: from4.address, port: from4.port, length: from4.data.length }, { address: '127.0.0.1', port: peer4.address().port, length: 100 });
  assert.deepEqual(from6 && { address: from6.address, port: from6.port }, { address: '::1', port: peer6.address().port });

  const reply = receiveDgram(peer4, 1);
  sendBatched(socket, [64], '127.0.0.1', peer4.address().port);
  const [answer] = await reply;
  assert.deepEqual(answer && { address: answer.address, port: answer.port }, { address: '127.0.0.1', port: socket.port });

  // IPV6_V6ONLY=1 explicitly: sending to an IPv4-mapped address is a per-packet error.
  const only6 = openSocket({ family: 6, address: '::1', port: 0 });
  const batch = allocateUdpBatch(1, 16);
  writeAddressSlot(batch.addresses, 0, '127.0.0.1');
  batch.ports[0] = peer4.address().port;
  batch.lengths[0] = 16;
  const result = only6.sendBatch(batch.packets, batch.offsets, batch.lengths, batch.addresses, batch.ports);
  assert.deepEqual(result, { consumed: 1, sent: 0, errors: 1, firstErrno: ERRNO.ENETUNREACH });
});

// ---- zero UDP checksums over IPv6 ----

// Sends, from ::1 port 40000 to ::1 at each port given, a UDP datagram 'zero-checksum' whose
// checksum field is 0, then 'valid-checksum' with the RFC 8200 §8.1 checksum. An IPv6 raw socket of
// protocol UDP leaves the checksum to the caller (IPV6_CHECKSUM is off by default).
const CRAFT_ZERO_CHECKSUM = `
import socket, struct, sys
LOOPBACK = socket.inet_pton(socket.AF_INET6, '::1')
def checksum(data):
    if len(data) % 2:
        data += b'\\0'
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return (~total & 0xffff) or 0xffff
def udp(port, body, with_checksum):
    length = 8 + len(body)
    header = struct.pack('!HHHH', 40000, port, length, 0)
    if not with_checksum:
        return header + body
    pseudo = LOOPBACK + LOOPBACK + struct.pack('!I3xB', length, socket.IPPROTO_UDP)
    return struct.pack('!HHHH', 40000, port, length, checksum(pseudo + header + body)) + body
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_UDP)
for port in map(int, sys.argv[1:]):
    raw.sendto(udp(port, b'zero-checksum', False), ('::1', 0))
    raw.sendto(udp(port, b'valid-checksum', True), ('::1', 0))
`;

test('zero-checksum UDP/IPv6 crafted by a raw socket: the batched socket takes it, a dgram socket drops it', async () => {
  const socket = openSocket({ family: 6, address: '::1', port: 0 });
  const receiver = await openDgram('udp6', '::1');
  const viaDgram: string[] = [];
  receiver.on('message', (data) => viaDgram.push(data.toString()));
  const batched = receiveBatched(socket, 2);
  const valid = receiveDgram(receiver, 1);
  const python = await runChild('python3', ['-c', CRAFT_ZERO_CHECKSUM, String(socket.port), String(receiver.address().port)]);
  assert.equal(python.code, 0, python.stderr);
  const got = await batched;
  assert.deepEqual(
    got.map((d) => [d.address, d.port, d.data.toString()]),
    [
      ['::1', 40000, 'zero-checksum'],
      ['::1', 40000, 'valid-checksum'],
    ],
  );
  // Loopback keeps the order: once the second datagram is in, the first was dealt with (dropped).
  await valid;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(viaDgram, ['valid-checksum']);
});

test('zeroChecksumTx: what the socket sends over IPv6 is dropped by dgram and taken by a batched socket', async () => {
  const zeroSender = openSocket({ family: 6, address: '::1', port: 0, zeroChecksumTx: true });
  const plainSender = openSocket({ family: 6, address: '::1', port: 0 });
  const receiver = await openDgram('udp6', '::1');
  const batchedReceiver = openSocket({ family: 6, address: '::1', port: 0 });
  const messages: string[] = [];
  receiver.on('message', (data) => messages.push(`${data.length}`));
  const viaDgram = receiveDgram(receiver, 1);
  sendBatched(zeroSender, [111], '::1', receiver.address().port);
  sendBatched(plainSender, [222], '::1', receiver.address().port);
  await viaDgram;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(messages, ['222']);
  const arrival = receiveBatched(batchedReceiver, 1);
  sendBatched(zeroSender, [333], '::1', batchedReceiver.port);
  assertDatagrams(await arrival, [333], '::1', zeroSender.port, 'zero checksum');
});

// ---- TOS / traffic class ----

// Binds a UDP socket at argv[2] (family argv[1]) asking for the TOS / traffic class of what
// arrives, prints its port, then prints the value of the first datagram.
const TOS_RECEIVER = `
import socket, sys
v6 = sys.argv[1] == '6'
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
else:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
s.bind((sys.argv[2], 0))
print(s.getsockname()[1], flush=True)
s.settimeout(5)
data, ancillary, flags, source = s.recvmsg(65535, 64)
print(' '.join(str(level) + ':' + str(kind) + ':' + str(value[0]) for level, kind, value in ancillary), flush=True)
`;

for (const { family, loopback } of FAMILIES) {
  test(`IPv${family}: tos sets ${family === 4 ? 'IP_TOS' : 'IPV6_TCLASS'} on every datagram`, async () => {
    const socket = openSocket({ family, address: loopback, port: 0, tos: 0xb8, pmtuDiscovery: 'do' });
    const child = spawn('python3', ['-c', TOS_RECEIVER, String(family), loopback], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let errors = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
        const line = output.split('\n');
        if (line.length > 1) resolve(Number(line[0]));
      });
      child.on('close', () => reject(new Error(`python receiver exited: ${errors}`)));
    });
    sendBatched(socket, [10], loopback, port);
    assert.equal(await exited, 0, errors);
    const [level, kind, value] = (output.split('\n')[1] ?? '').split(' ')[0]?.split(':').map(Number) ?? [];
    assert.equal(level, family === 4 ? 0 /* IPPROTO_IP */ : 41 /* IPPROTO_IPV6 */);
    assert.equal(kind, family === 4 ? 1 /* IP_TOS */ : 67 /* IPV6_TCLASS */);
    assert.equal(value, 0xb8);
  });
}

// ---- errors ----

test('bind errors name the address and port: EADDRINUSE, EADDRNOTAVAIL', async () => {
  const holder4 = await openDgram('udp4', '127.0.0.1');
  const port4 = holder4.address().port;
  assert.throws(() => openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: port4 }), {
    code: 'EADDRINUSE',
    syscall: 'bind',
    errno: -ERRNO.EADDRINUSE,
    address: '127.0.0.1',
    port: port4,
    message: `bind EADDRINUSE 127.0.0.1:${port4}: address already in use (another socket is bound to this address and port)`,
  });
  const holder6 = openSocket({ family: 6, address: '::1', port: 0 });
  assert.throws(() => openBatchUdpSocket({ family: 6, address: '::1', port: holder6.port }), {
    code: 'EADDRINUSE',
    message: new RegExp(`^bind EADDRINUSE \\[::1\\]:${holder6.port}: `),
  });
  assert.throws(() => openBatchUdpSocket({ family: 4, address: '192.0.2.1', port: 4341 }), {
    code: 'EADDRNOTAVAIL',
    message: 'bind EADDRNOTAVAIL 192.0.2.1:4341: address not available (no interface in this network namespace has that address)',
  });
  assert.throws(() => openBatchUdpSocket({ family: 6, address: '2001:db8::1', port: 4341 }), {
    code: 'EADDRNOTAVAIL',
    message: /^bind EADDRNOTAVAIL \[2001:db8::1\]:4341: /,
  });
  // SO_REUSEADDR lets two UDP sockets share a port (the reason it is off by default).
  const first = openSocket({ family: 4, address: '127.0.0.1', port: 0, reuseAddress: true });
  const second = openSocket({ family: 4, address: '127.0.0.1', port: first.port, reuseAddress: true });
  assert.equal(second.port, first.port);
});

test('bind error EACCES for a port below 1024 without CAP_NET_BIND_SERVICE', async (t) => {
  // A process in a new user namespace keeps its uid (so it can read the build) but has no
  // capability in the host's network namespace.
  const probe = await runChild('unshare', ['--user', '--', 'true']);
  if (probe.code !== 0) {
    t.skip(`unshare --user is not available here: ${probe.stderr.trim()}`);
    return;
  }
  const script = `
const m = await import(process.env.UDP_MODULE);
try { m.openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 1 }); console.log('{}'); }
catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const result = await runChild('unshare', ['--user', '--', process.execPath, '--input-type=module', '-e', script], { ...process.env, UDP_MODULE: MODULE_URL });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), {
    code: 'EACCES',
    message: 'bind EACCES 127.0.0.1:1: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)',
  });
});

test('option and argument errors throw before any datagram moves', () => {
  assert.throws(() => openBatchUdpSocket({ family: 4, address: '::1', port: 0 }), TypeError);
  assert.throws(() => openBatchUdpSocket({ family: 6, address: 'fe80::1%lo', port: 0 }), /without a scope id/);
  assert.throws(() => openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 65536 }), RangeError);
  assert.throws(() => openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0, dualStack: true }), /dualStack needs family 6/);
  assert.throws(() => openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0, tos: 256 }), RangeError);

  const socket = openSocket({ family: 4, address: '127.0.0.1', port: 0 });
  const batch = allocateUdpBatch(2, 100);
  writeAddressSlot(batch.addresses, 0, '127.0.0.1');
  writeAddressSlot(batch.addresses, 1, '127.0.0.1');
  batch.ports.fill(socket.port);
  batch.lengths.set([10, 100]);
  batch.offsets.set([0, 1]);
  const send = (count = 2): unknown => socket.sendBatch(batch.packets, batch.offsets, batch.lengths, batch.addresses, batch.ports, count);
  assert.throws(send, { name: 'RangeError', message: 'sendBatch: offsets[1] + lengths[1] (1 + 100) exceeds packets[1].length (100)' });
  assert.throws(() => send(3), { code: 'ERR_OUT_OF_RANGE', message: 'sendBatch: count (3) exceeds packets.length (2)' });
  assert.throws(() => socket.sendBatch(batch.packets, batch.offsets, batch.lengths, batch.addresses.subarray(0, 20), batch.ports), RangeError);
  assert.throws(() => socket.recvBatch(batch.packets, 101, batch.lengths, batch.addresses, batch.ports), /fewer than offset/);
  assert.throws(() => socket.recvBatch(batch.packets, 0, batch.lengths, batch.addresses, new Uint16Array(1)), /exceeds ports.length/);
  assert.equal(socket.stats().sent, 0);

  // An element getter that closes the socket in the middle of a batch.
  const packets: Uint8Array[] = [new Uint8Array(100)];
  Object.defineProperty(packets, 1, {
    get: () => {
      socket.close();
      return new Uint8Array(100);
    },
  });
  assert.throws(
    () => socket.sendBatch(packets, batch.offsets, new Uint32Array(2), batch.addresses, batch.ports),
    { code: 'ERR_INVALID_STATE' },
  );
  assert.equal(socket.closed, false);
  assert.equal(socket.stats().sent, 0);
});

test('per-packet send failures are counted and skipped: EMSGSIZE, EAFNOSUPPORT, EINVAL', async () => {
  const socket = openSocket({ family: 4, address: '127.0.0.1', port: 0, receiveBuffer: RECEIVE_BUFFER });
  const batch = allocateUdpBatch(5, 70000);
  const destinations = ['127.0.0.1', '127.0.0.1', '2001:db8::1', '127.0.0.1', '127.0.0.1'];
  destinations.forEach((address, i) => writeAddressSlot(batch.addresses, i, address));
  batch.ports.set([socket.port, socket.port, 4341, 0, socket.port]);
  // 65508 bytes is one more than an IPv4 UDP datagram can carry.
  batch.lengths.set([5, 65508, 7, 8, 9]);
  const arrival = receiveBatched(socket, 2, 100);
  const result = socket.sendBatch(batch.packets, batch.offsets, batch.lengths, batch.addresses, batch.ports, 5, batch.errnos);
  assert.deepEqual(result, { consumed: 5, sent: 2, errors: 3, firstErrno: ERRNO.EMSGSIZE });
  assert.deepEqual([...batch.errnos], [0, ERRNO.EMSGSIZE, ERRNO.EAFNOSUPPORT, ERRNO.EINVAL, 0]);
  assert.deepEqual((await arrival).map((d) => d.data.length), [5, 9]);
  const stats = socket.stats();
  assert.equal(stats.sendErrors, 3);
  assert.equal(stats.lastSendErrno, ERRNO.EINVAL);
});

interface UnroutableReport {
  readonly result: unknown;
  readonly errnos: number[];
  readonly lengths: number[];
  readonly fragmentsAllowed: unknown;
  readonly fragmentsDenied: unknown;
}

test('in a namespace with loopback only: unroutable destinations, and PMTU discovery against the MTU', async () => {
  const script = `
const out = {};
for (const [family, local, remote] of [[4, '127.0.0.1', '192.0.2.1'], [6, '::1', '2001:db8::1']]) {
  const s = m.openBatchUdpSocket({ family, address: local, port: 0 });
  const b = m.allocateUdpBatch(3, 100);
  [local, remote, local].forEach((a, i) => m.writeAddressSlot(b.addresses, i, a));
  b.ports.set([s.port, 4341, s.port]);
  b.lengths.set([10, 11, 12]);
  const result = s.sendBatch(b.packets, b.offsets, b.lengths, b.addresses, b.ports, 3, b.errnos);
  const r = m.allocateUdpBatch(4, 100);
  await readable(s);
  let n = s.recvBatch(r.packets, 0, r.lengths, r.addresses, r.ports);
  if (n < 2) { await readable(s); n += s.recvBatch(r.packets.slice(n), 0, r.lengths.subarray(n), r.addresses.subarray(16 * n), r.ports.subarray(n)); }
  // 2000 bytes over a 1500-byte MTU: 'dont' fragments, 'do' refuses (IPv6 never fragments in the
  // network; its sender fragments unless told not to, which 'do' does too).
  const big = m.allocateUdpBatch(1, 2000);
  m.writeAddressSlot(big.addresses, 0, local);
  big.lengths[0] = 2000;
  const allow = m.openBatchUdpSocket({ family, address: local, port: 0, pmtuDiscovery: 'dont' });
  const deny = m.openBatchUdpSocket({ family, address: local, port: 0, pmtuDiscovery: 'do' });
  big.ports[0] = s.port;
  const fragmentsAllowed = allow.sendBatch(big.packets, big.offsets, big.lengths, big.addresses, big.ports);
  const fragmentsDenied = deny.sendBatch(big.packets, big.offsets, big.lengths, big.addresses, big.ports);
  await readable(s);
  const big2 = m.allocateUdpBatch(1, 4000);
  const bigReceived = s.recvBatch(big2.packets, 0, big2.lengths, big2.addresses, big2.ports) === 1 ? big2.lengths[0] : 0;
  out[family] = { result, errnos: [...b.errnos], lengths: [...r.lengths.subarray(0, n)], fragmentsAllowed: { ...fragmentsAllowed, received: bigReceived }, fragmentsDenied };
  for (const x of [s, allow, deny]) x.close();
}
console.log(JSON.stringify(out));`;
  const report = await inFreshNetns<Record<'4' | '6', UnroutableReport>>(['ip link set lo mtu 1500'], script);
  for (const family of ['4', '6'] as const) {
    const r = report[family];
    assert.deepEqual(r.result, { consumed: 3, sent: 2, errors: 1, firstErrno: ERRNO.ENETUNREACH }, `IPv${family}`);
    assert.deepEqual(r.errnos, [0, ERRNO.ENETUNREACH, 0], `IPv${family}`);
    assert.deepEqual(r.lengths, [10, 12], `IPv${family}`);
    assert.deepEqual(r.fragmentsAllowed, { consumed: 1, sent: 1, errors: 0, firstErrno: 0, received: 2000 }, `IPv${family}`);
    assert.deepEqual(r.fragmentsDenied, { consumed: 1, sent: 0, errors: 1, firstErrno: ERRNO.EMSGSIZE }, `IPv${family}`);
  }
});

interface WritableReport {
  readonly firstConsumed: number;
  readonly waits: number;
  readonly total: number;
  readonly stats: { readonly sent: number; readonly wouldBlock: number; readonly sendErrors: number };
}

test('a full send buffer stops the batch without error; waitWritable resumes it', async () => {
  // A veth whose qdisc (tbf, 20 Mbit/s) holds the datagrams: they stay charged to the sender's
  // 8 KiB send buffer until they leave, so a batch of 50 × 1400 bytes overflows it.
  const setup = [
    'ip link add v0 type veth peer name v1',
    'ip addr add 198.18.0.1/24 dev v0',
    'ip link set v0 up',
    'ip link set v1 up',
    'ip neigh replace 198.18.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent',
    'tc qdisc add dev v0 root tbf rate 20mbit burst 3000 limit 1000000',
  ];
  const script = `
const s = m.openBatchUdpSocket({ family: 4, address: '198.18.0.1', port: 0, sendBuffer: 4096 });
const b = m.allocateUdpBatch(50, 1400);
for (let i = 0; i < 50; i++) { m.writeAddressSlot(b.addresses, i, '198.18.0.2'); b.ports[i] = 4341; b.lengths[i] = 1400; }
let next = 0;
let waits = 0;
let firstConsumed = -1;
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('stuck at ' + next)), 5000);
  const pump = () => {
    const r = s.sendBatch(b.packets.slice(next), b.offsets.subarray(next), b.lengths.subarray(next), b.addresses.subarray(16 * next), b.ports.subarray(next));
    if (r.errors !== 0) reject(new Error('errno ' + r.firstErrno));
    if (firstConsumed < 0) firstConsumed = r.consumed;
    next += r.consumed;
    if (next === 50) { clearTimeout(timer); resolve(); return; }
    waits++;
    s.waitWritable(pump);
  };
  pump();
});
const stats = s.stats();
s.close();
console.log(JSON.stringify({ firstConsumed, waits, total: next, stats: { sent: stats.sent, wouldBlock: stats.wouldBlock, sendErrors: stats.sendErrors } }));`;
  const report = await inFreshNetns<WritableReport>(setup, script);
  assert.ok(report.firstConsumed > 0 && report.firstConsumed < 50, `first batch consumed ${report.firstConsumed}`);
  assert.ok(report.waits > 0);
  assert.equal(report.total, 50);
  assert.deepEqual(report.stats, { sent: 50, wouldBlock: report.waits, sendErrors: 0 });
});

// ---- close ----

test('close is idempotent, stops reading (also from inside the callback) and frees the port', async () => {
  const socket = openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0 });
  const port = socket.port;
  const sender = openSocket({ family: 4, address: '127.0.0.1', port: 0 });
  let calls = 0;
  const closedInside = new Promise<void>((resolve) => {
    socket.startReading(() => {
      calls++;
      socket.close();
      socket.close();
      resolve();
    });
  });
  sendBatched(sender, [1, 2, 3], '127.0.0.1', port);
  await closedInside;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(calls, 1);
  assert.equal(socket.closed, true);
  socket.close();
  socket.stopReading();
  assert.equal(socket.stats().received, 0);
  const batch = allocateUdpBatch(1, 10);
  assert.throws(() => socket.recvBatch(batch.packets, 0, batch.lengths, batch.addresses, batch.ports), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  assert.throws(() => socket.sendBatch(batch.packets, batch.offsets, batch.lengths, batch.addresses, batch.ports), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  assert.throws(() => socket.startReading(() => undefined), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
  const again = openSocket({ family: 4, address: '127.0.0.1', port });
  assert.equal(again.port, port);

  // A socket closed while idle, and one never read, close twice without complaint.
  const idle = openBatchUdpSocket({ family: 6, address: '::1', port: 0 });
  idle.startReading(() => undefined);
  idle.stopReading();
  idle.close();
  idle.close();
});

test('lifetime: the finalizer closes a forgotten socket, a throwing callback is an uncaughtException, a worker may end while reading', async () => {
  const script = `
import { readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
const m = await import(process.env.UDP_MODULE);
const out = {};
const fds = () => readdirSync('/proc/self/fd').length;
const before = fds();
// In a function of its own: V8 may keep the last value of a top-level loop variable alive.
function openAndForget() {
  for (let i = 0; i < 200; i++) {
    const s = m.openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0 });
    if (i % 2 === 0) { s.startReading(() => undefined); s.stopReading(); }
  }
}
openAndForget();
out.openBeforeGc = fds() - before;
for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((resolve) => setTimeout(resolve, 20)); }
out.openAfterGc = fds() - before;

out.uncaught = await new Promise((resolve) => {
  const s = m.openBatchUdpSocket({ family: 4, address: '127.0.0.1', port: 0 });
  process.once('uncaughtException', (error) => { s.close(); resolve(error.message); });
  s.startReading(() => { throw new Error('thrown by onReadable'); });
  const b = m.allocateUdpBatch(1, 1);
  m.writeAddressSlot(b.addresses, 0, '127.0.0.1');
  b.ports[0] = s.port;
  s.sendBatch(b.packets, b.offsets, b.lengths, b.addresses, b.ports);
});

const body = 'const { parentPort } = await import("node:worker_threads");' +
  'const m = await import(' + JSON.stringify(process.env.UDP_MODULE) + ');' +
  'const s = m.openBatchUdpSocket({ family: 6, address: "::1", port: 0 });' +
  's.startReading(() => undefined); s.waitWritable(() => parentPort.postMessage("reading"));';
const worker = new Worker(new URL('data:text/javascript,' + encodeURIComponent(body)));
await new Promise((resolve) => worker.once('message', resolve));
out.workerExit = await worker.terminate();
console.log(JSON.stringify(out));`;
  const result = await runChild(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { ...process.env, UDP_MODULE: MODULE_URL });
  assert.equal(result.code, 0, `child crashed or failed (signal or code ${result.code}):\n${result.stderr}`);
  assert.deepEqual(JSON.parse(result.stdout), { openBeforeGc: 200, openAfterGc: 0, uncaught: 'thrown by onReadable', workerExit: 1 });
});
