// The addon's batched RFC 8061 data-plane AEAD (src/tun/native-aead.ts): TV4 and TV5 of the
// protocol digest (shared/spec/lisp-protocol.md §8) byte for byte, round trips, tampering,
// argument checks, and a cross-check against node:crypto on random packets.
import assert from 'node:assert/strict';
import { createCipheriv, createHmac } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  createNativeAeadContext,
  NATIVE_OPEN_STATUS,
  nativeAddonAvailable,
  type NativeAeadContext,
  type NativeOpenStatus,
} from '../src/tun/native-aead.js';
import type * as NativeAeadModule from '../src/tun/native-aead.js';
import { prng } from './support/prng.js';

type Suite = 2 | 5;

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

// TV3 keys, TV4/TV5 packet.
const ENCRYPT_KEY = hex('3035ead211c24e9729286c09181ae43d');
const ICV_KEY = hex('000000006e9106c649706da447cf00c38f851da8');
const INNER = hex('4500001c000100004001f98cc0a80001c0a800020800f7ff00000000');
const HEADER = hex('8112345600000000');
const TV4_IV = hex('000102030405060708090a0b0c0d0e0f');
const TV4_SEALED = hex(`8112345600000000 000102030405060708090a0b0c0d0e0f
  3f516315f8757f645f4550f05b14dd0539e5c0b34b91444d5a5ebebba7ebab25 2f58793dd9b5434a07b65b1654142f71d3f29e34`);
const TV5_IV = hex('000000010000000000000002');
const TV5_SEALED = hex(`8112345600000000 000000010000000000000002
  0a3b2b0812b8c24ccd1014a47d0ed88c1b0a3f63fbe3f82a179dfdce7f6dbc81239218af919e75b36bf88c4c
  892f0db7af05a1707902a7a2d13024edbc2d3580`);

const ivLength = (suite: Suite): number => (suite === 5 ? 12 : 16);
const padLength = (suite: Suite, n: number): number => (suite === 2 ? (16 - (n % 16)) % 16 : 0);
const sealedLength = (suite: Suite, n: number): number => 8 + ivLength(suite) + n + padLength(suite, n) + (suite === 5 ? 16 : 0) + 20;
const minimumLength = (suite: Suite): number => sealedLength(suite, 0);

/** A buffer of `capacity` bytes holding header | IV | plaintext; returns it and the unsealed length. */
function packet(header: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, capacity: number): Buffer {
  const out = Buffer.alloc(capacity);
  out.set(header, 0);
  out.set(iv, 8);
  out.set(plaintext, 8 + iv.length);
  return out;
}

function icv(icvKey: Uint8Array, covered: Uint8Array): Buffer {
  return createHmac('sha256', icvKey).update(covered).digest().subarray(0, 20);
}

