// lispnode's replay-proof registration signature: valid under the Map-Register it was made for,
// useless under another nonce, after its freshness window, or with other RLOCs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deriveCryptoEid, p256FromScalar, signEid, type P256KeyPair } from '../src/crypto/index.js';
import {
  authFields,
  decodeControl,
  encodeControl,
  EID_RECORD_DEFAULTS,
  formatIpv6,
  fromHex,
  ipv4,
  LOCATOR_DEFAULTS,
  passwordKey,
  sealAuthentication,
  withInstanceId,
  type EidRecord,
  type MapRegister,
} from '../src/lisp/index.js';
import { addRegistrationSignature, checkRegistrationSignature, jsonLocator, locatorJson } from '../src/lisp/registration-record.js';

const KEY: P256KeyPair = p256FromScalar(fromHex('328727d25ac72c15a6348cecd3d0dbee7b32e6b0b5ecc8dbd56df635a8804c8e'));
const IID = 1000;
const EID = deriveCryptoEid({ iid: IID, spki: KEY.spki }).eid;
const EID_TEXT = { iid: IID, text: formatIpv6(EID) };
const T0 = 1_795_000_000;
const FRESH = { nowSeconds: T0 + 10, maxAgeSeconds: 300, maxSkewSeconds: 30 };
const SITE_KEY = passwordKey(1, 2, 'site-secret');

function cryptoEidRecord(rloc = '198.18.0.11'): EidRecord {
  return {
    ...EID_RECORD_DEFAULTS,
    ttl: 3,
    authoritative: true,
    eidMaskLength: 128,
    eid: withInstanceId(IID, { afi: 'ipv6', address: EID_TEXT.text }),
    locators: [
      { ...LOCATOR_DEFAULTS, local: true, locator: ipv4(rloc) },
      // The legacy static signature rides along for lispers.net map-servers.
      jsonLocator({ 'signature-eid': `[${IID}]${EID_TEXT.text}`, signature: signEid(KEY.scalar, EID_TEXT) }),
    ],
  };
}

function mapRegister(nonce: bigint, record: EidRecord): Uint8Array {
  const m: MapRegister = {
    type: 'map-register',
    proxyReply: false,
    securityCapable: false,
    wantMapNotify: true,
    useTtlForTimeout: true,
    reservedFlags: 0,
    nonce,
    ...authFields(SITE_KEY),
    records: [record],
  };
  return sealAuthentication(encodeControl(m), SITE_KEY);
}

function receivedRecord(bytes: Uint8Array): { nonce: bigint; record: EidRecord } {
  const decoded = decodeControl(bytes);
  assert.ok(decoded.ok && decoded.value.type === 'map-register');
  const record = decoded.value.records[0];
  assert.ok(record);
  return { nonce: decoded.value.nonce, record };
}

test('a registration signature verifies for the Map-Register it was made for', () => {
  const nonce = 0x1122334455667788n;
  const signed = addRegistrationSignature(cryptoEidRecord(), KEY.scalar, { eid: EID_TEXT, nonce, timestamp: T0 });
  const json = locatorJson(signed.locators.at(-1) ?? signed.locators[0]!);
  assert.equal(json?.['signed-eid'], `[${IID}]${EID_TEXT.text}`);
  assert.equal(json?.timestamp, T0);
  const { nonce: seen, record } = receivedRecord(mapRegister(nonce, signed));
  assert.equal(checkRegistrationSignature(record, KEY.publicKey, { eid: EID_TEXT, nonce: seen }, FRESH), 'valid');
});

test('a replayed copy of the signed record under a different nonce fails', () => {
  const signed = addRegistrationSignature(cryptoEidRecord(), KEY.scalar, { eid: EID_TEXT, nonce: 1n, timestamp: T0 });
  // The attacker copies the record bytes into a Map-Register of their own (with a valid site
  // MAC, as an insider of the site could), under a fresh nonce.
  const { nonce, record } = receivedRecord(mapRegister(2n, signed));
  assert.equal(checkRegistrationSignature(record, KEY.publicKey, { eid: EID_TEXT, nonce }, FRESH), 'bad-signature');
});

test('stale, future, re-pointed, mis-labelled and missing signatures fail with their reason', () => {
  const nonce = 7n;
  const signed = addRegistrationSignature(cryptoEidRecord(), KEY.scalar, { eid: EID_TEXT, nonce, timestamp: T0 });
  const check = (record: EidRecord, freshness = FRESH): string => checkRegistrationSignature(record, KEY.publicKey, { eid: EID_TEXT, nonce }, freshness);
  assert.equal(check(signed, { ...FRESH, nowSeconds: T0 + 301 }), 'stale');
  assert.equal(check(signed, { ...FRESH, nowSeconds: T0 - 31 }), 'from-the-future');
  // The same signature moved onto a record with another RLOC.
  const moved = { ...signed, locators: [cryptoEidRecord('198.18.0.99').locators[0]!, ...signed.locators.slice(1)] };
  assert.equal(check(moved), 'bad-signature');
  assert.equal(checkRegistrationSignature(signed, KEY.publicKey, { eid: { iid: 1001, text: EID_TEXT.text }, nonce }, FRESH), 'eid-mismatch');
  assert.equal(check(cryptoEidRecord()), 'missing');
  const other = p256FromScalar(fromHex('0000000000000000000000000000000000000000000000000000000000000007'));
  assert.equal(checkRegistrationSignature(signed, other.publicKey, { eid: EID_TEXT, nonce }, FRESH), 'bad-signature');
  const garbled = { ...signed, locators: [...signed.locators.slice(0, -1), jsonLocator({ 'registration-signature': 'x', 'signed-eid': 'y' })] };
  assert.equal(check(garbled), 'malformed');
});

test('re-signing replaces the older registration signature', () => {
  const once = addRegistrationSignature(cryptoEidRecord(), KEY.scalar, { eid: EID_TEXT, nonce: 1n, timestamp: T0 });
  const twice = addRegistrationSignature(once, KEY.scalar, { eid: EID_TEXT, nonce: 2n, timestamp: T0 + 60 });
  assert.equal(twice.locators.length, once.locators.length);
  assert.equal(checkRegistrationSignature(twice, KEY.publicKey, { eid: EID_TEXT, nonce: 2n }, { ...FRESH, nowSeconds: T0 + 60 }), 'valid');
});
