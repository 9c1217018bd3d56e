// The control plane end to end, in network namespaces: a map-server and two xTRs without static
// mappings. Both xTRs register (HMAC-authenticated), resolve each other through the map-server
// (forwarded to the ETR, which answers with its RFC 8061 key), and exchange encrypted data; a
// stopped xTR deregisters at the map-server.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { deriveCryptoEid, exportPrivateKeyPem, generateP256KeyPair } from '../src/crypto/index.js';
import { formatIpv6 } from '../src/lisp/ip-text.js';
import { NetnsLab, run, type LabNodeSpec } from '../src/node/lab/netns-lab.js';
import type { MapServerStats } from '../src/node/map-server/map-server-node.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';
const MARKER_HEX = Buffer.from('lispnode-marker').toString('hex');

const labs: NetnsLab[] = [];
after(async () => {
  for (const lab of labs) await lab.destroy();
});

async function registrations(lab: NetnsLab): Promise<number> {
  return (await lab.stats<MapServerStats>('ms')).registrations;
}

test('map-server + two xTRs: registration, resolution with key exchange, encrypted data, map-server restart, deregistration', { skip, timeout: 120_000 }, async () => {
  const lab = await NetnsLab.create({
    nodes: [
      { name: 'a', locator: '198.18.0.1', eids: [{ prefix: '192.0.2.0/28', address: '192.0.2.1' }, { prefix: '2001:db8:1::/64', address: '2001:db8:1::1' }] },
      { name: 'b', locator: '198.18.0.2', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.17' }, { prefix: '2001:db8:2::/64', address: '2001:db8:2::1' }] },
    ],
    encryption: 'required',
    mapServer: { name: 'ms', locator: '198.18.0.10', password: 'overlay-site-secret' },
  });
  labs.push(lab);
  // Registration: both xTRs' two prefixes each, answered by authenticated Map-Notifies.
  for (let i = 0; i < 50 && (await registrations(lab)) < 4; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await registrations(lab), 4);
  for (const name of ['a', 'b']) {
    const status = (await lab.stats(name)).control?.registration?.mapServers[0];
    assert.equal(status?.state, 'registered', `${name} is registered`);
  }
  // Resolution: the first packet of a flow triggers the Map-Request; the flow then gets through.
  const warmUp = (): Promise<string> => run(lab.node('a').namespace, 'ping', ['-c', '1', '-W', '1', '192.0.2.17']);
  const file = await lab.capture('a', warmUp, async () => {
    for (const [from, to] of [['a', '192.0.2.17'], ['b', '192.0.2.1'], ['a', '2001:db8:2::1'], ['b', '2001:db8:1::1']] as const) {
      await run(lab.node(from).namespace, 'ping', ['-c', '1', '-W', '2', to]).catch(() => undefined); // resolves, if still needed
      const out = await run(lab.node(from).namespace, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '-p', MARKER_HEX, to]);
      assert.match(out, / 0% packet loss/, `${from} -> ${to}\n${out}`);
    }
  });
  const a = await lab.stats('a');
  const b = await lab.stats('b');
  assert.ok((a.control?.resolver?.['map-request-sent'] ?? 0) >= 1, 'a resolved through the map-server');
  assert.ok((a.control?.resolver?.['key-installed'] ?? 0) >= 1 && (b.control?.responder['key-candidate'] ?? 0) >= 1, 'keys agreed in the Map-Request/Map-Reply exchange');
  assert.equal(readFileSync(file).includes(Buffer.from('lispnode-marker')), false, 'the marker never appears on the underlay');
  const flags = (await run(undefined, 'tshark', ['-r', file, '-Y', 'lisp-data', '-T', 'fields', '-e', 'lisp-data.flags'])).trim().split('\n').filter(Boolean);
  assert.ok(flags.length >= 24, `LISP data packets captured: ${flags.length}`);
  assert.deepEqual([...new Set(flags.map((f) => Number(f) & 3))], [1], 'every data packet sealed under key-id 1');
  // A map-server restart keeps every registration (snapshot file), and data keeps flowing.
  await lab.restart('ms');
  assert.equal(await registrations(lab), 4, 'registrations restored after the restart');
  const afterRestart = await run(lab.node('a').namespace, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '192.0.2.17']);
  assert.match(afterRestart, / 0% packet loss/, afterRestart);
  // Deregistration: a stopped xTR withdraws its prefixes (TTL 0) before it exits.
  const exited = new Promise((r) => lab.node('b').process.once('exit', r));
  lab.node('b').process.kill('SIGTERM');
  await exited;
  for (let i = 0; i < 20 && (await registrations(lab)) > 2; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await registrations(lab), 2, "b's two prefixes are deregistered");
  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), []);
  labs.splice(labs.indexOf(lab), 1);
});

