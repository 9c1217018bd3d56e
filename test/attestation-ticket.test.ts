// Attestation-gated overlay membership, in memory with real crypto: the controller's signing
// certificate seals AttestationTickets (src/control/envelope.ts), the xTR's registrar carries the
// current ticket on its crypto-EID record (src/lisp/xtr-control/registrar.ts), and a map-server
// site that requires tickets (src/lisp/map-server, checked by src/control/ticket.ts) registers the
// EID only under a valid, unexpired ticket that lists it — and no longer than the ticket lasts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { controllerCertHash } from '../src/control/cert-hash.js';
import { sealEnvelope } from '../src/control/envelope.js';
import { AttestationTicketSchema, HashAlgorithm } from '../src/control/proto/index.js';
import { ticketChecker } from '../src/control/ticket.js';
import { createControllerPki, type ControllerPki } from '../src/control/x509/controller-pki.js';
import { softwareSigner } from '../src/control/x509/software-signer.js';
import { deriveCryptoEid, generateP256KeyPair, importP256PrivateKey, signMapRequest, type P256KeyPair } from '../src/crypto/index.js';
import { ByteWriter } from '../src/lisp/bytes.js';
import {
  authFields,
  decodeControl,
  ECM_DEFAULTS,
  encodeControl,
  formatIpv6,
  ip,
  MAP_REQUEST_DEFAULTS,
  NO_ADDRESS,
  passwordKey,
  prefix,
  sealAuthentication,
  withInstanceId,
  writeEidRecord,
  type EidRecord,
  type MapRegister,
} from '../src/lisp/index.js';
import {
  RegisterHandler,
  RequestHandler,
  type MapServerConfig,
  type RecordOutcome,
  type RegisterVerdict,
  type SiteConfig,
  type TicketCheck,
} from '../src/lisp/map-server/index.js';
import { addAttestationTicket, addRegistrationSignature, jsonLocator, locatorJson, recordTicket, ticketLocator } from '../src/lisp/registration-record.js';
import { Registrar, type RegistrarAction, type RegistrarConfig } from '../src/lisp/xtr-control/registrar.js';
import { prng } from './support/prng.js';

// ---------------------------------------------------------------- fixtures

const T0 = 1_795_000_000_000;
const MIN = 60_000;
const IID = 1000;
const MS = '198.18.0.1';
const XTR = { address: '198.18.0.11', port: 4342 };
const KEY = passwordKey(1, 2, 'site-secret');

function seeded(seed: number): (n: number) => Uint8Array {
  const next = prng(seed);
  return (n) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
}

const keys = seeded(0xa77e57);
const ALICE = generateP256KeyPair(keys);
const BOB = generateP256KeyPair(keys);

const eidOf = (pair: P256KeyPair): string => formatIpv6(deriveCryptoEid({ iid: IID, spki: pair.spki }).eid);
const keyOf = (pair: P256KeyPair): string => `[${IID}]${eidOf(pair)}/128`;
const hashKeyOf = (pair: P256KeyPair): string => `[${IID}]'${deriveCryptoEid({ iid: IID, spki: pair.spki }).hashEidName}'`;

const pkiOptions = { dnsName: 'controller.test', ipAddresses: ['127.0.0.1'], now: new Date(T0), random: (n: number) => new Uint8Array(randomBytes(n)) };
const CONTROLLER = await createControllerPki(pkiOptions);
const OTHER_CA = await createControllerPki(pkiOptions);
const CHECK = ticketChecker([CONTROLLER.signing.certPem]);

interface TicketFields {
  readonly eids?: readonly string[];
  readonly instanceIds?: readonly number[];
  readonly notBefore?: number;
  readonly notAfter?: number;
}

