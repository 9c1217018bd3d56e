// The map-server's Map-Register handling (src/lisp/map-server): the real OOR and lispers.net
// registrations are accepted and answered with the Map-Notify their own map-servers sent; forged,
// misplaced and replayed registrations are refused under their counter names; expiry follows the
// T bit and the record TTL; a snapshot restores what the configuration still admits.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { deriveCryptoEid, generateP256KeyPair, publicKeyJsonValue, signEid, type EidText, type P256KeyPair } from '../src/crypto/index.js';
import {
  authFields,
  decodeControl,
  EID_RECORD_DEFAULTS,
  encodeControl,
  formatIpv6,
  ip,
  ipv4,
  LOCATOR_DEFAULTS,
  passwordKey,
  prefix,
  sealAuthentication,
  toHex,
  verifyAuthentication,
  withInstanceId,
  type AuthKey,
  type EidRecord,
  type LocatorRecord,
  type MapNotify,
  type MapRegister,
} from '../src/lisp/index.js';
import { addRegistrationSignature, jsonLocator } from '../src/lisp/registration-record.js';
import {
  RegisterHandler,
  type MapServerConfig,
  type RecordOutcome,
  type RegisterCounterName,
  type RegisterVerdict,
  type SiteConfig,
} from '../src/lisp/map-server/index.js';
import { bundledCaptures } from '../src/node/bundled-captures.js';
import { lispPackets, type LispPacket } from '../src/node/lisp-capture.js';
import { readCapture } from '../src/node/pcap-file.js';
import { prng } from './support/prng.js';

// ---------------------------------------------------------------- helpers

type Processed = Extract<RegisterVerdict, { kind: 'processed' }>;

function processed(v: RegisterVerdict): Processed {
  assert.equal(v.kind, 'processed', v.kind === 'dropped' ? `dropped: ${v.reason}` : '');
  return v;
}

function dropped(v: RegisterVerdict): string {
  assert.equal(v.kind, 'dropped');
  assert.deepEqual(v.actions, []);
  return v.reason;
}

/** Per record: the outcome, or the refusal reason. */
function outcomes(v: RegisterVerdict): string[] {
  return processed(v).records.map((o: RecordOutcome) => (o.outcome === 'refused' ? o.reason : o.outcome));
}

const keyring =
  (...keys: AuthKey[]) =>
  (id: number): AuthKey | undefined =>
    keys.find((k) => k.keyId === id);

function decodeNotify(bytes: Uint8Array): MapNotify {
  const d = decodeControl(bytes);
  assert.ok(d.ok, 'the Map-Notify decodes');
  assert.equal(d.value.type, 'map-notify');
  return d.value;
}

function counters(h: RegisterHandler): Partial<Record<RegisterCounterName, number>> {
  return h.counters.snapshot();
}

// ---------------------------------------------------------------- captures

function capture(file: string): { packets: LispPacket[]; key: AuthKey } {
  const c = bundledCaptures().find((x) => x.file === file);
  assert.ok(c?.siteKey, `${file} has a site key`);
  const read = readCapture(readFileSync(c.path));
  assert.ok(read.ok);
  return { packets: lispPackets(read.packets), key: c.siteKey };
}

function messagesOf(packets: readonly LispPacket[], type: 'map-register' | 'map-notify'): (LispPacket & { kind: 'control' })[] {
  return packets.filter((p): p is LispPacket & { kind: 'control' } => p.kind === 'control' && p.message.ok && p.message.value.type === type);
}

const msOf = (p: LispPacket): number => Number(p.timestampNs / 1_000_000n);

function site(name: string, keys: AuthKey[], prefixes: readonly (readonly [string, boolean])[], options: Partial<SiteConfig> = {}): SiteConfig {
  return {
    name,
    keys,
    allowedPrefixes: prefixes.map(([text, acceptMoreSpecifics]) => ({ prefix: prefix(text), acceptMoreSpecifics })),
    requireSignature: false,
    requireRegistrationSignature: false,
    ...options,
  };
}

test('OOR: every Map-Register of oor-hub.pcap is accepted and acknowledged like OOR\'s map-server did, but for the L bit', () => {
  const { packets, key } = capture('oor-hub.pcap');
  const h = new RegisterHandler({ sites: [site('oor', [key], [['192.0.2.0/24', true], ['2001:db8::/32', true]])], cryptoEidPrefixes: [] });
  const registers = messagesOf(packets, 'map-register');
  const notifies = messagesOf(packets, 'map-notify');
  assert.ok(registers.length >= 4);
  const seen = new Set<string>();
  for (const p of registers) {
    const now = msOf(p);
    const v = processed(h.handle({ bytes: p.payload, source: { address: p.source, port: p.sourcePort } }, now));
    assert.equal(v.site, 'oor');
    // The hub shows every packet twice: the copy refreshes (an unsigned registration is not
    // replay-protected: RFC 9301's MAC covers no time, and dropping it would hide nothing).
    const [only] = v.records;
    assert.ok(only && only.outcome !== 'refused');
    assert.equal(only.outcome, seen.has(only.key) ? 'refreshed' : 'registered');
    seen.add(only.key);
    // OOR sends TTL 10 without T: the registration lives three missed refreshes.
    assert.equal(only.expiresAt, now + 180_000);

    assert.ok(v.mapNotify);
    assert.deepEqual(v.actions, [{ kind: 'send', to: p.source, port: p.sourcePort, bytes: v.mapNotify }]);
    assert.deepEqual(verifyAuthentication(v.mapNotify, keyring(key)), { ok: true, keyId: 0 });
    const ours = decodeNotify(v.mapNotify);
    const register = p.message.ok ? (p.message.value as MapRegister) : assert.fail();
    assert.equal(ours.nonce, register.nonce);
    assert.deepEqual(ours.records, register.records);
    // OOR's own map-server answered the same nonce; its records differ only in the L bit,
    // which it clears (we echo what the ETR sent, as lispers.net does).
    const theirs = notifies.find((n) => n.message.ok && n.message.value.type === 'map-notify' && n.message.value.nonce === register.nonce);
    assert.ok(theirs, 'the capture holds the Map-Notify');
    const ourBytes = v.mapNotify;
    const diffs = [...theirs.payload.keys()].filter((i) => i >= 16 + 20 && theirs.payload[i] !== ourBytes[i]);
    assert.equal(ourBytes.length, theirs.payload.length);
    assert.equal(diffs.length, 1, 'one byte differs outside the MAC');
    const at = diffs[0] ?? 0;
    assert.equal((ourBytes[at] ?? 0) ^ (theirs.payload[at] ?? 0), 0x04, 'the locator L flag');
  }
  const xtr1 = h.store.lookup(0, '192.0.2.2', msOf(registers[0]!));
  assert.ok(xtr1);
  assert.equal(xtr1.key, '[0]192.0.2.0/28');
  assert.equal(xtr1.source.address, '198.18.0.11');
  assert.equal(h.store.lookup(0, '2001:db8:2::1', msOf(registers.at(-1)!))?.key, '[0]2001:db8:2::/64');
  assert.equal(h.store.lookup(0, '192.0.2.200', msOf(registers[0]!)), undefined);
  assert.equal(h.store.size, 4);
  assert.deepEqual(counters(h), {});
});

