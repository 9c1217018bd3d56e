// A short run of the fuzz harness inside `npm test`; `npm run fuzz` does the long one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzz } from './fuzz/harness.js';

test('20,000 mutated and random inputs: no decoder throws, and both outcomes occur', () => {
  const report = fuzz({ inputs: 20_000, seed: 20261128 });
  assert.deepEqual(report.escapes, []);
  assert.ok(report.accepted > 1000, `accepted ${report.accepted}`);
  const rejections = Object.values(report.rejected).reduce((a, b) => a + b, 0);
  assert.ok(rejections > 10_000, `rejected ${rejections}`);
  // Mutations must reach deep into the codec, not only trip the first length check.
  for (const reason of ['control:truncated', 'control:bad-afi', 'control:bad-lcaf-length', 'control:bad-type', 'control:bad-checksum', 'eidRecord:truncated']) {
    assert.ok((report.rejected[reason] ?? 0) > 0, `no input was rejected with ${reason}`);
  }
});