/** A ticket for `pair`'s crypto-EID, valid [T0 - 1 min, T0 + 2.5 min) unless told otherwise, sealed by `pki`'s signing key. */
function seal(pair: P256KeyPair, o: TicketFields = {}, pki: ControllerPki = CONTROLLER, claimedCertPem = pki.signing.certPem): Promise<Uint8Array> {
  const ticket = create(AttestationTicketSchema, {
    deviceUuid: '6f1c0e52-0000-4000-8000-00000000a11c',
    deviceCertHash: new Uint8Array(32).fill(7),
    instanceIds: [...(o.instanceIds ?? [IID])],
    eidPrefixes: [...(o.eids ?? [keyOf(pair)])],
    notBeforeUnixMs: BigInt(o.notBefore ?? T0 - MIN),
    notAfterUnixMs: BigInt(o.notAfter ?? T0 + 2.5 * MIN),
  });
  const signer = softwareSigner(importP256PrivateKey(pki.signing.keyPem));
  return sealEnvelope(toBinary(AttestationTicketSchema, ticket), signer, { certHash: controllerCertHash(claimedCertPem), algo: HashAlgorithm.SHA256_32BYTES });
}

function site(o: Partial<SiteConfig> = {}): SiteConfig {
  return {
    name: 'mesh',
    keys: [KEY],
    allowedPrefixes: ['[1000]fd00::/8', '10.0.0.0/8'].map((p) => ({ prefix: prefix(p), acceptMoreSpecifics: true })),
    requireSignature: false,
    requireRegistrationSignature: true,
    requireAttestationTicket: true,
    ...o,
  };
}

function msConfig(o: { site?: Partial<SiteConfig>; ticketCheck?: TicketCheck } = {}): MapServerConfig {
  return { sites: [site(o.site)], cryptoEidPrefixes: [{ prefix: prefix('[1000]fd00::/8'), derivation: 'eve' }], ticketCheck: o.ticketCheck ?? CHECK };
}

/** The node's current ticket, as the daemon would hold it; `calls` counts the registrar's questions. */
class TicketHolder {
  calls = 0;
  constructor(public ticket: Uint8Array | undefined) {}
  readonly provide = (now: number): Uint8Array | undefined => {
    assert.equal(typeof now, 'number');
    this.calls += 1;
    return this.ticket;
  };
}

function registrar(pair: P256KeyPair, holder: TicketHolder, o: Partial<RegistrarConfig> = {}): Registrar {
  const config: RegistrarConfig = {
    eids: [],
    cryptoEids: [{ keyPair: pair, instanceId: IID }],
    rlocs: [{ address: XTR.address }],
    mapServers: [{ address: MS, key: KEY, proxyReply: true }],
    xtrId: Uint8Array.from({ length: 16 }, (_, i) => i + 1),
    siteId: 7n,
    ...o,
  };
  return new Registrar(config, seeded(pair === ALICE ? 1 : 2), { attestationTicket: holder.provide });
}

type Send = Extract<RegistrarAction, { kind: 'send' }>;
const sends = (actions: readonly RegistrarAction[]): Send[] => actions.filter((a): a is Send => a.kind === 'send');

type Processed = Extract<RegisterVerdict, { kind: 'processed' }>;

/** Every Map-Register to the map-server, handled at `now`; Map-Notifies go back to the registrar. */
function deliver(r: Registrar, h: RegisterHandler, actions: readonly RegistrarAction[], now: number): Processed[] {
  return sends(actions).map((a) => {
    const v = h.handle({ bytes: a.bytes, source: XTR }, now);
    assert.equal(v.kind, 'processed', v.kind === 'dropped' ? v.reason : '');
    if (v.mapNotify) r.mapNotify(v.mapNotify, { address: MS, port: 4342 }, now);
    return v;
  });
}

const names = (vs: readonly Processed[]): string[] => vs.flatMap((v) => v.records.map((o: RecordOutcome) => (o.outcome === 'refused' ? o.reason : o.outcome)));

function decodeRegister(bytes: Uint8Array): MapRegister {
  const d = decodeControl(bytes);
  assert.ok(d.ok && d.value.type === 'map-register');
  return d.value;
}