test('lispers.net SHA-256: the Map-Register is accepted and our Map-Notify is byte-identical to lispers.net\'s', () => {
  const { packets, key } = capture('lispers-sha256-register.pcap');
  const [register] = messagesOf(packets, 'map-register');
  const [notify] = messagesOf(packets, 'map-notify');
  assert.ok(register && notify);
  const h = new RegisterHandler({ sites: [site('lispers', [key], [['192.0.2.0/24', true]])], cryptoEidPrefixes: [] });
  const now = msOf(register);
  const v = processed(h.handle({ bytes: register.payload, source: { address: register.source, port: register.sourcePort } }, now));
  assert.deepEqual(outcomes(v), ['registered']);
  // T with TTL 3 minutes: 180 s again, by the other rule.
  assert.equal(h.store.get('[0]192.0.2.16/28')?.expiresAt, now + 180_000);
  assert.equal(h.store.get('[0]192.0.2.16/28')?.xtrIdentity?.siteId, 0n);
  // Back to the xTR's ephemeral source port, as lispers.net's map-server did.
  assert.deepEqual(v.actions.map((a) => [a.to, a.port]), [['198.18.0.12', 59363]]);
  assert.equal(toHex(v.mapNotify ?? new Uint8Array()), toHex(notify.payload));
});

const LISPERS_CRYPTO: MapServerConfig = {
  sites: [],
  cryptoEidPrefixes: [{ prefix: prefix('[1000]fd00::/8'), derivation: 'lispers' }],
};

function cryptoCaptureHandler(options: Partial<SiteConfig>, derivation: 'lispers' | 'eve' = 'lispers'): { h: RegisterHandler; packets: LispPacket[] } {
  const { packets, key } = capture('lispers-crypto-eid-register.pcap');
  const h = new RegisterHandler({
    sites: [site('crypto', [key], [['[1000]fd00::/8', true]], { requireSignature: true, ...options })],
    cryptoEidPrefixes: LISPERS_CRYPTO.cryptoEidPrefixes.map((c) => ({ ...c, derivation })),
  });
  return { h, packets };
}

test('lispers.net crypto-EIDs: hash-EID and signed EID accepted, the EIDs derive from their keys, Map-Notify byte-identical', () => {
  const { h, packets } = cryptoCaptureHandler({});
  const registers = messagesOf(packets, 'map-register');
  const notifies = messagesOf(packets, 'map-notify');
  assert.equal(registers.length, 2);
  const nonces = registers.map((p) => (p.message.ok && p.message.value.type === 'map-register' ? p.message.value.nonce : -1n));
  // Surprise in the capture: two xTRs of one site, same nonce (lispers.net counts from a fixed
  // base, 0xaabbccdddfdfdf00 + n, packed little-endian). Nonces alone cannot detect replays.
  assert.equal(nonces[0], nonces[1]);
  registers.forEach((p, i) => {
    const now = msOf(p);
    const v = processed(h.handle({ bytes: p.payload, source: { address: p.source, port: p.sourcePort } }, now));
    assert.deepEqual(outcomes(v), ['registered', 'registered'], `frame ${p.frame}`);
    assert.equal(toHex(v.mapNotify ?? new Uint8Array()), toHex(notifies[i]?.payload ?? new Uint8Array()), `frame ${p.frame}: as lispers.net answered`);
  });
  const now = msOf(registers[1]!);
  const xtr1 = h.store.lookup(1000, 'fd82:ba3d:5269:69a4:4e5d:d3bb:4db7:5940', now);
  assert.deepEqual(xtr1?.proof, { level: 'eid-signature', signer: "[1000]'hash-82:ba3d:5269:69a4:4e5d:d3bb:4db7:5940'" });
  const key = h.store.publicKeyOf(1000, 'hash-dc:a2fe:43e6:5d50:a704:a8d2:70db:741b', now);
  assert.equal(key?.source.address, '198.18.0.13');
  assert.equal(h.store.lookup(1000, 'fd82::1', now), undefined, 'crypto-EIDs are hosts, not prefixes');
  assert.deepEqual(counters(h), {});

  // A byte-identical copy of a signed Map-Register is refused while remembered...
  const first = registers[0]!;
  assert.equal(dropped(h.handle({ bytes: first.payload, source: { address: '203.0.113.66', port: 4342 } }, now + 1000)), 'register-replayed');
  assert.deepEqual(counters(h), { 'register-replayed': 1 });
  // ...and accepted again after the window, bringing a dead registration back: the static
  // signature proves possession once, for ever. That is what the registration signature is for.
  const later = msOf(first) + h.config.replayWindowMs;
  assert.equal(h.store.lookup(1000, 'fd82:ba3d:5269:69a4:4e5d:d3bb:4db7:5940', later), undefined);
  assert.deepEqual(outcomes(h.handle({ bytes: first.payload, source: { address: '203.0.113.66', port: 4342 } }, later)), ['registered', 'registered']);
  assert.equal(h.store.lookup(1000, 'fd82:ba3d:5269:69a4:4e5d:d3bb:4db7:5940', later)?.source.address, '203.0.113.66');
});

