// Data-plane sessions (src/crypto/session.ts): round trips, tamper detection, replay window,
// IV uniqueness, rekeying without loss.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  DEFAULT_SESSION_LIMITS,
  nodeCipherBackend,
  OpeningSession,
  SealingSession,
  SESSION_OPEN_STATUS,
  suiteLayout,
  type CipherSuite,
  type DataPlaneKeys,
  type KeyId,
  type SessionLimits,
} from '../src/crypto/index.js';
import { writeDataHeader } from '../src/lisp/data-header.js';
import { prng } from './support/prng.js';

const NOW = 1_000_000;

function keys(seed: number): DataPlaneKeys {
  const random = prng(seed);
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
  return { encryptKey: bytes(16), icvKey: bytes(20) };
}

function pair(suite: CipherSuite, limits: SessionLimits = DEFAULT_SESSION_LIMITS): { seal: SealingSession; open: OpeningSession } {
  const seal = new SealingSession(nodeCipherBackend, limits);
  const open = new OpeningSession(nodeCipherBackend, { limits });
  const k = { keyId: 1 as KeyId, suite, keys: keys(suite), salt: randomBytes(8), now: NOW };
  open.install(k);
  seal.install(k);
  return { seal, open };
}

/** Packets with a LISP header, room for any IV, a plaintext of `size` bytes, and tail room. */
function packets(suite: CipherSuite, sizes: readonly number[]): { bufs: Uint8Array[]; lengths: Uint32Array; plain: Uint8Array[] } {
  const iv = suiteLayout(suite).ivLength;
  const plain = sizes.map((n) => randomBytes(n));
  const bufs = sizes.map((n, i) => {
    const b = new Uint8Array(8 + iv + n + 64);
    writeDataHeader(b, 0, { nonceField: { kind: 'nonce', nonce: i & 0xffffff, echoRequest: false }, instanceId: 1000, reservedBit: false, keyId: 0 });
    b.set(plain[i] ?? [], 8 + iv);
    return b;
  });
  return { bufs, lengths: Uint32Array.from(sizes, (n) => 8 + iv + n), plain };
}

function statusNames(statuses: Uint8Array, count = statuses.length): string[] {
  return Array.from(statuses.subarray(0, count), (s) => SESSION_OPEN_STATUS[s] ?? `?${s}`);
}

function openAll(open: OpeningSession, bufs: Uint8Array[], lengths: Uint32Array, now = NOW): string[] {
  const statuses = new Uint8Array(bufs.length);
  open.openBatch(bufs, lengths, statuses, bufs.length, now);
  return statusNames(statuses);
}