const cryptoRecordOf = (m: MapRegister): EidRecord => m.records.find((rec) => rec.eidMaskLength === 128) ?? assert.fail('a crypto-EID record');

// ---------------------------------------------------------------- Map-Requests (for proxy replies)

/** A Map-Request for `target`'s crypto-EID signed by `by` (an authenticated requester), in an ECM. */
function mapRequest(target: P256KeyPair, by: P256KeyPair, nonce: bigint): Uint8Array {
  const nonceBytes = new Uint8Array(8);
  new DataView(nonceBytes.buffer).setBigUint64(0, nonce);
  const signature = signMapRequest(by.scalar, nonceBytes, { iid: IID, text: eidOf(by) }, { iid: IID, text: eidOf(target) });
  const json = JSON.stringify({ 'source-eid': `[${IID}]${eidOf(by)}`, 'signature-eid': `[${IID}]${eidOf(by)}`, signature });
  return encodeControl({
    ...ECM_DEFAULTS,
    ip: { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, source: eidOf(by), destination: eidOf(target) },
    udp: { sourcePort: 61_000, destinationPort: 4342, checksum: 'computed' },
    message: {
      ...MAP_REQUEST_DEFAULTS,
      nonce,
      sourceEid: { afi: 'lcaf', lcaf: { type: 'json', json, jsonFlags: 0, address: NO_ADDRESS } },
      itrRlocs: [ip('198.18.0.21')],
      records: [{ reserved: 0, eidMaskLength: 128, eid: withInstanceId(IID, ip(eidOf(target))) }],
    },
  });
}

function proxyReply(h: RegisterHandler, target: P256KeyPair, now: number): EidRecord {
  const result = new RequestHandler(h).handle({ bytes: mapRequest(target, target, 0x5eedn), source: { address: '198.18.0.21', port: 4342 } }, now);
  assert.equal(result.outcome.kind, 'proxy-reply');
  const [action] = result.actions;
  const d = action ? decodeControl(action.bytes) : assert.fail('a reply');
  assert.ok(d.ok && d.value.type === 'map-reply');
  return d.value.records[0] ?? assert.fail('one record');
}

// ---------------------------------------------------------------- the checker

test('ticketChecker: a valid ticket admits exactly its EIDs and instance-ids during [not_before, not_after)', async () => {
  const ticket = await seal(ALICE);
  const alice = { iid: IID, eid: eidOf(ALICE), length: 128 };
  assert.deepEqual(CHECK(ticket, alice, T0), { ok: true, notAfter: T0 + 2.5 * MIN });
  assert.deepEqual(CHECK(ticket, alice, T0 - MIN), { ok: true, notAfter: T0 + 2.5 * MIN }, 'not_before itself is inside');
  const verdict = (t: Uint8Array, eid = alice, now = T0): string => {
    const v = CHECK(t, eid, now);
    return v.ok ? 'ok' : v.reason;
  };
  assert.equal(verdict(ticket, alice, T0 + 2.5 * MIN), 'expired', 'not_after itself is outside');
  assert.equal(verdict(ticket, alice, T0 - MIN - 1), 'invalid', 'not yet valid');
  assert.equal(verdict(ticket, { iid: IID, eid: eidOf(BOB), length: 128 }), 'not-admitted');
  assert.equal(verdict(ticket, { ...alice, length: 64 }), 'not-admitted', 'a /128 admits no shorter prefix');
  assert.equal(verdict(await seal(ALICE, { instanceIds: [7] })), 'not-admitted', 'the EID is listed, its instance is not');
  assert.equal(verdict(await seal(ALICE, { eids: [`[7]${eidOf(ALICE)}/128`], instanceIds: [7, IID] })), 'not-admitted', 'the EID under another instance');
  // Any spelling of the same prefix: here every group written out with leading zeros.
  const spelled = Buffer.from(deriveCryptoEid({ iid: IID, spki: ALICE.spki }).eid).toString('hex').match(/.{4}/g)?.join(':') ?? assert.fail();
  assert.equal(verdict(await seal(ALICE, { eids: ['[1000]10.0.0.0/8', `[${IID}]${spelled.toUpperCase()}/128`] })), 'ok');

  // Signed by another controller's key: under its own cert hash (unknown) or claiming ours (forged).
  assert.equal(verdict(await seal(ALICE, {}, OTHER_CA)), 'invalid');
  assert.equal(verdict(await seal(ALICE, {}, OTHER_CA, CONTROLLER.signing.certPem)), 'invalid');
  const forged = CHECK(await seal(ALICE, {}, OTHER_CA, CONTROLLER.signing.certPem), alice, T0);
  assert.ok(!forged.ok && /bad-signature/.test(forged.detail));
  // Not an envelope; an envelope around something that is not a ticket; an empty window.
  assert.equal(verdict(Uint8Array.of(0xff, 0x01, 0x02)), 'invalid');
  const signer = softwareSigner(importP256PrivateKey(CONTROLLER.signing.keyPem));
  const junk = await sealEnvelope(Uint8Array.of(0x0a, 0xff), signer, { certHash: controllerCertHash(CONTROLLER.signing.certPem), algo: HashAlgorithm.SHA256_32BYTES });
  assert.equal(verdict(junk), 'invalid');
  assert.equal(verdict(await seal(ALICE, { notBefore: T0, notAfter: T0 })), 'invalid');
  // Several trusted signing certificates (a rotation): either one's tickets pass.
  const both = ticketChecker([CONTROLLER.signing.certPem, OTHER_CA.signing.certPem]);
  assert.equal(both(await seal(ALICE, {}, OTHER_CA), alice, T0).ok, true);
  assert.throws(() => ticketChecker([]), RangeError);
});

