// Signed key agreement between crypto-EIDs (docs/key-agreement.md), in memory
// (test/support/control-world.ts): each side signs its half with its crypto-EID key, through a
// forwarding and a proxy-replying map-server; an on-path host that rewrites a key in either
// direction, or strips the signatures, gets no key any crypto-EID traffic is sealed under, and an
// ETR delivers a crypto-EID source only under a key agreed with exactly that EID.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { generateP256KeyPair } from '../src/crypto/index.js';
import { x25519FromPrivate } from '../src/crypto/x25519-kdf.js';
import { type Address } from '../src/lisp/address.js';
import { decodeControl, encodeControl, type ControlMessage } from '../src/lisp/control.js';
import { parseIpv6 } from '../src/lisp/ip-text.js';
import { checkProof, PROOF_FIELD, proofIn, type CryptoEidScope } from '../src/lisp/xtr-control/key-agreement-proof.js';
import { A, B, C, CRYPTO_PREFIX, Network, T0, XtrNode, type NodeOptions, type NodeSpec } from './support/control-world.js';
import { ipUdpPacket } from './support/ip-packet.js';

const SCOPE: CryptoEidScope = { prefix: CRYPTO_PREFIX, derivation: 'eve' };
const newKey = (): ReturnType<typeof generateP256KeyPair> => generateP256KeyPair((n) => new Uint8Array(randomBytes(n)));
const withKey = (spec: NodeSpec): NodeSpec => ({ ...spec, cryptoEid: newKey() });

function pair(options: NodeOptions = {}, bOptions: NodeOptions = options): { net: Network; a: XtrNode; b: XtrNode } {
  const net = new Network();
  return { net, a: net.add(new XtrNode(withKey(A), options)), b: net.add(new XtrNode(withKey(B), bOptions)) };
}

function eidOf(n: XtrNode): string {
  assert.ok(n.cryptoEid);
  return n.cryptoEid;
}

/** Each side resolves the other's crypto-EID (the ETR needs the source mapping too). */
function resolveBoth(net: Network, a: XtrNode, b: XtrNode, now = T0): void {
  net.run(a, a.resolver.miss(0, parseIpv6(eidOf(b)) ?? new Uint8Array(16), now), now);
  net.run(b, b.resolver.miss(0, parseIpv6(eidOf(a)) ?? new Uint8Array(16), now), now);
}

/** Probes due now, run through the network. */
function probe(net: Network, n: XtrNode, now: number): void {
  net.run(n, n.resolver.tick(now), now);
}

/** A UDP packet between two crypto-EIDs, sent by `from`'s ITR and received by `to`'s ETR: what `to` delivered. */
function deliver(from: XtrNode, to: XtrNode, now: number, source = eidOf(from)): { readonly sent: number; readonly delivered: number } {
  const packet = ipUdpPacket({ source, destination: eidOf(to), sourcePort: 5000, destinationPort: 9, payload: Buffer.from('signed-key-agreement') });
  const datagrams = from.send([packet], now);
  return { sent: datagrams.length, delivered: to.receive(datagrams.map((d) => d.bytes), from.spec.rloc, now).length };
}

function counter(n: XtrNode, side: 'resolver' | 'responder', name: string): number {
  return (side === 'resolver' ? n.resolver.counters : n.responder.counters).get(name as never) ?? 0;
}

/** Every Security Key LCAF inside `a` with `key` in place of its key. */
function substitute(a: Address, key: Uint8Array): Address {
  if (a.afi !== 'lcaf') return a;
  const l = a.lcaf;
  if (l.type === 'security-key') return { afi: 'lcaf', lcaf: { ...l, keys: l.keys.map((k) => (k.length === 0 ? k : key)) } };
  if (l.type === 'afi-list') return { afi: 'lcaf', lcaf: { ...l, items: l.items.map((i) => substitute(i, key)) } };
  return a;
}

