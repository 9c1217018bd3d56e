// The reference controller and the node's controller client over real HTTPS on 127.0.0.1:
// onboarding (register → uuid → config, 304 on an unchanged hash, 403/409 as EVE), and every
// kind of bad envelope refused on both sides with its own error — a wrong signature, a wrong
// sender-cert hash, an unknown certificate, a rolled-back certificate.
import assert from 'node:assert/strict';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { create, toBinary } from '@bufbuild/protobuf';
import { deviceCertHash } from '../src/control/cert-hash.js';
import { ControllerClient, ControllerError, type CertsCheckpoint } from '../src/control/controller-client.js';
import { sealEnvelope } from '../src/control/envelope.js';
import { DeviceIdentity } from '../src/control/identity.js';
import { meshFromEdgeDevConfig } from '../src/control/mesh-config.js';
import { identityDir, openNodeStore } from '../src/node/node-store.js';
import { ConfigRequestSchema, HashAlgorithm } from '../src/control/proto/index.js';
import { readControllerTrust } from '../src/control/trust.js';
import { rotateSigningCert } from '../src/control/x509/controller-pki.js';
import { softwareSigner } from '../src/control/x509/software-signer.js';
import { ControllerApi } from '../src/controller/api.js';
import { CONTROLLER_FILES } from '../src/controller/controller-dir.js';
import { clearDevice } from '../src/controller/device-commands.js';
import { generateP256KeyPair, importP256PrivateKey } from '../src/crypto/p256.js';
import type { NodeConfig } from '../src/node/config/node-config.js';
import { onboardNow } from '../src/node/control-commands.js';
import { quiet, startController, type ControllerFixture } from './support/controller-fixture.js';
import { newPki } from './support/trust-files.js';

const fixtures: ControllerFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.stop();
});

async function controller(options: Parameters<typeof startController>[0] = {}): Promise<ControllerFixture> {
  const f = await startController(options);
  fixtures.push(f);
  return f;
}

function memoryCheckpoint(): CertsCheckpoint & { saved: Date | undefined } {
  const c = {
    saved: undefined as Date | undefined,
    load: () => (c.saved ? { signingNotBefore: c.saved } : undefined),
    save: (d: Date) => void (c.saved = d),
  };
  return c;
}

/** An onboarded node's pieces: its identity, a client, and the device's request signer. */
async function onboarded(f: ControllerFixture, name: string, serial: string) {
  f.addDevice(serial);
  const config = f.node(name, serial);
  await onboardNow(config, false);
  const store = await openNodeStore(config, quiet);
  const identity = DeviceIdentity.load(identityDir(config), store.keys);
  const trust = () => readControllerTrust(config.controller.serverFile, config.controller.rootCaFile);
  const device = { signer: await identity.deviceSigner(trust()), certPem: identity.deviceCertPem };
  return { config, identity, trust, device, uuid: identity.uuid ?? '' };
}

const post = (f: ControllerFixture, path: string, body: Uint8Array) => f.server.api.handle('POST', `/api/v2/edgedevice/${path}`, body);

describe('onboarding and config', () => {
  test('register → uuid → config; 304 on the same hash; the config carries the mesh instance', async () => {
    const f = await controller();
    const { uuid, device, trust } = await onboarded(f, 'n1', 'SN-1');
    assert.match(uuid, /^[0-9a-f-]{36}$/);
    assert.deepEqual(f.requests.slice(0, 3), ['GET /api/v2/edgedevice/certs', 'POST /api/v2/edgedevice/register', 'POST /api/v2/edgedevice/uuid']);
    const client = new ControllerClient(trust, memoryCheckpoint());
    const response = await client.config(device, uuid, '');
    assert.ok(response?.config);
    const mesh = meshFromEdgeDevConfig(response.config);
    assert.ok(mesh.ok);
    assert.equal(mesh.mesh.instances[0]?.instanceId, 1000);
    assert.deepEqual(mesh.mesh.instances[0]?.mapServers, [{ address: '198.18.0.10', credential: 'overlay-secret' }]);
    assert.equal(await client.config(device, uuid, response.configHash), undefined, '304 when unchanged');
    // Onboarding again is a no-op: the UUID is known.
    assert.deepEqual(await onboardNow(f.node('n1', 'SN-1'), false).then((l) => l[1]), `onboarded: device ${uuid} with 127.0.0.1:${f.server.port}`);
  });

  test('an unknown serial is refused with 403; a second device certificate for a serial with 409', async () => {
    const f = await controller();
    await assert.rejects(onboardNow(f.node('stranger', 'NOT-ADDED'), false), (e: unknown) => e instanceof ControllerError && e.status === 403 && /no pre-registered device/.test(e.message));
    await onboarded(f, 'first', 'SN-2');
    const twin = f.node('twin', 'SN-2'); // another node (another device key) claiming the same serial
    await assert.rejects(onboardNow(twin, false), (e: unknown) => e instanceof ControllerError && e.status === 409 && /already has another device certificate/.test(e.message));
  });
});