test('lookup access control: xTR2 may resolve xTR1\'s crypto-EID and talk to it, xTR3 is denied (action 4, no data path)', { skip, timeout: 120_000 }, async () => {
  const keys = [1, 2, 3].map(() => generateP256KeyPair((n) => randomBytes(n)));
  const eids = keys.map((k) => formatIpv6(deriveCryptoEid({ iid: 0, spki: k.spki }).eid));
  const [eid1, eid2] = eids as [string, string, string];
  const node = (i: number): LabNodeSpec => ({
    name: `x${i}`,
    locator: `198.18.0.${i}`,
    eids: [{ prefix: `192.0.2.${16 * (i - 1)}/28`, address: `192.0.2.${16 * (i - 1) + 1}` }],
    cryptoEidKey: exportPrivateKeyPem(keys[i - 1] ?? keys[0]!),
  });
  const lab = await NetnsLab.create({
    nodes: [node(1), node(2), node(3)],
    encryption: 'required',
    mapServer: {
      name: 'ms',
      locator: '198.18.0.10',
      password: 'overlay-site-secret',
      cryptoEidPrefixes: [{ prefix: 'fd00::/8' }],
      sites: [
        {
          name: 'overlay',
          keys: [{ 'key-id': 0, password: 'overlay-site-secret' }],
          prefixes: [{ prefix: 'fd00::/8' }, { prefix: '192.0.2.0/26' }],
          'require-registration-signature': true,
          lookup: { allow: [`${eid1}/128`, `${eid2}/128`] },
        },
      ],
    },
  });
  labs.push(lab);
  for (const name of ['x1', 'x2', 'x3']) {
    for (let i = 0; i < 50 && (await lab.stats(name)).control?.registration?.mapServers[0]?.state !== 'registered'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal((await lab.stats(name)).control?.registration?.mapServers[0]?.state, 'registered', `${name} registered its crypto-EID with signatures`);
  }
  // xTR2, allowed, resolves xTR1's crypto-EID (signed Map-Request) and reaches it, encrypted.
  await run(lab.node('x2').namespace, 'ping', ['-6', '-c', '2', '-W', '2', eid1]).catch(() => undefined);
  const allowed = await run(lab.node('x2').namespace, 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', eid1]);
  assert.match(allowed, / 0% packet loss/, allowed);
  assert.equal((await lab.stats('x2')).drops['itr-negative-policy-denied'] ?? 0, 0);
  // xTR3, not on the list, gets a negative Map-Reply with action 4 and no data path.
  const denied = await run(lab.node('x3').namespace, 'ping', ['-6', '-c', '3', '-i', '0.3', '-W', '1', eid1]).catch((error: { stdout?: string }) => error.stdout ?? '');
  assert.match(denied, / 100% packet loss/, denied);
  assert.ok(((await lab.stats('x3')).drops['itr-negative-policy-denied'] ?? 0) >= 1, 'x3 drops under the policy-denied action');
  const ms = await lab.stats<MapServerStats>('ms');
  assert.ok((ms.counters['negative-policy-denied'] ?? 0) >= 1, `the map-server answered ACT 4: ${JSON.stringify(ms.counters)}`);
  assert.ok((ms.counters['signature-valid'] ?? 0) >= 1, 'signed Map-Requests verified');
  assert.equal((await lab.stats('x3')).underlay.out, 0, 'x3 sent no data packet at all');
  await lab.destroy();
  assert.deepEqual(await lab.leftovers(), []);
  labs.splice(labs.indexOf(lab), 1);
});
