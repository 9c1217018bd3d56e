// `lispnode lig` against a real map-server and xTRs in network namespaces: a registered EID
// (the Map-Request is forwarded to the ETR, which answers), a configured but unregistered EID
// (the map-server's negative reply), --json, and usage errors.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { NetnsLab } from '../src/node/lab/netns-lab.js';
import type { MapServerStats } from '../src/node/map-server/map-server-node.js';

const exec = promisify(execFile);
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const skip = process.getuid?.() === 0 ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';

const labs: NetnsLab[] = [];
after(async () => {
  for (const lab of labs) await lab.destroy();
});

interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** `lispnode lig …` inside `namespace`; a non-zero exit is a result, not an error. */
async function lig(namespace: string, ...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await exec('ip', ['netns', 'exec', namespace, process.execPath, CLI, 'lig', ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { status: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test('lig: positive reply from the ETR, negative reply from the map-server, --json', { skip, timeout: 120_000 }, async () => {
  const password = 'overlay-site-secret';
  const lab = await NetnsLab.create({
    nodes: [
      { name: 'x1', locator: '198.18.0.1', eids: [{ prefix: '192.0.2.0/28', address: '192.0.2.1' }] },
      { name: 'x2', locator: '198.18.0.2', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.17' }] },
    ],
    encryption: 'required',
    mapServer: {
      name: 'ms',
      locator: '198.18.0.10',
      password,
      // 192.0.2.32/28 belongs to the site but nobody registers it.
      sites: [{ name: 'overlay', keys: [{ 'key-id': 0, password }], prefixes: [{ prefix: '192.0.2.0/28' }, { prefix: '192.0.2.16/28' }, { prefix: '192.0.2.32/28' }] }],
    },
  });
  labs.push(lab);
  for (let i = 0; i < 50 && (await lab.stats<MapServerStats>('ms')).registrations < 2; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal((await lab.stats<MapServerStats>('ms')).registrations, 2);
  const x1 = lab.node('x1').namespace;

  const positive = await lig(x1, '192.0.2.17', '--map-resolver', '198.18.0.10');
  assert.equal(positive.status, 0, positive.stdout + positive.stderr);
  const lines = positive.stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^lig 192\.0\.2\.17 via map-resolver 198\.18\.0\.10, from 198\.18\.0\.1:\d+$/);
  assert.match(lines[1] ?? '', /^Map-Reply from 198\.18\.0\.2:4342, nonce 0x[0-9a-f]{16}, rtt \d+\.\d{3} ms \(attempt 1 of 3\), positive, 1 record$/);
  assert.equal(lines[2], 'EID-prefix 192.0.2.16/28, ttl 1440 min, A');
  assert.equal(lines[3], '  locator 198.18.0.2, priority 1, weight 100, flags LR, security-key no');
  assert.equal(lines.length, 4);

  const negative = await lig(x1, '192.0.2.33', '--map-resolver', '198.18.0.10', '--count', '1');
  assert.equal(negative.status, 1, negative.stdout + negative.stderr);
  assert.match(negative.stdout, /^Map-Reply from 198\.18\.0\.10:4342, nonce 0x[0-9a-f]{16}, rtt [\d.]+ ms \(attempt 1 of 1\), negative, 1 record$/m);
  assert.match(negative.stdout, /^EID-prefix 192\.0\.2\.32\/28, ttl 1 min, negative, action natively-forward$/m);
  assert.doesNotMatch(negative.stdout, /locator/);

  const json = await lig(x1, '192.0.2.17', '--map-resolver', '198.18.0.10', '--json');
  assert.equal(json.status, 0, json.stdout + json.stderr);
  assert.equal(json.stdout.trim().split('\n').length, 1, 'one JSON object');
  const object = JSON.parse(json.stdout) as {
    result: string;
    from: string;
    source: string;
    rttMs: number;
    nonce: string;
    records: { eidPrefix: string; iid: number; ttl: { minutes?: number }; authoritative: boolean; negative: boolean; action: string; locators: { address: string; priority: number; weight: number; local: boolean; reachable: boolean; securityKey: unknown }[] }[];
    mapReply: { type: string; nonce: string };
  };
  assert.equal(object.result, 'positive');
  assert.equal(object.from, '198.18.0.2');
  assert.equal(object.source, '198.18.0.1');
  assert.ok(object.rttMs > 0 && object.rttMs < 2000, `rtt ${object.rttMs}`);
  assert.equal(object.mapReply.type, 'map-reply');
  assert.equal(object.mapReply.nonce, object.nonce);
  assert.deepEqual(object.records, [
    {
      eidPrefix: '192.0.2.16/28',
      iid: 0,
      ttl: { minutes: 1440 },
      authoritative: true,
      negative: false,
      action: 'no-action',
      locators: [{ address: '198.18.0.2', priority: 1, weight: 100, multicastPriority: 255, multicastWeight: 0, local: true, probed: false, reachable: true, securityKey: null }],
    },
  ]);

  const negativeJson = await lig(x1, '192.0.2.33', '--map-resolver', '198.18.0.10', '--json');
  assert.equal(negativeJson.status, 1);
  const n = JSON.parse(negativeJson.stdout) as { result: string; records: { eidPrefix: string; negative: boolean; action: string }[] };
  assert.equal(n.result, 'negative');
  assert.deepEqual(n.records.map((r) => [r.eidPrefix, r.negative, r.action]), [['192.0.2.32/28', true, 'natively-forward']]);

  // No map-resolver at that address: every attempt times out.
  const silent = await lig(x1, '192.0.2.17', '--map-resolver', '198.18.0.99', '--count', '2', '--timeout', '200');
  assert.equal(silent.status, 1);
  assert.match(silent.stdout, /^no Map-Reply after 2 attempts of 200 ms/m);

  const counters = (await lab.stats<MapServerStats>('ms')).counters;
  assert.ok((counters['reply-forwarded'] ?? 0) >= 2 && (counters['negative-not-registered'] ?? 0) >= 2, JSON.stringify(counters));

  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), []);
  labs.splice(labs.indexOf(lab), 1);
});

test('lig: usage errors exit 2', () => {
  for (const [args, message] of [
    [['192.0.2.999', '--map-resolver', '198.18.0.10'], /<eid>: expected an IPv4 or IPv6 address/],
    [['192.0.2.17'], /required option '--map-resolver <address>'/],
    [['192.0.2.17', '--map-resolver', '198.18.0.10', '--bogus'], /unknown option '--bogus'/],
    [['192.0.2.17', '--map-resolver', 'resolver'], /--map-resolver: expected an IPv4 or IPv6 address/],
    [['192.0.2.17', '--map-resolver', '198.18.0.10', '--source', '2001:db8::1'], /--source 2001:db8::1: not of the map-resolver's address family/],
    [['192.0.2.17', '--map-resolver', '198.18.0.10', '--count', '0'], /--count: expected an integer 1\.\.100/],
    [['192.0.2.17', '--map-resolver', '198.18.0.10', '--key', '/nonexistent/key.pem'], /--key \/nonexistent\/key\.pem: expected a P-256 private key/],
  ] as const) {
    const r = spawnSync(process.execPath, [CLI, 'lig', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
