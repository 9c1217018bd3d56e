// Data-plane sealing + opening through the sessions, per backend: node:crypto (a cipher object
// per packet) as the baseline, the addon (one OpenSSL context per key) as the subject.
import { randomBytes } from 'node:crypto';
import { nodeCipherBackend, OpeningSession, SealingSession, suiteLayout, type CipherBackend, type CipherSuite } from '../src/crypto/index.js';
import { nativeCipherBackend } from '../src/node/cipher-backends.js';
import { compare, type Case } from './measure.js';

const BATCH = 64;

/** One case: seal a batch of 64 packets, then open it, as many times as needed for n packets. */
function sealOpen(backend: CipherBackend, suite: CipherSuite, size: number): Case {
  const key = { keyId: 1 as const, suite, keys: { encryptKey: randomBytes(16), icvKey: randomBytes(20) }, salt: randomBytes(8), now: 0 };
  const seal = new SealingSession(backend);
  const open = new OpeningSession(backend);
  seal.install(key);
  open.install(key);
  const iv = suiteLayout(suite).ivLength;
  const packets = Array.from({ length: BATCH }, () => {
    const b = new Uint8Array(8 + iv + size + 64);
    b[0] = 0x88;
    b.set(randomBytes(size), 8 + iv);
    return b;
  });
  const lengths = new Uint32Array(BATCH);
  const statuses = new Uint8Array(BATCH);
  return {
    name: `${backend.name}, suite ${suite}, ${size} B`,
    run(n) {
      for (let done = 0; done < n; done += BATCH) {
        lengths.fill(8 + iv + size);
        seal.sealBatch(packets, lengths, BATCH);
        open.openBatch(packets, lengths, statuses, BATCH, 0);
        if (statuses[0] !== 0) throw new Error('benchmark packet did not open');
      }
    },
  };
}

export function cipherBenchmarks(print: (line: string) => void): void {
  for (const suite of [5, 2] as const) {
    for (const size of [64, 512, 1400]) {
      compare(`seal+open, suite ${suite}, ${size}-byte packets (packets/s)`, sealOpen(nodeCipherBackend, suite, size), sealOpen(nativeCipherBackend, suite, size), BATCH * 400, print);
    }
  }
}
