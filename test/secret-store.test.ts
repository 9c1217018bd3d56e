// The node's secret store: round trips, no plaintext anywhere on disk (the store, the vault, the
// TPM's own state, the TPM runner's scratch files), files that cannot be swapped, truncated or
// read under another key, and the plain store that says it is not encrypted. The vault key comes
// from a real vault on swtpm.
import assert from 'node:assert/strict';
import { createDecipheriv, createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEVICE_KEY_HANDLE, ECDH_KEY_HANDLE, Tpm } from '../src/control/tpm/index.js';
import {
  deriveSecretStoreKey,
  EncryptedSecretStore,
  PlainSecretStore,
  plainVault,
  SecretFileError,
  SecretNameError,
  secretStoreFor,
  Vault,
  type SecretStore,
  type UnlockedVault,
} from '../src/control/vault/index.js';
import { startSwtpm, swtpmMissing, type SwtpmHandle } from '../src/node/lab/swtpm.js';

const privateTmp = mkdtempSync(join(tmpdir(), 'lispnode-secret-store-test-'));
process.env.TMPDIR = privateTmp;
after(() => rmSync(privateTmp, { recursive: true, force: true }));

const sha256 = (data: string): Buffer => createHash('sha256').update(data).digest();

// Distinctive secrets of the kinds the node keeps.
const PEM = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const DER = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ format: 'der', type: 'pkcs8' });
const PASSWORD = 'map-server password: Tr0ub4dor&3-correct-horse-battery-staple';
const TOKEN = randomBytes(48);
const SECRETS: ReadonlyMap<string, Uint8Array> = new Map([
  ['eco-1000.key.pem', Buffer.from(PEM)],
  ['eco-2000.key.der', DER],
  ['map-server.password', Buffer.from(PASSWORD)],
  ['controller.token', TOKEN],
]);

function filesUnder(dir: string): Array<[string, Buffer]> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((entry) => join(dir, entry))
    .filter((file) => statSync(file).isFile())
    .map((file) => [file, readFileSync(file)]);
}

/** The secret as raw bytes, hex (both cases), base64 and base64url at each 3-byte alignment. */
function encodings(secret: Uint8Array): Array<[string, Buffer]> {
  const bytes = Buffer.from(secret);
  const out: Array<[string, Buffer]> = [
    ['raw', bytes],
    ['hex', Buffer.from(bytes.toString('hex'))],
    ['HEX', Buffer.from(bytes.toString('hex').toUpperCase())],
  ];
  for (let shift = 0; shift < 3; shift++) {
    const tail = bytes.subarray(shift);
    // Trim the ends, which depend on the surrounding bytes.
    out.push([`base64+${shift}`, Buffer.from(tail.toString('base64').slice(4, -4))]);
    out.push([`base64url+${shift}`, Buffer.from(tail.toString('base64url').slice(4, -4))]);
  }
  return out;
}

