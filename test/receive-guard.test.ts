// No exception escapes a receive path: hostile reply destinations are refused by name before any
// send (port 0 made dgram throw synchronously and end the daemon), and a handler that throws for
// one datagram costs that datagram only. The map-server runs in this process on loopback, so a
// single escaped exception would end the test run itself.
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ip, NO_ADDRESS } from '../src/lisp/address.js';
import { decodeControl, encodeControl } from '../src/lisp/control.js';
import { MAP_REQUEST_DEFAULTS } from '../src/lisp/map-request.js';
import { prefix } from '../src/lisp/prefix.js';
import { Responder } from '../src/lisp/xtr-control/responder.js';
import { configuredDestinationRefusal, replyDestinationRefusal } from '../src/lisp/reply-destination.js';
import { encodeEcmMapRequest } from '../src/lisp/xtr-control/resolver.js';
import { loadMapServerConfig } from '../src/node/config/map-server-config.js';
import { createLogger } from '../src/node/log.js';
import { MapServerNode } from '../src/node/map-server/map-server-node.js';
import { ControlSender, ReceiveGuard, RateLimitedLog } from '../src/node/receive-guard.js';

const dir = mkdtempSync(join(tmpdir(), 'lispnode-guard-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('reply destinations: port 0, non-unicast and other-family addresses are refused by name', () => {
  assert.equal(replyDestinationRefusal('198.18.0.1', 4342), undefined);
  assert.equal(replyDestinationRefusal('2001:db8::1', 4342, 6), undefined);
  assert.equal(replyDestinationRefusal('198.18.0.1', 0), 'reply-port-invalid');
  assert.equal(replyDestinationRefusal('198.18.0.1', 65536), 'reply-port-invalid');
  for (const a of ['0.0.0.0', '0.1.2.3', '127.0.0.1', '224.0.0.1', '239.1.1.1', '240.0.0.1', '255.255.255.255', '::', '::1', 'ff02::1', 'fe80::1', '::ffff:127.0.0.1', 'not-an-ip']) {
    assert.equal(replyDestinationRefusal(a, 4342), 'reply-address-not-unicast', a);
  }
  assert.equal(replyDestinationRefusal('2001:db8::1', 4342, 4), 'reply-address-wrong-family');
  assert.equal(replyDestinationRefusal('198.18.0.1', 4342, 6), 'reply-address-wrong-family');
  // A loopback requester (a local lig) may be answered on loopback; a stranger naming loopback may not.
  assert.equal(replyDestinationRefusal('127.0.0.1', 4342, 4, '127.0.0.1'), undefined);
  assert.equal(replyDestinationRefusal('127.0.0.1', 4342, 4, '198.18.0.66'), 'reply-address-not-unicast');
  // Our own configuration may name loopback; it still needs a real port.
  assert.equal(configuredDestinationRefusal('127.0.0.1', 4342, 4), undefined);
  assert.equal(configuredDestinationRefusal('127.0.0.1', 0, 4), 'reply-port-invalid');
});

test('ControlSender counts what it refuses and what the socket throws, and never throws itself', async () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l) });
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const sender = new ControlSender(socket, 4, log);
  const bytes = new Uint8Array([0x10]);
  assert.equal(sender.send(bytes, 0, '198.18.0.1', { untrusted: {} }), false);
  assert.equal(sender.send(bytes, 4342, '127.0.0.1', { untrusted: { origin: '198.18.0.66' } }), false);
  assert.equal(sender.send(bytes, 4342, '2001:db8::1'), false);
  socket.close();
  // A closed socket makes dgram throw synchronously (ERR_SOCKET_DGRAM_NOT_RUNNING).
  assert.equal(sender.send(bytes, 4342, '127.0.0.1'), false);
  assert.deepEqual(sender.refused.snapshot(), { 'reply-port-invalid': 1, 'reply-address-not-unicast': 1, 'reply-address-wrong-family': 1, 'send-threw': 1 });
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /ERR_SOCKET_DGRAM_NOT_RUNNING|Not running/);
});

test('a flood of failures logs at most five lines a minute, then says how many it left out', () => {
  const lines: string[] = [];
  let now = 0;
  const guard = new ReceiveGuard(createLogger({ write: (l) => lines.push(l) }), 'test', () => now);
  for (let i = 0; i < 1000; i++) guard.caught(new Error(`bug ${i}`));
  assert.equal(guard.errors, 1000);
  assert.equal(lines.length, 5);
  now = 60_000;
  guard.caught(new Error('after a minute'));
  assert.equal(lines.length, 6);
  assert.equal((JSON.parse(lines[5] ?? '{}') as { suppressed?: number }).suppressed, 995);
  assert.ok(new RateLimitedLog(createLogger({ write: () => undefined })));
});