describe('the controller refuses bad device envelopes, each with its own reason', () => {
  test('wrong signature, wrong sender-cert hash, unknown certificate, rolled-back device certificate', async () => {
    const f = await controller();
    const { uuid, device, config } = await onboarded(f, 'n1', 'SN-3');
    const payload = toBinary(ConfigRequestSchema, create(ConfigRequestSchema, { configHash: 'not-the-current-hash' }));
    const sender = { certHash: deviceCertHash(device.certPem), algo: HashAlgorithm.SHA256_32BYTES };
    const good = await sealEnvelope(payload, device.signer, sender);
    assert.equal((await post(f, `id/${uuid}/config`, good)).status, 200);

    const flipped = Uint8Array.from(good);
    const at = Buffer.from(flipped).indexOf(Buffer.from(payload));
    flipped[at + payload.length - 1] = (flipped[at + payload.length - 1] ?? 0) ^ 0x01; // the hash text's last letter: still a ConfigRequest, no longer what was signed
    const badSignature = await post(f, `id/${uuid}/config`, flipped);
    assert.deepEqual([badSignature.status, badSignature.reason?.split(':')[0]], [401, 'bad-signature']);

    const shortHash = await post(f, `id/${uuid}/config`, await sealEnvelope(payload, device.signer, { certHash: deviceCertHash(device.certPem).subarray(0, 16), algo: HashAlgorithm.SHA256_16BYTES }));
    assert.deepEqual([shortHash.status, shortHash.reason?.split(':')[0]], [404, 'unknown-cert'], 'devices must send the full hash');
    const wrongSize = Uint8Array.from(await sealEnvelope(payload, device.signer, { certHash: new Uint8Array(32), algo: HashAlgorithm.SHA256_32BYTES }));
    const wrongHash = await post(f, `id/${uuid}/config`, wrongSize);
    assert.deepEqual([wrongHash.status, wrongHash.reason?.split(':')[0]], [404, 'unknown-cert'], 'a hash no device has');

    const stranger = generateP256KeyPair((n) => randomBytes(n));
    const strangerCert = new X509Certificate(readFileSync(f.onboardingCert)); // a real cert the controller never registered as a device
    const unknown = await post(f, `id/${uuid}/config`, await sealEnvelope(payload, softwareSigner(stranger), { certHash: createHash('sha256').update(strangerCert.raw).digest(), algo: HashAlgorithm.SHA256_32BYTES }));
    assert.deepEqual([unknown.status, unknown.reason?.split(':')[0]], [404, 'unknown-cert']);

    const otherDevice = await sealEnvelope(payload, device.signer, sender);
    const wrongUrl = await post(f, `id/00000000-0000-4000-8000-000000000000/config`, otherDevice);
    assert.equal(wrongUrl.status, 403, wrongUrl.reason);

    // Re-onboarding retires the old device certificate: it can never register again.
    clearDevice(f.dir, uuid);
    const oldIdentity = readFileSync(join(identityDir(config), 'device.cert.pem'), 'utf8');
    await onboardNow(config, true); // a fresh identity registers
    clearDevice(f.dir, uuid);
    const { ZRegisterMsgSchema } = await import('../src/control/proto/index.js');
    const { base64Pem } = await import('../src/control/pem-base64.js');
    const onboardingSigner = softwareSigner(importP256PrivateKey(readFileSync(f.onboardingKey, 'utf8')));
    const onboardingPem = readFileSync(f.onboardingCert, 'utf8');
    const replay = await sealEnvelope(toBinary(ZRegisterMsgSchema, create(ZRegisterMsgSchema, { pemCert: base64Pem(oldIdentity), serial: 'SN-3' })), onboardingSigner, {
      certHash: deviceCertHash(onboardingPem),
      algo: HashAlgorithm.SHA256_32BYTES,
      senderCert: base64Pem(onboardingPem),
    });
    const rollback = await post(f, 'register', replay);
    assert.equal(rollback.status, 409);
    assert.match(rollback.reason ?? '', /retired at re-onboarding/);
  });
});

