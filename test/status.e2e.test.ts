// The status socket and the metrics endpoint. Without root: the socket's permissions, its
// protocol, stale and live sockets, and `lispnode status` against a missing or dead daemon. With
// root, in namespaces: a map-server and two xTRs; `lispnode status --json` against each shows
// live figures that move with traffic, garbage UDP at 4341 shows up as a drop, the Prometheus
// endpoint agrees, and a stopped xTR's deregistration is seen at the map-server.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';
import { findStatusSocket, queryStatus, StatusClientError } from '../src/node/ops/status-client.js';
import type { MapServerStatusReport, XtrStatusReport } from '../src/node/ops/status-report.js';
import { StatusServer } from '../src/node/ops/status-server.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lispnode-status-'));
const labs: NetnsLab[] = [];
after(async () => {
  for (const lab of labs) await lab.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function lispnodeStatus(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'status', ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A sample of exposition text whose labels include all of `labels`. */
function metric(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && want.every((w) => l.includes(w)));
  assert.ok(line !== undefined, `no ${name}${JSON.stringify(labels)} in the metrics`);
  return Number(line.split(' ').at(-1));
}

test('the status socket: 0600 in a 0700 folder, newline-delimited JSON, errors as answers, removed on close', async () => {
  const path = join(dir, 'sub', 'x.sock');
  let asked = 0;
  const server = await StatusServer.listen(path, { status: () => ({ asked: ++asked, big: 2n ** 64n }), boom: () => { throw new Error('no'); } });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, 'sub')).mode & 0o777, 0o700);
  assert.deepEqual(await queryStatus(path, 'status'), { asked: 1, big: '0x10000000000000000' });
  await assert.rejects(queryStatus(path, 'nope'), /refused: unknown command "nope" \(known: status, boom\)/);
  await assert.rejects(queryStatus(path, 'boom'), /refused: no/);
  // A second daemon with the same socket is refused; the first keeps it.
  await assert.rejects(StatusServer.listen(path, {}), /in use by a running daemon/);
  assert.deepEqual(await queryStatus(path, 'status'), { asked: 2, big: '0x10000000000000000' });
  await server.close();
  assert.equal(existsSync(path), false, 'removed on close');
  await assert.rejects(queryStatus(path, 'status'), (e: unknown) => e instanceof StatusClientError && /no such socket/.test(e.message));
});