test('lispers.net crypto-EIDs under EVE\'s derivation, or with our registration signature required, are refused', () => {
  const eve = cryptoCaptureHandler({}, 'eve');
  const [p] = messagesOf(eve.packets, 'map-register');
  assert.ok(p);
  const source = { address: p.source, port: p.sourcePort };
  const v = eve.h.handle({ bytes: p.payload, source }, msOf(p));
  assert.deepEqual(outcomes(v), ['record-hash-eid-key-mismatch', 'record-eid-not-derived-from-key']);
  assert.equal(processed(v).mapNotify, undefined, 'nothing accepted, nothing acknowledged');
  assert.deepEqual(counters(eve.h), { 'record-hash-eid-key-mismatch': 1, 'record-eid-not-derived-from-key': 1 });

  const strict = cryptoCaptureHandler({ requireRegistrationSignature: true });
  const w = processed(strict.h.handle({ bytes: p.payload, source }, msOf(p)));
  assert.deepEqual(outcomes(w), ['registered', 'record-registration-signature-missing']);
  // The Map-Notify acknowledges the one record taken.
  assert.equal(decodeNotify(w.mapNotify ?? new Uint8Array()).records.length, 1);
});

// ---------------------------------------------------------------- synthetic registrations

const random = prng(0x5eed);
const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
const OWNER = generateP256KeyPair(randomBytes);
const THIEF = generateP256KeyPair(randomBytes);
const IID = 1000;
const T0 = 1_795_000_000_000;
const T0S = T0 / 1000;
const KEY_OLD = passwordKey(1, 2, 'old-secret');
const KEY_NEW = passwordKey(2, 1, 'new-secret');
const NEIGHBOUR_KEY = passwordKey(1, 2, 'neighbour-secret');
const SOURCE = { address: '198.18.0.11', port: 4342 };

const EDGE = site('edge', [KEY_OLD, KEY_NEW], [['[1000]fd00::/8', true], ['10.0.0.0/8', true], ['192.0.2.0/24', false]], { requireRegistrationSignature: true });
const NEIGHBOUR = site('neighbour', [NEIGHBOUR_KEY], [['10.0.0.0/8', true]]);
const CONFIG: MapServerConfig = { sites: [EDGE, NEIGHBOUR], cryptoEidPrefixes: [{ prefix: prefix('[1000]fd00::/8'), derivation: 'eve' }] };

function eidOf(pair: P256KeyPair): EidText {
  return { iid: IID, text: formatIpv6(deriveCryptoEid({ iid: IID, spki: pair.spki }).eid) };
}

const rloc = (address: string): LocatorRecord => ({ ...LOCATOR_DEFAULTS, local: true, locator: ipv4(address) });

function record(eid: string, maskLength: number, locators: LocatorRecord[], ttl = 3, iid?: number): EidRecord {
  const address = ip(eid);
  return { ...EID_RECORD_DEFAULTS, ttl, authoritative: true, eidMaskLength: maskLength, eid: iid === undefined ? address : withInstanceId(iid, address), locators };
}

/** The hash-EID record of `named`'s crypto-EID, carrying `key`'s public key. */
function hashEidRecord(key: P256KeyPair, named: P256KeyPair = key, ttl = 3): EidRecord {
  const name = deriveCryptoEid({ iid: IID, spki: named.spki }).hashEidName;
  return {
    ...EID_RECORD_DEFAULTS,
    ttl,
    authoritative: true,
    eidMaskLength: 0,
    eid: withInstanceId(IID, { afi: 'distinguished-name', name }),
    locators: [jsonLocator({ 'public-key': publicKeyJsonValue(key.publicKey) })],
  };
}

/** `owner`'s crypto-EID with a static signature and (unless told) a registration signature, both by `signer`. */
function cryptoRecord(
  owner: P256KeyPair,
  o: { readonly nonce: bigint; readonly timestamp?: number; readonly signer?: P256KeyPair; readonly rloc?: string; readonly ttl?: number; readonly registrationSignature?: boolean },
): EidRecord {
  const eid = eidOf(owner);
  const signer = o.signer ?? owner;
  const base = record(eid.text, 128, [rloc(o.rloc ?? '198.18.0.11'), jsonLocator({ 'signature-eid': `[${IID}]${eid.text}`, signature: signEid(signer.scalar, eid) })], o.ttl ?? 3, IID);
  if (o.registrationSignature === false) return base;
  return addRegistrationSignature(base, signer.scalar, { eid, nonce: o.nonce, timestamp: o.timestamp ?? T0S });
}

function mapRegister(
  records: readonly EidRecord[],
  o: { readonly nonce: bigint; readonly key?: AuthKey; readonly sealWith?: AuthKey; readonly wantMapNotify?: boolean; readonly useTtl?: boolean; readonly proxyReply?: boolean },
): Uint8Array {
  const key = o.key ?? KEY_OLD;
  const m: MapRegister = {
    type: 'map-register',
    proxyReply: o.proxyReply ?? false,
    securityCapable: false,
    wantMapNotify: o.wantMapNotify ?? true,
    useTtlForTimeout: o.useTtl ?? true,
    reservedFlags: 0,
    nonce: o.nonce,
    ...authFields(key),
    records,
  };
  return sealAuthentication(encodeControl(m), o.sealWith ?? key);
}

