// The map-server's Map-Request side (src/lisp/map-server/request-handler.ts, lookup-policy.ts):
// registrations are made through the real RegisterHandler, then ECM'd Map-Requests are answered
// by proxy reply, forwarded to the ETR, or refused with the negative reply of their case; the
// lookup policy trusts a requester's source EID only when its own key signed the request.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { deriveCryptoEid, generateP256KeyPair, publicKeyJsonValue, signEid, signMapRequest, type P256KeyPair } from '../src/crypto/index.js';
import {
  ECM_DEFAULTS,
  ACTION,
  authFields,
  decodeControl,
  EID_RECORD_DEFAULTS,
  encodeControl,
  formatIpv6,
  ip,
  ipv4,
  LOCATOR_DEFAULTS,
  MAP_REQUEST_DEFAULTS,
  NO_ADDRESS,
  passwordKey,
  prefix,
  sealAuthentication,
  withInstanceId,
  type Address,
  type AuthKey,
  type Ecm,
  type EidRecord,
  type IpHeader,
  type LocatorRecord,
  type MapRegister,
  type MapReply,
  type MapRequest,
} from '../src/lisp/index.js';
import { jsonLocator } from '../src/lisp/registration-record.js';
import {
  RegisterHandler,
  RequestHandler,
  type LookupPolicy,
  type MapServerConfig,
  type RequestCounterName,
  type RequestResult,
  type SiteConfig,
} from '../src/lisp/map-server/index.js';
import { LINKTYPE_RAW, writePcap } from '../src/node/pcap-file.js';
import { controlPacket } from './support/ip-packet.js';
import { prng } from './support/prng.js';

// ---------------------------------------------------------------- the map-server under test

const random = prng(0x4e0e57);
const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
const OWNER = generateP256KeyPair(randomBytes);
const ALICE = generateP256KeyPair(randomBytes);
const BOB = generateP256KeyPair(randomBytes);
const CAROL = generateP256KeyPair(randomBytes);
const STRANGER = generateP256KeyPair(randomBytes);
const IID = 1000;
const T0 = 1_795_000_000_000;

const eidOf = (pair: P256KeyPair, iid = IID): string => formatIpv6(deriveCryptoEid({ iid, spki: pair.spki }).eid);
const host = (pair: P256KeyPair): string => `[${IID}]${eidOf(pair)}`;

const KEY_EDGE = passwordKey(1, 2, 'edge-secret');
const KEY_LAB = passwordKey(1, 2, 'lab-secret');
const KEY_OPEN = passwordKey(1, 1, 'open-secret');

function site(name: string, keys: AuthKey[], prefixes: readonly (readonly [string, boolean, LookupPolicy?])[], options: Partial<SiteConfig> = {}): SiteConfig {
  return {
    name,
    keys,
    allowedPrefixes: prefixes.map(([text, acceptMoreSpecifics, lookupPolicy]) => ({ prefix: prefix(text), acceptMoreSpecifics, ...(lookupPolicy && { lookupPolicy }) })),
    requireSignature: false,
    requireRegistrationSignature: false,
    ...options,
  };
}

// Crypto-EIDs: Alice and Bob are listed, Bob is also denied (deny wins), Carol is not listed.
const EDGE = site('edge', [KEY_EDGE], [['[1000]fd00::/8', true]], {
  lookupPolicy: { allow: [prefix(host(ALICE)), prefix(host(BOB))], deny: [prefix(host(BOB))] },
});
// Only Alice; nobody at all for 10.99.0.0/16.
const LAB = site('lab', [KEY_LAB], [['10.0.0.0/8', true], ['10.99.0.0/16', true, { allow: [], deny: [] }]], { lookupPolicy: { allow: [prefix(host(ALICE))], deny: [] } });
const OPEN = site('open', [KEY_OPEN], [['192.0.2.0/24', true], ['198.51.100.0/24', false], ['2001:db8::/32', true]]);
const CONFIG: MapServerConfig = {
  sites: [EDGE, LAB, OPEN],
  // [2000]fd00::/8 is crypto-EID space no site may register.
  cryptoEidPrefixes: [
    { prefix: prefix('[1000]fd00::/8'), derivation: 'eve' },
    { prefix: prefix('[2000]fd00::/8'), derivation: 'eve' },
  ],
};

