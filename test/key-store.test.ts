// Both key stores under one contract — the device key is created with an authorization, signs
// digests that node:crypto verifies, and refuses (KeyRefusedError) under any other — plus what
// is particular to each: the TPM store leaves no key file anywhere and serves the TPM's own
// public key; the file store writes 0600 files atomically and encrypts the device key.
import assert from 'node:assert/strict';
import { createHash, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  FileKeyStore,
  KeyExistsError,
  KeyMissingError,
  KeyRefusedError,
  KeyStoreError,
  KeyUsageError,
  TpmKeyStore,
  type KeyStore,
} from '../src/control/key-store/index.js';
import { DEVICE_KEY_HANDLE, Tpm, TpmAuthError } from '../src/control/tpm/index.js';
import { startSwtpm, swtpmMissing, type SwtpmHandle } from '../src/node/lab/swtpm.js';

// All temporary files of this process (swtpm state, TPM scratch dirs, file stores) go here, so
// the test can search it for key material.
const privateTmp = mkdtempSync(join(tmpdir(), 'lispnode-key-store-test-'));
// The file stores' directories live elsewhere, so that the search finds only what the TPM path wrote.
const fileStores = mkdtempSync(join(tmpdir(), 'lispnode-file-store-test-'));
process.env.TMPDIR = privateTmp;
after(() => {
  rmSync(privateTmp, { recursive: true, force: true });
  rmSync(fileStores, { recursive: true, force: true });
});

const sha256 = (data: string): Buffer => createHash('sha256').update(data).digest();
const AUTH = Buffer.from(sha256('root-certificate.pem || server').subarray(0, 16));
const OTHER_AUTH = Buffer.from(sha256('a different root CA').subarray(0, 16));

function verifies(publicKey: KeyObject, message: string, signature: Uint8Array): boolean {
  return verify('sha256', Buffer.from(message), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
}

async function refusal(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('the key signed'),
    (error: unknown) => error,
  );
}

/** Every file under `dir` whose contents look like a PEM private key. */
function privateKeyFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (/PRIVATE KEY-----/.test(readFileSync(path, 'latin1'))) found.push(path);
  }
  return found;
}

/** What both stores must do alike. */
function keyStoreContract(name: string, open: () => Promise<KeyStore>): void {
  describe(`${name}: the KeyStore contract`, () => {
    let store: KeyStore;
    before(async () => {
      store = await open();
    });

    test('creates the device key with an authorization; its signer signs SHA-256 digests that verify', async () => {
      assert.equal(await store.has('device'), false);
      const publicKey = await store.create('device', AUTH);
      assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.equal(await store.has('device'), true);
      assert.ok((await store.publicKey('device')).equals(publicKey));
      const signer = await store.signer('device', AUTH);
      assert.ok(signer.publicKey.equals(publicKey));
      for (const message of ['envelope payload', 'tbsCertificate', '']) {
        const signature = await signer.signDigest(sha256(message));
        assert.equal(signature.length, 64);
        assert.ok(verifies(publicKey, message, signature), message);
        assert.ok(!verifies(publicKey, `${message}!`, signature));
      }
      await assert.rejects(signer.signDigest(Buffer.from('not a digest')), RangeError);
    });

    test('a wrong or missing authorization: KeyRefusedError, which says why', async () => {
      for (const auth of [OTHER_AUTH, undefined, new Uint8Array(0)]) {
        const signer = await store.signer('device', auth);
        const error = await refusal(signer.signDigest(sha256('x')));
        assert.ok(error instanceof KeyRefusedError, String(error));
        assert.ok(error instanceof KeyStoreError);
        assert.equal(error.role, 'device');
        assert.match(error.message, /device key refused to sign: its authorization no longer matches/);
        if (store.kind === 'tpm' && auth !== undefined && auth.length > 0) assert.ok(error.cause instanceof TpmAuthError);
      }
    });

    test('trailing zero bytes of the authorization do not matter (the TPM drops them); over 32 bytes is refused', async () => {
      const signer = await store.signer('device', Buffer.concat([AUTH, Buffer.of(0, 0)]));
      assert.ok(verifies(signer.publicKey, 'z', await signer.signDigest(sha256('z'))));
      await assert.rejects(store.signer('device', Buffer.alloc(33, 1)), RangeError);
    });

    test('one key per role: a second create is KeyExistsError and keeps the key', async () => {
      const before = await store.publicKey('device');
      await assert.rejects(store.create('device', OTHER_AUTH), KeyExistsError);
      assert.ok((await store.publicKey('device')).equals(before));
    });

    test('ECDH and attestation keys: distinct keys without authorization, not signers (KeyUsageError)', async () => {
      const ecdh = await store.create('ecdh');
      const attestation = await store.create('attestation');
      const device = await store.publicKey('device');
      assert.ok(!ecdh.equals(device) && !attestation.equals(device) && !ecdh.equals(attestation));
      await assert.rejects(store.signer('ecdh'), KeyUsageError);
      await assert.rejects(store.signer('attestation'), KeyUsageError);
    });

    test('a key created without authorization refuses one presented', async () => {
      await store.remove('device');
      const publicKey = await store.create('device');
      assert.ok(verifies(publicKey, 'm', await (await store.signer('device')).signDigest(sha256('m'))));
      assert.ok(await refusal((await store.signer('device', AUTH)).signDigest(sha256('m'))) instanceof KeyRefusedError);
      await store.remove('device');
      await store.create('device', AUTH);
    });

    test('remove(): the key is gone (KeyMissingError), removing again is harmless, other roles stay', async () => {
      await store.remove('ecdh');
      assert.equal(await store.has('ecdh'), false);
      await assert.rejects(store.publicKey('ecdh'), KeyMissingError);
      await store.remove('ecdh');
      assert.equal(await store.has('device'), true);
      assert.equal(await store.has('attestation'), true);
      await store.remove('device');
      await assert.rejects(store.signer('device', AUTH), KeyMissingError);
    });

    test('describe() names the store', () => {
      assert.match(store.describe(), store.kind === 'tpm' ? /^TPM at swtpm:.*0x817fffff/ : /^key files in /);
    });
  });
}