/** The on-path host's rewrite: its own X25519 key in every offer (`offers`) or every answer. */
function rewriteKeys(direction: 'offers' | 'answers', key: Uint8Array): (from: string, to: string, bytes: Uint8Array) => Uint8Array {
  return (_from, _to, bytes) => {
    const decoded = decodeControl(bytes);
    if (!decoded.ok) return bytes;
    const m = decoded.value;
    let out: ControlMessage | undefined;
    if (direction === 'offers' && m.type === 'map-request') out = { ...m, itrRlocs: m.itrRlocs.map((r) => substitute(r, key)) };
    if (direction === 'offers' && m.type === 'ecm' && m.message.type === 'map-request') out = { ...m, message: { ...m.message, itrRlocs: m.message.itrRlocs.map((r) => substitute(r, key)) } };
    if (direction === 'answers' && m.type === 'map-reply') out = { ...m, records: m.records.map((r) => ({ ...r, locators: r.locators.map((l) => ({ ...l, locator: substitute(l.locator, key) })) })) };
    return out ? encodeControl(out) : bytes;
  };
}

/** The on-path host strips every proof (the answers' JSON LCAF, the probes' Source-EID). */
function stripProofs(_from: string, _to: string, bytes: Uint8Array): Uint8Array {
  const decoded = decodeControl(bytes);
  if (!decoded.ok || decoded.value.type !== 'map-reply') return bytes;
  const m = decoded.value;
  const strip = (a: Address): Address => (a.afi === 'lcaf' && a.lcaf.type === 'afi-list' ? { afi: 'lcaf', lcaf: { ...a.lcaf, items: a.lcaf.items.filter((i) => !(i.afi === 'lcaf' && i.lcaf.type === 'json')) } } : a);
  return encodeControl({ ...m, records: m.records.map((r) => ({ ...r, locators: r.locators.map((l) => ({ ...l, locator: strip(l.locator) })) })) });
}

const attacker = x25519FromPrivate(new Uint8Array(randomBytes(32))).publicKey;

test('two crypto-EIDs through a forwarding map-server: both halves signed, sessions authenticated as the peer, traffic flows both ways', () => {
  const { net, a, b } = pair();
  resolveBoth(net, a, b);
  for (const n of [a, b]) {
    assert.equal(counter(n, 'responder', 'key-offer-authenticated'), 1, 'each ETR checked the proof of the other\'s offer');
    assert.equal(counter(n, 'resolver', 'key-answer-authenticated'), 1, 'each ITR checked the proof of the answer');
  }
  const sealing = a.resolver.sealingFor(B.rloc);
  assert.ok(sealing?.keyed);
  assert.deepEqual(sealing.authentication.kind === 'crypto-eid' && sealing.authentication.peerEid, eidOf(b));
  const opening = b.responder.openingFor(A.rloc);
  assert.ok(opening);
  assert.deepEqual(deliver(a, b, T0 + 10), { sent: 1, delivered: 1 });
  assert.deepEqual(deliver(b, a, T0 + 10), { sent: 1, delivered: 1 });
  // The key b opened a's packet under is now current, and was agreed with a's crypto-EID.
  assert.deepEqual(opening.authentication?.kind === 'crypto-eid' && opening.authentication.peerEid, eidOf(a));
});

test('a proxy-replying map-server: the keys come in the signed probe and its signed answer', () => {
  const { net, a, b } = pair({ timers: { probeIntervalMs: 10_000 } });
  net.proxyReply = true;
  resolveBoth(net, a, b);
  assert.equal(a.resolver.sealingFor(B.rloc)?.keyed ?? false, false, 'a proxy reply carries no key');
  probe(net, a, T0 + 1);
  probe(net, b, T0 + 1);
  const sealing = a.resolver.sealingFor(B.rloc);
  assert.ok(sealing?.keyed && sealing.authentication.kind === 'crypto-eid');
  assert.equal(sealing.authentication.peerEid, eidOf(b));
  assert.deepEqual(deliver(a, b, T0 + 10), { sent: 1, delivered: 1 });
  assert.deepEqual(deliver(b, a, T0 + 10), { sent: 1, delivered: 1 });
});

