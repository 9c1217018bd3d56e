// Test vectors TV1, TV2 and TV9 of the protocol digest (shared/spec/lisp-protocol.md §8),
// reproduced byte for byte by our encoders and decoded back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AUTH_ALGORITHM,
  authFields,
  decodeControl,
  decodeDataHeader,
  encodeControl,
  encodeDataHeader,
  EID_RECORD_DEFAULTS,
  fromHex,
  ipv4,
  ipv6,
  passwordKey,
  sealAuthentication,
  toHex,
  verifyAuthentication,
  withInstanceId,
  type AuthAlgorithmId,
  type DataHeader,
  type EidRecord,
  type MapRegister,
} from '../src/lisp/index.js';
import { ByteReader, ByteWriter } from '../src/lisp/bytes.js';
import { readEidRecord, writeEidRecord } from '../src/lisp/records.js';

// TV1: P=1, M=1, one record 10.1.1.0/24 TTL 1440 A=1, locator 192.0.2.1 p1/w100 m255/0 L|R.
function tv1(algorithmId: AuthAlgorithmId): MapRegister {
  return {
    type: 'map-register',
    proxyReply: true,
    securityCapable: false,
    wantMapNotify: true,
    useTtlForTimeout: false,
    reservedFlags: 0,
    nonce: 0x0102030405060708n,
    ...authFields(passwordKey(0, algorithmId, 'lisp-pw')),
    records: [
      {
        ...EID_RECORD_DEFAULTS,
        ttl: 1440,
        authoritative: true,
        eidMaskLength: 24,
        eid: ipv4('10.1.1.0'),
        locators: [
          {
            priority: 1,
            weight: 100,
            multicastPriority: 255,
            multicastWeight: 0,
            local: true,
            probed: false,
            reachable: true,
            unusedFlags: 0,
            locator: ipv4('192.0.2.1'),
          },
        ],
      },
    ],
  };
}

const TV1_RECORDS = '000005a0 01181000 00000001 0a010100 0164ff00 00050001 c0000201';

for (const [algorithmId, header, zeros, mac] of [
  [AUTH_ALGORITHM.hmacSha256, '00020020', 32, '0e4c597122ff6ab753d93d9a0afbc0d69cdc50ba01e14a8d7628e991d49fe7ea'],
  [AUTH_ALGORITHM.hmacSha1, '00010014', 20, '38b3cae9eac34132d95a374a4ec577fa8bc8e103'],
] as const) {
  test(`TV1 Map-Register, algorithm ${algorithmId}: zeroed form, MAC and verification`, () => {
    const key = passwordKey(0, algorithmId, 'lisp-pw');
    const unsealed = encodeControl(tv1(algorithmId));
    assert.equal(toHex(unsealed), `38000101 0102030405060708 ${header} ${'00'.repeat(zeros)} ${TV1_RECORDS}`.replace(/ /g, ''));
    const sealed = sealAuthentication(unsealed, key);
    assert.equal(toHex(sealed.subarray(16, 16 + zeros)), mac);
    assert.deepEqual(verifyAuthentication(sealed, (id) => (id === 0 ? key : undefined)), { ok: true, keyId: 0 });
    const decoded = decodeControl(sealed);
    assert.ok(decoded.ok);
    assert.equal(toHex(encodeControl(decoded.value)), toHex(sealed));
    // One flipped bit anywhere breaks the MAC; a wrong password too.
    const flipped = sealed.slice();
    flipped[flipped.length - 1] = (flipped.at(-1) ?? 0) ^ 1;
    assert.deepEqual(verifyAuthentication(flipped, () => key), { ok: false, reason: 'mac-mismatch' });
    assert.deepEqual(verifyAuthentication(sealed, () => passwordKey(0, algorithmId, 'lisp-pw2')), { ok: false, reason: 'mac-mismatch' });
    assert.deepEqual(verifyAuthentication(sealed, () => undefined), { ok: false, reason: 'unknown-key-id' });
  });
}

const TV2: readonly (readonly [DataHeader, string])[] = [
  [{ nonceField: { kind: 'nonce', nonce: 0x123456, echoRequest: false }, instanceId: 1000, reservedBit: false, keyId: 0 }, '881234560003e800'],
  [{ nonceField: { kind: 'nonce', nonce: 0x123456, echoRequest: false }, instanceId: 1000, reservedBit: false, keyId: 1 }, '891234560003e800'],
  [{ nonceField: { kind: 'nonce', nonce: 0xabcdef, echoRequest: true }, reservedBit: false, keyId: 0 }, 'a0abcdef00000000'],
  [{ nonceField: { kind: 'none' }, instanceId: 0xffffff, reservedBit: false, keyId: 0 }, '08000000ffffff00'],
];

test('TV2 LISP data headers encode and decode byte for byte', () => {
  for (const [header, hex] of TV2) {
    assert.equal(toHex(encodeDataHeader(header)), hex);
    const decoded = decodeDataHeader(fromHex(hex));
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value, header);
  }
});

test('TV9 EID-record with an Instance-ID LCAF', () => {
  const record: EidRecord = {
    ...EID_RECORD_DEFAULTS,
    ttl: 3,
    authoritative: true,
    eidMaskLength: 128,
    eid: withInstanceId(1000, ipv6('fd00::1')),
    locators: [],
  };
  const hex = '00000003 00801000 0000 4003 0000 0200 0016 000003e8 0002 fd000000000000000000000000000001'.replace(/ /g, '');
  const w = new ByteWriter();
  writeEidRecord(w, record);
  assert.equal(toHex(w.finish()), hex);
  assert.deepEqual(readEidRecord(new ByteReader(fromHex(hex)), []), record);
});
