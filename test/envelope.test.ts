// EVE's AuthContainer signing: a round trip through a P256Signer, each rejection reason produced
// by a real tampering of a sealed envelope, the RSA controller path, and the cert hashes of both
// directions (DER for the device's cert, exact PEM bytes for the controller's).
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, verify, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { p256 } from '@noble/curves/nist.js';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import {
  certId16,
  certResolver,
  controllerCertHash,
  deviceCertHash,
  knownControllerCert,
  knownDeviceCert,
  matchesCertHash,
} from '../src/control/cert-hash.js';
import { EnvelopeError, openEnvelope, sealEnvelope, unwrapUnverified, type EnvelopeResult } from '../src/control/envelope.js';
import { base64Pem, pemFromBase64 } from '../src/control/pem-base64.js';
import { AuthContainerSchema, HashAlgorithm, UuidResponseSchema, type AuthContainer } from '../src/control/proto/index.js';
import type { P256Signer } from '../src/control/signer.js';
import { p256FromScalar, type P256KeyPair } from '../src/crypto/index.js';

// @peculiar/x509 is typed against the DOM's WebCrypto; node's is the same API.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const sha256 = (data: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(data).digest());
const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A P256Signer over a key held in memory: noble signs the caller's digest as is, raw r||s. */
function memorySigner(pair: P256KeyPair): P256Signer {
  return {
    publicKey: pair.publicKey,
    signDigest: (digest) => Promise.resolve(p256.sign(digest, pair.scalar, { prehash: false })),
  };
}

async function selfSignedPem(cn: string, privateKey: KeyObject, publicKey: KeyObject): Promise<string> {
  const algorithm =
    privateKey.asymmetricKeyType === 'ec' ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  const keys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), algorithm, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', publicKey.export({ format: 'der', type: 'spki' }), algorithm, true, ['verify']),
  };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date('2025-01-01T00:00:00Z'),
    notAfter: new Date('2045-01-01T00:00:00Z'),
    signingAlgorithm: algorithm,
    keys,
  });
  return `${cert.toString('pem')}\n`; // a PEM file ends in a newline, and the hash covers it
}

const DEVICE = p256FromScalar(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
const CONTROLLER = p256FromScalar(Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i));
const DEVICE_PEM = await selfSignedPem('device', DEVICE.privateKey, DEVICE.publicKey);
const CONTROLLER_PEM = ascii(await selfSignedPem('controller signing', CONTROLLER.privateKey, CONTROLLER.publicKey));
const RSA = generateKeyPairSync('rsa', { modulusLength: 2048 });
const RSA_PEM = ascii(await selfSignedPem('controller signing (RSA)', RSA.privateKey, RSA.publicKey));

const PAYLOAD = toBinary(UuidResponseSchema, create(UuidResponseSchema, { uuid: '6e6f6465-0000-4000-8000-000000000001' }));
const FROM_DEVICE = { certHash: deviceCertHash(DEVICE_PEM), algo: HashAlgorithm.SHA256_32BYTES };
const FROM_CONTROLLER = { certHash: controllerCertHash(CONTROLLER_PEM), algo: HashAlgorithm.SHA256_32BYTES };
const CONTROLLER_SIDE = certResolver([knownDeviceCert(DEVICE_PEM)]);
const DEVICE_SIDE = certResolver([knownControllerCert(CONTROLLER_PEM), knownControllerCert(RSA_PEM)]);

/** Re-encodes a sealed envelope after an edit, as an attacker (or a bug) on the path would. */
function tamper(bytes: Uint8Array, edit: (container: AuthContainer) => void): Uint8Array {
  const container = fromBinary(AuthContainerSchema, bytes);
  edit(container);
  return toBinary(AuthContainerSchema, container);
}

function assertRejected(result: EnvelopeResult, reason: EnvelopeError['reason'], mentions?: RegExp): void {
  assert.equal(result.ok, false, 'the envelope was accepted');
  if (result.ok) return;
  assert.ok(result.error instanceof EnvelopeError);
  assert.equal(result.error.reason, reason, result.error.message);
  assert.ok(result.error.message.startsWith(`${reason}: `), result.error.message);
  if (mentions) assert.match(result.error.message, mentions);
}