for (const direction of ['offers', 'answers'] as const) {
  for (const proxyReply of [false, true]) {
    test(`an on-path host rewrites the keys of the ${direction} (${proxyReply ? 'proxy reply, probes' : 'forwarded requests'}): no key is agreed with it, no crypto-EID packet is sealed`, () => {
      const { net, a, b } = pair({ timers: { probeIntervalMs: 10_000 } });
      net.proxyReply = proxyReply;
      net.tamper = rewriteKeys(direction, attacker);
      resolveBoth(net, a, b);
      probe(net, a, T0 + 1);
      probe(net, b, T0 + 1);
      const refused = direction === 'offers' ? counter(b, 'responder', 'key-proof-invalid') : counter(a, 'resolver', 'key-proof-invalid');
      assert.ok(refused >= 1, `the rewritten ${direction} were refused (key-proof-invalid ${refused})`);
      // Whatever a holds for b's locator was not agreed with the attacker's key, and seals nothing to b's crypto-EID.
      const sealing = a.resolver.sealingFor(B.rloc);
      assert.ok(!sealing?.keyed || sealing.peerPublic === undefined || Buffer.compare(sealing.peerPublic, attacker) !== 0, 'a installed the attacker\'s key');
      assert.equal(b.responder.openingFor(A.rloc)?.opening.keys().some((k) => k.meta && Buffer.compare(k.meta.itrPublic, attacker) === 0) ?? false, false, 'b agreed a key with the attacker\'s offer');
      assert.deepEqual(deliver(a, b, T0 + 10), { sent: 0, delivered: 0 });
      assert.ok((a.drops.snapshot()['itr-no-key'] ?? 0) >= 1);
    });
  }
}

test('stripped proofs: an unsigned answer leaves b\'s crypto-EID without a key, and never replaces an authenticated key', () => {
  const { net, a, b } = pair({ timers: { probeIntervalMs: 10_000 } });
  net.tamper = stripProofs;
  resolveBoth(net, a, b);
  // The key is there (RFC 8061 as is, for IPv4 EIDs) but not for the crypto-EID.
  assert.equal(a.resolver.sealingFor(B.rloc)?.authentication.kind, 'unauthenticated');
  assert.deepEqual(deliver(a, b, T0 + 10), { sent: 0, delivered: 0 });
  // Signed again: the next probe authenticates the locator, and from then on a stripped answer is refused.
  net.tamper = undefined;
  a.resolver.requestRekey(B.rloc, T0 + 20);
  probe(net, a, T0 + 20);
  assert.equal(a.resolver.sealingFor(B.rloc)?.authentication.kind, 'crypto-eid');
  assert.deepEqual(deliver(a, b, T0 + 30), { sent: 1, delivered: 1 });
  net.tamper = stripProofs;
  a.resolver.requestRekey(B.rloc, T0 + 40);
  probe(net, a, T0 + 40);
  assert.equal(counter(a, 'resolver', 'key-unsigned-refused'), 1);
  assert.equal(a.resolver.sealingFor(B.rloc)?.authentication.kind, 'crypto-eid');
  assert.deepEqual(deliver(a, b, T0 + 50), { sent: 1, delivered: 1 });
});

test('a keyless probe reply does not unkey an authenticated locator', () => {
  const { net, a, b } = pair({ timers: { probeIntervalMs: 10_000 } });
  resolveBoth(net, a, b);
  net.tamper = (_from, _to, bytes) => {
    const decoded = decodeControl(bytes);
    if (!decoded.ok || decoded.value.type !== 'map-reply') return bytes;
    const m = decoded.value;
    const plain = (l: Address): Address => (l.afi === 'lcaf' && l.lcaf.type === 'afi-list' ? (l.lcaf.items[0] ?? l) : l);
    return encodeControl({ ...m, records: m.records.map((r) => ({ ...r, locators: r.locators.map((x) => ({ ...x, locator: plain(x.locator) })) })) });
  };
  probe(net, a, T0 + 10_000);
  assert.equal(counter(a, 'resolver', 'unkey-refused'), 1);
  assert.equal(a.resolver.sealingFor(B.rloc)?.keyed, true);
  assert.deepEqual(deliver(a, b, T0 + 10_001), { sent: 1, delivered: 1 });
});

