// The TUN device (src/tun/tun-device.ts, the addon's src/tun/native/tun.cc) and interface set-up
// (src/tun/interface.ts) against the real kernel, inside a network namespace of their own.
//
// Node cannot enter a namespace, so each test runs this same compiled file again as a child,
// `ip netns exec lnt-tun-<pid> node tun-device.test.js`, with the scenario to run in
// LISPNODE_TUN_SCENARIO; the child asserts and exits non-zero with the failure on stderr. Every
// TUN device, address, route and socket lives in the namespace, which `after` deletes (and an exit
// hook, should `after` never run). Addresses: 192.0.2.0/24 and 2001:db8::/32 on the TUN, EID
// prefixes 198.18.0.0/24 and fd00:1::/64 routed into it.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { internetChecksum, parseIpv4, parseIpv6 } from '../src/lisp/index.js';
import { addAddress, addRoute, applyInterfaceConfig, IpCommandError, removeRoute } from '../src/tun/interface.js';
import { openTun, type NativeTunDevice, type TunDevice } from '../src/tun/tun-device.js';
import { ipUdpPacket } from './support/ip-packet.js';

const SCENARIO_VARIABLE = 'LISPNODE_TUN_SCENARIO';
const SELF = fileURLToPath(import.meta.url);
const execFileAsync = promisify(execFile);

const TUN = 'lnt0';
const MTU = 1500;
const HEADROOM = 64;
const SENTINEL = 0xa5;
const CONFIG = {
  name: TUN,
  addresses: ['192.0.2.1/24', '2001:db8::1/64'],
  routes: ['198.18.0.0/24', 'fd00:1::/64'],
} as const;

// ---------------------------------------------------------------------------------------------
// Helpers for the child (inside the namespace).

interface IpLink {
  readonly ifname: string;
  readonly mtu: number;
  readonly flags: readonly string[];
  readonly link_type: string;
}

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('ip', args, { encoding: 'utf8' });
  return stdout;
}

async function ipLink(name: string): Promise<IpLink | undefined> {
  try {
    const links = JSON.parse(await ip('-j', 'link', 'show', 'dev', name)) as IpLink[];
    return links[0];
  } catch (error) {
    if (/does not exist/.test(String((error as { stderr?: unknown }).stderr))) return undefined;
    throw error;
  }
}