test('a socket left by a killed daemon: `lispnode status` says refused (exit 1), a new daemon takes it over', async () => {
  const path = join(dir, 'stale.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.equal(existsSync(path), true, 'SIGKILL leaves the socket file');
  const refused = lispnodeStatus('--socket', path);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /^lispnode: status: .*stale\.sock: connection refused \(the daemon is not running; the socket file is stale\)\n$/);
  const missing = lispnodeStatus('--socket', join(dir, 'missing.sock'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /missing\.sock: no such socket \(is the daemon running\?/);
  assert.equal(missing.stdout, '');
  const server = await StatusServer.listen(path, { status: () => 'fresh' });
  assert.equal(await queryStatus(path, 'status'), 'fresh');
  await server.close();
});

test('without --socket: the only status socket of the run directory, capture sockets aside; none or several is an error naming them', () => {
  const runDirectory = join(dir, 'run');
  mkdirSync(runDirectory);
  assert.throws(() => findStatusSocket(runDirectory), /no status socket in .*run \(is a lispnode daemon running\? use --socket/);
  writeFileSync(join(runDirectory, 'xtr-site1.capture.sock'), '');
  writeFileSync(join(runDirectory, 'xtr-site1.sock'), '');
  assert.equal(findStatusSocket(runDirectory), join(runDirectory, 'xtr-site1.sock'));
  writeFileSync(join(runDirectory, 'map-server-ms.sock'), '');
  assert.throws(() => findStatusSocket(runDirectory), /several status sockets in .*name one with --socket: .*map-server-ms\.sock, .*xtr-site1\.sock$/);
});

test('live status and metrics: map-server + two xTRs; counters move with traffic and garbage; SIGTERM deregistration seen at the map-server', { skip, timeout: 90_000 }, async () => {
  const lab = await NetnsLab.create({
    nodes: [
      { name: 'a', locator: '198.18.0.1', eids: [{ prefix: '192.0.2.0/28', address: '192.0.2.1' }] },
      { name: 'b', locator: '198.18.0.2', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.17' }, { prefix: '2001:db8:2::/64', address: '2001:db8:2::1' }] },
    ],
    encryption: 'required',
    mapServer: { name: 'ms', locator: '198.18.0.10', password: 'status-site-secret' },
    metrics: true,
  });
  labs.push(lab);
  const xtr = (name: string): XtrStatusReport => {
    // Through the command an operator runs, from the root namespace (the socket is a file).
    const r = lispnodeStatus('--socket', lab.node(name).statusSocket, '--json');
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as XtrStatusReport;
  };
  const ms = (): Promise<MapServerStatusReport> => lab.status<MapServerStatusReport>('ms');
  for (let i = 0; i < 50 && (await ms()).registrations.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
  for (const name of ['a', 'b']) {
    for (let i = 0; i < 50 && xtr(name).registrations[0]?.notified === 0; i++) await new Promise((r) => setTimeout(r, 100));
  }

  await run(lab.node('a').namespace, 'ping', ['-c', '1', '-W', '2', '192.0.2.17']).catch(() => undefined); // resolves
  const ping = async (count: number): Promise<void> => {
    const out = await run(lab.node('a').namespace, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', '192.0.2.17']);
    assert.match(out, / 0% packet loss/, out);
  };
  await ping(3);
  const before = xtr('a');
  assert.equal(before.role, 'xtr');
  assert.equal(before.locator, '198.18.0.1:4341');
  assert.deepEqual(before.localEids, ['[0]192.0.2.0/28']);
  const reg = before.registrations[0];
  assert.equal(reg?.mapServer, '198.18.0.10:4342');
  assert.equal(reg.state, 'registered');
  assert.ok(reg.sent >= 1 && reg.notified >= 1 && reg.failed === 0, JSON.stringify(reg));
  assert.ok(reg.lastMapNotifySecondsAgo !== null && reg.lastMapNotifySecondsAgo < 60);
  const learned = before.mapCache.entries.find((e) => e.eidPrefix === '[0]192.0.2.16/28');
  assert.equal(learned?.origin, 'learned');
  assert.ok(learned.ttlSeconds !== null && learned.ttlSeconds > 0 && learned.ttlSeconds <= 1440 * 60, `TTL left ${learned.ttlSeconds}`);
  assert.deepEqual(learned.locators.map((l) => [l.address, l.port, l.reachable, l.probed]), [['198.18.0.2', 4341, true, true]]);
  const out = before.sessions.find((s) => s.peer === '198.18.0.2' && s.direction === 'out');
  assert.equal(out?.origin, 'exchanged');
  assert.equal(out.keyId, 1);
  assert.ok((out.packets ?? 0) >= 3 && out.keyAgeSeconds !== null);
  assert.ok(before.sessions.some((s) => s.peer === '198.18.0.2' && s.direction === 'in' && s.keyId === 1), 'the ETR side holds a key for b too');
  assert.ok(before.traffic.tun.in.packets >= 4 && before.traffic.underlay.out.packets >= 4 && before.traffic.underlay.in.packets >= 3);
  assert.ok((before.control.resolver['map-request-sent'] ?? 0) >= 1);
  const metricsBefore = await lab.scrape('a');

  // More pings: the figures move.
  await ping(5);
  const moved = xtr('a');
  assert.ok(moved.traffic.tun.in.packets >= before.traffic.tun.in.packets + 5, 'tun in');
  assert.ok(moved.traffic.underlay.out.packets >= before.traffic.underlay.out.packets + 5, 'underlay out');
  assert.ok(moved.traffic.underlay.in.packets >= before.traffic.underlay.in.packets + 5, 'underlay in (the replies)');
  assert.ok(moved.traffic.tun.out.bytes > before.traffic.tun.out.bytes, 'tun out bytes');
  const outAfter = moved.sessions.find((s) => s.peer === '198.18.0.2' && s.direction === 'out');
  assert.ok((outAfter?.packets ?? 0) >= (out.packets ?? 0) + 5, 'session packets');

  // Garbage at UDP 4341: five 4-byte datagrams are too short for a LISP header.
  const truncatedBefore = moved.drops['etr-truncated'] ?? 0;
  await run(lab.node('b').namespace, process.execPath, [
    '-e',
    "const s=require('dgram').createSocket('udp4');let n=0;const go=()=>s.send(Buffer.from('junk'),4341,'198.18.0.1',()=>{if(++n<5)go();else s.close();});go();",
  ]);
  let dropped = moved;
  for (let i = 0; i < 50 && (dropped.drops['etr-truncated'] ?? 0) < truncatedBefore + 5; i++) {
    await new Promise((r) => setTimeout(r, 100));
    dropped = xtr('a');
  }
  assert.equal(dropped.drops['etr-truncated'], truncatedBefore + 5);
  assert.ok(dropped.dropsTotal >= truncatedBefore + 5);

  // The metrics endpoint shows the same counters moving.
  const metricsAfter = await lab.scrape('a');
  const tunIn = (t: string): number => metric(t, 'lispnode_packets_total', { interface: 'tun', direction: 'in' });
  assert.ok(tunIn(metricsAfter) >= tunIn(metricsBefore) + 5, 'packets_total moved');
  assert.ok(tunIn(metricsAfter) >= dropped.traffic.tun.in.packets, 'as far as status says');
  assert.ok(metric(metricsAfter, 'lispnode_bytes_total', { interface: 'underlay', direction: 'out' }) > metric(metricsBefore, 'lispnode_bytes_total', { interface: 'underlay', direction: 'out' }));
  assert.equal(metric(metricsBefore, 'lispnode_drops_total', { reason: 'etr-truncated' }), truncatedBefore);
  assert.equal(metric(metricsAfter, 'lispnode_drops_total', { reason: 'etr-truncated' }), truncatedBefore + 5);
  assert.equal(metric(metricsAfter, 'lispnode_registered', { map_server: '198.18.0.10:4342' }), 1);
  assert.ok(metric(metricsAfter, 'lispnode_map_registers_sent_total', { map_server: '198.18.0.10:4342' }) >= 1);
  assert.ok(metric(metricsAfter, 'lispnode_map_notifies_total', { map_server: '198.18.0.10:4342' }) >= 1);
  assert.equal(metric(metricsAfter, 'lispnode_registration_failures_total', { map_server: '198.18.0.10:4342' }), 0);
  assert.ok(metric(metricsAfter, 'lispnode_map_cache_entries', { origin: 'learned' }) >= 1);
  assert.ok(metric(metricsAfter, 'lispnode_resolution_latency_seconds_count', { kind: 'map-request' }) >= 1, 'a timed resolution');
  assert.ok(metric(metricsAfter, 'lispnode_keys_installed_total', { side: 'itr' }) >= 1);

  // For people: the same report as text.
  const text = lispnodeStatus('--socket', lab.node('a').statusSocket);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^xTR lisp0 \(pid \d+\), locator 198\.18\.0\.1:4341/);
  assert.match(text.stdout, /\n {2}198\.18\.0\.10:4342 +registered +\d+s ago/);
  assert.match(text.stdout, /\n {2}\[0\]192\.0\.2\.16\/28 +learned +(\d+h)?\d+m\d+s +198\.18\.0\.2:4341 p1 w100 up \(probed\)/);
  assert.match(text.stdout, /\n {2}etr-truncated +\d+/);

  // The map-server: sites, registrations with expiry, counters; the same in its metrics.
  const server = await ms();
  assert.equal(server.listen, '198.18.0.10:4342');
  assert.deepEqual(server.sites.map((s) => [s.name, s.registrations]), [['overlay', 3]]);
  const aReg = server.registrations.find((r) => r.eid === '[0]192.0.2.0/28');
  assert.deepEqual(aReg?.rlocs, ['198.18.0.1']);
  assert.ok(aReg.expiresInSeconds > 60 && aReg.expiresInSeconds <= 180, `expires in ${aReg.expiresInSeconds}`);
  assert.ok((server.counters['map-register-received'] ?? 0) >= 2 && (server.counters['record-registered'] ?? 0) >= 3);
  assert.ok((server.counters['map-request-received'] ?? 0) >= 1 && (server.counters['map-notify-sent'] ?? 0) >= 2);
  const msMetrics = await lab.scrape('ms');
  assert.equal(metric(msMetrics, 'lispnode_map_server_registrations', { site: 'overlay' }), 3);
  assert.equal(metric(msMetrics, 'lispnode_map_server_events_total', { event: 'record-registered' }), server.counters['record-registered']);

  // SIGTERM: b withdraws both prefixes (TTL 0) before it exits; the map-server sees it.
  const deregisteredBefore = server.counters['record-deregistered'] ?? 0;
  const exited = new Promise((r) => lab.node('b').process.once('exit', r));
  lab.node('b').process.kill('SIGTERM');
  await exited;
  let afterStop = await ms();
  for (let i = 0; i < 30 && afterStop.registrations.length > 1; i++) {
    await new Promise((r) => setTimeout(r, 100));
    afterStop = await ms();
  }
  assert.deepEqual(afterStop.registrations.map((r) => r.eid), ['[0]192.0.2.0/28']);
  assert.equal(afterStop.counters['record-deregistered'], deregisteredBefore + 2);
  assert.equal(existsSync(lab.node('b').statusSocket), false, "b's status socket is gone");
  const gone = lispnodeStatus('--socket', lab.node('b').statusSocket);
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /no such socket/);

  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), []);
  labs.splice(labs.indexOf(lab), 1);
});