const rloc = (address: string, o: Partial<LocatorRecord> = {}): LocatorRecord => ({ ...LOCATOR_DEFAULTS, local: true, locator: ip(address), ...o });

function record(eid: string, maskLength: number, locators: LocatorRecord[], iid?: number): EidRecord {
  const address = ip(eid);
  return { ...EID_RECORD_DEFAULTS, ttl: 3, authoritative: true, eidMaskLength: maskLength, eid: iid === undefined ? address : withInstanceId(iid, address), locators };
}

function hashEidRecord(pair: P256KeyPair): EidRecord {
  return {
    ...EID_RECORD_DEFAULTS,
    ttl: 3,
    authoritative: true,
    eidMaskLength: 0,
    eid: withInstanceId(IID, { afi: 'distinguished-name', name: deriveCryptoEid({ iid: IID, spki: pair.spki }).hashEidName }),
    locators: [jsonLocator({ 'public-key': publicKeyJsonValue(pair.publicKey) })],
  };
}

function cryptoRecord(pair: P256KeyPair, rlocAddress: string): EidRecord {
  const eid = eidOf(pair);
  return record(eid, 128, [rloc(rlocAddress), jsonLocator({ 'signature-eid': host(pair), signature: signEid(pair.scalar, { iid: IID, text: eid }) })], IID);
}

function mapRegister(records: readonly EidRecord[], key: AuthKey, proxyReply: boolean, nonce: bigint): Uint8Array {
  const m: MapRegister = {
    type: 'map-register',
    proxyReply,
    securityCapable: false,
    wantMapNotify: false,
    useTtlForTimeout: true,
    reservedFlags: 0,
    nonce,
    ...authFields(key),
    records,
  };
  return sealAuthentication(encodeControl(m), key);
}

const LAB_FORWARDED = record('10.1.0.0', 16, [
  jsonLocator({ note: 'not a locator' }),
  rloc('198.18.0.30', { priority: 1, reachable: false }),
  rloc('198.18.0.32', { priority: 3 }),
  rloc('198.18.0.31', { priority: 2 }),
]);
const OPEN_PROXIED = record('192.0.2.0', 25, [rloc('198.18.0.40'), rloc('2001:db8:ffff::40', { priority: 2 })]);

/** The map-server with every registration of these tests in place at T0. */
function mapServer(): { registrar: RegisterHandler; handler: RequestHandler } {
  const registrar = new RegisterHandler(CONFIG);
  const register = (bytes: Uint8Array): void => {
    const v = registrar.handle({ bytes, source: { address: '198.18.0.99', port: 4342 } }, T0);
    assert.ok(v.kind === 'processed' && v.records.every((o) => o.outcome === 'registered'), JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x)));
  };
  register(mapRegister([hashEidRecord(OWNER), cryptoRecord(OWNER, '198.18.0.50')], KEY_EDGE, true, 1n));
  for (const [i, pair] of [ALICE, BOB, CAROL].entries()) register(mapRegister([hashEidRecord(pair), cryptoRecord(pair, `198.18.0.${51 + i}`)], KEY_EDGE, true, BigInt(2 + i)));
  register(mapRegister([LAB_FORWARDED], KEY_LAB, false, 10n));
  register(mapRegister([record('10.99.0.0', 16, [rloc('198.18.0.33')])], KEY_LAB, true, 11n));
  register(mapRegister([OPEN_PROXIED], KEY_OPEN, true, 20n));
  register(mapRegister([record('2001:db8:1::', 48, [rloc('198.18.0.41')])], KEY_OPEN, true, 21n));
  return { registrar, handler: new RequestHandler(registrar) };
}

// ---------------------------------------------------------------- Map-Requests

const ITR = '198.18.0.21';
const ITR_PORT = 61_000;
const SOURCE = { address: '198.18.0.21', port: 4342 };

interface RequestOptions {
  readonly nonce?: bigint;
  readonly iid?: number;
  /** Signs with `key`, claiming `source` (default: the key's own crypto-EID). */
  readonly signedBy?: { readonly key: P256KeyPair; readonly source?: P256KeyPair; readonly tamper?: boolean };
  readonly itrRlocs?: readonly Address[];
  readonly ecm?: Partial<Ecm<MapRequest>>;
  readonly request?: Partial<MapRequest>;
}