test('the ticket locator: added before the registration signature (which then covers it), read back, malformed when doubled or not base64', async () => {
  const ticket = await seal(ALICE);
  const base: EidRecord = {
    ttl: 3,
    action: 0,
    authoritative: true,
    reserved: 0,
    reservedHigh: 0,
    mapVersion: 0,
    eidMaskLength: 128,
    eid: withInstanceId(IID, ip(eidOf(ALICE))),
    locators: [],
  };
  assert.equal(recordTicket(base), undefined);
  const signed = addRegistrationSignature(addAttestationTicket(base, ticket), ALICE.scalar, { eid: { iid: IID, text: eidOf(ALICE) }, nonce: 1n, timestamp: T0 / 1000 });
  assert.deepEqual(recordTicket(signed), ticket);
  assert.deepEqual(
    signed.locators.map((l) => Object.keys(locatorJson(l) ?? {})[0]),
    ['attestation-ticket', 'registration-signature'],
  );
  // Replacing keeps one ticket, still before the registration signature.
  const other = await seal(BOB);
  const replaced = addAttestationTicket(signed, other);
  assert.deepEqual(recordTicket(replaced), other);
  assert.deepEqual(
    replaced.locators.map((l) => Object.keys(locatorJson(l) ?? {})[0]),
    ['attestation-ticket', 'registration-signature'],
  );
  assert.equal(recordTicket({ ...base, locators: [ticketLocator(ticket), ticketLocator(ticket)] }), 'malformed');
  assert.equal(recordTicket({ ...base, locators: [jsonLocator({ 'attestation-ticket': 'not base64!' })] }), 'malformed');
  assert.equal(recordTicket({ ...base, locators: [jsonLocator({ 'attestation-ticket': 42 })] }), 'malformed');
});

// ---------------------------------------------------------------- registration