for (const suite of [2, 5] as const) {
  test(`suite ${suite}: sizes 0..9000 round-trip in batches`, () => {
    const { seal, open } = pair(suite);
    const sizes = [0, 1, 15, 16, 17, 63, 64, 511, 512, 1399, 1400, 1500, 4096, 8999, 9000];
    const { bufs, lengths, plain } = packets(suite, sizes);
    assert.deepEqual(seal.sealBatch(bufs, lengths, bufs.length), { status: 'ok', sealed: sizes.length });
    bufs.forEach((b) => assert.equal((b[0] ?? 0) & 3, 1, 'key-id bits set'));
    assert.deepEqual(openAll(open, bufs, lengths), sizes.map(() => 'ok'));
    const iv = suiteLayout(suite).ivLength;
    sizes.forEach((n, i) => {
      const out = (bufs[i] ?? new Uint8Array()).subarray(8 + iv, lengths[i]);
      assert.deepEqual(Buffer.from(out.subarray(0, n)), Buffer.from(plain[i] ?? []));
      // Suite 2 pads with spaces to the block size; the ETR trims by the inner IP length.
      assert.ok(out.subarray(n).every((b) => b === 0x20));
      assert.equal(out.length - n, suite === 2 ? (16 - (n % 16)) % 16 : 0);
    });
  });

  test(`suite ${suite}: every single flipped byte of header, IV, ciphertext, tag or ICV is rejected`, () => {
    const { seal, open } = pair(suite);
    const { bufs, lengths } = packets(suite, [100]);
    seal.sealBatch(bufs, lengths, 1);
    const sealed = (bufs[0] ?? new Uint8Array()).slice(0, lengths[0]);
    const reasons = new Set<string>();
    for (let i = 0; i < sealed.length; i++) {
      const copy = new Uint8Array(sealed.length + 64);
      copy.set(sealed);
      copy[i] = (copy[i] ?? 0) ^ 0x5a;
      const [status] = openAll(open, [copy], Uint32Array.of(sealed.length));
      assert.notEqual(status, 'ok', `byte ${i} flipped was accepted`);
      reasons.add(status ?? '');
    }
    // The unmodified packet still opens afterwards: rejected forgeries do not move the window.
    assert.deepEqual(openAll(open, [sealed.slice()], Uint32Array.of(sealed.length)), ['ok']);
    assert.ok(reasons.has('icv-mismatch'));
  });

  test(`suite ${suite}: replays are rejected, reordering inside the window is accepted`, () => {
    const { seal, open } = pair(suite);
    const { bufs, lengths } = packets(suite, Array.from({ length: 64 }, () => 40));
    seal.sealBatch(bufs, lengths, bufs.length);
    const copies = bufs.map((b) => b.slice());
    const sealedLengths = lengths.slice();
    // Deliver in reverse order: all fresh.
    const reversed = [...bufs].reverse();
    assert.deepEqual(openAll(open, reversed, sealedLengths.slice().reverse()), bufs.map(() => 'ok'));
    // Every packet again: all replayed.
    assert.deepEqual(openAll(open, copies.map((b) => b.slice()), sealedLengths.slice()), bufs.map(() => 'replayed'));
    // A duplicate inside one batch: the second copy loses.
    const { bufs: more, lengths: moreLengths } = packets(suite, [40]);
    seal.sealBatch(more, moreLengths, 1);
    const twin = (more[0] ?? new Uint8Array()).slice();
    assert.deepEqual(openAll(open, [more[0] ?? twin, twin], Uint32Array.of(moreLengths[0] ?? 0, moreLengths[0] ?? 0)), ['ok', 'replayed']);
  });
}

test('packets older than the window are refused as too-old', () => {
  const { seal, open } = pair(5);
  const { bufs, lengths } = packets(5, Array.from({ length: 2100 }, () => 1));
  seal.sealBatch(bufs, lengths, bufs.length);
  const first = (bufs[0] ?? new Uint8Array()).slice();
  const firstLength = lengths[0] ?? 0;
  assert.ok(openAll(open, bufs.slice(1), lengths.slice(1)).every((s) => s === 'ok'));
  assert.deepEqual(openAll(open, [first], Uint32Array.of(firstLength)), ['too-old']);
});

test('IVs never repeat: unique per key, a hard limit instead of a wrap, new salt after a restart', () => {
  for (const suite of [2, 5] as const) {
    const limits = { ...DEFAULT_SESSION_LIMITS, hardLimitPackets: 300 };
    const k = keys(7);
    const ivLength = suiteLayout(suite).ivLength;
    const seen = new Set<string>();
    const collect = (bufs: Uint8Array[], n: number): void => {
      for (const b of bufs.slice(0, n)) {
        const iv = Buffer.from(b.subarray(8, 8 + ivLength)).toString('hex');
        assert.ok(!seen.has(iv), `IV ${iv} repeated under one key`);
        seen.add(iv);
      }
    };
    // Two runs with the same key, as after a restart that somehow kept it: salts differ.
    for (const salt of [randomBytes(8), randomBytes(8)]) {
      const seal = new SealingSession(nodeCipherBackend, limits);
      seal.install({ keyId: 1, suite, keys: k, salt, now: NOW });
      const { bufs, lengths } = packets(suite, Array.from({ length: 400 }, () => 8));
      const outcome = seal.sealBatch(bufs, lengths, bufs.length);
      assert.deepEqual(outcome, { status: 'key-exhausted', sealed: 300 });
      assert.deepEqual(seal.sealBatch(bufs, lengths, 1), { status: 'key-exhausted', sealed: 0 });
      collect(bufs, outcome.sealed);
    }
    assert.equal(seen.size, 600);
  }
});