/** OWNER registered at T0 with nonce 1; returns the handler and the message. */
function registeredOwner(): { h: RegisterHandler; bytes: Uint8Array } {
  const h = new RegisterHandler(CONFIG);
  const bytes = mapRegister([hashEidRecord(OWNER), cryptoRecord(OWNER, { nonce: 1n })], { nonce: 1n });
  assert.deepEqual(outcomes(h.handle({ bytes, source: SOURCE }, T0)), ['registered', 'registered']);
  return { h, bytes };
}

test('a crypto-EID with both signatures is registered and acknowledged under the same key', () => {
  const { h, bytes } = registeredOwner();
  const eid = eidOf(OWNER);
  const reg = h.store.lookup(IID, eid.text, T0 + 1);
  assert.ok(reg);
  assert.equal(reg.key, `[${IID}]${eid.text}/128`);
  assert.equal(reg.site, 'edge');
  assert.deepEqual(reg.proof, { level: 'registration-signature', signer: `[${IID}]'${deriveCryptoEid({ iid: IID, spki: OWNER.spki }).hashEidName}'`, timestamp: T0S, nonce: 1n });
  assert.equal(h.store.publicKeyOf(IID, deriveCryptoEid({ iid: IID, spki: OWNER.spki }).hashEidName, T0 + 1)?.publicKey.equals(OWNER.publicKey), true);

  const again = processed(h.handle({ bytes: mapRegister([hashEidRecord(OWNER), cryptoRecord(OWNER, { nonce: 2n, timestamp: T0S + 60 })], { nonce: 2n }), source: SOURCE }, T0 + 60_000));
  assert.deepEqual(outcomes(again), ['refreshed', 'refreshed']);
  assert.equal(h.store.get(reg.key)?.firstRegisteredAt, T0);
  assert.equal(h.store.get(reg.key)?.lastRegisteredAt, T0 + 60_000);
  const notify = again.mapNotify ?? assert.fail('a Map-Notify');
  assert.deepEqual(verifyAuthentication(notify, keyring(KEY_OLD)), { ok: true, keyId: 1 });
  const decoded = decodeNotify(notify);
  assert.equal(decoded.nonce, 2n);
  assert.equal(decoded.algorithmId, 2);
  const sent = decodeControl(bytes);
  assert.ok(sent.ok && sent.value.type === 'map-register');
  assert.equal(decoded.records.length, 2);
  assert.deepEqual(decoded.records[0], sent.value.records[0]);
});

test('several keys per site: either key-id registers; a key-id sealed with another key, or the wrong algorithm, does not', () => {
  const h = new RegisterHandler(CONFIG);
  const rec = record('10.1.0.0', 16, [rloc('198.18.0.11')]);
  const viaNew = processed(h.handle({ bytes: mapRegister([rec], { nonce: 10n, key: KEY_NEW }), source: SOURCE }, T0));
  assert.deepEqual(outcomes(viaNew), ['registered']);
  assert.equal(viaNew.site, 'edge');
  assert.equal(viaNew.keyId, 2);
  const notify = viaNew.mapNotify ?? assert.fail();
  assert.deepEqual(verifyAuthentication(notify, keyring(KEY_NEW)), { ok: true, keyId: 2 });
  assert.equal(decodeNotify(notify).authData.length, 20, 'HMAC-SHA-1 like the key');
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([rec], { nonce: 11n, key: KEY_OLD }), source: SOURCE }, T0)), ['refreshed']);
  assert.equal(h.store.get('[0]10.1.0.0/16')?.keyId, 1);

  const oldSecretUnderNewId: AuthKey = { ...KEY_NEW, secret: KEY_OLD.secret };
  assert.equal(dropped(h.handle({ bytes: mapRegister([rec], { nonce: 12n, key: oldSecretUnderNewId }), source: SOURCE }, T0)), 'register-mac-mismatch');
  const wrongAlgorithm: AuthKey = { ...KEY_OLD, algorithmId: 1 };
  assert.equal(dropped(h.handle({ bytes: mapRegister([rec], { nonce: 13n, key: wrongAlgorithm }), source: SOURCE }, T0)), 'register-algorithm-mismatch');
  assert.deepEqual(counters(h), { 'register-mac-mismatch': 1, 'register-algorithm-mismatch': 1 });
});

test('sites sharing a key-id and prefixes: the one whose key verifies gets the registration; others cannot take it over', () => {
  const h = new RegisterHandler(CONFIG);
  const rec = record('10.9.0.0', 16, [rloc('198.18.0.12')]);
  const v = processed(h.handle({ bytes: mapRegister([rec], { nonce: 20n, key: NEIGHBOUR_KEY }), source: SOURCE }, T0));
  assert.equal(v.site, 'neighbour');
  const takeover = h.handle({ bytes: mapRegister([rec, record('10.8.0.0', 16, [rloc('198.18.0.11')])], { nonce: 21n, key: KEY_OLD }), source: SOURCE }, T0 + 1000);
  assert.deepEqual(outcomes(takeover), ['record-registered-by-other-site', 'registered']);
  assert.equal(h.store.get('[0]10.9.0.0/16')?.site, 'neighbour');
  // Once the neighbour's registration is dead, the prefix is free.
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([rec], { nonce: 22n }), source: SOURCE }, T0 + 180_000)), ['registered']);
});