test('a valid ticket registers the crypto-EID until the ticket ends; proxy replies end with it too and do not carry it', async () => {
  const holder = new TicketHolder(await seal(ALICE));
  const r = registrar(ALICE, holder);
  const h = new RegisterHandler(msConfig());
  const actions = r.start(T0);
  assert.equal(holder.calls, 1, 'asked once per round');
  const m = decodeRegister(sends(actions)[0]?.bytes ?? assert.fail());
  assert.deepEqual(recordTicket(cryptoRecordOf(m)), holder.ticket, 'the crypto-EID record carries the ticket');
  assert.equal(recordTicket(m.records[0] ?? assert.fail()), undefined, 'the hash-EID record does not');

  assert.deepEqual(names(deliver(r, h, actions, T0)), ['registered', 'registered']);
  assert.equal(r.status().mapServers[0]?.state, 'registered');
  const reg = h.store.get(keyOf(ALICE));
  assert.ok(reg);
  // TTL 3 minutes, but the ticket ends at T0 + 2.5 min.
  assert.equal(reg.expiresAt, T0 + 2.5 * MIN);
  assert.equal(reg.ticketNotAfter, T0 + 2.5 * MIN);
  assert.equal(h.store.get(hashKeyOf(ALICE))?.expiresAt, T0 + 3 * MIN, 'the public key is not bound to the ticket');

  // 150 s left: TTL 3 (minutes, rounded up); 25 s left: 1; never 0.
  const reply = proxyReply(h, ALICE, T0);
  assert.equal(reply.ttl, 3);
  assert.equal(recordTicket(reply), undefined, 'the ticket stays with the map-server');
  assert.ok(reply.locators.some((l) => locatorJson(l)?.['registration-signature'] !== undefined), 'the signatures still travel');
  assert.equal(proxyReply(h, ALICE, T0 + 2 * MIN + 5_000).ttl, 1);
  assert.equal(proxyReply(h, ALICE, T0 + 2.5 * MIN - 1).ttl, 1);
  assert.deepEqual(h.counters.snapshot(), {});
});

test('refused and counted: no ticket, another CA\'s signature, expired, not yet valid, another EID\'s ticket', async () => {
  const h = new RegisterHandler(msConfig());
  const attempt = (ticket: Uint8Array | undefined): { outcome: RecordOutcome; names: string[] } => {
    const r = registrar(ALICE, new TicketHolder(ticket));
    const vs = deliver(r, h, r.start(T0), T0);
    const outcome = vs.flatMap((v) => v.records).find((o) => o.key === keyOf(ALICE)) ?? assert.fail();
    return { outcome, names: names(vs) };
  };
  const expectations: [Uint8Array | undefined, string][] = [
    [undefined, 'record-attestation-ticket-missing'],
    [await seal(ALICE, {}, OTHER_CA), 'record-attestation-ticket-invalid'],
    [await seal(ALICE, { notBefore: T0 - 10 * MIN, notAfter: T0 - MIN }), 'record-attestation-ticket-expired'],
    [await seal(ALICE, { notBefore: T0 + MIN, notAfter: T0 + 10 * MIN }), 'record-attestation-ticket-invalid'],
    [await seal(BOB), 'record-attestation-ticket-not-admitted'],
  ];
  for (const [ticket, reason] of expectations) {
    const { outcome, names: got } = attempt(ticket);
    // The public key registers regardless (then refreshes); the EID does not.
    assert.deepEqual(got, [got[0] === 'registered' ? 'registered' : 'refreshed', reason]);
    assert.equal(outcome.outcome, 'refused');
    if (outcome.outcome === 'refused') {
      assert.equal(outcome.reason, reason);
      assert.ok(outcome.detail && outcome.detail.length > 0, 'with a detail for the log');
    }
  }
  assert.equal(h.store.get(keyOf(ALICE)), undefined);
  assert.deepEqual(h.counters.snapshot(), {
    'record-attestation-ticket-missing': 1,
    'record-attestation-ticket-invalid': 2,
    'record-attestation-ticket-expired': 1,
    'record-attestation-ticket-not-admitted': 1,
  });
});