/** The lispers.net framing computed with node:crypto, one cipher object per packet. */
function referenceSeal(suite: Suite, encryptKey: Uint8Array, icvKey: Uint8Array, header: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Buffer {
  let body: Buffer;
  if (suite === 5) {
    const cipher = createCipheriv('aes-128-gcm', encryptKey, iv);
    body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  } else {
    const cipher = createCipheriv('aes-128-cbc', encryptKey, iv).setAutoPadding(false);
    const padded = Buffer.concat([plaintext, Buffer.alloc(padLength(suite, plaintext.length), 0x20)]);
    body = Buffer.concat([cipher.update(padded), cipher.final()]);
  }
  const covered = Buffer.concat([header, iv, body]);
  return Buffer.concat([covered, icv(icvKey, covered)]);
}

function randomBytesFrom(next: () => number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

function withContext(suite: Suite, body: (context: NativeAeadContext) => void, encryptKey: Uint8Array = ENCRYPT_KEY, icvKey: Uint8Array = ICV_KEY): void {
  const context = createNativeAeadContext(suite, encryptKey, icvKey);
  try {
    body(context);
  } finally {
    context.close();
  }
}

function openOne(context: NativeAeadContext, buffer: Uint8Array, length: number): { status: NativeOpenStatus; length: number } {
  const lengths = Uint32Array.of(length);
  const statuses = Uint8Array.of(0xee);
  context.openBatch([buffer], lengths, statuses, 1);
  const status = NATIVE_OPEN_STATUS[statuses[0] ?? 0xee];
  assert.ok(status !== undefined, `unknown status byte ${statuses[0]}`);
  return { status, length: lengths[0] ?? -1 };
}

test('the addon is built and loads from the package root', () => {
  assert.equal(nativeAddonAvailable(), true);
  assert.deepEqual(NATIVE_OPEN_STATUS, ['ok', 'too-short', 'icv-mismatch', 'tag-mismatch', 'bad-length']);
  assert.ok(Object.isFrozen(NATIVE_OPEN_STATUS));
});

for (const [name, suite, iv, sealed] of [
  ['TV4 (suite 2, AES-128-CBC)', 2, TV4_IV, TV4_SEALED],
  ['TV5 (suite 5, AES-128-GCM)', 5, TV5_IV, TV5_SEALED],
] as const) {
  test(`${name}: seal byte for byte, open back`, () => {
    withContext(suite, (context) => {
      assert.equal(sealed.length, sealedLength(suite, INNER.length));
      const buffer = packet(HEADER, iv, INNER, sealed.length);
      const lengths = Uint32Array.of(8 + iv.length + INNER.length);
      context.sealBatch([buffer], lengths, 1);
      assert.equal(lengths[0], sealed.length);
      assert.deepEqual(buffer, sealed);

      const opened = openOne(context, buffer, sealed.length);
      assert.equal(opened.status, 'ok');
      const padded = Buffer.concat([INNER, Buffer.alloc(padLength(suite, INNER.length), 0x20)]);
      assert.equal(opened.length, 8 + iv.length + padded.length);
      assert.deepEqual(buffer.subarray(0, 8 + iv.length), sealed.subarray(0, 8 + iv.length));
      assert.deepEqual(buffer.subarray(8 + iv.length, opened.length), padded);
    });
  });
}

test('batches of mixed sizes 0..9000 round-trip, in Buffers and in Uint8Array views with an offset', () => {
  const next = prng(0x5eed_a0ad);
  const sizes = [0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 511, 512, 513, 1399, 1400, 1401, 1500, 4096, 8191, 8999, 9000];
  for (let i = 0; i < 40; i++) sizes.push(Math.floor(next() * 9001));
  for (const suite of [2, 5] as const) {
    withContext(suite, (context) => {
      const iv = ivLength(suite);
      const shared = new ArrayBuffer(sizes.reduce((sum, n) => sum + sealedLength(suite, n) + 7, 0));
      let offset = 0;
      const plaintexts = sizes.map((n) => randomBytesFrom(next, n));
      const packets = sizes.map((n, i) => {
        const room = sealedLength(suite, n) + (i % 3); // exactly enough room, or a little more
        const plaintext = plaintexts[i] ?? Buffer.alloc(0);
        const filled = packet(randomBytesFrom(next, 8), randomBytesFrom(next, iv), plaintext, room);
        if (i % 2 === 0) return filled;
        const view = new Uint8Array(shared, offset + 3, room);
        offset += room + 7;
        view.set(filled);
        return view;
      });
      const originals = packets.map((p) => Buffer.from(p));
      const lengths = Uint32Array.from(sizes, (n) => 8 + iv + n);
      context.sealBatch(packets, lengths, packets.length);
      sizes.forEach((n, i) => assert.equal(lengths[i], sealedLength(suite, n), `sealed length of ${n} bytes`));

      const statuses = new Uint8Array(packets.length).fill(0xee);
      context.openBatch(packets, lengths, statuses, packets.length);
      sizes.forEach((n, i) => {
        const opened = packets[i] ?? new Uint8Array(0);
        assert.equal(statuses[i], 0, `status of ${n} bytes`);
        assert.equal(lengths[i], 8 + iv + n + padLength(suite, n));
        assert.deepEqual(Buffer.from(opened.subarray(0, 8 + iv + n)), originals[i]?.subarray(0, 8 + iv + n));
        assert.ok(opened.subarray(8 + iv + n, lengths[i]).every((b) => b === 0x20), 'CBC padding is spaces');
      });
    });
  }
});

test('count limits the batch; an empty batch does nothing', () => {
  withContext(5, (context) => {
    const first = packet(HEADER, TV5_IV, INNER, 200);
    const second = packet(HEADER, TV5_IV, INNER, 200);
    const untouched = Buffer.from(second);
    const lengths = Uint32Array.of(48, 48);
    context.sealBatch([first, second], lengths, 1);
    assert.deepEqual(first.subarray(0, TV5_SEALED.length), TV5_SEALED);
    assert.deepEqual(second, untouched);
    assert.equal(lengths[1], 48);
    context.sealBatch([], new Uint32Array(0), 0);
    context.openBatch([], new Uint32Array(0), new Uint8Array(0), 0);
  });
});

test('every flipped byte of a sealed packet (header, IV, ciphertext, tag, ICV) fails the ICV and leaves the packet alone', () => {
  for (const suite of [2, 5] as const) {
    withContext(suite, (context) => {
      const iv = ivLength(suite);
      const plaintext = randomBytesFrom(prng(suite), 37);
      const clean = packet(HEADER, randomBytesFrom(prng(suite + 1), iv), plaintext, sealedLength(suite, 37));
      const lengths = Uint32Array.of(8 + iv + 37);
      context.sealBatch([clean], lengths, 1);
      const sealed = lengths[0] ?? 0;
      assert.equal(sealed, clean.length);

      for (const mask of [0x01, 0x80, 0xff]) {
        const tampered = Array.from({ length: sealed }, (_, i) => {
          const copy = Buffer.from(clean);
          copy[i] = (copy[i] ?? 0) ^ mask;
          return copy;
        });
        const before = tampered.map((p) => Buffer.from(p));
        const batch = [...tampered, Buffer.from(clean)];
        const batchLengths = new Uint32Array(batch.length).fill(sealed);
        const statuses = new Uint8Array(batch.length).fill(0xee);
        context.openBatch(batch, batchLengths, statuses, batch.length);
        tampered.forEach((p, i) => {
          assert.equal(NATIVE_OPEN_STATUS[statuses[i] ?? 0xee], 'icv-mismatch', `suite ${suite}, byte ${i} ^ ${mask}`);
          assert.equal(batchLengths[i], sealed);
          assert.deepEqual(p, before[i], 'nothing is decrypted before the ICV holds');
        });
        assert.equal(statuses[tampered.length], 0, 'the untouched packet in the same batch opens');
      }
    });
  }
});

test('suite 5: a bad GCM tag under a valid ICV is tag-mismatch, and no unauthenticated plaintext is left', () => {
  withContext(5, (context) => {
    for (const index of [20, 40, 48, 63]) {
      // 20..47 ciphertext, 48..63 tag
      const buffer = Buffer.from(TV5_SEALED);
      buffer[index] = (buffer[index] ?? 0) ^ 0x04;
      const covered = buffer.subarray(0, buffer.length - 20);
      icv(ICV_KEY, covered).copy(buffer, covered.length);
      const opened = openOne(context, buffer, buffer.length);
      assert.equal(opened.status, 'tag-mismatch', `byte ${index}`);
      assert.equal(opened.length, buffer.length);
      assert.ok(buffer.subarray(20, 48).every((b) => b === 0), 'the decrypted bytes are wiped');
    }
  });
});

test('suite 2: a ciphertext that is not whole AES blocks is bad-length, even under a valid ICV', () => {
  withContext(2, (context) => {
    for (const ciphertextLength of [1, 15, 17, 31, 33]) {
      const covered = Buffer.concat([HEADER, TV4_IV, Buffer.alloc(ciphertextLength, 0xab)]);
      const buffer = Buffer.concat([covered, icv(ICV_KEY, covered)]);
      assert.equal(openOne(context, buffer, buffer.length).status, 'bad-length', `${ciphertextLength} bytes`);
    }
  });
});

test('packets shorter than header + IV (+ tag) + ICV are too-short; the shortest sealed packet opens', () => {
  for (const suite of [2, 5] as const) {
    withContext(suite, (context) => {
      const minimum = minimumLength(suite);
      const buffer = Buffer.alloc(minimum + 10, 0x55);
      for (let length = 0; length < minimum; length++) {
        assert.equal(openOne(context, buffer, length).status, 'too-short', `suite ${suite}, ${length} bytes`);
      }
      const empty = packet(HEADER, Buffer.alloc(ivLength(suite), 7), new Uint8Array(0), minimum);
      const lengths = Uint32Array.of(8 + ivLength(suite));
      context.sealBatch([empty], lengths, 1);
      assert.equal(lengths[0], minimum);
      assert.deepEqual(openOne(context, empty, minimum), { status: 'ok', length: 8 + ivLength(suite) });
    });
  }
});

test('sealing into a buffer without room for pad + tag + ICV throws RangeError and changes nothing', () => {
  for (const suite of [2, 5] as const) {
    withContext(suite, (context) => {
      const iv = ivLength(suite);
      const roomy = packet(HEADER, Buffer.alloc(iv, 1), INNER, 200);
      const tight = packet(HEADER, Buffer.alloc(iv, 1), INNER, sealedLength(suite, INNER.length) - 1);
      const before = [Buffer.from(roomy), Buffer.from(tight)];
      const lengths = Uint32Array.of(8 + iv + INNER.length, 8 + iv + INNER.length);
      assert.throws(() => context.sealBatch([roomy, tight], lengths, 2), {
        name: 'RangeError',
        message: new RegExp(`packets\\[1\\] has ${tight.length} bytes; sealing ${8 + iv + INNER.length} bytes needs ${tight.length + 1}`),
      });
      assert.deepEqual([roomy, tight], before, 'no packet of a rejected batch is sealed');
      assert.deepEqual([...lengths], [8 + iv + INNER.length, 8 + iv + INNER.length]);
    });
  }
});

test('arguments are validated with TypeError / RangeError', () => {
  const key16 = new Uint8Array(16);
  const key20 = new Uint8Array(20);
  const bad = (value: unknown): never => value as never; // hands the native layer what TypeScript would refuse
  const construct: [() => unknown, string, RegExp][] = [
    [() => createNativeAeadContext(bad(3), key16, key20), 'RangeError', /suite must be 2 \(AES-128-CBC\) or 5 \(AES-128-GCM\), got 3/],
    [() => createNativeAeadContext(bad('5'), key16, key20), 'TypeError', /suite must be a number/],
    [() => createNativeAeadContext(5, new Uint8Array(32), key20), 'RangeError', /encryptKey must be 16 bytes, got 32/],
    [() => createNativeAeadContext(5, key16, new Uint8Array(16)), 'RangeError', /icvKey must be 20 bytes, got 16/],
    [() => createNativeAeadContext(5, bad([...key16]), key20), 'TypeError', /encryptKey must be a Uint8Array/],
    [() => createNativeAeadContext(2, key16, bad(new Uint16Array(10))), 'TypeError', /icvKey must be a Uint8Array/],
  ];
  for (const [call, name, message] of construct) assert.throws(call, { name, message });

  withContext(5, (context) => {
    const buffer = packet(HEADER, TV5_IV, INNER, 200);
    const lengths = Uint32Array.of(48);
    const statuses = new Uint8Array(1);
    const cases: [() => void, string, RegExp][] = [
      [() => context.sealBatch(bad(buffer), lengths, 1), 'TypeError', /sealBatch: packets must be an array of Uint8Array/],
      [() => context.sealBatch([bad('x')], lengths, 1), 'TypeError', /sealBatch: packets\[0\] must be a Uint8Array/],
      [() => context.sealBatch([bad(new DataView(buffer.buffer))], lengths, 1), 'TypeError', /packets\[0\] must be a Uint8Array/],
      [() => context.sealBatch([buffer], bad([48]), 1), 'TypeError', /sealBatch: lengths must be a Uint32Array/],
      [() => context.sealBatch([buffer], bad(Int32Array.of(48)), 1), 'TypeError', /lengths must be a Uint32Array/],
      [() => context.sealBatch([buffer], lengths, bad('1')), 'TypeError', /sealBatch: count must be a number/],
      [() => context.sealBatch([buffer], lengths, -1), 'RangeError', /count must be a non-negative integer, got -1/],
      [() => context.sealBatch([buffer], lengths, 0.5), 'RangeError', /count must be a non-negative integer/],
      [() => context.sealBatch([buffer], lengths, Number.NaN), 'RangeError', /count must be a non-negative integer/],
      [() => context.sealBatch([buffer], lengths, 2), 'RangeError', /sealBatch: count \(2\) exceeds packets.length \(1\)/],
      [() => context.sealBatch([buffer, buffer], lengths, 2), 'RangeError', /sealBatch: count \(2\) exceeds lengths.length \(1\)/],
      [() => context.sealBatch([buffer], Uint32Array.of(19), 1), 'RangeError', /lengths\[0\] \(19\) is shorter than LISP header \+ IV \(20\)/],
      [() => context.sealBatch([buffer], Uint32Array.of(201), 1), 'RangeError', /lengths\[0\] \(201\) exceeds packets\[0\].length \(200\)/],
      [() => context.sealBatch(bad(undefined), bad(undefined), bad(undefined)), 'TypeError', /lengths must be a Uint32Array/],
      [() => context.openBatch([buffer], lengths, bad([0]), 1), 'TypeError', /openBatch: statuses must be a Uint8Array/],
      [() => context.openBatch([buffer], lengths, bad(new Int8Array(1)), 1), 'TypeError', /statuses must be a Uint8Array/],
      [() => context.openBatch([buffer], bad(new Uint16Array(1)), statuses, 1), 'TypeError', /openBatch: lengths must be a Uint32Array/],
      [() => context.openBatch([buffer], lengths, statuses, bad(null)), 'TypeError', /openBatch: count must be a number/],
      [() => context.openBatch([buffer, buffer], Uint32Array.of(48, 48), statuses, 2), 'RangeError', /count \(2\) exceeds statuses.length \(1\)/],
      [() => context.openBatch([buffer], Uint32Array.of(201), statuses, 1), 'RangeError', /openBatch: lengths\[0\] \(201\) exceeds packets\[0\].length \(200\)/],
      [() => context.openBatch([bad(7)], lengths, statuses, 1), 'TypeError', /openBatch: packets\[0\] must be a Uint8Array/],
    ];
    for (const [call, name, message] of cases) assert.throws(call, { name, message });
    assert.deepEqual(buffer, packet(HEADER, TV5_IV, INNER, 200), 'rejected calls changed nothing');
  });
});

test('close frees the context: idempotent, and later batches throw', () => {
  const context = createNativeAeadContext(2, ENCRYPT_KEY, ICV_KEY);
  context.close();
  context.close();
  const buffer = packet(HEADER, TV4_IV, INNER, 200);
  assert.throws(() => context.sealBatch([buffer], Uint32Array.of(52), 1), { name: 'Error', message: /sealBatch: AeadContext is closed/ });
  assert.throws(() => context.openBatch([buffer], Uint32Array.of(52), new Uint8Array(1), 1), { message: /openBatch: AeadContext is closed/ });
  // Contexts left to the garbage collector are freed by their finalizer.
  for (let i = 0; i < 1000; i++) createNativeAeadContext(5, ENCRYPT_KEY, ICV_KEY);
});

test('an element getter cannot close the context or start another batch in the middle of one', () => {
  withContext(5, (context) => {
    const buffer = packet(HEADER, TV5_IV, INNER, 200);
    for (const reenter of [() => context.close(), () => context.sealBatch([buffer], Uint32Array.of(48), 1)]) {
      const packets: Uint8Array[] = [];
      Object.defineProperty(packets, 0, {
        get: () => {
          reenter();
          return buffer;
        },
      });
      assert.throws(() => context.sealBatch(packets, Uint32Array.of(48), 1), { message: /(close|sealBatch): AeadContext is busy with a batch/ });
      assert.throws(() => context.openBatch(packets, Uint32Array.of(84), new Uint8Array(1), 1), { message: /AeadContext is busy/ });
    }
    const lengths = Uint32Array.of(48);
    context.sealBatch([buffer], lengths, 1);
    assert.deepEqual(buffer.subarray(0, lengths[0]), TV5_SEALED, 'the context still works');
  });
});

test('1,000 random packets of each suite match node:crypto both ways', () => {
  const next = prng(0x1_0000);
  for (const suite of [2, 5] as const) {
    const iv = ivLength(suite);
    for (let round = 0; round < 10; round++) {
      const encryptKey = randomBytesFrom(next, 16);
      const icvKey = randomBytesFrom(next, 20);
      withContext(
        suite,
        (context) => {
          const count = 100;
          const headers = Array.from({ length: count }, () => randomBytesFrom(next, 8));
          const ivs = Array.from({ length: count }, () => randomBytesFrom(next, iv));
          const plaintexts = Array.from({ length: count }, () => randomBytesFrom(next, Math.floor(next() * (next() < 0.1 ? 9001 : 1501))));
          const expected = plaintexts.map((p, i) => referenceSeal(suite, encryptKey, icvKey, headers[i] ?? HEADER, ivs[i] ?? TV4_IV, p));

          const packets = plaintexts.map((p, i) => packet(headers[i] ?? HEADER, ivs[i] ?? TV4_IV, p, p.length + 8 + iv + 15 + 36));
          const lengths = Uint32Array.from(plaintexts, (p) => 8 + iv + p.length);
          context.sealBatch(packets, lengths, count);
          packets.forEach((p, i) => assert.deepEqual(p.subarray(0, lengths[i]), expected[i], `suite ${suite} round ${round} packet ${i}`));

          const received = expected.map((e) => Buffer.from(e));
          const receivedLengths = Uint32Array.from(expected, (e) => e.length);
          const statuses = new Uint8Array(count).fill(0xee);
          context.openBatch(received, receivedLengths, statuses, count);
          received.forEach((r, i) => {
            const n = plaintexts[i]?.length ?? 0;
            assert.equal(statuses[i], 0);
            assert.equal(receivedLengths[i], 8 + iv + n + padLength(suite, n));
            assert.deepEqual(r.subarray(8 + iv, 8 + iv + n), plaintexts[i]);
          });
        },
        encryptKey,
        icvKey,
      );
    }
  }
});

test('without the built addon, nativeAddonAvailable is false and createNativeAeadContext says how to build it', async () => {
  const compiled = fileURLToPath(new URL('../src/tun/native-aead.js', import.meta.url));
  const root = mkdtempSync(join(tmpdir(), 'lispnode-no-addon-'));
  try {
    mkdirSync(join(root, 'dist', 'src', 'tun'), { recursive: true });
    writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
    const copy = join(root, 'dist', 'src', 'tun', 'native-aead.js');
    copyFileSync(compiled, copy);
    copyFileSync(join(dirname(compiled), 'native-addon.js'), join(root, 'dist', 'src', 'tun', 'native-addon.js'));
    const module = (await import(pathToFileURL(copy).href)) as typeof NativeAeadModule;
    assert.equal(module.nativeAddonAvailable(), false);
    assert.throws(() => module.createNativeAeadContext(5, ENCRYPT_KEY, ICV_KEY), {
      name: 'Error',
      message: new RegExp(`addon is not built \\(no ${join(root, 'build', 'Release', 'lispnode_native.node').replace(/[.\\/]/g, '\\$&')}\\): run \`npm run build\``),
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
