// Deterministic input mutation for the fuzz harness: a seeded PRNG and the classic byte-level
// mutators (flip, set, insert, delete, truncate, extend, splice, length-field boundaries).
export { prng } from '../support/prng.js';

export type Random = () => number;

const int = (random: Random, n: number): number => Math.floor(random() * n);

function randomBytes(random: Random, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = int(random, 256);
  return out;
}

/** Values that sit on the edges of 8- and 16-bit length and count fields. */
const BOUNDARY_16 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4003, 0x7fff, 0x8000, 0xfffe, 0xffff];

type Mutator = (input: Uint8Array, random: Random, seeds: readonly Uint8Array[]) => Uint8Array;

const MUTATORS: readonly Mutator[] = [
  function flipBit(input, random) {
    if (input.length === 0) return input;
    const out = input.slice();
    const i = int(random, out.length);
    out[i] = (out[i] ?? 0) ^ (1 << int(random, 8));
    return out;
  },
  function setByte(input, random) {
    if (input.length === 0) return input;
    const out = input.slice();
    out[int(random, out.length)] = int(random, 256);
    return out;
  },
  function setBoundary16(input, random) {
    if (input.length < 2) return input;
    const out = input.slice();
    const i = int(random, out.length - 1);
    const v = BOUNDARY_16[int(random, BOUNDARY_16.length)] ?? 0;
    out[i] = v >> 8;
    out[i + 1] = v & 0xff;
    return out;
  },
  function insertBytes(input, random) {
    const at = int(random, input.length + 1);
    const n = 1 + int(random, 8);
    const out = new Uint8Array(input.length + n);
    out.set(input.subarray(0, at));
    out.set(randomBytes(random, n), at);
    out.set(input.subarray(at), at + n);
    return out;
  },
  function deleteBytes(input, random) {
    if (input.length === 0) return input;
    const at = int(random, input.length);
    const n = 1 + int(random, Math.min(8, input.length - at));
    const out = new Uint8Array(input.length - n);
    out.set(input.subarray(0, at));
    out.set(input.subarray(at + n), at);
    return out;
  },
  function truncate(input, random) {
    return input.slice(0, int(random, input.length + 1));
  },
  function extend(input, random) {
    const out = new Uint8Array(input.length + 1 + int(random, 32));
    out.set(input);
    out.set(randomBytes(random, out.length - input.length), input.length);
    return out;
  },
  function splice(input, random, seeds) {
    const other = seeds[int(random, seeds.length)] ?? input;
    const cut = int(random, input.length + 1);
    const from = int(random, other.length + 1);
    const out = new Uint8Array(cut + other.length - from);
    out.set(input.subarray(0, cut));
    out.set(other.subarray(from), cut);
    return out;
  },
  function duplicateChunk(input, random) {
    if (input.length === 0) return input;
    const at = int(random, input.length);
    const n = 1 + int(random, Math.min(32, input.length - at));
    const out = new Uint8Array(input.length + n);
    out.set(input.subarray(0, at + n));
    out.set(input.subarray(at, at + n), at + n);
    out.set(input.subarray(at + n), at + 2 * n);
    return out;
  },
];

/** One fuzz input: mostly stacked mutations of a seed, sometimes plain random bytes. */
export function nextInput(random: Random, seeds: readonly Uint8Array[]): Uint8Array {
  if (random() < 0.05 || seeds.length === 0) return randomBytes(random, int(random, 128));
  let input = seeds[int(random, seeds.length)] ?? new Uint8Array();
  const rounds = 1 + int(random, 4);
  for (let i = 0; i < rounds; i++) input = (MUTATORS[int(random, MUTATORS.length)] ?? MUTATORS[0]!)(input, random, seeds);
  return input;
}
