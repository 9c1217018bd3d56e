// The ETR's side of the RFC 8061 key exchange against the attacks of issue 12, in memory: a key
// offer makes only a candidate for the locator it came from, under a fresh pair of ours; a
// working key is replaced only by a packet that proves the new one; a re-offer never resets a
// replay window; per-ITR state stays bounded under a flood of offers from fake locators.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { OpeningSession} from '../src/crypto/index.js';
import { nodeCipherBackend, SealingSession, SESSION_OPEN_STATUS, suiteLayout, type KeyId } from '../src/crypto/index.js';
import { deriveDataPlaneKeys, type X25519KeyPair } from '../src/crypto/x25519-kdf.js';
import { ip, NO_ADDRESS } from '../src/lisp/address.js';
import { decodeControl, encodeControl } from '../src/lisp/control.js';
import { writeDataHeader } from '../src/lisp/data-header.js';
import { MAP_REQUEST_DEFAULTS } from '../src/lisp/map-request.js';
import { prefix } from '../src/lisp/prefix.js';
import { generateKeyPair, offeredKey, securityKeyAddress, type LocatorOpening } from '../src/lisp/xtr-control/key-exchange.js';
import { encodeEcmMapRequest } from '../src/lisp/xtr-control/resolver.js';
import { Responder, type ResponderAction } from '../src/lisp/xtr-control/responder.js';

const X1 = '198.18.0.1';
const X2 = '198.18.0.2';
const MS = '198.18.0.10';
const EVIL = '198.18.0.66';
const T0 = 1_000_000;
const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

function etr(limits?: { maxUnproven?: number; maxPeers?: number }): Responder {
  return new Responder({
    instanceId: 0,
    localEids: [prefix('192.0.2.16/28')],
    rlocs: [X2],
    encryption: { backend: nodeCipherBackend, suites: [5] },
    acceptClear: false,
    random,
    ...(limits && { limits }),
  });
}

/** A probe straight from `from`, offering `pair` as `keyId` for `locator`. */
function probe(pair: X25519KeyPair, keyId: KeyId, locator: string): Uint8Array {
  return encodeControl({
    ...MAP_REQUEST_DEFAULTS,
    probe: true,
    nonce: BigInt(`0x${Buffer.from(random(8)).toString('hex')}`),
    sourceEid: NO_ADDRESS,
    itrRlocs: [securityKeyAddress(5, keyId, pair.publicKey, ip(locator))],
    records: [{ reserved: 0, eidMaskLength: 28, eid: ip('192.0.2.16') }],
  });
}

/** A Map-Request a map-server forwards to the ETR (E), offering `pair` for `locator`. */
function forwarded(pair: X25519KeyPair, keyId: KeyId, locator: string): Uint8Array {
  const bytes = encodeEcmMapRequest({ nonce: 1n, iid: 0, eid: '192.0.2.17', sourceEid: NO_ADDRESS, itrRlocs: [securityKeyAddress(5, keyId, pair.publicKey, ip(locator))], innerSource: locator, sourcePort: 4342 });
  bytes[0] = (bytes[0] ?? 0) | 0x02;
  return bytes;
}

/** The ETR's answer: where it goes and the key it carries. */
function answer(actions: readonly ResponderAction[]): { readonly to: string; readonly key: Uint8Array | undefined } {
  assert.equal(actions.length, 1);
  const a = actions[0];
  assert.ok(a);
  const decoded = decodeControl(a.bytes);
  assert.ok(decoded.ok && decoded.value.type === 'map-reply');
  const locator = decoded.value.records[0]?.locators[0]?.locator;
  const offer = locator && offeredKey(locator);
  return { to: a.to, key: offer?.kind === 'key' ? offer.publicKey : undefined };
}

/** An ITR sealing under the key agreed from `pair` and the ETR's answer. */
function itr(pair: X25519KeyPair, etrPublic: Uint8Array, keyId: KeyId): SealingSession {
  const s = new SealingSession(nodeCipherBackend);
  s.install({ keyId, suite: 5, keys: deriveDataPlaneKeys(pair, etrPublic), salt: random(8), now: T0 });
  return s;
}

const IV = suiteLayout(5).ivLength;