describe('the node refuses bad controller responses, each with its own reason', () => {
  /** A controller whose responses are signed by `signer` while /certs still serves the real signing cert. */
  async function misbehaving(transform: (keys: ConstructorParameters<typeof ControllerApi>[1]) => ConstructorParameters<typeof ControllerApi>[1]) {
    const f = await controller();
    const { uuid, device, trust } = await onboarded(f, 'n1', `SN-${randomBytes(4).toString('hex')}`);
    const api = f.server.api;
    const original = api.handle.bind(api);
    const swapped = transform((api as unknown as { keys: ConstructorParameters<typeof ControllerApi>[1] }).keys);
    const evil = new ControllerApi(f.server.store, swapped, quiet);
    api.handle = (m, p, b) => (p.endsWith('/config') || p.endsWith('/certs') ? evil.handle(m, p, b) : original(m, p, b));
    return { f, uuid, device, trust };
  }

  test('a response not signed by the signing certificate: bad-signature', async () => {
    const { uuid, device, trust } = await misbehaving((keys) => ({ ...keys, signer: softwareSigner(generateP256KeyPair((n) => randomBytes(n))) }));
    await assert.rejects(new ControllerClient(trust, memoryCheckpoint()).config(device, uuid, ''), (e: unknown) => e instanceof ControllerError && e.reason === 'envelope' && /bad-signature/.test(e.message));
  });

  test('a response whose sender-cert hash names no known certificate: unknown-cert (after re-fetching /certs once)', async () => {
    const f = await controller();
    const { uuid, device, trust } = await onboarded(f, 'n1', 'SN-5');
    const api = f.server.api;
    const original = api.handle.bind(api);
    api.handle = async (m, p, b) => {
      const r = await original(m, p, b);
      if (!p.endsWith('/config') || !r.body) return r;
      const { AuthContainerSchema } = await import('../src/control/proto/index.js');
      const { fromBinary } = await import('@bufbuild/protobuf');
      const container = fromBinary(AuthContainerSchema, r.body);
      container.senderCertHash = new Uint8Array(32).fill(7);
      return { ...r, body: toBinary(AuthContainerSchema, container) };
    };
    const before = f.requests.filter((x) => x.endsWith('/certs')).length;
    await assert.rejects(new ControllerClient(trust, memoryCheckpoint()).config(device, uuid, ''), (e: unknown) => e instanceof ControllerError && e.reason === 'envelope' && /unknown-cert/.test(e.message));
    // A fresh client fetches /certs once to know the signing cert, then once more on the miss (EVE).
    assert.equal(f.requests.filter((x) => x.endsWith('/certs')).length, before + 2, 'the client re-fetched /certs once after the miss');
  });

  test('a signing certificate from another CA: the /certs set is untrusted', async () => {
    const other = await newPki();
    const { uuid, device, trust } = await misbehaving((keys) => ({ ...keys, signingCertPem: other.signing.certPem, signer: softwareSigner(importP256PrivateKey(other.signing.keyPem)) }));
    await assert.rejects(new ControllerClient(trust, memoryCheckpoint()).config(device, uuid, ''), (e: unknown) => e instanceof ControllerError && e.reason === 'certs' && /untrusted-chain/.test(e.message));
  });

  test('a signing certificate older than the one already accepted: rollback', async () => {
    const f = await controller();
    const { uuid, device, trust } = await onboarded(f, 'n1', 'SN-6');
    const root = { certPem: readFileSync(join(f.dir, CONTROLLER_FILES.root), 'utf8'), keyPem: readFileSync(join(f.dir, CONTROLLER_FILES.rootKey), 'utf8') };
    const rotatedNewer = await rotateSigningCert(root, { now: new Date(Date.now() + 3600_000), random: (n) => randomBytes(n) });
    const older = await rotateSigningCert(root, { now: new Date(Date.now() - 86400_000 * 3), random: (n) => randomBytes(n) });
    const checkpoint = memoryCheckpoint();
    const api = f.server.api;
    const keys = (api as unknown as { keys: ConstructorParameters<typeof ControllerApi>[1] }).keys;
    const serveWith = (cert: { certPem: string; keyPem: string }) => {
      const evil = new ControllerApi(f.server.store, { ...keys, signingCertPem: cert.certPem, signer: softwareSigner(importP256PrivateKey(cert.keyPem)) }, quiet);
      api.handle = (m, p, b) => evil.handle(m, p, b);
    };
    serveWith(rotatedNewer);
    assert.ok(await new ControllerClient(trust, checkpoint).config(device, uuid, ''), 'a newer signing certificate is accepted (rotation)');
    serveWith(older);
    await assert.rejects(new ControllerClient(trust, checkpoint).config(device, uuid, ''), (e: unknown) => e instanceof ControllerError && e.reason === 'certs' && /rollback/.test(e.message));
  });
});

export type { NodeConfig };

describe('device attestation settings', () => {
  test('set-attestation switches a device to TPM attestation with an explicit PCR policy, and back', async () => {
    const f = await controller();
    const uuid = f.addDevice('SN-POLICY');
    const { setAttestation, listDevices } = await import('../src/controller/device-commands.js');
    const { writeFileSync } = await import('node:fs');
    const policy = join(f.dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ 0: 'aa'.repeat(32), 14: 'bb'.repeat(32) }));
    assert.deepEqual(setAttestation(f.dir, 'SN-POLICY', { pcrPolicy: policy }), [`device ${uuid}: attestation tpm (PCR policy 0,14)`]);
    assert.match(listDevices(f.dir).join('\n'), /attestation tpm \(PCR policy 0,14\)/);
    assert.deepEqual(setAttestation(f.dir, uuid, { attestation: 'none' }), [`device ${uuid}: attestation none`]);
    assert.throws(() => setAttestation(f.dir, uuid, { attestation: 'none', pcrPolicy: policy }), /--pcr-policy needs --attestation tpm/);
  });
});