async function linkNames(): Promise<string[]> {
  return (JSON.parse(await ip('-j', 'link', 'show')) as IpLink[]).map((link) => link.ifname);
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

function addressBytes(text: string): Uint8Array {
  const bytes = isIPv6(text) ? parseIpv6(text) : parseIpv4(text);
  assert.ok(bytes, `not an address: ${text}`);
  return bytes;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The IP packet's own idea of its length: what readBatch's size must equal (no merging). */
function ipLength(packet: Uint8Array): number {
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const version = (packet[0] ?? 0) >>> 4;
  if (version === 4) return view.getUint16(2);
  if (version === 6) return 40 + view.getUint16(4);
  return assert.fail(`not an IP packet (version ${version})`);
}

interface Layer4 {
  readonly version: 4 | 6;
  readonly protocol: number;
  readonly source: Uint8Array;
  readonly destination: Uint8Array;
  readonly headerLength: number;
}

function layer4(packet: Uint8Array): Layer4 {
  if ((packet[0] ?? 0) >>> 4 === 4) {
    const headerLength = ((packet[0] ?? 0) & 0x0f) * 4;
    return { version: 4, protocol: packet[9] ?? -1, source: packet.subarray(12, 16), destination: packet.subarray(16, 20), headerLength };
  }
  return { version: 6, protocol: packet[6] ?? -1, source: packet.subarray(8, 24), destination: packet.subarray(24, 40), headerLength: 40 };
}

function isUdpTo(packet: Uint8Array, destination: string, port: number): boolean {
  const l4 = layer4(packet);
  if (l4.protocol !== 17 || !equalBytes(l4.destination, addressBytes(destination))) return false;
  return (((packet[l4.headerLength + 2] ?? 0) << 8) | (packet[l4.headerLength + 3] ?? 0)) === port;
}

const ICMP = 1;
const ICMPV6 = 58;

function isEchoRequest(packet: Uint8Array, destination: string): boolean {
  const l4 = layer4(packet);
  const [protocol, type] = l4.version === 4 ? [ICMP, 8] : [ICMPV6, 128];
  return l4.protocol === protocol && packet[l4.headerLength] === type && equalBytes(l4.destination, addressBytes(destination));
}

/** ICMPv6 checksum: over the pseudo-header (RFC 8200 §8.1) and the message. */
function icmpv6Checksum(source: Uint8Array, destination: Uint8Array, message: Uint8Array): number {
  const pseudo = new Uint8Array(40 + message.length);
  pseudo.set(source, 0);
  pseudo.set(destination, 16);
  new DataView(pseudo.buffer).setUint32(32, message.length);
  pseudo[39] = ICMPV6;
  pseudo.set(message, 40);
  return internetChecksum(pseudo);
}

/** The echo reply to an echo request: addresses swapped, type changed, checksums redone. */
function echoReply(request: Uint8Array): Uint8Array {
  const reply = request.slice();
  const l4 = layer4(request);
  reply.set(l4.destination, l4.version === 4 ? 12 : 8);
  reply.set(l4.source, l4.version === 4 ? 16 : 24);
  const view = new DataView(reply.buffer);
  const icmp = reply.subarray(l4.headerLength);
  icmp[0] = l4.version === 4 ? 0 : 129;
  view.setUint16(l4.headerLength + 2, 0);
  if (l4.version === 4) {
    view.setUint16(l4.headerLength + 2, internetChecksum(icmp));
    view.setUint16(10, 0);
    view.setUint16(10, internetChecksum(reply.subarray(0, l4.headerLength)));
  } else {
    view.setUint16(l4.headerLength + 2, icmpv6Checksum(reply.subarray(8, 24), reply.subarray(24, 40), icmp));
  }
  return reply;
}

function assertChecksums(packet: Uint8Array): void {
  const l4 = layer4(packet);
  if (l4.version === 4) {
    assert.equal(internetChecksum(packet.subarray(0, l4.headerLength)), 0, 'IPv4 header checksum');
    if (l4.protocol === ICMP) assert.equal(internetChecksum(packet.subarray(l4.headerLength)), 0, 'ICMP checksum');
  } else if (l4.protocol === ICMPV6) {
    assert.equal(icmpv6Checksum(l4.source, l4.destination, packet.subarray(40)), 0, 'ICMPv6 checksum');
  }
}

/**
 * readBatch over preallocated buffers filled with a sentinel; every call checks that the headroom
 * and the bytes behind each packet are untouched and that each size is exactly one IP packet.
 */
class BatchReader {
  readonly bufs: Uint8Array[];
  readonly sizes: Uint32Array;
  calls = 0;
  fullBatches = 0;
  packets = 0;

  constructor(
    readonly device: TunDevice,
    readonly batch = 64,
    readonly offset = HEADROOM,
    /** False where an oversized packet, read and dropped, may have filled a buffer to its end. */
    readonly checkTail = true,
  ) {
    this.bufs = Array.from({ length: batch }, () => new Uint8Array(offset + device.mtu + 32).fill(SENTINEL));
    this.sizes = new Uint32Array(batch);
  }

  /** One readBatch; copies of the packets read. */
  readOnce(): Uint8Array[] {
    const n = this.device.readBatch(this.bufs, this.sizes, this.offset);
    this.calls++;
    if (n === this.batch) this.fullBatches++;
    this.packets += n;
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const buf = this.bufs[i];
      const size = this.sizes[i];
      assert.ok(buf !== undefined && size !== undefined);
      assert.ok(size > 0 && this.offset + size <= buf.length, `sizes[${i}] = ${size}`);
      assert.ok(buf.subarray(0, this.offset).every((byte) => byte === SENTINEL), `headroom of bufs[${i}] was written`);
      if (this.checkTail) {
        assert.ok(buf.subarray(this.offset + size).every((byte) => byte === SENTINEL), `bytes behind packet ${i} were written`);
      }
      const packet = new Uint8Array(buf.subarray(this.offset, this.offset + size));
      assert.equal(ipLength(packet), size, `bufs[${i}] holds exactly one IP packet`);
      out.push(packet);
      buf.fill(SENTINEL, this.offset, this.offset + size);
    }
    return out;
  }

  /** Reads until `want` packets match (others are the kernel's own: MLD reports and such). */
  async collect(match: (packet: Uint8Array) => boolean, want: number, timeoutMs = 5000): Promise<Uint8Array[]> {
    const matched: Uint8Array[] = [];
    const deadline = Date.now() + timeoutMs;
    while (matched.length < want) {
      const packets = this.readOnce();
      matched.push(...packets.filter(match));
      if (packets.length === 0) {
        if (Date.now() > deadline) assert.fail(`read ${matched.length} of ${want} expected packets in ${timeoutMs} ms`);
        await sleep(1);
      }
    }
    return matched;
  }
}

async function udpSocket(address: string, port: number): Promise<Socket> {
  const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}

function send(socket: Socket, payload: Uint8Array, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => socket.send(payload, port, address, (error) => (error ? reject(error) : resolve())));
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.close(() => resolve()));
}