function assertOpened(result: EnvelopeResult, payload: Uint8Array): void {
  assert.ok(result.ok, result.ok ? '' : result.error.message);
  assert.deepEqual(result.payload, payload);
}

test('the test signer keeps the P256Signer contract: raw r||s over the given digest, node:crypto verifies', async () => {
  const signature = await memorySigner(DEVICE).signDigest(sha256(PAYLOAD));
  assert.equal(signature.length, 64);
  assert.ok(verify('sha256', PAYLOAD, { key: DEVICE.publicKey, dsaEncoding: 'ieee-p1363' }, signature));
});

test('device → controller: a sealed envelope opens with the device cert, hashed over its DER', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(DEVICE), FROM_DEVICE);
  const result = openEnvelope(bytes, CONTROLLER_SIDE);
  assertOpened(result, PAYLOAD);
  assert.ok(result.ok);
  assert.deepEqual(result.certHash, FROM_DEVICE.certHash);
  assert.equal(result.algo, HashAlgorithm.SHA256_32BYTES);
  assert.equal(result.senderCert, undefined);
});

test('controller → device: 32-byte and truncated 16-byte PEM hashes both open', async () => {
  const full = await sealEnvelope(PAYLOAD, memorySigner(CONTROLLER), FROM_CONTROLLER);
  assertOpened(openEnvelope(full, DEVICE_SIDE), PAYLOAD);
  const truncated = { certHash: certId16(CONTROLLER_PEM), algo: HashAlgorithm.SHA256_16BYTES };
  assertOpened(openEnvelope(await sealEnvelope(PAYLOAD, memorySigner(CONTROLLER), truncated), DEVICE_SIDE), PAYLOAD);
});

test('an empty payload (UuidRequest) is signed and still carries protectedPayload', async () => {
  const bytes = await sealEnvelope(new Uint8Array(), memorySigner(DEVICE), FROM_DEVICE);
  assert.deepEqual([...bytes.subarray(0, 2)], [0x0a, 0x00]);
  assertOpened(openEnvelope(bytes, CONTROLLER_SIDE), new Uint8Array());
});

test('a flipped payload or signature byte is bad-signature', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(DEVICE), FROM_DEVICE);
  const payloadFlipped = tamper(bytes, (c) => {
    const payload = c.protectedPayload?.payload;
    if (payload) payload[3] = (payload[3] ?? 0) ^ 0x01;
  });
  assertRejected(openEnvelope(payloadFlipped, CONTROLLER_SIDE), 'bad-signature', /ec key/);
  const signatureFlipped = tamper(bytes, (c) => {
    c.signatureHash[10] = (c.signatureHash[10] ?? 0) ^ 0x80;
  });
  assertRejected(openEnvelope(signatureFlipped, CONTROLLER_SIDE), 'bad-signature');
  assertRejected(openEnvelope(tamper(bytes, (c) => (c.signatureHash = c.signatureHash.slice(0, 63))), CONTROLLER_SIDE), 'bad-signature');
});

test('a DER signature (Adam accepts one, EVE does not) is bad-signature', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(DEVICE), FROM_DEVICE);
  const der = tamper(bytes, (c) => (c.signatureHash = sign('sha256', PAYLOAD, DEVICE.privateKey)));
  assertRejected(openEnvelope(der, CONTROLLER_SIDE), 'bad-signature');
});

test('a cert hash nobody knows is unknown-cert, including a PEM hash for a device cert', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(DEVICE), FROM_DEVICE);
  const otherHash = tamper(bytes, (c) => {
    c.senderCertHash[0] = (c.senderCertHash[0] ?? 0) ^ 0x01;
  });
  assertRejected(openEnvelope(otherHash, CONTROLLER_SIDE), 'unknown-cert', /no known cert has hash [0-9a-f]{64}/);
  // The asymmetry: the device's cert hashed the controller's way (over PEM) matches nothing.
  const pemHashed = await sealEnvelope(PAYLOAD, memorySigner(DEVICE), { ...FROM_DEVICE, certHash: controllerCertHash(DEVICE_PEM) });
  assertRejected(openEnvelope(pemHashed, CONTROLLER_SIDE), 'unknown-cert');
});