test('rekeying loses no packet: old-key packets in flight open during the grace period', () => {
  const limits = { ...DEFAULT_SESSION_LIMITS, rekeyAfterPackets: 10, graceMs: 5000 };
  const seal = new SealingSession(nodeCipherBackend, limits);
  const open = new OpeningSession(nodeCipherBackend, { limits });
  const install = (keyId: KeyId, seed: number, now: number): void => {
    const k = { keyId, suite: 5 as const, keys: keys(seed), salt: randomBytes(8), now };
    open.install(k); // the ETR has the key before the ITR uses it (Map-Reply order)
    seal.install(k);
  };
  install(1, 11, NOW);
  const oldKey = packets(5, Array.from({ length: 10 }, () => 30));
  seal.sealBatch(oldKey.bufs, oldKey.lengths, 10);
  assert.ok(seal.needsRekey(NOW + 1), 'a rekey is asked for after the packet count');
  install(2, 12, NOW + 100);
  assert.ok(!seal.needsRekey(NOW + 101));
  const newKey = packets(5, Array.from({ length: 10 }, () => 30));
  seal.sealBatch(newKey.bufs, newKey.lengths, 10);
  assert.ok(newKey.bufs.every((b) => ((b[0] ?? 0) & 3) === 2));
  // Interleaved arrival, old and new keys in one batch, inside the grace period.
  const mixed = oldKey.bufs.flatMap((b, i) => [b, newKey.bufs[i] ?? b]);
  const mixedLengths = Uint32Array.from(oldKey.bufs.flatMap((_, i) => [oldKey.lengths[i] ?? 0, newKey.lengths[i] ?? 0]));
  const late = mixed.map((b) => b.slice());
  const lateLengths = mixedLengths.slice();
  assert.deepEqual(openAll(open, mixed, mixedLengths, NOW + 2000), mixed.map(() => 'ok'));
  // After the grace period the old key is refused; the new one still works.
  const again = packets(5, [30]);
  seal.sealBatch(again.bufs, again.lengths, 1);
  assert.deepEqual(openAll(open, [late[0] ?? new Uint8Array(), again.bufs[0] ?? new Uint8Array()], Uint32Array.of(lateLengths[0] ?? 0, again.lengths[0] ?? 0), NOW + 6000), ['key-expired', 'ok']);
  open.expire(NOW + 6000);
  assert.ok(!open.hasKey(1));
  assert.deepEqual(openAll(open, [late[0] ?? new Uint8Array()], Uint32Array.of(lateLengths[0] ?? 0), NOW + 6000), ['no-key']);
});

test('age-based rekey, missing keys and clear packets', () => {
  const { seal, open } = pair(5, { ...DEFAULT_SESSION_LIMITS, rekeyAfterMs: 1000 });
  assert.ok(!seal.needsRekey(NOW + 999));
  assert.ok(seal.needsRekey(NOW + 1000));
  const fresh = new SealingSession(nodeCipherBackend);
  const { bufs, lengths } = packets(5, [10]);
  assert.deepEqual(fresh.sealBatch(bufs, lengths, 1), { status: 'no-key', sealed: 0 });
  const clear = packets(5, [10]);
  assert.deepEqual(openAll(open, clear.bufs, clear.lengths), ['no-key']);
  const keyTwo = packets(5, [10]);
  seal.sealBatch(keyTwo.bufs, keyTwo.lengths, 1);
  const b = keyTwo.bufs[0] ?? new Uint8Array();
  b[0] = ((b[0] ?? 0) & ~3) | 3;
  assert.deepEqual(openAll(open, keyTwo.bufs, keyTwo.lengths), ['no-key']);
});