describe('TpmKeyStore', { skip: swtpmMissing() }, () => {
  let swtpm: SwtpmHandle | undefined;
  let store: TpmKeyStore | undefined;
  before(async () => {
    swtpm = await startSwtpm();
    store = new TpmKeyStore(await Tpm.open(swtpm.tcti));
  });
  after(async () => {
    await swtpm?.stop();
  });

  keyStoreContract('TpmKeyStore', () => Promise.resolve(store ?? assert.fail('no TPM')));

  test('its keys are the TPM\'s persistent objects, and no key file is written anywhere', async () => {
    const s = store ?? assert.fail();
    assert.equal(s.kind, 'tpm');
    const publicKey = await s.create('device', AUTH);
    assert.ok(publicKey.equals(await s.tpm.publicKey(DEVICE_KEY_HANDLE)));
    const signature = await (await s.signer('device', AUTH)).signDigest(sha256('in the TPM'));
    assert.ok(verifies(publicKey, 'in the TPM', signature));
    // Everything this process wrote to disk (swtpm's own state aside, which is the TPM) is here.
    assert.deepEqual(privateKeyFiles(privateTmp), []);
  });
});

describe('FileKeyStore', () => {
  const dir = join(fileStores, 'contract', 'config');
  keyStoreContract('FileKeyStore', () => Promise.resolve(new FileKeyStore(dir)));

  test('key files are 0600 in a 0700 directory; the device key is encrypted PKCS#8, the others plain', async () => {
    const dir = join(fileStores, 'files', 'config');
    const store = new FileKeyStore(dir);
    assert.equal(store.kind, 'file');
    const publicKey = await store.create('device', AUTH);
    await store.create('ecdh');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const role of ['device', 'ecdh']) assert.equal(statSync(join(dir, `${role}.key.pem`)).mode & 0o777, 0o600);

    const devicePem = readFileSync(join(dir, 'device.key.pem'), 'utf8');
    assert.match(devicePem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    assert.doesNotMatch(devicePem, /BEGIN PRIVATE KEY|BEGIN EC PRIVATE KEY/);
    assert.match(readFileSync(join(dir, 'ecdh.key.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(readFileSync(join(dir, 'device.pub.pem'), 'utf8'), /^-----BEGIN PUBLIC KEY-----\n/);
    // Written through a temporary file and rename: nothing else is left in the directory.
    assert.deepEqual(readdirSync(dir).sort(), ['device.key.pem', 'device.pub.pem', 'ecdh.key.pem', 'ecdh.pub.pem']);

    // A fresh store on the same directory (a restart) opens the same key with the same authorization.
    const restarted = new FileKeyStore(dir);
    assert.ok((await restarted.publicKey('device')).equals(publicKey));
    assert.ok(verifies(publicKey, 'again', await (await restarted.signer('device', AUTH)).signDigest(sha256('again'))));
    assert.ok(await refusal((await restarted.signer('device', OTHER_AUTH)).signDigest(sha256('again'))) instanceof KeyRefusedError);

    await store.remove('device');
    await store.remove('ecdh');
    assert.deepEqual(readdirSync(dir), []);
  });
});