function seal(s: SealingSession, text: string): Uint8Array {
  const b = new Uint8Array(8 + IV + text.length + 64);
  writeDataHeader(b, 0, { nonceField: { kind: 'nonce', nonce: 1, echoRequest: false }, instanceId: 0, reservedBit: false, keyId: 0 });
  b.set(Buffer.from(text), 8 + IV);
  const lengths = Uint32Array.of(8 + IV + text.length);
  assert.equal(s.sealBatch([b], lengths, 1).status, 'ok');
  return b.slice(0, lengths[0]);
}

/** What opening a copy of `packet` at the ETR says. */
function open(o: LocatorOpening | undefined, packet: Uint8Array, now = T0): string {
  assert.ok(o, 'the ETR holds keys for this locator');
  const copy = new Uint8Array(packet.length + 64);
  copy.set(packet);
  const statuses = new Uint8Array(1);
  (o.opening as OpeningSession).openBatch([copy], Uint32Array.of(packet.length), statuses, 1, now);
  return SESSION_OPEN_STATUS[statuses[0] ?? 0] ?? '?';
}

/** x1 and the ETR with a working (proven) key-id 1 between them. */
function working(): { responder: Responder; pair: X25519KeyPair; sealing: SealingSession; etrPublic: Uint8Array } {
  const responder = etr();
  const pair = generateKeyPair(random);
  const reply = answer(responder.receive(probe(pair, 1, X1), { address: X1, port: 4342 }, T0));
  assert.equal(reply.to, X1);
  assert.ok(reply.key);
  const sealing = itr(pair, reply.key, 1);
  assert.equal(open(responder.openingFor(X1), seal(sealing, 'first')), 'ok');
  assert.equal(responder.openingFor(X1)?.current, 1, 'the first packet proved the key');
  return { responder, pair, sealing, etrPublic: reply.key };
}

test('a probe offering a key for another locator gets an answer without a key, and no state', () => {
  const responder = etr();
  const evil = generateKeyPair(random);
  const reply = answer(responder.receive(probe(evil, 1, X1), { address: EVIL, port: 4342 }, T0));
  assert.equal(reply.key, undefined);
  assert.equal(responder.openingFor(X1), undefined);
  assert.equal(responder.counters.get('key-offer-not-from-locator'), 1);
});

test('every new offer is answered under a fresh pair of ours, and only at the locator the key is for', () => {
  const responder = etr();
  const keys = new Set<string>();
  for (const address of [X1, '198.18.0.3', '198.18.0.4']) {
    const reply = answer(responder.receive(probe(generateKeyPair(random), 1, address), { address, port: 4342 }, T0));
    assert.equal(reply.to, address);
    keys.add(Buffer.from(reply.key ?? []).toString('hex'));
  }
  // A forwarded offer naming x1 from the attacker: the answer goes to x1, never to whoever asked.
  const evil = generateKeyPair(random);
  const reply = answer(responder.receive(forwarded(evil, 1, X1), { address: MS, port: 4342 }, T0));
  assert.equal(reply.to, X1);
  keys.add(Buffer.from(reply.key ?? []).toString('hex'));
  assert.equal(keys.size, 4, 'no two exchanges share our public key');
});

test("a stranger's offer for x1's locator (forwarded, any key-id) does not replace x1's working key, and the attacker cannot use it", () => {
  const { responder, sealing, etrPublic } = working();
  const evil = generateKeyPair(random);
  for (const keyId of [1, 2, 3] as const) responder.receive(forwarded(evil, keyId, X1), { address: MS, port: 4342 }, T0 + 1);
  assert.equal(responder.openingFor(X1)?.current, 1);
  assert.equal(open(responder.openingFor(X1), seal(sealing, 'still working'), T0 + 2), 'ok');
  // The attacker's best guess at the key: its own pair with every public key of ours it has seen.
  const own = answer(responder.receive(probe(evil, 1, EVIL), { address: EVIL, port: 4342 }, T0 + 3));
  for (const guess of [own.key, etrPublic]) {
    assert.ok(guess);
    for (const keyId of [1, 2, 3] as const) assert.notEqual(open(responder.openingFor(X1), seal(itr(evil, guess, keyId), 'injected'), T0 + 4), 'ok');
  }
  assert.equal(responder.openingFor(X1)?.current, 1);
});

