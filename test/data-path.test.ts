// The ITR and ETR data paths driven in memory, with no sockets and no TUN: what one node's ITR
// emits, the other node's ETR delivers byte for byte — or drops under a named reason.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { nodeCipherBackend, OpeningSession, SealingSession, type DataPlaneKeys } from '../src/crypto/index.js';
import { DropCounters } from '../src/lisp/drop-counters.js';
import { createEtrOutput, Etr, type EtrInput, type EtrPeer } from '../src/lisp/etr.js';
import { RateLimiter } from '../src/lisp/icmp-too-big.js';
import { internetChecksum } from '../src/lisp/ip-udp.js';
import { Itr, ITR_HEADROOM, type ItrPeer } from '../src/lisp/itr.js';
import { MapCache } from '../src/lisp/map-cache.js';
import { prefix } from '../src/lisp/prefix.js';
import { ACTION } from '../src/lisp/records.js';
import { parseIpv4 } from '../src/lisp/ip-text.js';

const NOW = 5_000_000;
const KEYS: DataPlaneKeys = { encryptKey: randomBytes(16), icvKey: randomBytes(20) };

/** The UDP socket's address slot: IPv4-mapped. */
function slot(address: string): Uint8Array {
  const s = new Uint8Array(16);
  s.set([0xff, 0xff], 10);
  s.set(parseIpv4(address) ?? [], 12);
  return s;
}

/** An ICMP echo request between two IPv4 EIDs, with a marker in the payload. */
function ping(source: string, destination: string, payload = 56): Uint8Array {
  const p = new Uint8Array(28 + payload);
  p.set([0x45, 0, p.length >> 8, p.length & 0xff, 0, 1, 0x40, 0, 64, 1, 0, 0]);
  p.set(parseIpv4(source) ?? [], 12);
  p.set(parseIpv4(destination) ?? [], 16);
  const sum = internetChecksum(p.subarray(0, 20));
  p[10] = sum >> 8;
  p[11] = sum & 0xff;
  p[20] = 8;
  p.set(Buffer.from('lispnode-marker'), 28);
  return p;
}

interface Node {
  itr: Itr;
  etr: Etr;
  drops: DropCounters;
  mapCache: MapCache<ItrPeer>;
}

/** Node A (198.18.0.1, 192.0.2.0/28) talks to node B (198.18.0.2, 192.0.2.16/28). */
function twoNodes(options: { encrypt: boolean; mtu?: number }): { a: Node; b: Node } {
  const make = (local: string, remote: string, remoteEids: string, localEids: string): Node => {
    const drops = new DropCounters();
    const mapCache = new MapCache<ItrPeer>();
    const sealing = options.encrypt ? new SealingSession(nodeCipherBackend) : undefined;
    sealing?.install({ keyId: 1, suite: 5, keys: KEYS, salt: randomBytes(8), now: NOW });
    const peer: ItrPeer = { family: 4, address: slot(remote), port: 4341, sealing };
    mapCache.insertStatic(prefix(remoteEids), { locators: [{ address: remote, priority: 1, weight: 100 }] }, NOW);
    const entry = mapCache.get(prefix(remoteEids));
    assert.ok(entry?.kind === 'positive');
    for (const l of entry.locators) l.state = peer;
    mapCache.insertStatic(prefix('192.0.2.64/28'), { action: ACTION.dropPolicyDenied }, NOW);
    const opening = options.encrypt ? new OpeningSession(nodeCipherBackend) : undefined;
    opening?.install({ keyId: 1, suite: 5, keys: KEYS, salt: randomBytes(8), now: NOW });
    const etrPeer: EtrPeer = { opening, acceptClear: !options.encrypt };
    const remoteSlot = slot(remote);
    const itr = new Itr({
      instanceId: 0,
      mapCache,
      drops,
      underlayMtu: options.mtu ?? 1500,
      underlayFamily: 4,
      requireEncryption: options.encrypt,
      suite: options.encrypt ? 5 : undefined,
      tooBigLimiter: new RateLimiter(10, 10),
      batchSize: 16,
      innerMtu: 1500,
    });
    const etr = new Etr({
      instanceId: 0,
      localEids: [prefix(localEids)],
      mapCache: mapCache,
      peerFor: (family, address, offset) => (family === 4 && remoteSlot.subarray(12).every((b, j) => b === address[offset + j]) ? etrPeer : undefined),
      acceptClearFromStrangers: !options.encrypt,
      drops,
    });
    void local;
    return { itr, etr, drops, mapCache };
  };
  return { a: make('198.18.0.1', '198.18.0.2', '192.0.2.16/28', '192.0.2.0/28'), b: make('198.18.0.2', '198.18.0.1', '192.0.2.0/28', '192.0.2.16/28') };
}

/** A's ITR sends `packets`; returns the wire datagrams. */
function send(node: Node, packets: Uint8Array[]): Uint8Array[] {
  const sizes = new Uint32Array(packets.length);
  packets.forEach((p, i) => {
    node.itr.buffers[i]?.set(p, ITR_HEADROOM);
    sizes[i] = p.length;
  });
  const out = Itr.output(16);
  node.itr.process(sizes, packets.length, NOW, out);
  return Array.from({ length: out.count }, (_, k) => (node.itr.buffers[out.index[k] ?? 0] ?? new Uint8Array()).slice(out.offsets[k], (out.offsets[k] ?? 0) + (out.lengths[k] ?? 0)));
}

