// The anti-replay window against a reference model (a set of everything accepted and the
// highest counter), over random sequences with jumps, reordering and duplicates.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ReplayWindow } from '../src/crypto/replay-window.js';

function model(size: number): (counter: number) => boolean {
  const seen = new Set<number>();
  let highest = -1;
  return (counter) => {
    if (seen.has(counter) || (highest >= 0 && highest - counter >= size)) return false;
    seen.add(counter);
    highest = Math.max(highest, counter);
    return true;
  };
}

test('ReplayWindow agrees with the reference model', () => {
  const step = fc.oneof(fc.integer({ min: -70, max: 70 }), fc.integer({ min: -3000, max: 3000 }), fc.constant(0));
  fc.assert(
    fc.property(fc.constantFrom(32, 64, 2048), fc.array(step, { maxLength: 400 }), (size, steps) => {
      const window = new ReplayWindow(size);
      const reference = model(size);
      let counter = 5000;
      for (const s of steps) {
        counter = Math.max(0, counter + s);
        const verdict = window.check(counter);
        const accepted = window.accept(counter);
        assert.equal(accepted, reference(counter), `counter ${counter}`);
        assert.equal(verdict === 'fresh', accepted);
      }
    }),
    { numRuns: 300 },
  );
});

test('ReplayWindow edges: the first counter, exact window size, huge jumps', () => {
  const w = new ReplayWindow(64);
  assert.equal(w.check(0), 'fresh');
  assert.ok(w.accept(0));
  assert.equal(w.check(0), 'replayed');
  assert.ok(w.accept(63));
  assert.equal(w.check(0), 'replayed');
  assert.ok(w.accept(64));
  assert.equal(w.check(0), 'too-old');
  assert.equal(w.check(1), 'fresh');
  assert.ok(w.accept(2 ** 52));
  assert.equal(w.check(64), 'too-old');
  assert.equal(w.check(2 ** 52 - 63), 'fresh');
  assert.equal(w.check(2 ** 52), 'replayed');
  assert.throws(() => new ReplayWindow(33), RangeError);
});
