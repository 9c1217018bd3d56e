// Known answers for src/crypto: TV3–TV7 of shared/spec/lisp-protocol.md §8, and EVE's binary
// crypto-EID derivation checked against OpenSSL run as an independent tool.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import {
  deriveCryptoEid,
  deriveKeysFromShared,
  exportPrivateKeyPem,
  exportPublicKeyPem,
  generateP256KeyPair,
  importP256PrivateKey,
  maxSealOverhead,
  parseCipherSuite,
  sealOverhead,
  hashEidName,
  importP256PublicKey,
  mapRequestSignatureInput,
  nodeCipherBackend,
  p256FromScalar,
  publicKeyFromJsonValue,
  publicKeyJsonValue,
  signEid,
  signMapRequest,
  verifyCryptoEid,
  verifyEidSignature,
  verifyMapRequestSignature,
  x25519FromPrivate,
  x25519SharedSecret,
} from '../src/crypto/index.js';
import { formatIpv6, fromHex, toHex } from '../src/lisp/index.js';
import { prng } from './support/prng.js';

// RFC 7748 §6.1 X25519 keys (Alice = ITR, Bob = ETR).
const ALICE_PRIVATE = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
const BOB_PRIVATE = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';

test('TV3: X25519 and the lispers.net KDF', () => {
  const alice = x25519FromPrivate(fromHex(ALICE_PRIVATE));
  const bob = x25519FromPrivate(fromHex(BOB_PRIVATE));
  assert.equal(toHex(alice.publicKey), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
  assert.equal(toHex(bob.publicKey), 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  const raw = x25519SharedSecret(alice, bob.publicKey);
  assert.equal(toHex(raw), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  const itr = deriveKeysFromShared(raw, alice.publicKey, bob.publicKey);
  const etr = deriveKeysFromShared(x25519SharedSecret(bob, alice.publicKey), bob.publicKey, alice.publicKey);
  assert.equal(toHex(itr.encryptKey), '3035ead211c24e9729286c09181ae43d');
  assert.equal(toHex(itr.icvKey), '000000006e9106c649706da447cf00c38f851da8');
  assert.deepEqual(etr, itr, 'both ends derive the same keys');
  assert.throws(() => x25519SharedSecret(alice, new Uint8Array(32)), /low order/);
});

const KEYS = { encryptKey: fromHex('3035ead211c24e9729286c09181ae43d'), icvKey: fromHex('000000006e9106c649706da447cf00c38f851da8') };
const INNER = '4500001c000100004001f98cc0a80001c0a800020800f7ff00000000';
const HEADER = '8112345600000000';

function sealOne(suite: 2 | 5, iv: string): string {
  const packet = new Uint8Array(200);
  const plain = fromHex(HEADER + iv + INNER);
  packet.set(plain);
  const lengths = Uint32Array.of(plain.length);
  const context = nodeCipherBackend.createContext(suite, KEYS.encryptKey, KEYS.icvKey);
  context.sealBatch([packet], lengths, 1);
  const sealed = packet.slice(0, lengths[0]);
  const statuses = new Uint8Array(1);
  context.openBatch([packet], lengths, statuses, 1);
  assert.equal(statuses[0], 0);
  assert.equal(toHex(packet.subarray(8 + iv.length / 2, lengths[0])).slice(0, INNER.length), INNER);
  return toHex(sealed);
}

test('TV4: a suite-2 packet (AES-128-CBC, space padding, HMAC ICV)', () => {
  assert.equal(
    sealOne(2, '000102030405060708090a0b0c0d0e0f'),
    `${HEADER}000102030405060708090a0b0c0d0e0f3f516315f8757f645f4550f05b14dd0539e5c0b34b91444d5a5ebebba7ebab252f58793dd9b5434a07b65b1654142f71d3f29e34`,
  );
});

test('TV5: a suite-5 packet (AES-128-GCM, then HMAC ICV)', () => {
  assert.equal(
    sealOne(5, '000000010000000000000002'),
    `${HEADER}000000010000000000000002` +
      '0a3b2b0812b8c24ccd1014a47d0ed88c1b0a3f63fbe3f82a179dfdce7f6dbc81239218af919e75b36bf88c4c' +
      '892f0db7af05a1707902a7a2d13024edbc2d3580',
  );
});

// TV6 key: the scalar is SHA-256("lisp-test-key") mod n.
const TV6_SCALAR = fromHex('328727d25ac72c15a6348cecd3d0dbee7b32e6b0b5ecc8dbd56df635a8804c8e');
const TV6_SPKI =
  '3059301306072a8648ce3d020106082a8648ce3d03010703420004d480986f8e23c2117ae3b3dea90139bf8b76caf1b848a97d8a7bc38eaea4c4e6bc5fa55148c86dacb0132037386a750d47c644db9c12394e32981d2915b447f7';
const FD00_8 = { address: fromHex('fd000000000000000000000000000000'), length: 8 };

test('TV6: crypto-EID (lispers.net derivation), hash-EID, public-key JSON and EID signature', () => {
  const key = p256FromScalar(TV6_SCALAR);
  assert.equal(toHex(key.spki), TV6_SPKI);
  const derived = deriveCryptoEid({ iid: 1000, spki: key.spki, prefix: FD00_8, derivation: 'lispers' });
  const text = formatIpv6(derived.eid);
  assert.equal(text, 'fdf1:5cf5:1e39:8825:1f45:8812:7133:d07b');
  assert.equal(derived.hashEidName, 'hash-f1:5cf5:1e39:8825:1f45:8812:7133:d07b');
  assert.equal(
    publicKeyJsonValue(key.publicKey),
    'LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUZrd0V3WUhLb1pJemowQ0FRWUlLb1pJemowREFRY0RRZ0FFMUlDWWI0NGp3aEY2NDdQZXFRRTV2NHQyeXZHNApTS2w5aW52RGpxNmt4T2E4WDZWUlNNaHRyTEFUSURjNGFuVU5SOFpFMjV3U09VNHltQjBwRmJSSDl3PT0KLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tCg==',
  );
  assert.equal(toHex(publicKeyFromJsonValue(publicKeyJsonValue(key.publicKey)).spki), TV6_SPKI);
  const signature = signEid(key.scalar, { iid: 1000, text });
  assert.equal(signature, 'TQB0ipuvO5CX606PUMsPdc/sU7ap1Cxgqs3RGmfME/HpnLBggksc99tdTZm/e/FEF4RzNx2Nc8xdMfBFaJzcXg==');
  assert.ok(verifyEidSignature(key.publicKey, { iid: 1000, text }, signature));
  assert.ok(!verifyEidSignature(key.publicKey, { iid: 1001, text }, signature), 'another IID');
  assert.ok(!verifyEidSignature(key.publicKey, { iid: 1000, text }, `${signature.slice(0, -4)}AAA=`), 'altered signature');
  assert.ok(verifyCryptoEid({ iid: 1000, eid: derived.eid, spki: key.spki, prefix: FD00_8, derivation: 'lispers' }));
  assert.ok(!verifyCryptoEid({ iid: 1000, eid: derived.eid, spki: key.spki, prefix: FD00_8, derivation: 'eve' }));
});

test('TV7: the lispers.net Map-Request signature (SHA-1, little-endian nonce text)', () => {
  const key = p256FromScalar(TV6_SCALAR);
  const eid = { iid: 1000, text: 'fdf1:5cf5:1e39:8825:1f45:8812:7133:d07b' };
  const nonce = fromHex('0102030405060708');
  assert.equal(mapRequestSignatureInput(nonce, eid, eid), `807060504030201[1000]${eid.text}[1000]${eid.text}`);
  const signature = signMapRequest(key.scalar, nonce, eid, eid);
  assert.equal(signature, 'tWkkgMZRIAb1IGsDJPtmn/I+vxdNETsFGvXyUn6fUmrAsBLeRjAzbLj4aJWcSlRPOIUSBLL79kXHOcHEyX19ow==');
  // lispers.net leaves base64's newline in the JSON string.
  assert.ok(verifyMapRequestSignature(key.publicKey, nonce, eid, eid, `${signature}\n`));
  assert.ok(!verifyMapRequestSignature(key.publicKey, fromHex('0102030405060709'), eid, eid, signature));
});

// EVE's derivation hashes binary bytes: IID as 4 bytes big-endian || prefix bytes || SPKI DER.
// Expected digest computed independently with OpenSSL:
//   echo -n "000003e8fd${TV6_SPKI}" | xxd -r -p | openssl dgst -sha256 -r
//   -> 939b702b872aaf1b862e42ac90e3615120e6c586c4583e81f3a31479ee956aa0
const EVE_DIGEST = '939b702b872aaf1b862e42ac90e3615120e6c586c4583e81f3a31479ee956aa0';

test('EVE crypto-EID derivation matches an independent OpenSSL computation', () => {
  const live = execFileSync('openssl', ['dgst', '-sha256', '-r'], { input: fromHex(`000003e8fd${TV6_SPKI}`), encoding: 'utf8' }).split(' ')[0];
  assert.equal(live, EVE_DIGEST, 'the recorded OpenSSL answer still holds');
  const { spki } = importP256PublicKey(fromHex(TV6_SPKI));
  const derived = deriveCryptoEid({ iid: 1000, spki });
  assert.equal(toHex(derived.eid), `fd${EVE_DIGEST.slice(0, 30)}`);
  assert.equal(formatIpv6(derived.eid), 'fd93:9b70:2b87:2aaf:1b86:2e42:ac90:e361');
  assert.equal(derived.hashEidName, 'hash-93:9b70:2b87:2aaf:1b86:2e42:ac90:e361');
  assert.ok(verifyCryptoEid({ iid: 1000, eid: derived.eid, spki }));
  const other = derived.eid.slice();
  other[15] = (other[15] ?? 0) ^ 1;
  assert.ok(!verifyCryptoEid({ iid: 1000, eid: other, spki }));
  assert.ok(!verifyCryptoEid({ iid: 999, eid: derived.eid, spki }));
});

test('hash-EID names and prefix rules', () => {
  const eid = fromHex('20010db8000000000123456789abcdef');
  assert.equal(hashEidName(eid, 64), 'hash-0123:4567:89ab:cdef');
  assert.equal(hashEidName(eid, 56), 'hash-00:0123:4567:89ab:cdef');
  const { spki } = importP256PublicKey(fromHex(TV6_SPKI));
  assert.throws(() => deriveCryptoEid({ iid: 1, spki, prefix: { address: fromHex('fd000000000000000000000000000000'), length: 12 } }), /multiple of 8/);
  assert.throws(() => deriveCryptoEid({ iid: 1, spki, prefix: { address: fromHex('fd010000000000000000000000000000'), length: 8 } }), /bits set past/);
  const p48 = deriveCryptoEid({ iid: 7, spki, prefix: { address: fromHex('20010db8000100000000000000000000'), length: 48 } });
  assert.equal(toHex(p48.eid).slice(0, 12), '20010db80001');
  assert.match(p48.hashEidName, /^hash-[0-9a-f]{4}(:[0-9a-f]{4}){4}$/);
});

test('only suites 2 and 5 are accepted; the others are refused with a reason', () => {
  assert.deepEqual(parseCipherSuite(2), { ok: true, suite: 2 });
  assert.deepEqual(parseCipherSuite(5), { ok: true, suite: 5 });
  for (const [suite, why] of [[0, /reserved/], [1, /MODP/], [3, /MODP/], [4, /3072/], [6, /not RFC 8439/], [7, /unknown/], [255, /unknown/]] as const) {
    const r = parseCipherSuite(suite);
    assert.ok(!r.ok);
    assert.match(r.reason, why);
  }
  assert.equal(sealOverhead(5, 100), 12 + 16 + 20);
  assert.equal(sealOverhead(2, 100), 16 + 12 + 20);
  assert.equal(maxSealOverhead(2), 16 + 15 + 20);
});

test('P-256 keys: generation from caller randomness, PEM (PKCS#8 and EVE\'s SEC1) and DER round trips', () => {
  const random = prng(99);
  const pair = generateP256KeyPair((n) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256)));
  const pem = exportPrivateKeyPem(pair);
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----/);
  assert.deepEqual(importP256PrivateKey(pem).scalar, pair.scalar);
  const sec1 = pair.privateKey.export({ format: 'pem', type: 'sec1' }).toString();
  assert.match(sec1, /^-----BEGIN EC PRIVATE KEY-----/);
  assert.deepEqual(importP256PrivateKey(sec1).spki, pair.spki);
  const der = new Uint8Array(pair.privateKey.export({ format: 'der', type: 'pkcs8' }));
  assert.deepEqual(importP256PrivateKey(der).spki, pair.spki);
  assert.deepEqual(importP256PublicKey(exportPublicKeyPem(pair.publicKey)).spki, pair.spki);
  assert.deepEqual(importP256PublicKey(pair.spki).spki, pair.spki);
  assert.throws(() => p256FromScalar(new Uint8Array(32)), /out of range/);
  assert.throws(() => p256FromScalar(fromHex('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')), /out of range/);
  const ed = generateKeyPairSync('ed25519');
  assert.throws(() => importP256PublicKey(ed.publicKey.export({ format: 'pem', type: 'spki' }).toString()), /not a P-256 public key/);
});