test('a ticket lifted from another node\'s Map-Register admits nothing here; moved onto another record it breaks the registration signature', async () => {
  const h = new RegisterHandler(msConfig());
  // Bob registers with his ticket; Mallory, who holds the site key, reads it off the wire.
  const bob = registrar(BOB, new TicketHolder(await seal(BOB)));
  const bobActions = bob.start(T0);
  const lifted = recordTicket(cryptoRecordOf(decodeRegister(sends(bobActions)[0]?.bytes ?? assert.fail())));
  assert.ok(lifted instanceof Uint8Array);
  assert.deepEqual(names(deliver(bob, h, bobActions, T0)), ['registered', 'registered']);

  // Bob's ticket on Alice's record, signed by Alice: valid, but it does not list Alice's EID.
  const alice = registrar(ALICE, new TicketHolder(lifted));
  assert.deepEqual(names(deliver(alice, h, alice.start(T0 + 1000), T0 + 1000)), ['registered', 'record-attestation-ticket-not-admitted']);

  // Alice's own ticket, taken from one of her Map-Registers and put into another of her signed
  // records after signing (re-sealed with the site key): the registration signature no longer holds.
  const aliceTicket = await seal(ALICE);
  const withTicket = registrar(ALICE, new TicketHolder(aliceTicket));
  const taken = recordTicket(cryptoRecordOf(decodeRegister(sends(withTicket.start(T0 + 2000))[0]?.bytes ?? assert.fail())));
  assert.ok(taken instanceof Uint8Array);
  const bare = decodeRegister(sends(registrar(ALICE, new TicketHolder(undefined)).start(T0 + 3000))[0]?.bytes ?? assert.fail());
  const tampered: MapRegister = { ...bare, ...authFields(KEY), records: bare.records.map((rec) => (rec.eidMaskLength === 128 ? addAttestationTicket(rec, taken) : rec)) };
  const v = h.handle({ bytes: sealAuthentication(encodeControl(tampered), KEY), source: XTR }, T0 + 3000);
  assert.equal(v.kind, 'processed');
  assert.deepEqual(names([v]), ['refreshed', 'record-registration-signature-invalid']);
  assert.equal(h.store.get(keyOf(ALICE)), undefined);
  assert.ok(h.store.get(keyOf(BOB)), 'Bob is unaffected');
});

test('expiry: refreshes never outlive the ticket; without renewal the EID drops out at not_after; a renewed ticket brings it back', async () => {
  const holder = new TicketHolder(await seal(ALICE));
  const r = registrar(ALICE, holder);
  const h = new RegisterHandler(msConfig());
  deliver(r, h, r.start(T0), T0);
  // Periodic refreshes (about every 60 s) with the same ticket keep the ticket's end.
  let now: number;
  for (;;) {
    const next = r.nextTimer() ?? assert.fail();
    const actions = r.tick(next);
    if (sends(actions).length === 0) continue;
    now = next;
    if (now >= T0 + 2.5 * MIN) {
      // The ticket has ended and the node has no new one: refused, and nothing is extended.
      assert.deepEqual(names(deliver(r, h, actions, now)), ['refreshed', 'record-attestation-ticket-expired']);
      break;
    }
    assert.deepEqual(names(deliver(r, h, actions, now)), ['refreshed', 'refreshed']);
    assert.equal(h.store.get(keyOf(ALICE))?.expiresAt, T0 + 2.5 * MIN);
  }
  assert.ok(holder.calls >= 3);
  // Dead since the ticket's end (lookups skip it), and removed at the next expire().
  assert.equal(h.store.get(keyOf(ALICE))?.expiresAt, T0 + 2.5 * MIN, 'the refused refresh extended nothing');
  assert.equal(h.store.lookup(IID, eidOf(ALICE), now), undefined);
  assert.deepEqual(
    h.expire(now).map((x) => x.key),
    [keyOf(ALICE)],
  );

  // The attestation succeeds again: a renewed ticket goes out at once with a 'refresh' event.
  holder.ticket = await seal(ALICE, { notBefore: now - MIN, notAfter: now + 10 * MIN });
  const back = r.handle({ kind: 'refresh' }, now + 1000);
  assert.deepEqual(names(deliver(r, h, back, now + 1000)), ['refreshed', 'registered']);
  const reg = h.store.get(keyOf(ALICE));
  assert.equal(reg?.expiresAt, now + 1000 + 3 * MIN, 'the record TTL bounds it now');
  assert.equal(reg.ticketNotAfter, now + 10 * MIN);
  assert.equal(h.counters.snapshot()['record-attestation-ticket-expired'], 1);
});