test('the ETR delivers a crypto-EID source only under a key agreed with that EID', () => {
  const net = new Network();
  const b = net.add(new XtrNode(withKey(B)));
  // c serves a crypto-EID but agrees its keys unsigned (RFC 8061 as is).
  const c = net.add(new XtrNode(withKey(C), { signed: false }));
  net.run(c, c.resolver.miss(0, parseIpv6(eidOf(b)) ?? new Uint8Array(16), T0), T0);
  net.run(b, b.resolver.miss(0, parseIpv6(eidOf(c)) ?? new Uint8Array(16), T0), T0);
  // c's ITR does not check (it does not sign), so it seals; b's ETR refuses the unauthenticated source.
  assert.deepEqual(deliver(c, b, T0 + 10), { sent: 1, delivered: 0 });
  assert.equal(b.drops.snapshot()['etr-crypto-eid-unauthenticated'], 1);
  // And b seals nothing to c's crypto-EID, whose key no signature vouches for.
  assert.deepEqual(deliver(b, c, T0 + 10), { sent: 0, delivered: 0 });
});

test('a signed node still talks RFC 8061 (unsigned) to an IPv4 EID of a node that does not sign', () => {
  const net = new Network();
  const a = net.add(new XtrNode(withKey(A)));
  const c = net.add(new XtrNode(C));
  net.run(a, a.resolver.miss(0, Uint8Array.of(192, 0, 2, 34), T0), T0);
  net.run(c, c.resolver.miss(0, Uint8Array.of(192, 0, 2, 1), T0), T0);
  assert.equal(a.resolver.sealingFor(C.rloc)?.authentication.kind, 'unauthenticated');
  const packet = ipUdpPacket({ source: '192.0.2.1', destination: '192.0.2.34', sourcePort: 5000, destinationPort: 9, payload: Buffer.from('v4') });
  const datagrams = a.send([packet], T0 + 10);
  assert.equal(c.receive(datagrams.map((d) => d.bytes), A.rloc, T0 + 10).length, 1);
});

test('a proof is checked from cheap to dear: not an object, another instance, outside the prefix, not derived, rewritten', () => {
  const { net, a, b } = pair();
  let captured: unknown;
  net.tamper = (_from, _to, bytes) => {
    const d = decodeControl(bytes);
    if (d.ok && d.value.type === 'map-reply') captured ??= d.value.records[0]?.locators[0] && proofIn(d.value.records[0].locators[0].locator);
    return bytes;
  };
  resolveBoth(net, a, b);
  assert.ok(typeof captured === 'object' && captured !== null);
  const proof = captured as Record<string, string>;
  const transcript = (etrEid: Uint8Array) => ({ role: 'answer' as const, nonce: 1n, instanceId: 0, itrEid: new Uint8Array(16), etrEid, suite: 5, keyId: 1, itrKey: new Uint8Array(32), etrKey: new Uint8Array(32) });
  const reason = (p: unknown, iid = 0, scope = SCOPE): string => {
    const c = checkProof(p, iid, transcript, scope);
    return c.kind === 'refused' ? c.reason : c.kind;
  };
  assert.equal(reason('text'), 'key-proof-malformed');
  assert.equal(reason({ ...proof, signature: 'AAAA' }), 'key-proof-malformed');
  assert.equal(reason(proof, 7), 'key-proof-malformed');
  assert.equal(reason(proof, 0, { ...SCOPE, prefix: { address: Uint8Array.of(0xfc, ...new Array<number>(15).fill(0)), length: 8 } }), 'key-proof-not-crypto-eid');
  assert.equal(reason({ ...proof, 'public-key': Buffer.from(newKey().spki).toString('base64') }), 'key-proof-eid-not-derived');
  assert.equal(reason(proof), 'key-proof-invalid', 'a signature over another exchange');
  assert.equal(reason(undefined), 'unsigned');
  assert.ok(PROOF_FIELD.length > 0);
});