function receiver(socket: Socket): { readonly messages: { readonly payload: Buffer; readonly from: RemoteInfo }[] } {
  const state = { messages: [] as { payload: Buffer; from: RemoteInfo }[] };
  socket.on('message', (payload, from) => state.messages.push({ payload, from }));
  return state;
}

function writeOne(device: TunDevice, packet: Uint8Array): number {
  return device.writeBatch([packet], Uint32Array.of(0), Uint32Array.of(packet.length), 1);
}

async function openConfigured(mtu = MTU): Promise<{ device: NativeTunDevice; teardown: () => Promise<void> }> {
  const device = openTun({ name: TUN, mtu });
  const teardown = await applyInterfaceConfig(CONFIG);
  return { device, teardown };
}

// ---------------------------------------------------------------------------------------------
// Scenarios (run inside the namespace).

const scenarios: Record<string, () => Promise<void>> = {
  async open() {
    const device = openTun({ name: TUN, mtu: 1420 });
    assert.equal(device.name, TUN);
    assert.equal(device.mtu, 1420);
    const link = await ipLink(TUN);
    assert.ok(link, `${TUN} exists`);
    assert.equal(link.mtu, 1420);
    assert.ok(link.flags.includes('UP'), `flags ${link.flags.join(',')}`);
    assert.ok(link.flags.includes('POINTOPOINT') && link.flags.includes('NOARP'));
    assert.equal(link.link_type, 'none', 'IFF_TUN (no Ethernet header)');

    const numbered = openTun({ name: 'lisp%d', mtu: 1280 });
    assert.match(numbered.name, /^lisp\d+$/, 'the kernel numbers a %d name');
    assert.equal((await ipLink(numbered.name))?.mtu, 1280);
    numbered.close();
    assert.equal(await ipLink(numbered.name), undefined);

    device.close();
    assert.equal(await ipLink(TUN), undefined, 'close removes the interface');
    device.close();
    device.stopReading();
    assert.equal(device.stats().readPackets, 0);
    const closed = { code: 'ERR_INVALID_STATE', message: /closed/ };
    assert.throws(() => device.readBatch([new Uint8Array(2000)], new Uint32Array(1), 0), closed);
    assert.throws(() => writeOne(device, new Uint8Array(20)), closed);
    assert.throws(() => device.startReading(() => undefined), closed);
  },

  async 'read-udp'() {
    const { device, teardown } = await openConfigured();
    const reader = new BatchReader(device);
    for (const [source, destination] of [
      ['192.0.2.1', '198.18.0.7'],
      ['2001:db8::1', 'fd00:1::7'],
    ] as const) {
      const socket = await udpSocket(source, 40000);
      const payload = Buffer.from(`lispnode TUN read test ${source} -> ${destination}`);
      await send(socket, payload, 9999, destination);
      const [packet] = await reader.collect((p) => isUdpTo(p, destination, 9999), 1);
      assert.ok(packet);
      const view = new DataView(packet.buffer);
      // The fields the kernel chooses are taken from the packet; everything else must be ours.
      const expected = ipUdpPacket({
        source,
        destination,
        sourcePort: 40000,
        destinationPort: 9999,
        payload,
        ttl: 64,
        ...(isIPv6(source)
          ? { flowLabel: view.getUint32(0) & 0xfffff }
          : { identification: view.getUint16(4), dontFragment: (view.getUint16(6) & 0x4000) !== 0 }),
      });
      assert.deepEqual(packet, expected, `IPv${isIPv6(source) ? 6 : 4} packet byte for byte`);
      await closeSocket(socket);
    }
    assert.ok(device.stats().readPackets >= 2);

    // The MTU raised underneath: a packet longer than the room after the offset is dropped and
    // counted, not handed over cut short (BatchReader checks every size against the IP length).
    await ip('link', 'set', 'dev', TUN, 'mtu', '3000');
    const socket = await udpSocket('192.0.2.1', 40000);
    await send(socket, new Uint8Array(2000), 9999, '198.18.0.7');
    await send(socket, Buffer.from('small'), 9999, '198.18.0.7');
    const [small] = await new BatchReader(device, 8, HEADROOM, false).collect((p) => isUdpTo(p, '198.18.0.7', 9999), 1);
    assert.equal(small?.length, 28 + 5);
    assert.equal(device.stats().readTruncated, 1);
    await closeSocket(socket);
    await teardown();
    device.close();
  },

  async ping() {
    const { device, teardown } = await openConfigured();
    const reader = new BatchReader(device);
    for (const [family, target] of [
      [4, '198.18.0.9'],
      [6, 'fd00:1::9'],
    ] as const) {
      const ping = execFileAsync('ping', [`-${family}`, '-n', '-c', '3', '-i', '0.2', '-W', '3', '-I', TUN, target], { encoding: 'utf8' });
      for (let seq = 0; seq < 3; seq++) {
        const [request] = await reader.collect((p) => isEchoRequest(p, target), 1);
        assert.ok(request);
        assertChecksums(request);
        const reply = echoReply(request);
        assertChecksums(reply);
        assert.equal(writeOne(device, reply), 1);
      }
      const { stdout } = await ping;
      assert.match(stdout, /3 packets transmitted, 3 received/, stdout);
    }
    assert.equal(device.stats().writtenPackets, 6);
    assert.equal(device.stats().writeErrors, 0);
    await teardown();
    device.close();
  },

  async write() {
    const { device, teardown } = await openConfigured();
    for (const [local, remote] of [
      ['192.0.2.1', '198.18.0.7'],
      ['2001:db8::1', 'fd00:1::7'],
    ] as const) {
      const socket = await udpSocket(local, 7777);
      const { messages } = receiver(socket);
      const datagram = (seq: number): Uint8Array =>
        ipUdpPacket({ source: remote, destination: local, sourcePort: 5555, destinationPort: 7777, payload: Buffer.from(`seq ${seq}`) });

      // One packet behind headroom, with bytes after it that must not be sent.
      const packet = datagram(0);
      const buf = new Uint8Array(HEADROOM + packet.length + 16).fill(SENTINEL);
      buf.set(packet, HEADROOM);
      assert.equal(device.writeBatch([buf], Uint32Array.of(HEADROOM), Uint32Array.of(packet.length), 1), 1);
      await waitFor('the first datagram', () => messages.length === 1);
      const [first] = messages;
      assert.equal(first?.payload.toString(), 'seq 0');
      assert.equal(first?.from.address, remote);
      assert.equal(first?.from.port, 5555);

      // A batch at varying offsets, one packet the kernel refuses (IP version 0) in the middle.
      const before = device.stats();
      const bufs: Uint8Array[] = [];
      const offsets = new Uint32Array(101);
      const lengths = new Uint32Array(101);
      for (let i = 0; i < 101; i++) {
        const p = i === 50 ? new Uint8Array(28) : datagram(i + 1);
        const offset = i % 7;
        offsets[i] = offset;
        lengths[i] = p.length;
        const b = new Uint8Array(offset + p.length + (i % 3));
        b.set(p, offset);
        bufs.push(b);
      }
      assert.equal(device.writeBatch(bufs, offsets, lengths, 101), 101, 'a refused packet is consumed, not thrown');
      const stats = device.stats();
      assert.equal(stats.writtenPackets - before.writtenPackets, 100);
      assert.equal(stats.writeErrors - before.writeErrors, 1);
      assert.equal(stats.lastWriteError, 'EINVAL');
      await waitFor('100 datagrams', () => messages.length === 101);
      const seqs = new Set(messages.slice(1).map((m) => m.payload.toString()));
      assert.equal(seqs.size, 100);
      assert.ok(!seqs.has('seq 51'), 'the refused packet was not delivered');
      await closeSocket(socket);
    }

    // With the link down every write fails (EIO): counted per packet, never thrown.
    await ip('link', 'set', 'dev', TUN, 'down');
    const before = device.stats().writeErrors;
    const packet = ipUdpPacket({ source: '198.18.0.7', destination: '192.0.2.1', sourcePort: 1, destinationPort: 7777, payload: new Uint8Array(4) });
    assert.equal(device.writeBatch([packet, packet, packet], new Uint32Array(3), Uint32Array.of(packet.length, packet.length, packet.length), 3), 3);
    assert.equal(device.stats().writeErrors - before, 3);
    assert.equal(device.stats().lastWriteError, 'EIO');
    // Taking the link down removed its IPv6 address and routes; teardown skips what is gone.
    await teardown();
    device.close();
  },

  async burst() {
    const { device, teardown } = await openConfigured();
    // The TUN queue (txqueuelen, 500 by default) must hold the whole burst plus the kernel's own.
    await ip('link', 'set', 'dev', TUN, 'txqueuelen', '1000');
    const socket = await udpSocket('192.0.2.1', 40001);
    const count = 500;
    const payloadLength = 1400 - 28;
    const sends: Promise<void>[] = [];
    for (let seq = 0; seq < count; seq++) {
      const payload = Buffer.alloc(payloadLength, seq & 0xff);
      payload.writeUInt32BE(seq, 0);
      sends.push(send(socket, payload, 9999, '198.18.0.7'));
    }
    await Promise.all(sends);
    const reader = new BatchReader(device, 64);
    const packets = await reader.collect((p) => isUdpTo(p, '198.18.0.7', 9999), count);
    assert.equal(packets.length, count);
    const seen = new Set<number>();
    for (const packet of packets) {
      assert.equal(packet.length, 1400, 'one 1400-byte IPv4 packet per element');
      const seq = new DataView(packet.buffer).getUint32(28);
      assert.ok(packet.subarray(32).every((byte) => byte === (seq & 0xff)), `payload of packet ${seq}`);
      seen.add(seq);
    }
    assert.equal(seen.size, count, 'every datagram exactly once');
    assert.ok(reader.fullBatches >= Math.floor(count / 64) - 1, `full batches: ${reader.fullBatches} of ${reader.calls} calls`);
    assert.equal(device.stats().readTruncated, 0);
    await closeSocket(socket);
    await teardown();
    device.close();
  },

  async readable() {
    const { device, teardown } = await openConfigured();
    const socket = await udpSocket('192.0.2.1', 40002);
    const reader = new BatchReader(device);
    const isOurs = (p: Uint8Array): boolean => isUdpTo(p, '198.18.0.7', 9999);

    // Level-triggered: a callback that does not read is called again while a packet waits.
    let calls = 0;
    device.startReading(() => {
      calls++;
    });
    await send(socket, Buffer.from('wake up'), 9999, '198.18.0.7');
    await waitFor('three calls for one waiting packet', () => calls >= 3);
    device.stopReading();
    const stoppedAt = calls;
    await sleep(50);
    assert.equal(calls, stoppedAt, 'no calls after stopReading');
    assert.equal((await reader.collect(isOurs, 1)).length, 1, 'the packet is still queued');

    // A callback that drains: every datagram is read once.
    const drained: Uint8Array[] = [];
    device.startReading(() => drained.push(...reader.readOnce().filter(isOurs)));
    for (let i = 0; i < 5; i++) await send(socket, Buffer.from(`drain ${i}`), 9999, '198.18.0.7');
    await waitFor('five drained packets', () => drained.length === 5);

    // stopReading from inside the callback.
    let stopCalls = 0;
    device.startReading(() => {
      stopCalls++;
      device.stopReading();
    });
    await send(socket, Buffer.from('stop'), 9999, '198.18.0.7');
    await waitFor('the stopping call', () => stopCalls === 1);
    await sleep(50);
    assert.equal(stopCalls, 1);
    await reader.collect(isOurs, 1);

    // An exception thrown by the callback surfaces as an uncaught exception.
    const uncaught = new Promise<unknown>((resolve) => process.once('uncaughtException', resolve));
    device.startReading(() => {
      device.stopReading();
      throw new Error('thrown by onReadable');
    });
    await send(socket, Buffer.from('throw'), 9999, '198.18.0.7');
    const error = await uncaught;
    assert.ok(error instanceof Error && error.message === 'thrown by onReadable');
    await reader.collect(isOurs, 1);

    // close from inside the callback: no further calls, the interface is gone.
    let closeCalls = 0;
    device.startReading(() => {
      closeCalls++;
      device.close();
    });
    await send(socket, Buffer.from('close'), 9999, '198.18.0.7');
    await waitFor('the closing call', () => closeCalls === 1);
    await sleep(50);
    assert.equal(closeCalls, 1);
    assert.equal(await ipLink(TUN), undefined);
    await closeSocket(socket);
    await teardown();
  },

  async deleted() {
    const device = openTun({ name: TUN, mtu: MTU });
    let calls = 0;
    let readError: unknown;
    const onReadable = (): void => {
      calls++;
      try {
        device.readBatch([new Uint8Array(MTU)], new Uint32Array(1), 0);
      } catch (error) {
        readError = error;
      }
    };
    device.startReading(onReadable);
    await ip('link', 'del', 'dev', TUN);
    // The kernel wakes the fd's pollers just before it detaches the device (tun_detach_all), so an
    // epoll that polls in between sees nothing and the error never arrives (1 run in ~30 here).
    // A detached fd always polls as EPOLLERR, so re-arming the poll finds it.
    await sleep(20);
    if (readError === undefined) device.startReading(onReadable);
    await waitFor('the poll error callback', () => readError !== undefined);
    assert.equal((readError as { code?: unknown }).code, 'EBADFD');
    assert.match(String(readError), /interface was deleted/);
    const callsAfterError = calls;
    await sleep(50);
    assert.equal(calls, callsAfterError, 'polling stopped after the error');
    assert.throws(() => writeOne(device, new Uint8Array(20).fill(0x45)), { code: 'EBADFD', syscall: 'write' });
    device.close();
  },

  // A worker may end while its devices poll (or have polled): closing their poll handles must not
  // leave libuv a callback into the addon, which the worker's teardown unloads. Its teardown
  // closes the devices, so their interfaces go away.
  async worker() {
    const moduleUrl = new URL('../src/tun/tun-device.js', import.meta.url).href;
    const body =
      'const { parentPort } = await import("node:worker_threads");' +
      `const m = await import(${JSON.stringify(moduleUrl)});` +
      `const reading = m.openTun({ name: ${JSON.stringify(TUN)}, mtu: ${MTU} }); reading.startReading(() => undefined);` +
      `const stopped = m.openTun({ name: "lnt1", mtu: ${MTU} }); stopped.startReading(() => undefined); stopped.stopReading();` +
      // Keep both reachable: a collected device closes itself, which would delete its interface early.
      'globalThis.keep = [reading, stopped]; parentPort.postMessage([reading.name, stopped.name]);';
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(body)}`));
    const names = await new Promise<string[]>((resolve) => worker.once('message', resolve));
    assert.deepEqual(names, [TUN, 'lnt1']);
    for (const name of names) assert.ok(await ipLink(name), `${name} exists while the worker runs`);
    assert.equal(await worker.terminate(), 1);
    for (const name of names) assert.equal(await ipLink(name), undefined, `the worker's end closed ${name}`);
  },

  async errors() {
    const links = await linkNames();
    assert.throws(() => openTun({ name: 'a-name-of-16chrs', mtu: MTU }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /1 to 15 bytes/ });
    assert.throws(() => openTun({ name: '', mtu: MTU }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => openTun({ name: 42 as unknown as string, mtu: MTU }), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    for (const mtu of [67, 65536, 1400.5, -1, Number.NaN]) {
      assert.throws(() => openTun({ name: TUN, mtu }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }, `mtu ${mtu}`);
    }
    assert.throws(() => openTun({ name: TUN, mtu: '1400' as unknown as number }), { name: 'TypeError' });
    assert.throws(() => openTun({ name: 'lo', mtu: MTU }), { code: 'EINVAL', syscall: 'ioctl', message: /non-TUN interface/ });
    assert.throws(() => openTun({ name: 'a/b', mtu: MTU }), { code: 'EINVAL' });
    assert.deepEqual(await linkNames(), links, 'no interface was created by a refused open');

    const device = openTun({ name: TUN, mtu: MTU });
    // The kernel refuses a second attach to a single-queue TUN device that is open.
    assert.throws(() => openTun({ name: TUN, mtu: MTU }), { code: 'EBUSY', errno: -16, syscall: 'ioctl', message: /lnt0\): the name is in use/ });
    assert.equal((await ipLink(TUN))?.mtu, MTU, 'the first device is untouched');

    const bufs = [new Uint8Array(HEADROOM + MTU)];
    const sizes = new Uint32Array(1);
    const type = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };
    const range = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' };
    assert.throws(() => device.readBatch(bufs[0] as unknown as Uint8Array[], sizes, 0), type);
    assert.throws(() => device.readBatch([new Uint16Array(MTU) as unknown as Uint8Array], sizes, 0), type);
    assert.throws(() => device.readBatch(bufs, new Int32Array(1) as unknown as Uint32Array, 0), type);
    assert.throws(() => device.readBatch(bufs, new Uint32Array(0), 0), range);
    assert.throws(() => device.readBatch(bufs, sizes, HEADROOM + 1), { ...range, message: /needs 1565/ });
    assert.throws(() => device.readBatch(bufs, sizes, -1), range);
    assert.throws(() => device.readBatch(bufs, sizes, 1.5), range);
    assert.throws(() => device.readBatch(bufs, sizes, '0' as unknown as number), type);
    assert.equal(device.readBatch([], new Uint32Array(0), 0), 0);

    const packet = new Uint8Array(28).fill(0x45);
    assert.throws(() => device.writeBatch([packet], Uint32Array.of(0), Uint32Array.of(28), 2), { ...range, message: /exceeds bufs.length/ });
    assert.throws(() => device.writeBatch([packet, packet], Uint32Array.of(0), Uint32Array.of(28, 28), 2), { ...range, message: /offsets.length/ });
    assert.throws(() => device.writeBatch([packet], Uint32Array.of(1), Uint32Array.of(28), 1), { ...range, message: /exceeds bufs\[0\].length/ });
    assert.throws(() => device.writeBatch([packet], Uint32Array.of(0xffffffff), Uint32Array.of(2), 1), range);
    assert.throws(() => device.writeBatch([packet], [0] as unknown as Uint32Array, Uint32Array.of(28), 1), type);
    assert.throws(() => device.writeBatch([packet], Uint32Array.of(0), Uint32Array.of(28), -1), range);
    // A batch that throws has written nothing, its valid packets included.
    assert.throws(() => device.writeBatch([packet, 'x' as unknown as Uint8Array], Uint32Array.of(0, 0), Uint32Array.of(28, 1), 2), type);
    assert.equal(device.stats().writtenPackets, 0);
    assert.equal(device.stats().writeErrors, 0);
    assert.throws(() => device.startReading('soon' as unknown as () => void), type);

    // An element getter that calls back into the device meets the busy guard.
    const sneaky: Uint8Array[] = [];
    Object.defineProperty(sneaky, 0, {
      enumerable: true,
      get: () => {
        device.close();
        return packet;
      },
    });
    assert.throws(() => device.writeBatch(sneaky, Uint32Array.of(0), Uint32Array.of(28), 1), { code: 'ERR_INVALID_STATE', message: /busy/ });
    assert.ok(await ipLink(TUN), 'the guarded close did not happen');

    device.close();
    const again = openTun({ name: TUN, mtu: MTU });
    again.close();
  },

  // Run under `setpriv --bounding-set -net_admin`: root without CAP_NET_ADMIN.
  async 'no-capability'() {
    assert.throws(() => openTun({ name: TUN, mtu: MTU }), { code: 'EPERM', syscall: 'ioctl', message: /needs CAP_NET_ADMIN \(run as root or grant the capability\)/ });
    await Promise.resolve();
  },

  // Run with an empty tmpfs over /dev/net (a private mount namespace).
  async 'no-device'() {
    assert.throws(() => openTun({ name: TUN, mtu: MTU }), {
      code: 'ENOENT',
      syscall: 'open',
      message: /\/dev\/net\/tun is missing \(load the tun module \/ run in a container with the device\)/,
    });
    await Promise.resolve();
  },

  async interface() {
    const device = openTun({ name: TUN, mtu: MTU });
    const teardown = await applyInterfaceConfig(CONFIG);
    interface IpAddress {
      readonly addr_info: readonly { readonly local: string; readonly prefixlen: number; readonly tentative?: boolean }[];
    }
    interface IpRoute {
      readonly dst: string;
      readonly dev: string;
      readonly prefsrc?: string;
    }
    const addresses = async (): Promise<string[]> =>
      (JSON.parse(await ip('-j', 'address', 'show', 'dev', TUN)) as IpAddress[])
        .flatMap((a) => a.addr_info)
        .filter((a) => !a.local.startsWith('fe80:'))
        .map((a) => `${a.local}/${a.prefixlen}${a.tentative === true ? ' tentative' : ''}`);
    const routes = async (family: 4 | 6, ...table: string[]): Promise<IpRoute[]> =>
      (JSON.parse(await ip('-j', `-${family}`, 'route', 'show', ...table)) as IpRoute[]).filter((r) => r.dev === TUN);

    assert.deepEqual((await addresses()).sort(), ['192.0.2.1/24', '2001:db8::1/64'], 'IPv6 with nodad: not tentative');
    assert.ok((await routes(4)).some((r) => r.dst === '198.18.0.0/24'));
    assert.ok((await routes(6)).some((r) => r.dst === 'fd00:1::/64'));

    // Routes with a table and a preferred source.
    await addRoute(TUN, '198.18.0.128/25', { table: 100, src: '192.0.2.1' });
    assert.deepEqual(
      (await routes(4, 'table', '100')).map((r) => [r.dst, r.prefsrc]),
      [['198.18.0.128/25', '192.0.2.1']],
    );
    await removeRoute(TUN, '198.18.0.128/25', { table: 100 });
    assert.deepEqual(await routes(4, 'table', '100'), []);

    await teardown();
    assert.deepEqual(await addresses(), []);
    assert.deepEqual(
      (await routes(4)).filter((r) => r.dst.startsWith('198.18.')),
      [],
    );
    assert.deepEqual(await routes(6).then((rs) => rs.filter((r) => r.dst.startsWith('fd00:'))), []);
    await teardown(); // nothing left: a no-op

    // Errors name the command and carry ip's stderr.
    await assert.rejects(addRoute('nosuchdev0', '198.18.1.0/24'), (error: unknown) => {
      assert.ok(error instanceof IpCommandError);
      assert.equal(error.command, 'ip -4 route add 198.18.1.0/24 dev nosuchdev0');
      assert.match(error.stderr, /Cannot find device "nosuchdev0"/);
      assert.match(error.message, /^`ip -4 route add 198\.18\.1\.0\/24 dev nosuchdev0` failed \(exit \d+\): Cannot find device/);
      return true;
    });
    await addAddress(TUN, '192.0.2.1/24');
    await assert.rejects(addAddress(TUN, '192.0.2.1/24'), /Address already assigned|File exists/);
    await assert.rejects(addAddress(TUN, '192.0.2.1'), { name: 'RangeError', message: /no prefix length/ });
    await assert.rejects(addAddress(TUN, '192.0.2.300/24'), RangeError);
    await assert.rejects(addRoute(TUN, 'fd00::/129'), RangeError);
    await assert.rejects(addRoute(TUN, 'fd00::/8', { src: '192.0.2.1' }), { name: 'RangeError', message: /not an IPv6 address/ });

    // A failure part-way rolls back what was applied: 192.0.2.1/24 is there already, so the
    // 198.18.1.1/24 added before it must be removed again.
    await assert.rejects(applyInterfaceConfig({ name: TUN, addresses: ['198.18.1.1/24', '192.0.2.1/24'], routes: [] }), IpCommandError);
    assert.deepEqual(await addresses(), ['192.0.2.1/24']);

    // Teardown after the interface is gone ignores the "already gone" errors.
    const second = await applyInterfaceConfig({ name: TUN, addresses: ['2001:db8::2/64'], routes: ['198.18.0.0/24'] });
    device.close();
    await second();
  },
};

