// What the node's TPM operations cost through tpm2-tools against swtpm (issues 6–7): each
// operation the node uses, timed as the node runs it (a tool process per call, transient
// contexts flushed after each), against a same-run baseline of one bare process spawn
// (`tpm2_getrandom --version`'s cost is almost all spawn). Medians of 7 interleaved runs after a
// warm-up. Real TPM chips are slower per command than swtpm; the spawn share here is the
// adapter's own overhead.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { ATTESTATION_KEY_HANDLE, DEVICE_KEY_HANDLE, Tpm } from '../src/control/tpm/index.js';
import { VAULT_SEAL_PCRS } from '../src/control/vault/index.js';
import { startSwtpm, swtpmMissing } from '../src/node/lab/swtpm.js';

const exec = promisify(execFile);
const RUNS = 7;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function tpmBenchmarks(print: (line: string) => void): Promise<'ok' | 'skipped'> {
  print('TPM operations through tpm2-tools against swtpm (ms per operation; medians of 7 interleaved runs)');
  const missing = swtpmMissing();
  if (missing !== undefined) {
    print(`  skipped: ${missing}`);
    return 'skipped';
  }
  const swtpm = await startSwtpm();
  try {
    const tpm = await Tpm.open(swtpm.tcti);
    const auth = createHash('sha256').update('bench trust binding').digest();
    await tpm.createPersistentEccKey(DEVICE_KEY_HANDLE, 'device', auth);
    await tpm.createPersistentEccKey(ATTESTATION_KEY_HANDLE, 'attestation');
    for (const pcr of [0, 4]) await tpm.pcrExtend(pcr, createHash('sha256').update(`boot ${pcr}`).digest());
    const digest = createHash('sha256').update('a controller request').digest();
    const blob = await tpm.seal(randomBytes(32), VAULT_SEAL_PCRS);
    const counter = 0x01500900;
    await tpm.defineCounter(counter);
    const cases: readonly (readonly [string, () => Promise<unknown>])[] = [
      ['GetRandom(32)', () => tpm.random(32)],
      ['sign a digest with the device key (authorized)', () => tpm.signDigest(DEVICE_KEY_HANDLE, digest, auth)],
      ['PCR extend', () => tpm.pcrExtend(16, digest)],
      ['quote PCRs 0-15 with a nonce', () => tpm.quote(ATTESTATION_KEY_HANDLE, Array.from({ length: 16 }, (_, i) => i), randomBytes(32))],
      ['seal 32 bytes to 14 PCRs (2 chained PolicyPCR)', () => tpm.seal(randomBytes(32), VAULT_SEAL_PCRS)],
      ['unseal (policy session, 2 PolicyPCR)', () => tpm.unseal(blob)],
      ['NV counter increment', () => tpm.incrementCounter(counter)],
    ];
    const spawn = (): Promise<unknown> => exec('tpm2_getrandom', ['--version']);
    // Warm-up: one of each.
    await spawn();
    for (const [, run] of cases) await run();
    const base: number[] = [];
    const times = cases.map(() => [] as number[]);
    for (let i = 0; i < RUNS; i++) {
      base.push(await timed(spawn));
      for (const [j, [, run]] of cases.entries()) times[j]?.push(await timed(run));
    }
    const spawnMs = median(base);
    print(`  baseline ${'one tpm2-tools process spawn (--version)'.padEnd(50)} ${spawnMs.toFixed(1).padStart(7)} ms`);
    for (const [j, [name]] of cases.entries()) {
      const ms = median(times[j] ?? []);
      print(`  subject  ${name.padEnd(50)} ${ms.toFixed(1).padStart(7)} ms   (${(ms / spawnMs).toFixed(1)}x a spawn)`);
    }
    return 'ok';
  } finally {
    await swtpm.stop();
  }
}
