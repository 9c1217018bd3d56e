// The two cipher backends are interchangeable: on 10,000 random packets, sessions built on
// node:crypto and on the addon seal to identical bytes, open each other's packets, and reject
// tampered packets with the same status.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeCipherBackend, OpeningSession, SealingSession, SESSION_OPEN_STATUS, suiteLayout, type CipherBackend, type CipherSuite, type KeyId } from '../src/crypto/index.js';
import { nativeCipherBackend } from '../src/node/cipher-backends.js';
import { prng } from './support/prng.js';

const PACKETS = 10_000;
const BATCH = 64;

test('node:crypto and the addon give byte-identical output on 10,000 random packets', () => {
  const random = prng(20261128);
  const int = (n: number): number => Math.floor(random() * n);
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => int(256));
  let done = 0;
  let tampered = 0;
  while (done < PACKETS) {
    const suite: CipherSuite = int(2) === 0 ? 2 : 5;
    const key = { keyId: (1 + int(3)) as KeyId, suite, keys: { encryptKey: bytes(16), icvKey: bytes(20) }, salt: bytes(8), now: 0 };
    const sessions = (backend: CipherBackend): { seal: SealingSession; open: OpeningSession } => {
      const seal = new SealingSession(backend);
      const open = new OpeningSession(backend);
      seal.install(key);
      open.install(key);
      return { seal, open };
    };
    const ref = sessions(nodeCipherBackend);
    const nat = sessions(nativeCipherBackend);
    const iv = suiteLayout(suite).ivLength;
    const n = Math.min(BATCH, PACKETS - done);
    const sizes = Array.from({ length: n }, () => (int(20) === 0 ? int(9001) : int(1501)));
    const plain = sizes.map((size) => bytes(size));
    const make = (): { bufs: Uint8Array[]; lengths: Uint32Array } => ({
      bufs: sizes.map((size, i) => {
        const b = new Uint8Array(8 + iv + size + 64);
        b[0] = 0x88;
        b.set(plain[i] ?? [], 8 + iv);
        return b;
      }),
      lengths: Uint32Array.from(sizes, (size) => 8 + iv + size),
    });
    const a = make();
    const b = make();
    ref.seal.sealBatch(a.bufs, a.lengths, n);
    nat.seal.sealBatch(b.bufs, b.lengths, n);
    for (let i = 0; i < n; i++) {
      assert.equal(a.lengths[i], b.lengths[i]);
      assert.ok(Buffer.from(a.bufs[i] ?? []).equals(Buffer.from(b.bufs[i] ?? [])), `packet ${done + i} (suite ${suite}, ${sizes[i]} bytes) differs`);
    }
    // Cross-open: the addon opens what node:crypto sealed and vice versa.
    const statusesA = new Uint8Array(n);
    const statusesB = new Uint8Array(n);
    nat.open.openBatch(a.bufs, a.lengths, statusesA, n, 0);
    ref.open.openBatch(b.bufs, b.lengths, statusesB, n, 0);
    for (let i = 0; i < n; i++) {
      assert.equal(SESSION_OPEN_STATUS[statusesA[i] ?? 255], 'ok');
      assert.equal(SESSION_OPEN_STATUS[statusesB[i] ?? 255], 'ok');
      const size = sizes[i] ?? 0;
      assert.ok(Buffer.from((a.bufs[i] ?? new Uint8Array()).subarray(8 + iv, 8 + iv + size)).equals(Buffer.from(plain[i] ?? [])));
    }
    // Tampering: both backends reject with the same reason (fresh sessions: no replay state).
    const t = make();
    const check = make();
    sessions(nodeCipherBackend).seal.sealBatch(t.bufs, t.lengths, n);
    sessions(nodeCipherBackend).seal.sealBatch(check.bufs, check.lengths, n);
    for (let i = 0; i < n; i++) {
      const at = 8 + int((t.lengths[i] ?? 9) - 8);
      const flip = 1 + int(255);
      for (const bufs of [t.bufs, check.bufs]) {
        const buf = bufs[i] ?? new Uint8Array(1);
        buf[at] = (buf[at] ?? 0) ^ flip;
      }
    }
    const refStatus = new Uint8Array(n);
    const natStatus = new Uint8Array(n);
    sessions(nodeCipherBackend).open.openBatch(t.bufs, t.lengths.slice(), refStatus, n, 0);
    sessions(nativeCipherBackend).open.openBatch(check.bufs, check.lengths.slice(), natStatus, n, 0);
    assert.deepEqual(Array.from(natStatus, (s) => SESSION_OPEN_STATUS[s]), Array.from(refStatus, (s) => SESSION_OPEN_STATUS[s]));
    assert.ok(refStatus.every((s) => s !== 0));
    tampered += n;
    done += n;
  }
  assert.equal(done, PACKETS);
  assert.equal(tampered, PACKETS);
});