/** A map-server on loopback with one site, started in this process. */
async function startMapServer(): Promise<MapServerNode> {
  // The configuration wants a real port: take one the kernel says is free.
  const probe = createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(resolve));
  writeFileSync(join(dir, 'site.key'), 'guard-site-secret\n');
  const file = join(dir, 'map-server.yaml');
  writeFileSync(
    file,
    [`listen: { address: 127.0.0.1, port: ${port} }`, 'sites:', '  - name: s', '    keys: [{ key-id: 0, password-file: site.key }]', '    prefixes: [{ prefix: 192.0.2.0/24 }]', 'log: { level: error }', ''].join('\n'),
  );
  return MapServerNode.start(loadMapServerConfig(file), createLogger({ level: 'error', write: () => undefined }));
}

function ecm(sourcePort: number, itrRloc = '127.0.0.1'): Uint8Array {
  return encodeEcmMapRequest({ nonce: 7n, iid: 0, eid: '192.0.2.9', sourceEid: NO_ADDRESS, itrRlocs: [ip(itrRloc)], innerSource: '127.0.0.1', sourcePort });
}

async function exchange(client: Socket, port: number, bytes: Uint8Array, waitMs = 300): Promise<Uint8Array | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      resolve(undefined);
    }, waitMs);
    const onMessage = (m: Buffer): void => {
      clearTimeout(timer);
      resolve(new Uint8Array(m));
    };
    client.once('message', onMessage);
    client.send(bytes, port, '127.0.0.1');
  });
}

test('map-server: an ECM asking for a reply to port 0 or to a group is refused, a handler that throws costs one datagram, and the server answers on', async () => {
  const server = await startMapServer();
  const client = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
    const port = (server as unknown as { socket: Socket }).socket.address().port;
    const clientPort = client.address().port;

    assert.equal(await exchange(client, port, ecm(0)), undefined, 'no reply to port 0');
    assert.equal(await exchange(client, port, ecm(clientPort, '224.0.0.1')), undefined, 'no reply to a multicast ITR-RLOC');
    const answer = await exchange(client, port, ecm(clientPort));
    assert.ok(answer, 'a well-formed request is answered');
    const decoded = decodeControl(answer);
    assert.ok(decoded.ok && decoded.value.type === 'map-reply' && decoded.value.nonce === 7n);

    // Inject a bug into the request handler: the datagram that meets it is lost, the process is not.
    const requests = (server as unknown as { requests: { handle: (...a: unknown[]) => unknown } }).requests;
    const real = requests.handle.bind(requests);
    requests.handle = () => {
      throw new TypeError('injected handler bug');
    };
    assert.equal(await exchange(client, port, ecm(clientPort)), undefined);
    requests.handle = real;
    assert.ok(await exchange(client, port, ecm(clientPort)), 'answers again once the bug is gone');

    const stats = server.stats();
    assert.equal(stats.counters['reply-port-invalid'], 1);
    assert.equal(stats.counters['reply-address-not-unicast'], 1);
    assert.equal(stats.counters['handler-error'], 1);
    assert.deepEqual(stats.datagrams, { received: 5, outcomes: { ecm: 4, 'handler-error': 1 } });
  } finally {
    client.close();
    server.stop();
  }
});

test('ETR responder: an ECM or a probe asking for a reply to port 0 is counted and gets no answer (and installs no key)', () => {
  const responder = new Responder({ instanceId: 0, localEids: [prefix('192.0.2.0/24')], rlocs: ['198.18.0.2'], acceptClear: true, random: (n) => new Uint8Array(n).fill(1) });
  const toEtr = ecm(0, '198.18.0.1');
  toEtr[0] = (toEtr[0] ?? 0) | 0x02; // E: forwarded by a map-server to the ETR
  assert.deepEqual(responder.receive(toEtr, { address: '198.18.0.10', port: 4342 }, 0), []);
  const probe = encodeControl({ ...MAP_REQUEST_DEFAULTS, probe: true, nonce: 9n, sourceEid: NO_ADDRESS, itrRlocs: [ip('198.18.0.1')], records: [{ reserved: 0, eidMaskLength: 24, eid: ip('192.0.2.0') }] });
  assert.deepEqual(responder.receive(probe, { address: '198.18.0.1', port: 0 }, 0), []);
  assert.equal(responder.counters.get('reply-port-invalid'), 2);
  assert.ok(responder.receive(probe, { address: '198.18.0.1', port: 4342 }, 0).length === 1, 'the same probe from a real port is answered');
});