test('forged Map-Registers are dropped and counted: wrong HMAC, unknown key-id, no authentication, garbage, another type', () => {
  const h = new RegisterHandler(CONFIG);
  const rec = record('10.1.0.0', 16, [rloc('198.18.0.11')]);
  const forged: AuthKey = { ...KEY_OLD, secret: new TextEncoder().encode('guessed') };
  assert.equal(dropped(h.handle({ bytes: mapRegister([rec], { nonce: 1n, sealWith: forged }), source: SOURCE }, T0)), 'register-mac-mismatch');
  assert.equal(dropped(h.handle({ bytes: mapRegister([rec], { nonce: 1n, key: passwordKey(7, 2, 'old-secret') }), source: SOURCE }, T0)), 'register-unknown-key-id');
  const unauthenticated: MapRegister = {
    type: 'map-register',
    proxyReply: false,
    securityCapable: false,
    wantMapNotify: true,
    useTtlForTimeout: false,
    reservedFlags: 0,
    nonce: 1n,
    keyId: 0,
    algorithmId: 0,
    authData: new Uint8Array(0),
    records: [rec],
  };
  assert.equal(dropped(h.handle({ bytes: encodeControl(unauthenticated), source: SOURCE }, T0)), 'register-no-authentication');
  const good = mapRegister([rec], { nonce: 1n });
  assert.equal(dropped(h.handle({ bytes: good.subarray(0, good.length - 3), source: SOURCE }, T0)), 'register-decode-error');
  const notify = processed(h.handle({ bytes: good, source: SOURCE }, T0)).mapNotify ?? assert.fail();
  assert.equal(dropped(h.handle({ bytes: notify, source: SOURCE }, T0)), 'register-not-map-register');
  // Every record outside every site holding the key-id: no site, no HMAC computed.
  assert.equal(dropped(h.handle({ bytes: mapRegister([record('198.51.100.0', 24, [rloc('198.18.0.11')])], { nonce: 2n }), source: SOURCE }, T0)), 'register-no-site');
  assert.deepEqual(counters(h), {
    'register-mac-mismatch': 1,
    'register-unknown-key-id': 1,
    'register-no-authentication': 1,
    'register-decode-error': 1,
    'register-not-map-register': 1,
    'register-no-site': 1,
  });
});

test('records outside the site\'s prefixes, or over crypto-EID space, are refused one by one', () => {
  const h = new RegisterHandler(CONFIG);
  const v = processed(
    h.handle(
      {
        bytes: mapRegister(
          [
            record('10.1.0.0', 16, [rloc('198.18.0.11')]),
            record('192.0.2.128', 25, [rloc('198.18.0.11')]), // 192.0.2.0/24 is allowed exactly, no more specifics
            record('192.0.2.0', 24, [rloc('198.18.0.11')]),
            record('198.51.100.0', 24, [rloc('198.18.0.11')]),
            record('fd12::', 16, [rloc('198.18.0.11')], 3, IID), // inside crypto-EID space, not one crypto-EID
            record('fd00::', 8, [rloc('198.18.0.11')], 3, IID),
            { ...record('10.2.0.0', 16, []), eid: { afi: 'mac', address: '02:00:00:00:00:01' }, eidMaskLength: 48 },
          ],
          { nonce: 5n },
        ),
        source: SOURCE,
      },
      T0,
    ),
  );
  assert.deepEqual(outcomes(v), [
    'registered',
    'record-outside-site-prefixes',
    'registered',
    'record-outside-site-prefixes',
    'record-crypto-eid-prefix-overlap',
    'record-crypto-eid-prefix-overlap',
    'record-unsupported-eid',
  ]);
  const notify = decodeNotify(v.mapNotify ?? assert.fail());
  assert.deepEqual(
    notify.records.map((r) => r.eid),
    [ip('10.1.0.0'), ip('192.0.2.0')],
  );
  assert.equal(h.counters.get('record-outside-site-prefixes'), 2);
  assert.equal(h.counters.total(), 5);
});

test('a valid HMAC with a signature by another key is refused; the owner\'s registration stands', () => {
  const { h } = registeredOwner();
  const forged = cryptoRecord(OWNER, { nonce: 3n, timestamp: T0S + 5, signer: THIEF, rloc: '203.0.113.66' });
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([forged], { nonce: 3n }), source: SOURCE }, T0 + 5000)), ['record-signature-invalid']);
  const reg = h.store.lookup(IID, eidOf(OWNER).text, T0 + 5000);
  assert.deepEqual(reg?.record.locators[0]?.locator, ipv4('198.18.0.11'));
});

test('a correct signature for an EID that is not derived from the signing key is refused', () => {
  const { h } = registeredOwner();
  // The thief publishes its own key under the owner's hash-EID name and signs the owner's EID:
  // the signature is valid for that key, but the EID is not the key's.
  const v = h.handle(
    { bytes: mapRegister([hashEidRecord(THIEF, OWNER), cryptoRecord(OWNER, { nonce: 4n, timestamp: T0S + 5, signer: THIEF, rloc: '203.0.113.66' })], { nonce: 4n }), source: SOURCE },
    T0 + 5000,
  );
  assert.deepEqual(outcomes(v), ['record-hash-eid-key-mismatch', 'record-eid-not-derived-from-key']);
  assert.equal(processed(v).mapNotify, undefined);
  // The owner's key stays registered under its name.
  assert.equal(h.store.publicKeyOf(IID, deriveCryptoEid({ iid: IID, spki: OWNER.spki }).hashEidName, T0 + 5000)?.publicKey.equals(OWNER.publicKey), true);
  assert.deepEqual(counters(h), { 'record-hash-eid-key-mismatch': 1, 'record-eid-not-derived-from-key': 1 });
});

test('replayed signed records are refused: another nonce, a byte-identical copy, a re-wrapped copy, an older one', () => {
  const { h, bytes } = registeredOwner();
  // The record signed for nonce 1, copied into a Map-Register with nonce 99.
  const signedFor1 = cryptoRecord(OWNER, { nonce: 1n });
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([signedFor1], { nonce: 99n }), source: SOURCE }, T0 + 1000)), ['record-registration-signature-invalid']);
  // The whole Map-Register again, byte for byte.
  assert.equal(dropped(h.handle({ bytes, source: { address: '203.0.113.66', port: 4342 } }, T0 + 2000)), 'register-replayed');
  // Re-wrapped by a site insider under its original nonce (other bytes: no hash-EID record, no M).
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([signedFor1], { nonce: 1n, wantMapNotify: false }), source: SOURCE }, T0 + 3000)), ['record-replayed']);
  // The owner moves on; its older registration cannot be brought back.
  const moved = cryptoRecord(OWNER, { nonce: 2n, timestamp: T0S + 60, rloc: '198.18.0.99' });
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([moved], { nonce: 2n }), source: SOURCE }, T0 + 60_000)), ['refreshed']);
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([signedFor1], { nonce: 1n, proxyReply: true }), source: SOURCE }, T0 + 61_000)), ['record-replayed']);
  assert.deepEqual(h.store.lookup(IID, eidOf(OWNER).text, T0 + 61_000)?.record.locators[0]?.locator, ipv4('198.18.0.99'));
  assert.deepEqual(counters(h), { 'record-registration-signature-invalid': 1, 'register-replayed': 1, 'record-replayed': 2 });
});

