// DaemonMetrics: collect-at-scrape gauges and counters, histograms, the extra-gauge API other
// components use, one registry per daemon (never prom-client's global one), and the HTTP endpoint.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { register } from 'prom-client';
import { DaemonMetrics, labelled } from '../src/node/ops/metrics.js';

/** The value of one sample line `name{labels} value` in exposition text. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

test('gauges and counters are read from their collect functions at every scrape', async () => {
  const m = new DaemonMetrics();
  let drops = { 'etr-truncated': 2, 'itr-no-key': 0 };
  let size = 3;
  m.counter('lispnode_test_drops_total', 'drops', ['reason'], () => labelled('reason', drops));
  m.gauge('lispnode_test_size', 'size', [], () => size);
  let text = await m.text();
  assert.match(text, /# TYPE lispnode_test_drops_total counter/);
  assert.match(text, /# TYPE lispnode_test_size gauge/);
  assert.equal(sample(text, 'lispnode_test_drops_total', 'reason="etr-truncated"'), 2);
  assert.equal(sample(text, 'lispnode_test_drops_total', 'reason="itr-no-key"'), 0);
  assert.equal(sample(text, 'lispnode_test_size'), 3);
  drops = { 'etr-truncated': 7, 'itr-no-key': 1 };
  size = 1;
  text = await m.text();
  assert.equal(sample(text, 'lispnode_test_drops_total', 'reason="etr-truncated"'), 7, 'the absolute total, not an increment');
  assert.equal(sample(text, 'lispnode_test_drops_total', 'reason="itr-no-key"'), 1);
  assert.equal(sample(text, 'lispnode_test_size'), 1);
});

test('the extra-gauge API: labelled samples, series that vanish when no longer collected', async () => {
  const m = new DaemonMetrics();
  let state = 'attested';
  m.gauge('lispnode_attestation_state', 'attestation state (1 = the labelled one)', ['state'], () => [[{ state }, 1]]);
  assert.equal(sample(await m.text(), 'lispnode_attestation_state', 'state="attested"'), 1);
  state = 'failed';
  const text = await m.text();
  assert.equal(sample(text, 'lispnode_attestation_state', 'state="failed"'), 1);
  assert.equal(sample(text, 'lispnode_attestation_state', 'state="attested"'), undefined);
  assert.throws(() => m.gauge('bad name', 'x', [], () => 0), /metric name/);
});

test('histograms count observations into buckets', async () => {
  const m = new DaemonMetrics();
  const observe = m.histogram('lispnode_test_latency_seconds', 'latency', ['kind'], [0.001, 0.01, 0.1]);
  observe({ kind: 'map-request' }, 0.0005);
  observe({ kind: 'map-request' }, 0.05);
  observe({ kind: 'rloc-probe' }, 0.002);
  const text = await m.text();
  assert.equal(sample(text, 'lispnode_test_latency_seconds_bucket', 'le="0.001",kind="map-request"'), 1);
  assert.equal(sample(text, 'lispnode_test_latency_seconds_bucket', 'le="0.1",kind="map-request"'), 2);
  assert.equal(sample(text, 'lispnode_test_latency_seconds_count', 'kind="map-request"'), 2);
  assert.equal(sample(text, 'lispnode_test_latency_seconds_count', 'kind="rloc-probe"'), 1);
});

test('each daemon has its own registry: two never mix, the global one stays empty', async () => {
  const a = new DaemonMetrics();
  const b = new DaemonMetrics();
  a.gauge('lispnode_same_name', 'x', [], () => 1);
  b.gauge('lispnode_same_name', 'x', [], () => 2);
  assert.equal(sample(await a.text(), 'lispnode_same_name'), 1);
  assert.equal(sample(await b.text(), 'lispnode_same_name'), 2);
  assert.equal(register.getSingleMetric('lispnode_same_name'), undefined);
});

test('the HTTP endpoint serves GET /metrics on the address asked for, 404 elsewhere', async () => {
  const m = new DaemonMetrics();
  let n = 0;
  m.counter('lispnode_test_scrapes_total', 'scrapes', [], () => ++n);
  const server = await m.serve('127.0.0.1', 0);
  try {
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    const first = await fetch(`http://${server.address}/metrics`);
    assert.equal(first.status, 200);
    assert.match(first.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(await first.text(), 'lispnode_test_scrapes_total'), 1);
    assert.equal(sample(await (await fetch(`http://${server.address}/metrics`)).text(), 'lispnode_test_scrapes_total'), 2);
    assert.equal((await fetch(`http://${server.address}/`)).status, 404);
    assert.equal((await fetch(`http://${server.address}/metrics`, { method: 'POST' })).status, 404);
  } finally {
    await server.close();
  }
  await assert.rejects(fetch(`http://${server.address}/metrics`), 'closed');
});

test('registering a metric name again replaces it (a component restarted in the same process)', async () => {
  const metrics = new DaemonMetrics();
  metrics.gauge('lispnode_test_restarted', 'a gauge', [], () => 1);
  metrics.gauge('lispnode_test_restarted', 'a gauge', [], () => 2);
  assert.match(await metrics.text(), /^lispnode_test_restarted 2$/m);
});
