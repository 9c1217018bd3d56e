// The device identity in a real software TPM (swtpm + tpm2-tools): the device key, the
// self-signed device certificate and the EdgeNode certificates, with the private key never
// outside the TPM; the same without a TPM, where the store says so. And the trust binding: once
// the controller-trust files change, the key itself refuses to sign.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, verify, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { DeviceIdentity, TrustChangedError } from '../src/control/identity.js';
import { KeyRefusedError, TpmKeyStore, type KeyStore } from '../src/control/key-store/index.js';
import { openNodeStore } from '../src/node/node-store.js';
import { ATTESTATION_KEY_HANDLE, DEVICE_KEY_HANDLE, ECDH_KEY_HANDLE, Tpm } from '../src/control/tpm/index.js';
import { readControllerTrust } from '../src/control/trust.js';
import type { NodeConfig } from '../src/node/config/node-config.js';
import { identityShow } from '../src/node/control-commands.js';
import { startSwtpm, swtpmMissing, type SwtpmHandle } from '../src/node/lab/swtpm.js';
import { newPki, writeTrustFiles } from './support/trust-files.js';

const exec = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'lispnode-identity-test-'));
// The TPM adapter's scratch folders land here too, so the test can search them for key material.
process.env.TMPDIR = root;
after(() => rmSync(root, { recursive: true, force: true }));

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

const der = (key: { export(o: { format: 'der'; type: 'spki' }): Buffer }): string => key.export({ format: 'der', type: 'spki' }).toString('hex');

function nodeConfig(stateDir: string, trust: { serverFile: string; rootCaFile: string }, tpm: NodeConfig['tpm']): NodeConfig {
  return { file: join(stateDir, 'node.yaml'), stateDir, controller: { ...trust, pollInterval: 60 }, onboarding: undefined, tpm, underlay: { address: '198.18.0.1' }, ops: { statusSocket: join(stateDir, 'status.sock'), metrics: undefined, log: { level: undefined, format: undefined } } };
}

async function checkCertificates(identity: DeviceIdentity, dir: string): Promise<void> {
  const device = new X509Certificate(identity.deviceCertPem);
  assert.equal(device.subject, 'O=The Linux Foundation\nCN=EVE');
  assert.ok(device.verify(device.publicKey), 'the device certificate is self-signed by the device key');
  for (const name of ['ecdh.cert.pem', 'attest.cert.pem']) {
    const cert = new X509Certificate(readFileSync(join(dir, name)));
    assert.ok(cert.verify(device.publicKey), `${name} is signed by the device key`);
    assert.equal(cert.issuer, device.subject);
  }
  // OpenSSL agrees, checking the self-signature too.
  const out = await exec('openssl', ['verify', '-check_ss_sig', '-CAfile', join(dir, 'device.cert.pem'), join(dir, 'device.cert.pem'), join(dir, 'ecdh.cert.pem'), join(dir, 'attest.cert.pem')]);
  assert.equal(out.stdout.split('\n').filter((l) => l.endsWith(': OK')).length, 3, out.stdout);
}

async function signs(identity: DeviceIdentity, trust: ReturnType<typeof readControllerTrust>): Promise<boolean> {
  const message = Buffer.from('a controller request body');
  const signature = await (await identity.deviceSigner(trust)).signDigest(createHash('sha256').update(message).digest());
  return verify('sha256', message, { key: new X509Certificate(identity.deviceCertPem).publicKey, dsaEncoding: 'ieee-p1363' }, signature);
}

/** The trust-binding contract, for either store. */
async function checkBinding(store: KeyStore, identity: DeviceIdentity, files: { serverFile: string; rootCaFile: string }): Promise<void> {
  const original = readFileSync(files.rootCaFile);
  writeFileSync(files.rootCaFile, (await newPki()).root.certPem);
  const changed = readControllerTrust(files.serverFile, files.rootCaFile);
  await assert.rejects(identity.deviceSigner(changed), (e: unknown) => e instanceof TrustChangedError && e.message.includes(files.rootCaFile));
  // Past the friendly check, the key itself refuses under the new binding.
  const bypass = await store.signer('device', changed.binding);
  await assert.rejects(bypass.signDigest(new Uint8Array(32)), KeyRefusedError);
  writeFileSync(files.rootCaFile, original);
  writeFileSync(files.serverFile, '127.0.0.1:9999\n');
  await assert.rejects(identity.deviceSigner(readControllerTrust(files.serverFile, files.rootCaFile)), (e: unknown) => e instanceof TrustChangedError && e.message.includes(files.serverFile));
  writeFileSync(files.serverFile, '127.0.0.1:8443\n');
  assert.ok(await signs(identity, readControllerTrust(files.serverFile, files.rootCaFile)), 'restoring the files restores signing');
}

