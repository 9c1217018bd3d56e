// EVE's attestation state machine, driven event by event: the happy path, retries every 15 s
// after each kind of failure, a 403 restart (deferred while a round is in flight), and the
// token kept only while the last attestation stands.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ATTEST_RETRY_MS, AttestationFsm, type AttestAction } from '../src/control/attest/attestation-fsm.js';

const types = (actions: readonly AttestAction[]): string[] => actions.filter((a) => a.type !== 'log').map((a) => a.type);
const token = Uint8Array.of(1, 2, 3);
const nonce = new Uint8Array(32).fill(9);

function attested(fsm: AttestationFsm, now = 0): void {
  fsm.handle({ type: 'start' }, now);
  fsm.handle({ type: 'nonce', nonce }, now);
  fsm.handle({ type: 'quote', quote: 'q' }, now);
  fsm.handle({ type: 'verdict', verdict: { kind: 'success', token, keys: [] } }, now);
  fsm.handle({ type: 'escrowed' }, now);
}

test('nonce → quote → verdict → escrow → complete, with the token kept', () => {
  const fsm = new AttestationFsm();
  assert.deepEqual(types(fsm.handle({ type: 'start' }, 0)), ['request-nonce']);
  const quote = fsm.handle({ type: 'nonce', nonce }, 0);
  assert.deepEqual(quote, [{ type: 'make-quote', nonce }]);
  assert.deepEqual(types(fsm.handle({ type: 'quote', quote: 'q' }, 0)), ['send-quote']);
  const keys = [Uint8Array.of(7)];
  assert.deepEqual(fsm.handle({ type: 'verdict', verdict: { kind: 'success', token, keys } }, 0), [
    { type: 'deliver-keys', keys },
    { type: 'escrow', token },
  ]);
  assert.equal(fsm.integrityToken, token);
  assert.deepEqual(types(fsm.handle({ type: 'escrowed' }, 0)), []);
  assert.deepEqual({ phase: fsm.state.phase, attested: fsm.state.attested, successes: fsm.state.successes }, { phase: 'complete', attested: true, successes: 1 });
  assert.equal(fsm.wakeAt, undefined);
});

test('a refused quote drops the token and retries from a fresh nonce after 15 s', () => {
  const fsm = new AttestationFsm();
  attested(fsm);
  fsm.handle({ type: 'restart', why: '403' }, 1000);
  fsm.handle({ type: 'nonce', nonce }, 1000);
  fsm.handle({ type: 'quote', quote: 'q' }, 1000);
  const refused = fsm.handle({ type: 'verdict', verdict: { kind: 'refused', code: 'quote-failed', detail: 'PCR 14' } }, 1000);
  assert.match(refused.find((a) => a.type === 'log')?.type === 'log' ? (refused[0] as { message: string }).message : '', /refused the quote \(quote-failed\): PCR 14/);
  assert.equal(fsm.integrityToken, undefined, 'no token after a refusal');
  assert.equal(fsm.wakeAt, 1000 + ATTEST_RETRY_MS);
  assert.deepEqual(types(fsm.handle({ type: 'tick' }, 1000 + ATTEST_RETRY_MS - 1)), [], 'not before 15 s');
  assert.deepEqual(types(fsm.handle({ type: 'tick' }, 1000 + ATTEST_RETRY_MS)), ['request-nonce']);
  assert.equal(fsm.state.attempts, 3);
});

test('network failures at each step retry; a failed escrow keeps the token and retries only the escrow', () => {
  for (const step of ['nonce', 'quote', 'verdict'] as const) {
    const fsm = new AttestationFsm();
    fsm.handle({ type: 'start' }, 0);
    if (step !== 'nonce') fsm.handle({ type: 'nonce', nonce }, 0);
    if (step === 'verdict') fsm.handle({ type: 'quote', quote: 'q' }, 0);
    fsm.handle({ type: 'failed', step, detail: 'ECONNREFUSED' }, 0);
    assert.equal(fsm.state.phase, 'retry-wait', step);
    assert.match(fsm.state.lastError ?? '', new RegExp(`${step}: ECONNREFUSED`));
    assert.deepEqual(types(fsm.handle({ type: 'tick' }, ATTEST_RETRY_MS)), ['request-nonce'], step);
  }
  const fsm = new AttestationFsm();
  fsm.handle({ type: 'start' }, 0);
  fsm.handle({ type: 'nonce', nonce }, 0);
  fsm.handle({ type: 'quote', quote: 'q' }, 0);
  fsm.handle({ type: 'verdict', verdict: { kind: 'success', token, keys: [] } }, 0);
  fsm.handle({ type: 'failed', step: 'escrow', detail: 'timeout' }, 0);
  assert.equal(fsm.integrityToken, token);
  assert.deepEqual(fsm.handle({ type: 'tick' }, ATTEST_RETRY_MS), [{ type: 'escrow', token }]);
  fsm.handle({ type: 'escrowed' }, ATTEST_RETRY_MS);
  assert.equal(fsm.state.phase, 'complete');
});

test('an escrow refused for a stale token starts over', () => {
  const fsm = new AttestationFsm();
  fsm.handle({ type: 'start' }, 0);
  fsm.handle({ type: 'nonce', nonce }, 0);
  fsm.handle({ type: 'quote', quote: 'q' }, 0);
  fsm.handle({ type: 'verdict', verdict: { kind: 'success', token, keys: [] } }, 0);
  fsm.handle({ type: 'escrow-refused', detail: 'ITOKEN_MISMATCH' }, 0);
  assert.equal(fsm.integrityToken, undefined);
  assert.deepEqual(types(fsm.handle({ type: 'tick' }, ATTEST_RETRY_MS)), ['request-nonce']);
});

test('a 403 while a round is in flight is honoured when it completes; stale events are ignored', () => {
  const fsm = new AttestationFsm();
  fsm.handle({ type: 'start' }, 0);
  assert.deepEqual(fsm.handle({ type: 'restart', why: '403' }, 0), [], 'deferred');
  assert.deepEqual(fsm.handle({ type: 'quote', quote: 'early' }, 0), [], 'a quote before a nonce is ignored');
  fsm.handle({ type: 'nonce', nonce }, 0);
  fsm.handle({ type: 'quote', quote: 'q' }, 0);
  fsm.handle({ type: 'verdict', verdict: { kind: 'success', token, keys: [] } }, 0);
  assert.deepEqual(types(fsm.handle({ type: 'escrowed' }, 0)), ['request-nonce'], 'the pending restart runs at completion');
  assert.deepEqual(fsm.handle({ type: 'start' }, 0), [], 'start is only for an idle machine');
  assert.deepEqual(fsm.handle({ type: 'escrowed' }, 0), [], 'an escrow answer out of turn is ignored');
});