test('registration signatures: stale, from the future, missing where required or after the owner used one', () => {
  const h = new RegisterHandler(CONFIG);
  const at = T0 + 500_000;
  const send = (rec: EidRecord, nonce: bigint, now = at): string[] => outcomes(h.handle({ bytes: mapRegister([hashEidRecord(OWNER), rec], { nonce }), source: SOURCE }, now));
  assert.deepEqual(send(cryptoRecord(OWNER, { nonce: 1n, timestamp: at / 1000 - 181 }), 1n), ['registered', 'record-registration-signature-stale']);
  assert.deepEqual(send(cryptoRecord(OWNER, { nonce: 2n, timestamp: at / 1000 + 31 }), 2n), ['refreshed', 'record-registration-signature-from-the-future']);
  assert.deepEqual(send(cryptoRecord(OWNER, { nonce: 3n, registrationSignature: false }), 3n), ['refreshed', 'record-registration-signature-missing']);

  // A site that does not demand it takes the static signature alone, but not from an EID whose
  // owner sent a registration signature within the window (that would be a downgrade).
  const lax = new RegisterHandler({ ...CONFIG, sites: [{ ...EDGE, requireRegistrationSignature: false }] });
  const laxSend = (rec: EidRecord, nonce: bigint, now: number): string[] => outcomes(lax.handle({ bytes: mapRegister([hashEidRecord(OWNER), rec], { nonce }), source: SOURCE }, now));
  assert.deepEqual(laxSend(cryptoRecord(OWNER, { nonce: 5n, registrationSignature: false }), 5n, T0), ['registered', 'registered']);
  assert.equal(lax.store.lookup(IID, eidOf(OWNER).text, T0)?.proof.level, 'eid-signature');
  assert.deepEqual(laxSend(cryptoRecord(OWNER, { nonce: 6n, timestamp: T0S + 60 }), 6n, T0 + 60_000), ['refreshed', 'refreshed']);
  assert.deepEqual(laxSend(cryptoRecord(OWNER, { nonce: 7n, registrationSignature: false }), 7n, T0 + 120_000), ['refreshed', 'record-registration-signature-missing']);
  assert.deepEqual(laxSend(cryptoRecord(OWNER, { nonce: 8n, registrationSignature: false }), 8n, T0 + 60_000 + lax.config.replayWindowMs), ['refreshed', 'registered']);
});

test('a crypto-EID without its key, or without any signature, is refused', () => {
  const h = new RegisterHandler(CONFIG);
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([cryptoRecord(OWNER, { nonce: 1n })], { nonce: 1n }), source: SOURCE }, T0)), ['record-public-key-unknown']);
  const unsigned = record(eidOf(OWNER).text, 128, [rloc('198.18.0.11')], 3, IID);
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([hashEidRecord(OWNER), unsigned], { nonce: 2n }), source: SOURCE }, T0)), ['registered', 'record-signature-missing']);
  // The key registered earlier serves a later Map-Register without the hash-EID record.
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([cryptoRecord(OWNER, { nonce: 3n })], { nonce: 3n }), source: SOURCE }, T0 + 1000)), ['registered']);
  const broken = { ...hashEidRecord(OWNER), locators: [jsonLocator({ 'public-key': 'bm90IGEga2V5' })] };
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([broken], { nonce: 4n }), source: SOURCE }, T0 + 2000)), ['record-hash-eid-malformed']);
});

test('require-signature (lispers.net): a non-crypto record must be signed by a registered crypto-EID key', () => {
  const strict = site('strict', [passwordKey(3, 2, 'strict-secret')], [['10.0.0.0/8', true], ['[1000]fd00::/8', true]], { requireSignature: true });
  const h = new RegisterHandler({ ...CONFIG, sites: [strict] });
  const key = passwordKey(3, 2, 'strict-secret');
  const eid = eidOf(OWNER);
  const signedBy = (pair: P256KeyPair): LocatorRecord => jsonLocator({ 'signature-eid': `[${IID}]${eid.text}`, signature: signEid(pair.scalar, eid) });
  const send = (records: EidRecord[], nonce: bigint): string[] => outcomes(h.handle({ bytes: mapRegister(records, { nonce, key }), source: SOURCE }, T0));
  assert.deepEqual(send([hashEidRecord(OWNER), record('10.3.0.0', 16, [rloc('198.18.0.11'), signedBy(OWNER)])], 1n), ['registered', 'registered']);
  assert.equal(h.store.get('[0]10.3.0.0/16')?.proof.level, 'eid-signature');
  assert.deepEqual(send([record('10.4.0.0', 16, [rloc('198.18.0.11')])], 2n), ['record-signature-missing']);
  assert.deepEqual(send([record('10.4.0.0', 16, [rloc('198.18.0.11'), signedBy(THIEF)])], 3n), ['record-signature-invalid']);
  const notCrypto = jsonLocator({ 'signature-eid': '[0]10.4.0.1', signature: signEid(OWNER.scalar, { iid: 0, text: '10.4.0.1' }) });
  assert.deepEqual(send([record('10.4.0.0', 16, [rloc('198.18.0.11'), notCrypto])], 4n), ['record-signature-eid-invalid']);
});