function assertNowhere(dir: string, what: string, secret: Uint8Array): void {
  const files = filesUnder(dir);
  assert.ok(files.length > 0);
  for (const [form, needle] of encodings(secret)) {
    for (const [file, bytes] of files) assert.equal(bytes.indexOf(needle), -1, `${file} contains ${what} (${form})`);
  }
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

describe('secret store', { skip: swtpmMissing() }, () => {
  let swtpm: SwtpmHandle;
  let vault: UnlockedVault;
  let dir: string;
  let store: SecretStore;

  before(async () => {
    swtpm = await startSwtpm();
    const tpm = await Tpm.open(swtpm.tcti);
    const devicePublic = await tpm.createPersistentEccKey(DEVICE_KEY_HANDLE, 'device', sha256('trust binding'));
    await tpm.createPersistentEccKey(ECDH_KEY_HANDLE, 'ecdh');
    for (const pcr of [0, 1, 2, 3, 4, 7, 14]) await tpm.pcrExtend(pcr, sha256(`measurement ${pcr}`));
    vault = await new Vault(tpm, join(privateTmp, 'state'), devicePublic).open();
    dir = join(privateTmp, 'state', 'secrets');
    store = secretStoreFor(dir, vault);
  });

  after(async () => {
    await swtpm.stop();
  });

  test('the vault picks the encrypted store; secrets round-trip; files 0600 in a 0700 directory', async () => {
    assert.ok(store instanceof EncryptedSecretStore);
    assert.equal(store.encrypted, true);
    assert.deepEqual(await store.list(), []);
    assert.equal(await store.get('eco-1000.key.pem'), undefined);

    for (const [name, secret] of SECRETS) await store.put(name, secret);
    await store.put('empty', new Uint8Array());
    const everyByte = Uint8Array.from({ length: 256 }, (_, i) => i);
    await store.put('every-byte', everyByte);
    for (const [name, secret] of SECRETS) assert.deepEqual(Buffer.from((await store.get(name)) ?? []), Buffer.from(secret), name);
    assert.deepEqual(await store.get('empty'), new Uint8Array());
    assert.deepEqual(await store.get('every-byte'), everyByte);
    assert.deepEqual(await store.list(), [...SECRETS.keys(), 'empty', 'every-byte'].sort());

    await store.put('controller.token', Buffer.from('replaced'));
    assert.equal(Buffer.from((await store.get('controller.token')) ?? []).toString(), 'replaced');
    await store.put('controller.token', TOKEN);

    await store.delete('every-byte');
    await store.delete('every-byte'); // nothing to do
    assert.equal(await store.get('every-byte'), undefined);
    assert.ok(!(await store.list()).includes('every-byte'));

    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const entry of readdirSync(dir)) {
      assert.match(entry, /^[^.].*\.secret$/, 'no temporary file left behind');
      assert.equal(statSync(join(dir, entry)).mode & 0o777, 0o600, entry);
    }
    // Even from a second instance (a restarted node) with the same vault key.
    assert.deepEqual(Buffer.from((await new EncryptedSecretStore(dir, vault.key).get('map-server.password')) ?? []).toString(), PASSWORD);
  });

  test('no file anywhere holds a secret in clear, hex or base64 — nor the vault key or the store key', () => {
    for (const [name, secret] of SECRETS) {
      assertNowhere(dir, name, secret);
      assertNowhere(privateTmp, name, secret); // the state dir, the sealed key, swtpm's state, TPM scratch
    }
    assertNowhere(privateTmp, 'a PEM body line', Buffer.from(PEM.split('\n')[2] ?? 'x'));
    assertNowhere(privateTmp, 'the vault key', vault.key);
    assertNowhere(privateTmp, 'the store key', deriveSecretStoreKey(vault.key).export());

    // The check itself finds each encoding, wherever it sits in a file.
    const control = mkdtempSync(join(privateTmp, 'control-'));
    for (const [form, needle] of encodings(Buffer.from(PEM))) {
      writeFileSync(join(control, 'leak'), Buffer.concat([randomBytes(5), needle, randomBytes(5)]));
      assert.throws(() => assertNowhere(control, 'PEM', Buffer.from(PEM)), /contains PEM/, form);
    }
    rmSync(control, { recursive: true });
  });

  test('the store key is HKDF(vault key, "lispnode secret store v1"), not the vault key itself', () => {
    const file = readFileSync(join(dir, 'map-server.password.secret'));
    assert.equal(file[0], 0x01, 'format byte');
    const open = (key: Uint8Array): string => {
      const decipher = createDecipheriv('aes-256-gcm', key, file.subarray(1, 13));
      decipher.setAAD(Buffer.concat([Buffer.of(1), Buffer.from('map-server.password')]));
      decipher.setAuthTag(file.subarray(file.length - 16));
      return Buffer.concat([decipher.update(file.subarray(13, file.length - 16)), decipher.final()]).toString();
    };
    assert.equal(open(deriveSecretStoreKey(vault.key).export()), PASSWORD);
    assert.throws(() => open(vault.key), /unable to authenticate/);
  });

  test('a secret file copied over another, or renamed, fails authentication and the error names the file', async () => {
    copyFileSync(join(dir, 'map-server.password.secret'), join(dir, 'controller.token.secret'));
    const swapped = await rejection(store.get('controller.token'));
    assert.ok(swapped instanceof SecretFileError, String(swapped));
    assert.equal(swapped.problem, 'authentication');
    assert.equal(swapped.file, join(dir, 'controller.token.secret'));
    assert.ok(swapped.message.startsWith(join(dir, 'controller.token.secret')));
    assert.match(swapped.message, /put the secret again/);

    renameSync(join(dir, 'eco-2000.key.der.secret'), join(dir, 'eco-3000.key.der.secret'));
    const renamed = await rejection(store.get('eco-3000.key.der'));
    assert.ok(renamed instanceof SecretFileError && renamed.problem === 'authentication');
    await store.put('controller.token', TOKEN);
    await store.put('eco-2000.key.der', DER);
    await store.delete('eco-3000.key.der');
  });

  test('truncated or altered files are SecretFileErrors, never wrong bytes', async () => {
    const file = join(dir, 'eco-1000.key.pem.secret');
    const original = readFileSync(file);
    for (const length of [0, 1, 13, 28, 29, original.length - 1]) {
      writeFileSync(file, original);
      truncateSync(file, length);
      const error = await rejection(store.get('eco-1000.key.pem'));
      assert.ok(error instanceof SecretFileError, `length ${length}: ${String(error)}`);
      assert.equal(error.problem, length < 29 ? 'truncated' : 'authentication', `length ${length}`);
      assert.equal(error.file, file);
    }
    for (const at of [0, 1, 12, 13, original.length - 17, original.length - 1]) {
      const altered = Buffer.from(original);
      altered[at] = (altered[at] ?? 0) ^ 0x80;
      writeFileSync(file, altered);
      const error = await rejection(store.get('eco-1000.key.pem'));
      assert.ok(error instanceof SecretFileError, `byte ${at}: ${String(error)}`);
      assert.equal(error.problem, at === 0 ? 'format' : 'authentication', `byte ${at}`);
    }
    writeFileSync(file, original);
    assert.equal(Buffer.from((await store.get('eco-1000.key.pem')) ?? []).toString(), PEM);
  });

  test('another vault key cannot read the store', async () => {
    const wrong = new EncryptedSecretStore(dir, randomBytes(32));
    assert.deepEqual(await wrong.list(), await store.list(), 'names are not secret');
    const error = await rejection(wrong.get('map-server.password'));
    assert.ok(error instanceof SecretFileError && error.problem === 'authentication', String(error));
    assert.throws(() => new EncryptedSecretStore(dir, randomBytes(16)), RangeError);
  });

  test('names are single safe path components', async () => {
    for (const name of ['', '.', '..', '../escape', 'a/b', 'a\\b', '.hidden', '-flag', 'a\0b', 'x'.repeat(101), 'ünïcode', 'sp ace']) {
      await assert.rejects(store.put(name, Buffer.from('x')), SecretNameError, JSON.stringify(name));
      await assert.rejects(store.get(name), SecretNameError, JSON.stringify(name));
      await assert.rejects(store.delete(name), SecretNameError, JSON.stringify(name));
    }
    assert.deepEqual(readdirSync(join(privateTmp, 'state')).sort(), ['secrets', 'vault']);
    await store.put('x'.repeat(100), Buffer.from('longest name'));
    await store.delete('x'.repeat(100));
  });

  test('without a TPM the store is plain, says so, and the two kinds refuse each other\'s files', async () => {
    const noTpm = plainVault();
    assert.equal(noTpm.encrypted, false);
    assert.match(noTpm.reason, /no TPM/);
    const plainDir = join(privateTmp, 'plain-secrets');
    const plain = secretStoreFor(plainDir, noTpm);
    assert.ok(plain instanceof PlainSecretStore);
    assert.equal(plain.encrypted, false);
    assert.match(plain.describe(), /NOT ENCRYPTED/);

    await plain.put('map-server.password', Buffer.from(PASSWORD));
    assert.equal(Buffer.from((await plain.get('map-server.password')) ?? []).toString(), PASSWORD);
    assert.deepEqual(await plain.list(), ['map-server.password']);
    const file = join(plainDir, 'map-server.password.secret');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(plainDir).mode & 0o777, 0o700);
    assert.deepEqual(readFileSync(file), Buffer.concat([Buffer.of(0), Buffer.from(PASSWORD)]), 'documented: unencrypted');

    const plainRead = await rejection(new EncryptedSecretStore(plainDir, vault.key).get('map-server.password'));
    assert.ok(plainRead instanceof SecretFileError && plainRead.problem === 'format', String(plainRead));
    assert.match(plainRead.message, /unencrypted/);
    const encryptedRead = await rejection(new PlainSecretStore(dir).get('map-server.password'));
    assert.ok(encryptedRead instanceof SecretFileError && encryptedRead.problem === 'format', String(encryptedRead));
    assert.match(encryptedRead.message, /an encrypted secret/);
    await plain.delete('map-server.password');
    assert.deepEqual(await plain.list(), []);
  });
});