test('a hash whose length does not fit the algorithm is hash-size', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(CONTROLLER), FROM_CONTROLLER);
  assertRejected(openEnvelope(tamper(bytes, (c) => (c.senderCertHash = c.senderCertHash.slice(0, 20))), DEVICE_SIDE), 'hash-size', /20 bytes; SHA256_32BYTES needs 32/);
  assertRejected(openEnvelope(tamper(bytes, (c) => (c.algo = HashAlgorithm.SHA256_16BYTES)), DEVICE_SIDE), 'hash-size', /needs 16/);
  assertRejected(openEnvelope(tamper(bytes, (c) => (c.senderCertHash = new Uint8Array())), DEVICE_SIDE), 'hash-size');
});

test('an algorithm other than 1 or 2 is hash-algo', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(CONTROLLER), FROM_CONTROLLER);
  for (const algo of [0, 3]) {
    assertRejected(openEnvelope(tamper(bytes, (c) => (c.algo = algo)), DEVICE_SIDE), 'hash-algo', new RegExp(`algorithm ${algo} `));
  }
});

test('bytes that are not an AuthContainer are malformed; one without a payload is no-payload', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(DEVICE), FROM_DEVICE);
  for (const garbage of [new Uint8Array([0x0f]), bytes.subarray(0, bytes.length - 5), ascii('{"protectedPayload":"x"}')]) {
    assertRejected(openEnvelope(garbage, CONTROLLER_SIDE), 'malformed');
    assertRejected(unwrapUnverified(garbage), 'malformed');
  }
  assertRejected(openEnvelope(tamper(bytes, (c) => (c.protectedPayload = undefined)), CONTROLLER_SIDE), 'no-payload', /no protectedPayload/);
  const encrypted = tamper(bytes, (c) => {
    c.protectedPayload = undefined;
    c.cipherData = create(AuthContainerSchema, { cipherData: { cipherData: new Uint8Array([1, 2, 3]) } }).cipherData;
  });
  assertRejected(openEnvelope(encrypted, CONTROLLER_SIDE), 'no-payload', /encrypted/);
  assertRejected(openEnvelope(new Uint8Array(), CONTROLLER_SIDE), 'no-payload');
});

test('RSA controller signing cert: PKCS#1 v1.5 SHA-256 verifies, a flipped byte does not', () => {
  const container = create(AuthContainerSchema, {
    protectedPayload: { payload: PAYLOAD },
    algo: HashAlgorithm.SHA256_16BYTES,
    senderCertHash: certId16(RSA_PEM),
    signatureHash: sign('sha256', PAYLOAD, RSA.privateKey),
  });
  const bytes = toBinary(AuthContainerSchema, container);
  assertOpened(openEnvelope(bytes, DEVICE_SIDE), PAYLOAD);
  const flipped = tamper(bytes, (c) => {
    c.signatureHash[0] = (c.signatureHash[0] ?? 0) ^ 0x01;
  });
  assertRejected(openEnvelope(flipped, DEVICE_SIDE), 'bad-signature', /rsa key/);
});

test('register: unwrapUnverified yields senderCert (base64 PEM); the controller then checks the signature with it', async () => {
  const onboarding = { ...FROM_DEVICE, senderCert: base64Pem(DEVICE_PEM) };
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(DEVICE), onboarding);
  const unwrapped = unwrapUnverified(bytes);
  assert.ok(unwrapped.ok);
  assert.deepEqual(unwrapped.payload, PAYLOAD);
  assert.match(Buffer.from(unwrapped.senderCert ?? []).toString('latin1'), /^[A-Za-z0-9+/]+=*$/);
  const pem = pemFromBase64(unwrapped.senderCert ?? new Uint8Array());
  assert.ok(pem);
  assert.equal(Buffer.from(pem).toString('utf8'), DEVICE_PEM);
  assertOpened(openEnvelope(bytes, certResolver([knownDeviceCert(pem)])), PAYLOAD);
});