test('the registration expires with its ticket when refreshes stop arriving (expire at not_after)', async () => {
  const r = registrar(ALICE, new TicketHolder(await seal(ALICE)));
  const h = new RegisterHandler(msConfig());
  deliver(r, h, r.start(T0), T0);
  assert.equal(h.store.nextExpiry(), T0 + 2.5 * MIN);
  assert.ok(h.store.lookup(IID, eidOf(ALICE), T0 + 2.5 * MIN - 1));
  assert.deepEqual(
    h.expire(T0 + 2.5 * MIN).map((x) => x.key),
    [keyOf(ALICE)],
  );
  assert.equal(h.store.lookup(IID, eidOf(ALICE), T0 + 2.5 * MIN), undefined);
});

test('deregistration needs no ticket: shutdown sends TTL 0 without one, and the map-server removes the EID', async () => {
  const holder = new TicketHolder(await seal(ALICE));
  const r = registrar(ALICE, holder);
  const h = new RegisterHandler(msConfig());
  deliver(r, h, r.start(T0), T0);
  holder.ticket = undefined;
  const calls = holder.calls;
  const actions = r.shutdown(T0 + 5000);
  assert.equal(holder.calls, calls, 'not asked for a deregistration');
  const m = decodeRegister(sends(actions)[0]?.bytes ?? assert.fail());
  assert.ok(m.records.every((rec) => rec.ttl === 0 && recordTicket(rec) === undefined));
  const [v] = deliver(r, h, actions, T0 + 5000);
  assert.deepEqual(
    v?.records.map((o) => (o.outcome === 'deregistered' ? [o.key, o.removed] : o.outcome)),
    [
      [hashKeyOf(ALICE), true],
      [keyOf(ALICE), true],
    ],
  );
});

test('a plain EID-prefix in a ticket site is refused without a ticket; sites without the option are unchanged (ticket carried, not checked)', async () => {
  const holder = new TicketHolder(await seal(ALICE));
  const r = registrar(ALICE, holder, { eids: [prefix('10.1.0.0/16')] });
  const gated = new RegisterHandler(msConfig());
  assert.deepEqual(names(deliver(r, gated, r.start(T0), T0)), ['record-attestation-ticket-missing', 'registered', 'registered']);

  // No requireAttestationTicket, no checker: everything as before the feature.
  const open = new RegisterHandler({ sites: [site({ requireAttestationTicket: false })], cryptoEidPrefixes: msConfig().cryptoEidPrefixes });
  const r2 = registrar(ALICE, holder, { eids: [prefix('10.1.0.0/16')] });
  assert.deepEqual(names(deliver(r2, open, r2.start(T0), T0)), ['registered', 'registered', 'registered']);
  const reg = open.store.get(keyOf(ALICE));
  assert.equal(reg?.expiresAt, T0 + 3 * MIN);
  assert.equal(reg.ticketNotAfter, undefined);
  assert.equal(proxyReply(open, ALICE, T0).ttl, 1440);
  assert.deepEqual(open.counters.snapshot(), {});
});

test('a site requiring tickets without a checker is a configuration error', () => {
  assert.throws(() => new RegisterHandler({ sites: [site()], cryptoEidPrefixes: msConfig().cryptoEidPrefixes }), /site 'mesh' requires attestation tickets, but no ticket checker/);
});

