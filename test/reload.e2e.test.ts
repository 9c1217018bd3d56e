// SIGHUP reloads, in namespaces: a map-server and two xTRs with encrypted sessions. An invalid
// file and a change that needs a restart are refused (logged, nothing changes); a reload that adds
// one local EID and removes another registers the new one and deregisters the old one at the
// map-server, solicits the ITR that cached the old one, and carries data to the new EID — while
// the process, its TUN and the established session (key-id, key, packet counter) carry on. The
// map-server reloads its sites the same way: a narrower site drops what it no longer admits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { nodeCipherBackend } from '../src/crypto/node-cipher-backend.js';
import type { ItrPeer } from '../src/lisp/itr.js';
import { MapCache } from '../src/lisp/map-cache.js';
import { parsePrefix } from '../src/lisp/prefix.js';
import { loadXtrConfig, type XtrConfig } from '../src/node/config/xtr-config.js';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import { createLogger } from '../src/node/log.js';
import type { MapServerStatusReport, SessionRow, XtrStatusReport } from '../src/node/ops/status-report.js';
import { newDataKey } from '../src/node/xtr/data-key.js';
import { StaticMappings } from '../src/node/xtr/static-mappings.js';
import { diffXtrConfig } from '../src/node/xtr/xtr-reload.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';
const labs: NetnsLab[] = [];
const dir = mkdtempSync(join(tmpdir(), 'lispnode-reload-'));
after(async () => {
  for (const lab of labs) await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** An xTR configuration: the base below with `extra` YAML appended. */
function xtrConfig(extra: string, base = 'tun: { name: lisp0 }\nunderlay: { address: 198.18.0.1 }\n'): XtrConfig {
  const file = join(dir, `x${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, base + extra);
  return loadXtrConfig(file);
}

test('the reload difference: restart-only settings, applied ones, EIDs and map-servers line by line', () => {
  const base = xtrConfig('local-eids: [ { prefix: 192.0.2.0/28 }, { prefix: "2001:db8:1::/64" } ]\nmap-servers: [ { address: 198.18.0.10, key: { key-id: 0, password: one } } ]\n');
  const same = diffXtrConfig(base, xtrConfig('local-eids: [ { prefix: 192.0.2.0/28 }, { prefix: "2001:db8:1::/64" } ]\nmap-servers: [ { address: 198.18.0.10, key: { key-id: 0, password: one } } ]\n'));
  assert.deepEqual([same.restart, same.changes, same.details], [[], [], []]);
  const moved = diffXtrConfig(
    base,
    xtrConfig(
      'local-eids: [ { prefix: 192.0.2.0/28, address: 192.0.2.1 }, { prefix: 192.0.2.32/28 } ]\nmap-servers: [ { address: 198.18.0.10, key: { key-id: 0, password: two } }, { address: 198.18.0.11, key: { key-id: 0, password: x } } ]\nmap-resolvers: []\n',
    ),
  );
  assert.deepEqual(moved.restart, []);
  assert.deepEqual(moved.changes, ['/local-eids', '/map-servers']);
  assert.deepEqual(moved.details, [
    'local-eid -[0]2001:db8:1::/64',
    'local-eid ~[0]192.0.2.0/28 (address none -> 192.0.2.1)',
    'local-eid +[0]192.0.2.32/28',
    'map-server +198.18.0.11:4342',
    'map-server ~198.18.0.10:4342 (key or flags)',
  ]);
  assert.ok(!moved.details.join().includes('two'), 'no key in the lines');
  assert.deepEqual(moved.removedEids.map((p) => p.length), [64]);
  const restart = diffXtrConfig(base, xtrConfig('local-eids: [ { prefix: 192.0.2.0/28 } ]\nmap-resolvers: [ { address: 198.18.0.10 } ]\ninstance-id: 7\n', 'tun: { name: lisp1, mtu: 1300 }\nunderlay: { address: 198.18.0.9, mtu: 1400 }\n'));
  assert.deepEqual(restart.restart, ['/tun/name', '/tun/mtu', '/underlay/address', '/underlay/mtu', '/instance-id', '/map-resolvers']);
});

test('static mappings: a reload keeps unchanged peers (their sessions), replaces re-keyed ones, adds and removes entries', () => {
  newDataKey(join(dir, 'node.key'));
  const keyOf = (name: string): string => newDataKey(join(dir, `${name}-${Math.random().toString(36).slice(2)}.key`));
  const [k2, k2b, k3] = [keyOf('p2'), keyOf('p2b'), keyOf('p3')];
  const config = (entries: string, peers: string): XtrConfig =>
    xtrConfig(`local-eids: [ { prefix: 192.0.2.0/28 } ]\nmap-cache: [ ${entries} ]\nencryption: { mode: required, backend: node, private-key-file: node.key, peers: [ ${peers} ] }\n`);
  const e2 = '{ prefix: 192.0.2.16/28, locators: [ { address: 198.18.0.2 } ] }';
  const e3 = '{ prefix: 192.0.2.32/28, locators: [ { address: 198.18.0.3 }, { address: 198.18.0.2, priority: 2 } ] }';
  const cache = new MapCache<ItrPeer>();
  const lines: string[] = [];
  const statics = new StaticMappings(cache, nodeCipherBackend, createLogger({ write: (l) => lines.push(l) }));
  const stateAt = (prefix: string): (ItrPeer | undefined)[] => {
    const e = cache.get(parsePrefix(prefix) ?? assert.fail(prefix));
    return e?.kind === 'positive' ? e.locators.map((l) => l.state) : [];
  };
  assert.deepEqual(statics.apply(config(e2, `{ locator: 198.18.0.2, public-key: "${k2}" }`), 0), ['static peer +198.18.0.2', 'map-cache +[0]192.0.2.16/28']);
  const first = statics.peers.get('198.18.0.2');
  assert.ok(first?.itr.sealing && stateAt('192.0.2.16/28')[0] === first.itr);
  // Unchanged: nothing happens, the very same peer (and session) stays.
  assert.deepEqual(statics.apply(config(e2, `{ locator: 198.18.0.2, public-key: "${k2}" }`), 1), []);
  assert.equal(statics.peers.get('198.18.0.2'), first);
  // A new entry with a new locator (no key: warned) and the old locator: the old peer stays.
  assert.deepEqual(statics.apply(config(`${e2}, ${e3}`, `{ locator: 198.18.0.2, public-key: "${k2}" }`), 2), ['static peer +198.18.0.3', 'map-cache +[0]192.0.2.32/28']);
  assert.equal(statics.peers.get('198.18.0.2'), first);
  assert.match(lines.join(), /no public key for a locator.*198\.18\.0\.3/);
  assert.deepEqual(stateAt('192.0.2.32/28'), [statics.peers.get('198.18.0.3')?.itr, first.itr]);
  // Re-keyed: a new peer, every locator pointing at it, the old sessions closed.
  assert.deepEqual(statics.apply(config(`${e2}, ${e3}`, `{ locator: 198.18.0.2, public-key: "${k2b}" }, { locator: 198.18.0.3, public-key: "${k3}" }`), 3), ['static peer ~198.18.0.2', 'static peer ~198.18.0.3']);
  const second = statics.peers.get('198.18.0.2');
  assert.ok(second && second !== first && first.itr.sealing?.current === undefined, 'old sealing closed');
  assert.deepEqual(stateAt('192.0.2.16/28'), [second.itr]);
  assert.equal(stateAt('192.0.2.32/28')[1], second.itr);
  // Removed: the entry and the peer nobody points at any more.
  assert.deepEqual(statics.apply(config(e2, `{ locator: 198.18.0.2, public-key: "${k2b}" }`), 4), ['static peer -198.18.0.3', 'map-cache -[0]192.0.2.32/28']);
  assert.equal(cache.get(parsePrefix('192.0.2.32/28') ?? assert.fail()), undefined);
  assert.equal(statics.peers.get('198.18.0.2'), second);
  statics.close();
  assert.equal([...statics.peers.all()].length, 0);
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string): Promise<T> {
  let value = await read();
  for (let i = 0; i < 50 && !ok(value); i++) {
    await sleep(100);
    value = await read();
  }
  assert.ok(ok(value), `${what}: ${JSON.stringify(value)}`);
  return value;
}

function session(s: XtrStatusReport, peer: string, direction: 'in' | 'out'): SessionRow {
  const row = s.sessions.find((x) => x.peer === peer && x.direction === direction && x.origin === 'exchanged');
  assert.ok(row, `no ${direction} session with ${peer}: ${JSON.stringify(s.sessions)}`);
  return row;
}

test('SIGHUP: refused when invalid or when a restart is needed; local EIDs added and removed live, sessions untouched; map-server sites reloaded', { skip, timeout: 90_000 }, async () => {
  const lab = await NetnsLab.create({
    nodes: [
      { name: 'a', locator: '198.18.0.1', eids: [{ prefix: '192.0.2.0/28', address: '192.0.2.1' }, { prefix: '2001:db8:1::/64', address: '2001:db8:1::1' }] },
      { name: 'b', locator: '198.18.0.2', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.17' }, { prefix: '2001:db8:2::/64', address: '2001:db8:2::1' }], routes: ['192.0.2.0/24', '2001:db8:1::/48'] },
    ],
    encryption: 'required',
    mapServer: {
      name: 'ms',
      locator: '198.18.0.10',
      password: 'reload-site-secret',
      sites: [{ name: 'overlay', keys: [{ 'key-id': 0, password: 'reload-site-secret' }], prefixes: [{ prefix: '192.0.2.0/24' }, { prefix: '2001:db8::/32' }] }],
    },
  });
  labs.push(lab);
  const a = (): Promise<XtrStatusReport> => lab.status<XtrStatusReport>('a');
  const b = (): Promise<XtrStatusReport> => lab.status<XtrStatusReport>('b');
  const ms = (): Promise<MapServerStatusReport> => lab.status<MapServerStatusReport>('ms');
  const eids = (s: MapServerStatusReport): string[] => s.registrations.map((r) => r.eid).sort();
  await until(ms, (s) => s.registrations.length === 4, 'registered');
  const ping = async (to: string, count: number): Promise<string> => {
    await run(lab.node('b').namespace, 'ping', ['-c', '1', '-W', '2', to]).catch(() => undefined); // resolves, if needed
    return run(lab.node('b').namespace, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', to]);
  };
  assert.match(await ping('192.0.2.1', 5), / 0% packet loss/);
  assert.match(await ping('2001:db8:1::1', 2), / 0% packet loss/);
  const ifindex = async (): Promise<number> => (JSON.parse(await run(lab.node('a').namespace, 'ip', ['-j', 'link', 'show', 'lisp0'])) as { ifindex: number }[])[0]?.ifindex ?? -1;
  const tunBefore = await ifindex();
  const aBefore = await a();
  const bBefore = await b();
  const bOut = session(bBefore, '198.18.0.1', 'out');
  const aIn = session(aBefore, '198.18.0.2', 'in');
  assert.ok((bOut.packets ?? 0) >= 2, `b sealed to a: ${bOut.packets}`);

  // Refused: a file that does not load, then a change only a restart can make. Nothing changes.
  const original = (c: Record<string, unknown>): Record<string, unknown> => JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
  let saved: Record<string, unknown> = {};
  lab.editConfig('a', (c) => {
    saved = original(c);
    c['local-eids'] = [{ prefix: '192.0.2.0/33' }];
  });
  const invalid = await lab.reload('a');
  assert.equal(invalid.level, 'error');
  assert.match(invalid.message, /^reload refused: the configuration is invalid; running on as before$/);
  assert.equal(invalid.setting, '/local-eids/0/prefix');
  lab.editConfig('a', (c) => {
    Object.assign(c, original(saved), { tun: { ...(saved.tun as object), name: 'lisp9' }, underlay: { address: '198.18.0.1', port: 4999 } });
  });
  const restart = await lab.reload('a');
  assert.equal(restart.level, 'error');
  assert.match(restart.message, /^reload refused: these settings only change with a restart/);
  assert.deepEqual(restart.settings, ['/tun/name', '/underlay/port']);
  lab.editConfig('a', (c) => Object.assign(c, original(saved)));
  assert.equal((await lab.reload('a')).message, 'reload: no change');
  const refusedState = await a();
  assert.deepEqual(refusedState.localEids, aBefore.localEids);
  assert.deepEqual([refusedState.reloads.applied, refusedState.reloads.refused, refusedState.reloads.last?.outcome], [1, 2, 'unchanged']);

  // Applied: 192.0.2.32/28 comes, 2001:db8:1::/64 goes.
  const deregisteredBefore = (await ms()).counters['record-deregistered'] ?? 0;
  lab.editConfig('a', (c) => {
    c['local-eids'] = [
      { prefix: '192.0.2.0/28', address: '192.0.2.1' },
      { prefix: '192.0.2.32/28', address: '192.0.2.33' },
    ];
  });
  const applied = await lab.reload('a');
  assert.equal(applied.message, 'reload applied', JSON.stringify(applied));
  assert.deepEqual(
    [...(applied.changes as string[])].sort(),
    ['local-eid +[0]192.0.2.32/28', 'local-eid -[0]2001:db8:1::/64', 'tun address +192.0.2.33/32', 'tun address -2001:db8:1::1/128'].sort(),
  );
  const server = await until(ms, (s) => eids(s).join() === '[0]192.0.2.0/28,[0]192.0.2.16/28,[0]192.0.2.32/28,[0]2001:db8:2::/64', 'the map-server follows');
  assert.equal(server.counters['record-deregistered'], deregisteredBefore + 1, 'the removed EID was deregistered (TTL 0)');
  assert.deepEqual(server.registrations.find((r) => r.eid === '[0]192.0.2.32/28')?.rlocs, ['198.18.0.1']);
  // b had cached the removed prefix: a solicited it (SMR), b asked again.
  await until(b, (s) => (s.control.resolver['smr-honoured'] ?? 0) >= 1, 'b honoured the SMR');

  // The established session carried on: same process, same TUN, no key exchange, counter going on.
  assert.match(await run(lab.node('b').namespace, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', '192.0.2.1']), / 0% packet loss/);
  const aAfter = await a();
  const bAfter = await b();
  assert.equal(aAfter.pid, aBefore.pid);
  assert.equal(await ifindex(), tunBefore, 'the TUN device was not recreated');
  assert.equal(aAfter.control.responder['key-candidate'], aBefore.control.responder['key-candidate'], 'no new key at the ETR');
  assert.equal(bAfter.control.resolver['key-installed'], bBefore.control.resolver['key-installed'], 'no new key at the ITR');
  const bOutAfter = session(bAfter, '198.18.0.1', 'out');
  assert.equal(bOutAfter.keyId, bOut.keyId);
  assert.ok((bOutAfter.packets ?? 0) >= (bOut.packets ?? 0) + 5, `the sealing counter went on (${bOut.packets} -> ${bOutAfter.packets}), no new key`);
  assert.ok((bOutAfter.keyAgeSeconds ?? 0) >= (bOut.keyAgeSeconds ?? 0));
  assert.equal(session(aAfter, '198.18.0.2', 'in').keyId, aIn.keyId);
  assert.deepEqual(aAfter.localEids, ['[0]192.0.2.0/28', '[0]192.0.2.32/28']);
  assert.deepEqual([aAfter.reloads.applied, aAfter.reloads.refused, aAfter.reloads.last?.outcome], [2, 2, 'applied']);

  // Data to the new EID; the removed one is no longer served.
  assert.match(await ping('192.0.2.33', 3), / 0% packet loss/);
  await run(lab.node('b').namespace, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '2001:db8:1::1']).then(
    (out) => assert.fail(`the removed EID still answers: ${out}`),
    () => undefined,
  );

  // The map-server: a refused listen change, then a narrower site that no longer admits 192.0.2.32/28.
  lab.editConfig('ms', (c) => {
    c.listen = { address: '198.18.0.10', port: 4343 };
  });
  const msRestart = await lab.reload('ms');
  assert.deepEqual([msRestart.level, msRestart.settings], ['error', ['/listen/port']]);
  lab.editConfig('ms', (c) => {
    c.listen = { address: '198.18.0.10' };
    c.sites = [{ name: 'overlay', keys: [{ 'key-id': 0, password: 'reload-site-secret' }, { 'key-id': 1, password: 'next-secret' }], prefixes: [{ prefix: '192.0.2.0/27' }, { prefix: '2001:db8::/32' }] }];
  });
  const msApplied = await lab.reload('ms');
  assert.equal(msApplied.message, 'reload applied');
  assert.deepEqual(msApplied.changes, ['site ~overlay', 'registration -[0]192.0.2.32/28 (not-allowed)']);
  const narrowed = await ms();
  assert.deepEqual(eids(narrowed), ['[0]192.0.2.0/28', '[0]192.0.2.16/28', '[0]2001:db8:2::/64']);
  assert.deepEqual(narrowed.sites[0]?.keyIds, [0, 1]);
  assert.ok((narrowed.counters['map-register-received'] ?? 0) >= (server.counters['map-register-received'] ?? 0), 'counters carried over the reload');
  // Still serving: b resolves a's remaining EID afresh through the reloaded map-server.
  assert.match(await ping('192.0.2.1', 2), / 0% packet loss/);

  // TUN routes follow a reload too.
  lab.editConfig('b', (c) => {
    c.tun = { ...(c.tun as object), routes: ['192.0.2.0/24', '2001:db8:9::/48'] };
  });
  assert.deepEqual((await lab.reload('b')).changes, ['tun route +2001:db8:9::/48', 'tun route -2001:db8:1::/48']);
  const routes = await run(lab.node('b').namespace, 'ip', ['-6', 'route', 'show', 'dev', 'lisp0']);
  assert.match(routes, /^2001:db8:9::\/48 /m);
  assert.doesNotMatch(routes, /^2001:db8:1::\/48 /m);

  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), []);
  labs.splice(labs.indexOf(lab), 1);
});