function nonceBytes(nonce: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, nonce);
  return b;
}

function mapRequest(target: string, o: RequestOptions = {}): MapRequest {
  const nonce = o.nonce ?? 0x1122334455667788n;
  const iid = o.iid ?? (target.includes(':') && target.startsWith('fd') ? IID : 0);
  const address = ip(target);
  let sourceEid: Address = NO_ADDRESS;
  if (o.signedBy) {
    const source = o.signedBy.source ?? o.signedBy.key;
    const targetText = { iid, text: address.afi === 'ipv4' || address.afi === 'ipv6' ? address.address : '' };
    let signature = signMapRequest(o.signedBy.key.scalar, nonceBytes(nonce), { iid: IID, text: eidOf(source) }, targetText);
    if (o.signedBy.tamper) signature = `${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    // lispers.net's key order, and its trailing newline inside the base64 text.
    const json = JSON.stringify({ 'source-eid': host(source), 'signature-eid': host(o.signedBy.key), signature: `${signature}\n` });
    sourceEid = { afi: 'lcaf', lcaf: { type: 'json', json, jsonFlags: 0, address: NO_ADDRESS } };
  }
  return {
    ...MAP_REQUEST_DEFAULTS,
    nonce,
    sourceEid,
    itrRlocs: o.itrRlocs ?? [ipv4(ITR)],
    records: [{ reserved: 0, eidMaskLength: address.afi === 'ipv4' ? 32 : 128, eid: iid === 0 ? address : withInstanceId(iid, address) }],
    ...o.request,
  };
}

function ecm(message: MapRequest, target: string, o: RequestOptions = {}): Ecm<MapRequest> {
  const v6 = target.includes(':');
  const ipHeader: IpHeader = v6
    ? { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, source: o.signedBy ? eidOf(o.signedBy.source ?? o.signedBy.key) : 'fd00::1', destination: target }
    : { version: 4, tos: 0, identification: 0, dontFragment: false, ttl: 128, source: '192.0.2.200', destination: target };
  return {
    ...ECM_DEFAULTS,
    ip: ipHeader,
    udp: { sourcePort: ITR_PORT, destinationPort: 4342, checksum: 'computed' },
    message,
    ...o.ecm,
  };
}

function requestBytes(target: string, o: RequestOptions = {}): Uint8Array {
  return encodeControl(ecm(mapRequest(target, o), target, o));
}

function ask(handler: RequestHandler, target: string, o: RequestOptions = {}, now = T0 + 1000): RequestResult {
  return handler.handle({ bytes: requestBytes(target, o), source: SOURCE }, now);
}

/** The one datagram sent, decoded as a Map-Reply sent back to the ITR. */
function replyOf(result: RequestResult, to = ITR): MapReply {
  assert.equal(result.actions.length, 1, `outcome ${result.outcome.kind}`);
  const [action] = result.actions;
  assert.ok(action);
  assert.equal(action.to, to);
  assert.equal(action.port, ITR_PORT, 'to the inner UDP source port of the ECM');
  const d = decodeControl(action.bytes);
  assert.ok(d.ok && d.value.type === 'map-reply', 'a Map-Reply');
  assert.deepEqual(d.quirks, []);
  return d.value;
}

/** [action, TTL, EID prefix text, locator count] of a one-record negative reply. */
function negative(result: RequestResult): [number, number, string, number] {
  const reply = replyOf(result);
  assert.equal(reply.records.length, 1);
  const [r] = reply.records;
  assert.ok(r);
  assert.equal(r.authoritative, false);
  const a = r.eid.afi === 'lcaf' && r.eid.lcaf.type === 'instance-id' ? r.eid.lcaf.address : r.eid;
  const iid = r.eid.afi === 'lcaf' && r.eid.lcaf.type === 'instance-id' ? r.eid.lcaf.instanceId : 0;
  assert.ok(a.afi === 'ipv4' || a.afi === 'ipv6');
  return [r.action, r.ttl, `[${iid}]${a.address}/${r.eidMaskLength}`, r.locators.length];
}

const counters = (h: RequestHandler): Partial<Record<RequestCounterName, number>> => h.counters.snapshot();

// ---------------------------------------------------------------- positive answers

test('proxy reply: the registered record, TTL 1440, A clear, locators as registered (L cleared), to the ITR-RLOC at the inner source port', () => {
  const { handler } = mapServer();
  const result = ask(handler, '192.0.2.77', { nonce: 0xabcdef0123456789n });
  const reply = replyOf(result);
  assert.equal(reply.nonce, 0xabcdef0123456789n);
  assert.equal(reply.probe, false);
  const [r] = reply.records;
  assert.ok(r && reply.records.length === 1);
  assert.deepEqual(r.eid, ipv4('192.0.2.0'));
  assert.equal(r.eidMaskLength, 25);
  assert.equal(r.ttl, 1440);
  assert.equal(r.authoritative, false);
  assert.equal(r.action, ACTION.noAction);
  assert.deepEqual(
    r.locators,
    OPEN_PROXIED.locators.map((l) => ({ ...l, local: false })),
  );
  assert.deepEqual(result.outcome, { kind: 'proxy-reply', nonce: 0xabcdef0123456789n, target: prefix('192.0.2.77'), registration: '[0]192.0.2.0/25', requester: undefined });
  assert.deepEqual(counters(handler), { 'reply-proxy': 1 });
});

test('forwarding: the same Map-Request in an ECM with E set, inner IP/UDP/message byte for byte, to the best reachable ETR RLOC at 4342', () => {
  const { handler } = mapServer();
  const sent = requestBytes('10.1.2.3', { signedBy: { key: ALICE } });
  const result = handler.handle({ bytes: sent, source: SOURCE }, T0 + 1000);
  assert.equal(result.outcome.kind, 'forwarded');
  assert.equal(result.actions.length, 1);
  const [action] = result.actions;
  assert.ok(action);
  // Priority 1 is unreachable, 255 is a JSON record: priority 2 wins over 3.
  assert.equal(action.to, '198.18.0.31');
  assert.equal(action.port, 4342);
  assert.equal(action.bytes.length, sent.length);
  assert.deepEqual(action.bytes.subarray(4), sent.subarray(4), 'inner headers and Map-Request unchanged');
  assert.deepEqual([...action.bytes.subarray(0, 4)], [0x82, 0, 0, 0], 'type 8, E (to-ETR) only');
  const d = decodeControl(action.bytes);
  assert.ok(d.ok && d.value.type === 'ecm');
  assert.equal(d.value.toEtr, true);
  assert.equal(d.value.toMapServer, false);
  assert.equal(d.value.udp.sourcePort, ITR_PORT);
  const original = decodeControl(sent);
  assert.ok(original.ok && original.value.type === 'ecm');
  assert.deepEqual(d.value.message, original.value.message);
  assert.deepEqual(d.value.ip, original.value.ip);
  assert.deepEqual(counters(handler), { 'reply-forwarded': 1, 'signature-valid': 1 });
});

test('the reply goes to the address inside a Security Key LCAF ITR-RLOC (RFC 8061), or the first usable one after unusable ones', () => {
  const { handler } = mapServer();
  const securityKey: Address = { afi: 'lcaf', lcaf: { type: 'security-key', cipherSuite: 5, rekey: false, keys: [randomBytes(32)], locator: ipv4('198.18.0.66') } };
  replyOf(ask(handler, '192.0.2.5', { itrRlocs: [securityKey, ipv4(ITR)] }), '198.18.0.66');
  replyOf(ask(handler, '192.0.2.5', { itrRlocs: [{ afi: 'distinguished-name', name: 'itr' }, ip('2001:db8:ffff::21')] }), '2001:db8:ffff::21');
  const list: Address = { afi: 'lcaf', lcaf: { type: 'afi-list', items: [NO_ADDRESS, ipv4('198.18.0.67')] } };
  replyOf(ask(handler, '192.0.2.5', { itrRlocs: [list] }), '198.18.0.67');
  assert.deepEqual(counters(handler), { 'reply-proxy': 3 });
});

// ---------------------------------------------------------------- negative answers

test('not registered inside a site: TTL 1, natively-forward, the largest prefix clear of registrations and configured prefixes', () => {
  const { handler } = mapServer();
  // 10.0.0.0/8 (accept-more-specifics) holds 10.1.0.0/16 and 10.99.0.0/16.
  assert.deepEqual(negative(ask(handler, '10.200.0.1', { signedBy: { key: ALICE } })), [ACTION.nativelyForward, 1, '[0]10.128.0.0/9', 0]);
  assert.deepEqual(negative(ask(handler, '10.0.0.1', { signedBy: { key: ALICE } })), [ACTION.nativelyForward, 1, '[0]10.0.0.0/16', 0]);
  // 192.0.2.0/24 holds 192.0.2.0/25.
  assert.deepEqual(negative(ask(handler, '192.0.2.200')), [ACTION.nativelyForward, 1, '[0]192.0.2.128/25', 0]);
  // An allowed prefix without more-specifics can only be registered whole: it is the answer.
  assert.deepEqual(negative(ask(handler, '198.51.100.9')), [ACTION.nativelyForward, 1, '[0]198.51.100.0/24', 0]);
  assert.deepEqual(negative(ask(handler, '2001:db8:2::1')), [ACTION.nativelyForward, 1, '[0]2001:db8:2::/47', 0]);
  assert.deepEqual(counters(handler), { 'negative-not-registered': 5, 'signature-valid': 2 });
});

test('beyond the scan limit a negative inside an accept-more-specifics prefix is the EID itself (lispers.net\'s answer)', () => {
  const { registrar } = mapServer();
  const handler = new RequestHandler(registrar, { negativeScanLimit: 1 });
  assert.deepEqual(negative(ask(handler, '192.0.2.200')), [ACTION.nativelyForward, 1, '[0]192.0.2.200/32', 0]);
});

test('no site: TTL 15, natively-forward, the largest prefix clear of every configured prefix', () => {
  const { handler } = mapServer();
  // Configured IPv4 space: 10/8, 192.0.2.0/24, 198.51.100.0/24. 203.0.113.1 shares 2 bits with 198/192.
  assert.deepEqual(negative(ask(handler, '203.0.113.1')), [ACTION.nativelyForward, 15, '[0]200.0.0.0/5', 0]);
  assert.deepEqual(negative(ask(handler, '198.51.101.1')), [ACTION.nativelyForward, 15, '[0]198.51.101.0/24', 0]);
  // Nothing configured in instance 7: the whole family.
  assert.deepEqual(negative(ask(handler, '10.1.2.3', { iid: 7 })), [ACTION.nativelyForward, 15, '[7]0.0.0.0/0', 0]);
  assert.deepEqual(negative(ask(handler, '2001:db9::1')), [ACTION.nativelyForward, 15, '[0]2001:db9::/32', 0]);
  assert.deepEqual(counters(handler), { 'negative-no-site': 4 });
});

test('crypto-EIDs: send-map-request for the requested EID itself, TTL 15 without a site and 1 when not registered', () => {
  const { handler } = mapServer();
  const orphan = eidOf(STRANGER, 2000);
  // No site allows [2000]fd00::/8: no signature needed to learn that.
  const noSite = ask(handler, orphan, { iid: 2000 });
  assert.deepEqual(negative(noSite), [ACTION.sendMapRequest, 15, `[2000]${orphan}/128`, 0]);
  const unregistered = eidOf(STRANGER);
  assert.deepEqual(negative(ask(handler, unregistered, { signedBy: { key: ALICE } })), [ACTION.sendMapRequest, 1, `[${IID}]${unregistered}/128`, 0]);
  assert.deepEqual(counters(handler), { 'negative-no-site': 1, 'negative-not-registered': 1, 'signature-valid': 1 });
});

// ---------------------------------------------------------------- lookup access control

test('ACL on crypto-EIDs: Alice (signed) gets the mapping with its signature locators, Bob is denied (deny wins), Carol is not listed', () => {
  const { handler } = mapServer();
  const target = eidOf(OWNER);
  const reply = replyOf(ask(handler, target, { signedBy: { key: ALICE } }));
  const [r] = reply.records;
  assert.ok(r);
  assert.deepEqual(r.eid, withInstanceId(IID, ip(target)));
  assert.equal(r.eidMaskLength, 128);
  assert.equal(r.locators.length, 2);
  assert.equal(r.locators[1]?.priority, 255, 'the static EID signature travels with the mapping');
  assert.deepEqual(r.locators[1], cryptoRecord(OWNER, '198.18.0.50').locators[1]);

  for (const key of [BOB, CAROL]) {
    const result = ask(handler, target, { signedBy: { key } });
    assert.deepEqual(negative(result), [ACTION.dropPolicyDenied, 1, `[${IID}]${target}/128`, 0]);
    assert.equal(result.outcome.kind === 'negative' && result.outcome.policy, key === BOB ? 'requester-denied' : 'requester-not-allowed');
  }
  assert.deepEqual(counters(handler), { 'reply-proxy': 1, 'negative-policy-denied': 2, 'signature-valid': 3 });
});

test('ACL on a restricted IPv4 site: unsigned -> ACT 4; Alice allowed; a per-prefix policy denies her 10.99.0.0/16', () => {
  const { handler } = mapServer();
  const unsigned = ask(handler, '10.1.2.3');
  assert.deepEqual(negative(unsigned), [ACTION.dropPolicyDenied, 1, '[0]10.1.0.0/16', 0]);
  assert.deepEqual(unsigned.outcome.kind === 'negative' && [unsigned.outcome.policy, unsigned.outcome.requester], ['requester-unauthenticated', { kind: 'unsigned' }]);
  assert.equal(ask(handler, '10.1.2.3', { signedBy: { key: ALICE } }).outcome.kind, 'forwarded');
  assert.deepEqual(negative(ask(handler, '10.99.1.1', { signedBy: { key: ALICE } })), [ACTION.dropPolicyDenied, 1, '[0]10.99.0.0/16', 0]);
  // Denial covers unregistered space too, so a refused requester cannot map the site.
  assert.deepEqual(negative(ask(handler, '10.200.0.1')), [ACTION.dropPolicyDenied, 1, '[0]10.128.0.0/9', 0]);
  assert.deepEqual(counters(handler), { 'negative-policy-denied': 3, 'reply-forwarded': 1, 'signature-valid': 2 });
});

test('a request signed by Carol\'s key claiming Alice\'s source EID is not trusted: ACT 4 on the lab, ACT 5 on a crypto-EID', () => {
  const { handler } = mapServer();
  const lab = ask(handler, '10.1.2.3', { signedBy: { key: CAROL, source: ALICE } });
  assert.deepEqual(negative(lab), [ACTION.dropPolicyDenied, 1, '[0]10.1.0.0/16', 0]);
  assert.deepEqual(lab.outcome.kind === 'negative' && lab.outcome.requester, { kind: 'rejected', reason: 'signature-source-mismatch' });
  const target = eidOf(OWNER);
  assert.deepEqual(negative(ask(handler, target, { signedBy: { key: CAROL, source: ALICE } })), [ACTION.dropAuthFailure, 1, `[${IID}]${target}/128`, 0]);
  assert.deepEqual(counters(handler), { 'negative-policy-denied': 1, 'negative-auth-failure': 1, 'signature-source-mismatch': 2 });
});

test('crypto-EID targets need a valid requester signature: unsigned, tampered, unknown key -> ACT 5 for the requested EID', () => {
  const { handler } = mapServer();
  const target = eidOf(OWNER);
  const expected = [ACTION.dropAuthFailure, 1, `[${IID}]${target}/128`, 0];
  assert.deepEqual(negative(ask(handler, target)), expected);
  assert.deepEqual(negative(ask(handler, target, { signedBy: { key: ALICE, tamper: true } })), expected);
  assert.deepEqual(negative(ask(handler, target, { signedBy: { key: STRANGER } })), expected);
  // Signed for another nonce: the same signature does not carry over.
  const m = mapRequest(target, { signedBy: { key: ALICE }, nonce: 1n });
  const replayed = encodeControl(ecm({ ...m, nonce: 2n }, target));
  assert.deepEqual(negative(handler.handle({ bytes: replayed, source: SOURCE }, T0 + 1000)), expected);
  assert.deepEqual(counters(handler), { 'negative-auth-failure': 4, 'signature-invalid': 2, 'signature-key-unknown': 1 });
  // Once Alice's registration (and with it her key) is dead, her signature proves nothing.
  const late = ask(handler, target, { signedBy: { key: ALICE } }, T0 + 10 * 60_000);
  assert.deepEqual(late.outcome.kind === 'negative' && late.outcome.requester, { kind: 'rejected', reason: 'signature-key-unknown' });
});

// ---------------------------------------------------------------- malformed input

test('what is not an answerable ECM Map-Request is dropped and counted', () => {
  const { handler } = mapServer();
  const drop = (bytes: Uint8Array): string => {
    const r = handler.handle({ bytes, source: SOURCE }, T0);
    assert.deepEqual(r.actions, []);
    assert.equal(r.outcome.kind, 'dropped');
    return r.outcome.kind === 'dropped' ? r.outcome.reason : '';
  };
  const good = requestBytes('192.0.2.5');
  assert.equal(drop(good.subarray(0, good.length - 1)), 'request-decode-error');
  assert.equal(drop(new Uint8Array([0x80])), 'request-decode-error');
  const flipped = Uint8Array.from(good);
  flipped[4 + 10] = (flipped[4 + 10] ?? 0) ^ 0xff; // inner IPv4 checksum
  assert.equal(drop(flipped), 'request-decode-error');
  assert.equal(drop(encodeControl(mapRequest('192.0.2.5'))), 'request-not-ecm');
  assert.equal(drop(requestBytes('192.0.2.5', { ecm: { toEtr: true } })), 'request-ecm-to-etr');
  assert.equal(drop(requestBytes('192.0.2.5', { request: { probe: true } })), 'request-probe');
  assert.equal(drop(requestBytes('192.0.2.5', { request: { records: [] } })), 'request-no-record');
  assert.equal(drop(requestBytes('192.0.2.5', { request: { records: [{ reserved: 0, eidMaskLength: 0, eid: { afi: 'distinguished-name', name: 'x' } }] } })), 'request-unsupported-eid');
  assert.equal(drop(requestBytes('192.0.2.5', { itrRlocs: [{ afi: 'distinguished-name', name: 'itr' }] })), 'request-no-itr-rloc');
  const reply = replyOf(handler.handle({ bytes: good, source: SOURCE }, T0));
  const inner: Ecm<MapReply> = { ...ecm(mapRequest('192.0.2.5'), '192.0.2.5'), message: reply };
  assert.equal(drop(encodeControl(inner)), 'request-ecm-not-map-request');
  assert.deepEqual(counters(handler), {
    'request-decode-error': 3,
    'request-not-ecm': 1,
    'request-ecm-to-etr': 1,
    'request-probe': 1,
    'request-no-record': 1,
    'request-unsupported-eid': 1,
    'request-no-itr-rloc': 1,
    'request-ecm-not-map-request': 1,
    'reply-proxy': 1,
  });
});

test('a non-proxy registration without a reachable RLOC below priority 255 is not forwarded anywhere', () => {
  const registrar = new RegisterHandler({ ...CONFIG, sites: [{ ...LAB, lookupPolicy: { allow: 'any', deny: [] } }] });
  const stuck = record('10.2.0.0', 16, [rloc('198.18.0.30', { reachable: false }), rloc('198.18.0.31', { priority: 255 })]);
  assert.equal(registrar.handle({ bytes: mapRegister([stuck], KEY_LAB, false, 1n), source: SOURCE }, T0).kind, 'processed');
  const handler = new RequestHandler(registrar);
  assert.deepEqual(ask(handler, '10.2.0.1'), { actions: [], outcome: { kind: 'dropped', reason: 'request-no-etr-rloc' } });
  assert.deepEqual(counters(handler), { 'request-no-etr-rloc': 1 });
});

// ---------------------------------------------------------------- Wireshark

const execFileAsync = promisify(execFile);

test('tshark -V dissects our Map-Replies and ECMs without a malformed packet or expert error', async () => {
  const { handler } = mapServer();
  const target = eidOf(OWNER);
  const inputs: Uint8Array[] = [
    requestBytes('192.0.2.77'),
    requestBytes('10.1.2.3', { signedBy: { key: ALICE } }),
    requestBytes(target, { signedBy: { key: ALICE } }),
    requestBytes(target, { signedBy: { key: BOB } }),
    requestBytes(target),
    requestBytes('10.200.0.1', { signedBy: { key: ALICE } }),
    requestBytes('203.0.113.1'),
    requestBytes('2001:db9::1'),
    requestBytes(eidOf(STRANGER, 2000), { iid: 2000 }),
  ];
  // Not included: a Map-Request whose ITR-RLOC is a Security Key LCAF. tshark 4.0 raises the
  // expert error "Unexpected ITR-RLOC-AFI (16387)" on that valid packet (lisp-protocol.md §9.15);
  // its reply destination is checked above from our own decoder.
  const packets: Uint8Array[] = [];
  /** Per frame, the expert errors tshark 4.0.17 is known to raise on a valid packet. */
  const known: number[] = [];
  for (const bytes of inputs) {
    packets.push(controlPacket(bytes, { source: '198.18.0.21', destination: '198.18.0.1', sourcePort: 4342 }));
    known.push(0);
    for (const a of handler.handle({ bytes, source: SOURCE }, T0 + 1000).actions) {
      packets.push(controlPacket(a.bytes, { source: '198.18.0.1', destination: a.to.includes(':') ? '198.18.0.2' : a.to, destinationPort: a.port }));
      known.push(afiListsStartingWithAfi0(a.bytes));
    }
  }
  // A proxy reply for a crypto-EID keeps the signature locator, lispers.net's AFI-List{AFI 0,
  // JSON LCAF}; tshark 4.0.17 cannot dissect AFI 0 as a list item ("Unexpected AFI (0), cannot
  // decode", found here; the wireshark oracle never generates AFI-Lists). Exactly those errors,
  // and nothing else, are accepted; the locators themselves are checked by our decoder above.
  assert.deepEqual(known.filter((n) => n > 0), [1], 'one frame carries the signature locator');
  assert.equal(packets.length, inputs.length * 2);
  const dir = await mkdtemp(join(tmpdir(), 'lispnode-ms-request-'));
  try {
    const file = join(dir, 'requests.pcap');
    await writeFile(file, writePcap(packets.map((data, i) => ({ timestampNs: BigInt(T0 + i) * 1_000_000n, data })), LINKTYPE_RAW));
    const { stdout } = await execFileAsync('tshark', ['-n', '-r', file, '-V', '-T', 'json', '--no-duplicate-keys'], { maxBuffer: 1 << 28 });
    const frames = JSON.parse(stdout) as { _source: { layers: Record<string, unknown> } }[];
    assert.equal(frames.length, packets.length);
    const types: string[] = [];
    frames.forEach((f, i) => {
      const problems = findProblems(f._source.layers);
      const tolerated = Array.from({ length: known[i] ?? 0 }, () => 'layers > lisp > lisp.mapping > lisp.loc > lisp.lcaf: expert error "Unexpected AFI (0), cannot decode"');
      assert.deepEqual(problems, tolerated, `frame ${i + 1}`);
      types.push(String(findField(f._source.layers, 'lisp.type')));
    });
    // Every request is an ECM; every answer a Map-Reply (2) but the forwarded ECM (8).
    assert.deepEqual(types, ['8', '2', '8', '8', '8', '2', '8', '2', '8', '2', '8', '2', '8', '2', '8', '2', '8', '2']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const PI_ERROR = 0x00800000;

/** Locators of a Map-Reply whose address is an AFI-List starting with AFI 0. */
function afiListsStartingWithAfi0(bytes: Uint8Array): number {
  const d = decodeControl(bytes);
  if (!d.ok || d.value.type !== 'map-reply') return 0;
  return d.value.records.flatMap((r) => r.locators).filter((l) => l.locator.afi === 'lcaf' && l.locator.lcaf.type === 'afi-list' && l.locator.lcaf.items[0]?.afi === 'none').length;
}

function findProblems(v: unknown, path = 'layers'): string[] {
  if (typeof v !== 'object' || v === null) return [];
  if (Array.isArray(v)) return v.flatMap((x) => findProblems(x, path));
  const out: string[] = [];
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    if (key === '_ws.malformed') out.push(`${path} > ${key}`);
    if (key === '_ws.expert') {
      for (const e of Array.isArray(value) ? value : [value]) {
        const item = e as Record<string, unknown>;
        if (Number(item['_ws.expert.severity']) >= PI_ERROR) out.push(`${path}: expert error ${JSON.stringify(item['_ws.expert.message'])}`);
      }
    }
    out.push(...findProblems(value, `${path} > ${key}`));
  }
  return out;
}

/** The first value of `field` anywhere in the tree (the outer LISP layer comes first). */
function findField(v: unknown, field: string): unknown {
  if (typeof v !== 'object' || v === null) return undefined;
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    if (key === field) return Array.isArray(value) ? (value as unknown[])[0] : value;
    const found = findField(value, field);
    if (found !== undefined) return found;
  }
  return undefined;
}