test('a junk key-id followed by the real re-offer does not reset the replay window: captured packets stay replays', () => {
  const { responder, pair, sealing, etrPublic } = working();
  const captured = [seal(sealing, 'one'), seal(sealing, 'two')];
  for (const p of captured) assert.equal(open(responder.openingFor(X1), p, T0 + 1), 'ok');
  responder.receive(forwarded(generateKeyPair(random), 1, X1), { address: MS, port: 4342 }, T0 + 2);
  const reoffer = answer(responder.receive(probe(pair, 1, X1), { address: X1, port: 4342 }, T0 + 3));
  assert.deepEqual(reoffer.key, etrPublic, 'the re-offer of the working key gets the same answer');
  for (const p of captured) assert.equal(open(responder.openingFor(X1), p, T0 + 4), 'replayed');
  assert.equal(open(responder.openingFor(X1), seal(sealing, 'three'), T0 + 5), 'ok');
});

test('a rekey: the new key is a candidate until its first packet, then current; the old one opens for the grace period only', () => {
  const { responder, sealing } = working();
  const next = generateKeyPair(random);
  const reply = answer(responder.receive(probe(next, 2, X1), { address: X1, port: 4342 }, T0 + 10));
  assert.ok(reply.key);
  assert.equal(responder.openingFor(X1)?.current, 1);
  const inFlight = seal(sealing, 'in flight');
  assert.equal(open(responder.openingFor(X1), seal(itr(next, reply.key, 2), 'new key'), T0 + 11), 'ok');
  assert.equal(responder.openingFor(X1)?.current, 2);
  assert.equal(open(responder.openingFor(X1), inFlight, T0 + 12), 'ok');
  assert.equal(open(responder.openingFor(X1), seal(sealing, 'late'), T0 + 11 + 30_001), 'key-expired');
});

test('lispers.net rekeys under key-id 1: the new key is proven by its packet, the old one retires', () => {
  const { responder, sealing } = working();
  const next = generateKeyPair(random);
  const reply = answer(responder.receive(probe(next, 1, X1), { address: X1, port: 4342 }, T0 + 10));
  assert.ok(reply.key);
  const fresh = itr(next, reply.key, 1);
  assert.equal(open(responder.openingFor(X1), seal(fresh, 'new key, same key-id'), T0 + 11), 'ok');
  assert.equal(open(responder.openingFor(X1), seal(sealing, 'old key in flight'), T0 + 12), 'ok');
  assert.equal(open(responder.openingFor(X1), seal(sealing, 'old key, too late'), T0 + 11 + 30_001), 'icv-mismatch');
  assert.equal(open(responder.openingFor(X1), seal(fresh, 'new key goes on'), T0 + 11 + 30_002), 'ok');
});

test('20,000 offers from distinct fake locators: the unproven are bounded and evicted first, the working peer stays', () => {
  const { responder, sealing } = working();
  const evil = generateKeyPair(random);
  for (let i = 0; i < 20_000; i++) {
    const address = `198.19.${(i >> 8) & 0xff}.${i & 0xff}`;
    responder.receive(probe(evil, 1, address), { address, port: 4342 }, T0 + 1 + i);
  }
  const counts = responder.peerCounts;
  assert.ok(counts.unproven <= 1024, `unproven ${counts.unproven}`);
  assert.ok(counts.peers <= 1025, `peers ${counts.peers}`);
  assert.ok((responder.counters.get('key-candidate-evicted') ?? 0) >= 20_000 - 1024);
  assert.equal(open(responder.openingFor(X1), seal(sealing, 'after the flood'), T0 + 40_000), 'ok');
});

test('the peer cap evicts the longest idle proven peer, never the one just answered', () => {
  const responder = etr({ maxUnproven: 4, maxPeers: 3 });
  const sessions: SealingSession[] = [];
  for (const [i, address] of ['198.18.1.1', '198.18.1.2', '198.18.1.3', '198.18.1.4'].entries()) {
    const pair = generateKeyPair(random);
    const reply = answer(responder.receive(probe(pair, 1, address), { address, port: 4342 }, T0 + i));
    assert.ok(reply.key);
    const s = itr(pair, reply.key, 1);
    sessions.push(s);
    assert.equal(open(responder.openingFor(address), seal(s, 'proof'), T0 + i), 'ok');
  }
  assert.equal(responder.peerCounts.peers, 3);
  assert.equal(responder.openingFor('198.18.1.1'), undefined, 'the idlest went');
  assert.equal(responder.counters.get('peer-evicted'), 1);
});