test('expiry: three refreshes without T, the record TTL with T (minutes or lispers.net seconds, capped), TTL 0 deregisters', () => {
  const h = new RegisterHandler({ ...CONFIG, timers: { maxRecordTtlMs: 3_600_000 } });
  const reg = (text: string, length: number, ttl: number, useTtl: boolean, nonce: bigint): RecordOutcome | undefined =>
    processed(h.handle({ bytes: mapRegister([record(text, length, [rloc('198.18.0.11')], ttl)], { nonce, useTtl }), source: SOURCE }, T0)).records[0];
  const expiry = (o: RecordOutcome | undefined): number | undefined => (o?.outcome === 'registered' || o?.outcome === 'refreshed' ? o.expiresAt - T0 : undefined);
  assert.equal(expiry(reg('10.1.0.0', 16, 10, false, 1n)), 180_000);
  assert.equal(expiry(reg('10.1.2.0', 24, 10, true, 2n)), 600_000);
  assert.equal(expiry(reg('10.1.3.0', 24, 0x80000000 + 45, true, 3n)), 45_000);
  assert.equal(expiry(reg('10.1.4.0', 24, 0xffffffff, true, 4n)), 180_000);
  assert.equal(expiry(reg('10.1.5.0', 24, 1440, true, 5n)), 3_600_000);
  assert.equal(h.store.nextExpiry(), T0 + 45_000);

  // Longest match falls back to the /16 as soon as a more specific one is dead, before expire().
  assert.equal(h.store.lookup(0, '10.1.3.7', T0 + 44_999)?.key, '[0]10.1.3.0/24');
  assert.equal(h.store.lookup(0, '10.1.3.7', T0 + 45_000)?.key, '[0]10.1.0.0/16');
  assert.deepEqual(h.expire(T0 + 179_999).map((r) => r.key), ['[0]10.1.3.0/24']);
  assert.deepEqual(h.expire(T0 + 180_000).map((r) => r.key).sort(), ['[0]10.1.0.0/16', '[0]10.1.4.0/24']);
  assert.equal(h.store.lookup(0, '10.1.9.9', T0 + 180_000), undefined);
  assert.equal(h.store.lookup(0, '10.1.2.9', T0 + 180_000)?.key, '[0]10.1.2.0/24');

  // TTL 0: gone at once, acknowledged; an unknown prefix is "deregistered" with nothing removed.
  const gone = processed(h.handle({ bytes: mapRegister([record('10.1.2.0', 24, [rloc('198.18.0.11')], 0), record('10.7.0.0', 16, [], 0)], { nonce: 6n }), source: SOURCE }, T0 + 1000));
  assert.deepEqual(gone.records, [
    { index: 0, outcome: 'deregistered', key: '[0]10.1.2.0/24', removed: true },
    { index: 1, outcome: 'deregistered', key: '[0]10.7.0.0/16', removed: false },
  ]);
  assert.equal(decodeNotify(gone.mapNotify ?? assert.fail()).records.length, 2);
  assert.equal(h.store.get('[0]10.1.2.0/24'), undefined);
});

test('deregistering a crypto-EID takes the same signatures as registering it; another site cannot deregister', () => {
  const { h } = registeredOwner();
  const key = `[${IID}]${eidOf(OWNER).text}/128`;
  const unsigned = record(eidOf(OWNER).text, 128, [rloc('198.18.0.11')], 0, IID);
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([unsigned], { nonce: 30n }), source: SOURCE }, T0 + 1000)), ['record-signature-missing']);
  assert.ok(h.store.get(key));
  const signedZero = cryptoRecord(OWNER, { nonce: 31n, timestamp: T0S + 2, ttl: 0 });
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([signedZero], { nonce: 31n }), source: SOURCE }, T0 + 2000)), ['deregistered']);
  assert.equal(h.store.get(key), undefined);
  // Deregistered, and the earlier registration cannot be replayed back within the window.
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([cryptoRecord(OWNER, { nonce: 1n })], { nonce: 1n, wantMapNotify: false }), source: SOURCE }, T0 + 3000)), ['record-replayed']);

  const neighbourOwned = processed(h.handle({ bytes: mapRegister([record('10.9.0.0', 16, [rloc('198.18.0.12')])], { nonce: 32n, key: NEIGHBOUR_KEY }), source: SOURCE }, T0));
  assert.equal(neighbourOwned.site, 'neighbour');
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([record('10.9.0.0', 16, [], 0)], { nonce: 33n }), source: SOURCE }, T0 + 1000)), ['record-registered-by-other-site']);
});

test('a Map-Register without M gets no Map-Notify; one with nothing accepted neither', () => {
  const h = new RegisterHandler(CONFIG);
  const quiet = processed(h.handle({ bytes: mapRegister([record('10.1.0.0', 16, [rloc('198.18.0.11')])], { nonce: 1n, wantMapNotify: false }), source: SOURCE }, T0));
  assert.equal(quiet.mapNotify, undefined);
  assert.deepEqual(quiet.actions, []);
  const refused = processed(h.handle({ bytes: mapRegister([record('192.0.2.128', 25, []), record('fd12::', 16, [], 3, IID)], { nonce: 2n }), source: SOURCE }, T0));
  assert.deepEqual(outcomes(refused), ['record-outside-site-prefixes', 'record-crypto-eid-prefix-overlap']);
  assert.equal(refused.mapNotify, undefined);
});