// ---------------------------------------------------------------------------------------------
// The parent: namespace life cycle and one test per scenario.

function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', env, timeout: 60_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr: error !== null && code === -1 ? `${stderr}\n${error.message}` : stderr });
    });
  });
}

function registerTests(): void {
  const namespace = `lnt-tun-${process.pid}`;
  const root = process.getuid?.() === 0;
  const skip = root ? false : 'needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) for TUN devices and network namespaces';

  async function inNamespace(scenario: string, wrapper: readonly string[] = []): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env, [SCENARIO_VARIABLE]: scenario };
    delete env['NODE_TEST_CONTEXT'];
    const result = await run('ip', ['netns', 'exec', namespace, ...wrapper, process.execPath, SELF], env);
    assert.equal(result.code, 0, `scenario ${scenario} failed in ${namespace}:\n${result.stderr}${result.stdout}`);
  }

  describe(`TunDevice in network namespace ${namespace}`, { skip }, () => {
    let created = false;
    const removeNamespace = (): void => {
      if (created) spawnSync('ip', ['netns', 'del', namespace]);
      created = false;
    };

    before(async () => {
      // Namespaces left by earlier runs that were killed (their pid is gone).
      const stale = (await execFileAsync('ip', ['netns', 'list'], { encoding: 'utf8' })).stdout
        .split('\n')
        .map((line) => /^lnt-tun-(\d+)\b/.exec(line))
        .filter((match): match is RegExpExecArray => match !== null)
        .filter((match) => !processExists(Number(match[1])));
      for (const match of stale) await execFileAsync('ip', ['netns', 'del', match[0]]);
      process.once('exit', removeNamespace);
      await execFileAsync('ip', ['netns', 'add', namespace]);
      created = true;
      await execFileAsync('ip', ['-n', namespace, 'link', 'set', 'dev', 'lo', 'up']);
    });

    after(() => {
      removeNamespace();
      process.off('exit', removeNamespace);
    });

    test('open: the name, MTU and UP state show in `ip -j link`; `lisp%d` is numbered; close removes the interface', () => inNamespace('open'));
    test('readBatch at an offset: kernel-sent IPv4 and IPv6 UDP byte for byte, headroom and tail untouched; oversized packets dropped', () => inNamespace('read-udp'));
    test('ping -4 and -6 through the TUN, answered by readBatch + writeBatch', () => inNamespace('ping'));
    test('writeBatch: crafted IPv4/IPv6 UDP reaches a socket; a refused packet or a down link is counted, not thrown', () => inNamespace('write'));
    test('a burst of 500 1400-byte packets: one packet per element, full batches, none lost', () => inNamespace('burst'));
    test('startReading: level-triggered; stop and close from the callback; its exceptions surface', () => inNamespace('readable'));
    test('the interface deleted underneath: a last (poll error) callback, EBADFD from readBatch and writeBatch', () => inNamespace('deleted'));
    test('a worker may end while its devices poll: no call into the unloaded addon, the interfaces are gone', () => inNamespace('worker'));
    test('errors: bad names and MTUs, EBUSY for a name in use, EINVAL for a non-TUN name, argument checks, the busy guard', () =>
      inNamespace('errors'));
    test('without CAP_NET_ADMIN: EPERM naming the capability', () =>
      inNamespace('no-capability', ['setpriv', '--bounding-set', '-net_admin', '--inh-caps', '-net_admin']));
    test('without /dev/net/tun: ENOENT naming the device', () =>
      inNamespace('no-device', ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$0" "$@"']));
    test('interface config: addresses (IPv6 nodad), routes (table, src), rollback, teardown, errors naming the command', () =>
      inNamespace('interface'));
  });
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

const scenarioName = process.env[SCENARIO_VARIABLE];
if (scenarioName === undefined) {
  registerTests();
} else {
  const scenario = scenarios[scenarioName];
  if (scenario === undefined) throw new Error(`unknown scenario ${scenarioName}`);
  await scenario();
  // Whatever a scenario leaves open would keep this child alive until the parent's timeout.
  setTimeout(() => {
    process.stderr.write(`scenario ${scenarioName} left handles open\n`);
    process.exit(3);
  }, 2000).unref();
}