test('/certs: unwrapUnverified returns the payload whatever the signature', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(CONTROLLER), FROM_CONTROLLER);
  const unsigned = tamper(bytes, (c) => (c.signatureHash = new Uint8Array()));
  assertRejected(openEnvelope(unsigned, DEVICE_SIDE), 'bad-signature');
  assertOpened(unwrapUnverified(unsigned), PAYLOAD);
});

test('sealEnvelope refuses a hash that does not fit its algorithm and passes on a signer failure', async () => {
  const signer = memorySigner(DEVICE);
  await assert.rejects(sealEnvelope(PAYLOAD, signer, { certHash: new Uint8Array(20), algo: HashAlgorithm.SHA256_32BYTES }), RangeError);
  await assert.rejects(sealEnvelope(PAYLOAD, signer, { certHash: new Uint8Array(16), algo: HashAlgorithm.INVALID }), RangeError);
  const refusing: P256Signer = { publicKey: DEVICE.publicKey, signDigest: () => Promise.reject(new Error('TPM authorization failed')) };
  await assert.rejects(sealEnvelope(PAYLOAD, refusing, FROM_DEVICE), /TPM authorization failed/);
});

test('opening never throws, and no single-byte change yields a different payload', async () => {
  const bytes = await sealEnvelope(PAYLOAD, memorySigner(DEVICE), FROM_DEVICE);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (garbage) => {
      openEnvelope(garbage, CONTROLLER_SIDE);
      unwrapUnverified(garbage);
    }),
  );
  fc.assert(
    fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
      const mutated = Uint8Array.from(bytes);
      mutated[at] = (mutated[at] ?? 0) ^ xor;
      const result = openEnvelope(mutated, CONTROLLER_SIDE);
      if (result.ok) assert.deepEqual(result.payload, PAYLOAD);
    }),
  );
});

test('cert hashes: device = SHA-256(DER), controller = SHA-256(exact PEM bytes), certId16 = its first 16', () => {
  // The DER, independently: the base64 body of the PEM.
  const der = Buffer.from(DEVICE_PEM.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  assert.deepEqual(deviceCertHash(DEVICE_PEM), sha256(der));
  assert.deepEqual(deviceCertHash(ascii(DEVICE_PEM)), sha256(new X509Certificate(DEVICE_PEM).raw));
  assert.deepEqual(controllerCertHash(CONTROLLER_PEM), sha256(CONTROLLER_PEM));
  assert.notDeepEqual(controllerCertHash(CONTROLLER_PEM), controllerCertHash(CONTROLLER_PEM.subarray(0, -1)), 'the trailing newline counts');
  assert.deepEqual(certId16(CONTROLLER_PEM), sha256(CONTROLLER_PEM).subarray(0, 16));
  assert.throws(() => deviceCertHash('not a certificate'));
});

test('matchesCertHash: the length must be exactly what the algorithm says', () => {
  const full = controllerCertHash(CONTROLLER_PEM);
  assert.ok(matchesCertHash(full, HashAlgorithm.SHA256_32BYTES, full));
  assert.ok(matchesCertHash(full.subarray(0, 16), HashAlgorithm.SHA256_16BYTES, full));
  assert.ok(!matchesCertHash(full.subarray(0, 16), HashAlgorithm.SHA256_32BYTES, full));
  assert.ok(!matchesCertHash(full, HashAlgorithm.SHA256_16BYTES, full));
  assert.ok(!matchesCertHash(full, HashAlgorithm.INVALID, full));
  assert.ok(!matchesCertHash(full.subarray(0, 16), HashAlgorithm.SHA256_16BYTES, controllerCertHash(RSA_PEM)));
});

test('pem-base64: round trip, and anything but well-formed base64 is refused', () => {
  assert.deepEqual(pemFromBase64(base64Pem(CONTROLLER_PEM)), CONTROLLER_PEM);
  for (const bad of ['LS0t LS0t', 'LS0tL', 'LS0tLQ=', 'LS0*', 'LS0tLQ==LS0t']) {
    assert.equal(pemFromBase64(ascii(bad)), undefined, bad);
  }
});