/** B's ETR receives `datagrams` from `from`; returns the delivered inner packets. */
function receive(node: Node, datagrams: Uint8Array[], from = '198.18.0.1'): Uint8Array[] {
  const bufs = datagrams.map((d) => {
    const b = new Uint8Array(2048);
    b.set(d);
    return b;
  });
  const sourceAddress = new Uint8Array(16 * bufs.length);
  bufs.forEach((_, i) => sourceAddress.set(slot(from), 16 * i));
  const input: EtrInput = { bufs, lengths: Uint32Array.from(datagrams, (d) => d.length), count: bufs.length, sourceAddress };
  const out = createEtrOutput(bufs.length);
  node.etr.process(input, NOW, out);
  return Array.from({ length: out.count }, (_, k) => (bufs[out.index[k] ?? 0] ?? new Uint8Array()).slice(out.offsets[k], (out.offsets[k] ?? 0) + (out.lengths[k] ?? 0)));
}

for (const encrypt of [true, false]) {
  test(`${encrypt ? 'encrypted' : 'clear'}: A's ITR to B's ETR delivers the inner packet byte for byte`, () => {
    const { a, b } = twoNodes({ encrypt });
    const packet = ping('192.0.2.2', '192.0.2.18');
    const wire = send(a, [packet]);
    assert.equal(wire.length, 1);
    assert.equal((wire[0]?.[0] ?? 0) & 3, encrypt ? 1 : 0, 'key-id bits');
    assert.equal(Buffer.from(wire[0] ?? []).includes('lispnode-marker'), !encrypt, 'the marker is visible only in clear');
    const delivered = receive(b, wire);
    assert.deepEqual(delivered.map((d) => Buffer.from(d).toString('hex')), [Buffer.from(packet).toString('hex')]);
    assert.equal(a.drops.total() + b.drops.total(), 0);
  });
}

test('every refusal is counted under its reason', () => {
  const { a, b } = twoNodes({ encrypt: true });
  const good = send(a, [ping('192.0.2.2', '192.0.2.18')]);
  assert.equal(receive(b, good).length, 1);
  // ITR side.
  send(a, [ping('192.0.2.2', '192.0.2.100')]);
  send(a, [ping('192.0.2.2', '192.0.2.70')]);
  send(a, [new Uint8Array([0x10, 0, 0, 0])]);
  assert.deepEqual(a.drops.snapshot(), { 'itr-not-ip': 1, 'itr-map-cache-miss': 1, 'itr-negative-policy-denied': 1 });
  // ETR side.
  assert.equal(receive(b, good).length, 0, 'a replay');
  const tampered = send(a, [ping('192.0.2.2', '192.0.2.18')]).map((d) => {
    d[40] = (d[40] ?? 0) ^ 1;
    return d;
  });
  receive(b, tampered);
  receive(b, send(a, [ping('192.0.2.2', '192.0.2.18')]), '198.18.0.9');
  receive(b, [new Uint8Array(5)]);
  const clear = new Uint8Array(8 + 84);
  clear.set(ping('192.0.2.2', '192.0.2.18'), 8);
  receive(b, [clear]);
  const control = new Uint8Array(16);
  control.set([0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0]);
  receive(b, [control]);
  assert.deepEqual(b.drops.snapshot(), {
    'etr-replayed': 1,
    'etr-icv-mismatch': 1,
    'etr-no-key': 1,
    'etr-truncated': 1,
    'etr-clear-refused': 1,
    'etr-control-in-data': 1,
  });
});

test('anti-spoofing and the local-EID check run on the decrypted inner packet', () => {
  const { a, b } = twoNodes({ encrypt: true });
  // A sends a packet whose inner source is outside A's EID prefix: B must not deliver it.
  a.mapCache.insertStatic(prefix('192.0.2.32/28'), { locators: [{ address: '198.18.0.2', priority: 1, weight: 100 }] }, NOW);
  for (const l of a.mapCache.get(prefix('192.0.2.32/28'))?.locators ?? []) l.state = a.mapCache.get(prefix('192.0.2.16/28'))?.locators[0]?.state;
  receive(b, send(a, [ping('192.0.2.99', '192.0.2.18')]));
  receive(b, send(a, [ping('192.0.2.2', '192.0.2.33')]));
  // An inner source that B maps to another locator is spoofed.
  b.mapCache.insertStatic(prefix('192.0.2.48/28'), { locators: [{ address: '198.18.0.7', priority: 1, weight: 100 }] }, NOW);
  receive(b, send(a, [ping('192.0.2.50', '192.0.2.18')]));
  assert.deepEqual(b.drops.snapshot(), { 'etr-unknown-source': 1, 'etr-not-local-eid': 1, 'etr-spoofed-source': 1 });
});

test('oversize packets get a rate-limited Fragmentation-Needed for the TUN', () => {
  const { a } = twoNodes({ encrypt: true, mtu: 1400 });
  const sizes = Uint32Array.of(1400);
  a.itr.buffers[0]?.set(ping('192.0.2.2', '192.0.2.18', 1372), ITR_HEADROOM);
  const out = Itr.output(16);
  a.itr.process(sizes, 1, NOW, out);
  assert.equal(out.count, 0);
  assert.equal(out.icmp.length, 1);
  const icmp = out.icmp[0] ?? new Uint8Array();
  assert.deepEqual([icmp[20], icmp[21]], [3, 4]);
  // 1400 - (20 outer + 8 UDP + 8 LISP + 12 IV + 16 tag + 20 ICV) = 1316 (suite 5 does not pad)
  assert.equal(((icmp[26] ?? 0) << 8) | (icmp[27] ?? 0), 1316);
  assert.deepEqual(a.drops.snapshot(), { 'itr-too-big': 1 });
});