test('snapshot and restore: registrations and replay memory survive a restart; what the new configuration refuses does not', () => {
  const { h, bytes } = registeredOwner();
  assert.deepEqual(outcomes(h.handle({ bytes: mapRegister([record('10.1.0.0', 16, [rloc('198.18.0.11')])], { nonce: 40n, proxyReply: true }), source: SOURCE }, T0)), ['registered']);
  const neighbour = processed(h.handle({ bytes: mapRegister([record('10.9.0.0', 16, [rloc('198.18.0.12')])], { nonce: 41n, key: NEIGHBOUR_KEY }), source: { address: '198.18.0.12', port: 61000 } }, T0));
  assert.equal(neighbour.site, 'neighbour');
  const json = JSON.parse(JSON.stringify(h.store.snapshot())) as unknown;

  const restarted = new RegisterHandler(CONFIG);
  const report = restarted.restore(json, T0 + 10_000);
  assert.deepEqual(report, { ok: true, restored: 4, dropped: [] });
  const before = [...h.store.entries()];
  const after = [...restarted.store.entries()];
  assert.deepEqual(
    after.map((r) => [r.key, r.site, r.kind, toHex(r.wire), r.expiresAt, r.firstRegisteredAt, r.source, r.proxyReply, r.keyId, r.proof]),
    before.map((r) => [r.key, r.site, r.kind, toHex(r.wire), r.expiresAt, r.firstRegisteredAt, r.source, r.proxyReply, r.keyId, r.proof]),
  );
  assert.deepEqual(
    after.map((r) => r.record),
    before.map((r) => r.record),
  );
  assert.equal(restarted.store.lookup(0, '10.9.1.1', T0 + 10_000)?.source.port, 61000);
  assert.equal(restarted.store.lookup(IID, eidOf(OWNER).text, T0 + 10_000)?.proof.level, 'registration-signature');
  assert.ok(restarted.store.publicKeyOf(IID, deriveCryptoEid({ iid: IID, spki: OWNER.spki }).hashEidName, T0 + 10_000)?.publicKey.equals(OWNER.publicKey));
  // The restart opened no replay window.
  assert.equal(dropped(restarted.handle({ bytes, source: SOURCE }, T0 + 11_000)), 'register-replayed');
  assert.deepEqual(outcomes(restarted.handle({ bytes: mapRegister([cryptoRecord(OWNER, { nonce: 1n })], { nonce: 1n, wantMapNotify: false }), source: SOURCE }, T0 + 12_000)), ['record-replayed']);
  // A refresh after the restart keeps the first registration time.
  assert.deepEqual(outcomes(restarted.handle({ bytes: mapRegister([record('10.1.0.0', 16, [rloc('198.18.0.11')])], { nonce: 42n }), source: SOURCE }, T0 + 60_000)), ['refreshed']);
  assert.equal(restarted.store.get('[0]10.1.0.0/16')?.firstRegisteredAt, T0);

  // Restarted with a stricter configuration: the neighbour site is gone, the edge site now wants
  // require-signature, and the crypto-EID prefix uses the other derivation.
  const changed = new RegisterHandler({
    sites: [{ ...EDGE, requireSignature: true }],
    cryptoEidPrefixes: [{ prefix: prefix('[1000]fd00::/8'), derivation: 'lispers' }],
  });
  const strict = changed.restore(json, T0 + 10_000);
  assert.ok(strict.ok);
  assert.deepEqual(
    [...strict.dropped].sort((a, b) => a.key.localeCompare(b.key)),
    [
      { key: '[0]10.1.0.0/16', reason: 'proof-insufficient' },
      { key: '[0]10.9.0.0/16', reason: 'site-removed' },
      { key: `[${IID}]${eidOf(OWNER).text}/128`, reason: 'proof-insufficient' },
      { key: `[${IID}]'${deriveCryptoEid({ iid: IID, spki: OWNER.spki }).hashEidName}'`, reason: 'not-allowed' },
    ].sort((a, b) => a.key.localeCompare(b.key)),
  );
  assert.equal(changed.store.size, 0);

  // Restored too late: everything has expired.
  const late = new RegisterHandler(CONFIG).restore(json, T0 + 180_000);
  assert.ok(late.ok);
  assert.equal(late.restored, 0);
  assert.deepEqual(new Set(late.dropped.map((d) => d.reason)), new Set(['expired']));

  assert.deepEqual(new RegisterHandler(CONFIG).restore({ format: 'something-else' }, T0), { ok: false, error: 'not a lispnode-map-server-registrations snapshot' });
  const tampered = JSON.parse(JSON.stringify(json)) as { registrations: { wire: string }[] };
  const first = tampered.registrations[0];
  assert.ok(first);
  first.wire = 'zz';
  const partial = new RegisterHandler(CONFIG).restore(tampered, T0 + 10_000);
  assert.ok(partial.ok);
  // The malformed hash-EID is dropped, and with it the crypto-EID it vouched for.
  assert.equal(partial.restored, 2);
  assert.deepEqual(
    partial.dropped.map((d) => d.reason),
    ['malformed', 'proof-insufficient'],
  );
});

test('configuration errors name the site and the field', () => {
  assert.throws(() => new RegisterHandler({ sites: [EDGE, EDGE], cryptoEidPrefixes: [] }), /site 'edge' is configured twice/);
  assert.throws(() => new RegisterHandler({ sites: [{ ...EDGE, keys: [KEY_OLD, KEY_OLD] }], cryptoEidPrefixes: [] }), /key-id 1 is configured twice/);
  assert.throws(() => new RegisterHandler({ sites: [{ ...EDGE, allowedPrefixes: [] }], cryptoEidPrefixes: [] }), /allows no EID-prefix/);
  assert.throws(() => new RegisterHandler({ sites: [], cryptoEidPrefixes: [{ prefix: prefix('[1000]10.0.0.0/8'), derivation: 'eve' }] }), /not IPv6/);
  assert.throws(() => new RegisterHandler({ sites: [], cryptoEidPrefixes: [{ prefix: prefix('[1000]fd00::/12'), derivation: 'eve' }] }), /multiple of 8/);
  assert.throws(
    () =>
      new RegisterHandler({
        sites: [],
        cryptoEidPrefixes: [
          { prefix: prefix('[1000]fd00::/8'), derivation: 'eve' },
          { prefix: prefix('[1000]fd12::/16'), derivation: 'lispers' },
        ],
      }),
    /overlap/,
  );
});