test('snapshot and restore: the ticket-bound expiry survives; a ticket the new checker refuses, or that ended, does not', async () => {
  const r = registrar(ALICE, new TicketHolder(await seal(ALICE)));
  const h = new RegisterHandler(msConfig());
  deliver(r, h, r.start(T0), T0);
  const snapshot = JSON.parse(JSON.stringify(h.store.snapshot())) as unknown;

  const same = new RegisterHandler(msConfig());
  const report = same.restore(snapshot, T0 + 10_000);
  assert.deepEqual(report, { ok: true, restored: 2, dropped: [] });
  const reg = same.store.get(keyOf(ALICE));
  assert.equal(reg?.expiresAt, T0 + 2.5 * MIN);
  assert.equal(reg.ticketNotAfter, T0 + 2.5 * MIN);
  assert.equal(proxyReply(same, ALICE, T0 + 10_000).ttl, 3);

  // The operator now trusts only another controller's signing certificate.
  const rotated = new RegisterHandler(msConfig({ ticketCheck: ticketChecker([OTHER_CA.signing.certPem]) }));
  assert.deepEqual(rotated.restore(snapshot, T0 + 10_000), { ok: true, restored: 1, dropped: [{ key: keyOf(ALICE), reason: 'attestation-ticket' }] });
  // After the ticket's end the stored expiry alone drops it.
  assert.deepEqual(new RegisterHandler(msConfig()).restore(snapshot, T0 + 2.5 * MIN), { ok: true, restored: 1, dropped: [{ key: keyOf(ALICE), reason: 'expired' }] });
  // A registration made before the site required tickets does not pass into a site that does.
  const before = new RegisterHandler(msConfig({ site: { requireAttestationTicket: false } }));
  const unticketed = registrar(ALICE, new TicketHolder(undefined));
  deliver(unticketed, before, unticketed.start(T0), T0);
  assert.ok(before.store.get(keyOf(ALICE)));
  assert.deepEqual(new RegisterHandler(msConfig()).restore(before.store.snapshot(), T0 + 1000), { ok: true, restored: 1, dropped: [{ key: keyOf(ALICE), reason: 'attestation-ticket' }] });
});

test('the registrar\'s size estimate counts the ticket: messages stay within the record budget, a crypto-EID pair goes alone', async () => {
  const many = Array.from({ length: 12 }, (_, i) => prefix(`10.${i}.0.0/16`));
  const holder = new TicketHolder(await seal(ALICE, { eids: [keyOf(ALICE), keyOf(BOB)] }));
  const r = new Registrar(
    {
      eids: many,
      cryptoEids: [
        { keyPair: ALICE, instanceId: IID },
        { keyPair: BOB, instanceId: IID },
      ],
      rlocs: [{ address: XTR.address }, { address: '2001:db8:ffff::11' }],
      mapServers: [{ address: MS, key: KEY }],
      xtrId: new Uint8Array(16),
      siteId: 1n,
    },
    seeded(9),
    { attestationTicket: holder.provide },
  );
  const messages = sends(r.start(T0));
  assert.equal(holder.calls, 1);
  const recordBytes = (rec: EidRecord): number => {
    const w = new ByteWriter();
    writeEidRecord(w, rec);
    return w.finish().length;
  };
  let pairs = 0;
  for (const a of messages) {
    const m = decodeRegister(a.bytes);
    const total = m.records.reduce((n, rec) => n + recordBytes(rec), 0);
    const carries = m.records.some((rec) => recordTicket(rec) instanceof Uint8Array);
    if (carries) {
      pairs += 1;
      // Hash-EID record + crypto-EID record with its ticket: over the 1100-byte budget, so alone,
      // and still one unfragmented datagram on a 1500-byte path (IPv6 + UDP headers: 48 bytes).
      assert.equal(m.records.length, 2);
      assert.ok(total > 1100);
      assert.ok(a.bytes.length + 48 <= 1500, `${a.bytes.length} bytes`);
    } else {
      assert.ok(total <= 1100, `${total} record bytes`);
    }
  }
  assert.equal(pairs, 2);
});