const missing = swtpmMissing();
describe('device identity in the TPM (swtpm)', { skip: missing }, () => {
  let swtpm: SwtpmHandle;
  let tpm: Tpm;
  before(async () => {
    swtpm = await startSwtpm();
    tpm = await Tpm.open(swtpm.tcti);
  });
  after(() => swtpm?.stop());

  test('device key, device and EdgeNode certificates: the private keys never leave the TPM, signing works, keys match the certificates', async () => {
    const dir = mkdtempSync(join(root, 'tpm-'));
    const trustFiles = await writeTrustFiles(dir);
    const trust = readControllerTrust(trustFiles.serverFile, trustFiles.rootCaFile);
    const store = new TpmKeyStore(tpm);
    const identity = await DeviceIdentity.create(join(dir, 'identity'), store, trust, new Date());
    assert.equal(identity.keyStoreKind, 'tpm');

    const handles = await tpm.persistentHandles();
    for (const handle of [DEVICE_KEY_HANDLE, ECDH_KEY_HANDLE, ATTESTATION_KEY_HANDLE]) assert.ok(handles.includes(handle), `persistent handle 0x${handle.toString(16)}`);
    // No private key anywhere: not in the node's folder, not in swtpm's scratch or temp dirs we own.
    for (const file of files(root).filter((f) => f.startsWith(dir) || f.startsWith(join(root, 'lispnode-tpm')))) {
      assert.doesNotMatch(readFileSync(file, 'latin1'), /PRIVATE KEY/, `${file} holds no private key`);
    }
    assert.deepEqual(files(join(dir, 'identity')).map((f) => f.slice(dir.length + 10)).sort(), ['attest.cert.pem', 'device.cert.pem', 'ecdh.cert.pem', 'identity.json', 'soft_serial']);
    // The certificates carry the TPM's own public keys.
    assert.equal(der(new X509Certificate(identity.deviceCertPem).publicKey), der(await tpm.publicKey(DEVICE_KEY_HANDLE)));
    assert.equal(der(new X509Certificate(readFileSync(join(dir, 'identity', 'ecdh.cert.pem'))).publicKey), der(await tpm.publicKey(ECDH_KEY_HANDLE)));
    assert.equal(der(new X509Certificate(readFileSync(join(dir, 'identity', 'attest.cert.pem'))).publicKey), der(await tpm.publicKey(ATTESTATION_KEY_HANDLE)));
    await checkCertificates(identity, join(dir, 'identity'));
    assert.ok(await signs(identity, trust), 'the TPM signs for the device certificate');

    // The key survives a power cycle; loading the identity again signs the same way.
    await swtpm.reboot();
    const reloaded = DeviceIdentity.load(join(dir, 'identity'), new TpmKeyStore(tpm));
    assert.ok(await signs(reloaded, trust));
    await checkBinding(store, reloaded, trustFiles);

    // Clearing removes the TPM keys, so a new identity starts from nothing.
    await DeviceIdentity.clear(join(dir, 'identity'), store);
    assert.ok(!(await tpm.persistentHandles()).includes(DEVICE_KEY_HANDLE));
    assert.equal(DeviceIdentity.exists(join(dir, 'identity')), false);
  });

  test('a node config with a reachable TPM uses it and says so', async () => {
    const dir = mkdtempSync(join(root, 'cfg-'));
    const trustFiles = await writeTrustFiles(dir);
    const config = nodeConfig(dir, trustFiles, { mode: 'required', tcti: swtpm.tcti });
    const log: string[] = [];
    const store = await openNodeStore(config, { log: (_l, m) => log.push(m) });
    assert.equal(store.keys.kind, 'tpm');
    assert.equal(store.degraded, undefined);
    assert.equal(store.counter.kind, 'tpm-nv-counter');
    assert.deepEqual(log, []);
  });
});

describe('device identity without a TPM (file store)', () => {
  test('keys as files (the device key encrypted under the trust binding), the same certificates, and status says NO TPM', async () => {
    const dir = mkdtempSync(join(root, 'file-'));
    const trustFiles = await writeTrustFiles(dir);
    // auto mode with no TPM behind the TCTI falls back, loudly.
    const config = nodeConfig(dir, trustFiles, { mode: 'auto', tcti: 'swtpm:host=127.0.0.1,port=1' });
    const warnings: string[] = [];
    const store = await openNodeStore(config, { log: (level, message) => level === 'warn' && warnings.push(message) });
    assert.equal(store.keys.kind, 'file');
    assert.match(store.degraded ?? '', /no TPM at swtpm:host=127\.0\.0\.1,port=1/);
    assert.ok(warnings.some((w) => w.includes('NO TPM')), warnings.join('; '));
    const trust = readControllerTrust(trustFiles.serverFile, trustFiles.rootCaFile);
    const identity = await DeviceIdentity.create(join(dir, 'identity'), store.keys, trust, new Date());
    await checkCertificates(identity, join(dir, 'identity'));
    assert.ok(await signs(identity, trust));
    const deviceKey = readFileSync(join(dir, 'identity', 'keys', 'device.key.pem'), 'utf8');
    assert.match(deviceKey, /BEGIN ENCRYPTED PRIVATE KEY/, 'the device key file is encrypted');
    assert.equal(statSync(join(dir, 'identity', 'keys', 'device.key.pem')).mode & 0o777, 0o600);
    await checkBinding(store.keys, identity, trustFiles);

    const shown = await identityShow(config, false);
    assert.match(shown[0] ?? '', /NO TPM/, shown.join('\n'));
    const json = JSON.parse((await identityShow(config, true))[0] ?? '{}') as { keyStore: string; degraded: string; trust: string };
    assert.equal(json.keyStore, 'file');
    assert.match(json.degraded, /no TPM/);
    assert.equal(json.trust, 'intact');
  });

  test('an identity made in the TPM never falls back to files when the TPM is gone', async () => {
    const dir = mkdtempSync(join(root, 'gone-'));
    const trustFiles = await writeTrustFiles(dir);
    const config = nodeConfig(dir, trustFiles, { mode: 'auto', tcti: 'swtpm:host=127.0.0.1,port=1' });
    const identityDir = join(dir, 'identity');
    // A TPM identity record, as `identity init` on a TPM node writes it.
    mkdirSync(identityDir);
    writeFileSync(join(identityDir, 'identity.json'), JSON.stringify({ version: 1, keyStore: 'tpm', createdAt: new Date().toISOString(), trust: { serverSha256: '', rootCaSha256: '' } }));
    await assert.rejects(openNodeStore(config, { log: () => undefined }), /this identity lives in the TPM/);
  });
});

