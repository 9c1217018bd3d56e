// The vault against real software TPMs (swtpm): EVE's "TPM Carte Blanche" refusal, unsealing
// across power cycles with replayed measurements, the lock after a simulated upgrade, recovery
// from the escrow (the same key, re-sealed to the new PCRs), and escrow blobs that must not open:
// from another TPM, altered, or of the wrong kind.
import assert from 'node:assert/strict';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { createHash, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  AttestVolumeKeyDataSchema,
  AttestVolumeKeySchema,
  AttestVolumeKeyType,
  AttestVolumeKeyVersion,
  type AttestVolumeKey,
} from '../src/control/proto/index.js';
import { DEVICE_KEY_HANDLE, ECDH_KEY_HANDLE, eccPointOf, Tpm } from '../src/control/tpm/index.js';
import { trustBinding } from '../src/control/trust.js';
import {
  checkMeasuredBoot,
  EscrowDigestError,
  EscrowError,
  EscrowKeyTypeError,
  EscrowMalformedError,
  EscrowNotThisTpmError,
  escrowVaultKey,
  NoMeasuredBootError,
  recoverEscrowedKey,
  SEALED_KEY_FILE,
  Vault,
  VAULT_SEAL_PCRS,
  VaultFileError,
  VaultLockedError,
} from '../src/control/vault/index.js';
import { startSwtpm, swtpmMissing, type SwtpmHandle } from '../src/node/lab/swtpm.js';

// swtpm state and the TPM runner's scratch directories go to a private temp dir, removed at the end.
const privateTmp = mkdtempSync(join(tmpdir(), 'lispnode-vault-test-'));
process.env.TMPDIR = privateTmp;
after(() => rmSync(privateTmp, { recursive: true, force: true }));

const sha256 = (data: Uint8Array | string): Buffer => createHash('sha256').update(data).digest();

// What firmware and boot loader would measure: fixed digests per PCR, PCR 4 = the boot loader,
// whose version changes on an upgrade.
const MEASUREMENTS: ReadonlyMap<number, string> = new Map([
  [0, 'firmware code v1.0'],
  [1, 'firmware configuration'],
  [2, 'option ROM code'],
  [3, 'option ROM configuration'],
  [4, 'boot loader v1'],
  [7, 'secure boot policy'],
  [14, 'config partition'],
]);

/** Emulates a measured boot: extends each PCR with its measurement, some replaced by `changes`. */
async function measuredBoot(tpm: Tpm, changes: ReadonlyMap<number, string> = new Map()): Promise<void> {
  for (const [pcr, what] of MEASUREMENTS) await tpm.pcrExtend(pcr, sha256(changes.get(pcr) ?? what));
}
const UPGRADE: ReadonlyMap<number, string> = new Map([[4, 'boot loader v2']]);

/** Every regular file under `dir`, with its bytes. */
function filesUnder(dir: string): Array<[string, Buffer]> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((entry) => join(dir, entry))
    .filter((file) => statSync(file).isFile())
    .map((file) => [file, readFileSync(file)]);
}

/** The key's raw bytes, hex and base64 must appear in no file under `dir`. */
function assertNotOnDisk(dir: string, key: Uint8Array): void {
  const forms = [Buffer.from(key), Buffer.from(Buffer.from(key).toString('hex')), Buffer.from(Buffer.from(key).toString('base64').slice(0, 40))];
  for (const [file, bytes] of filesUnder(dir)) for (const form of forms) assert.equal(bytes.indexOf(form), -1, `${file} contains the vault key`);
}

interface Node {
  readonly swtpm: SwtpmHandle;
  readonly tpm: Tpm;
  readonly devicePublic: KeyObject;
  readonly binding: Uint8Array;
}

/** A swtpm with EVE's device key (authorization = a trust binding) and ECDH key. */
async function startNode(server: string): Promise<Node> {
  const swtpm = await startSwtpm();
  const tpm = await Tpm.open(swtpm.tcti);
  const binding = trustBinding(Buffer.from(server), Buffer.from('-----BEGIN CERTIFICATE-----\nroot\n'));
  const devicePublic = await tpm.createPersistentEccKey(DEVICE_KEY_HANDLE, 'device', binding);
  await tpm.createPersistentEccKey(ECDH_KEY_HANDLE, 'ecdh');
  return { swtpm, tpm, devicePublic, binding };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

describe('vault against swtpm', { skip: swtpmMissing() }, () => {
  let node: Node;
  let other: Node | undefined;
  let stateDir: string;
  let vault: Vault;
  let vaultKey: Uint8Array;
  let escrowed: AttestVolumeKey;

  before(async () => {
    node = await startNode('controller.example:443');
    stateDir = join(privateTmp, 'state');
    vault = new Vault(node.tpm, stateDir, node.devicePublic);
  });

  after(async () => {
    await node.swtpm.stop();
    await other?.swtpm.stop();
  });

  test('sealing is refused while PCR 0 or PCR 4 is all zeros (no measured boot), allowed once firmware measured them', async () => {
    const fresh = await rejection(vault.open());
    assert.ok(fresh instanceof NoMeasuredBootError, String(fresh));
    assert.deepEqual(fresh.zeroPcrs, [0, 4]);
    assert.match(fresh.message, /PCR 0 and PCR 4 .*all zeros.*measured boot/);
    assert.throws(() => statSync(join(stateDir, 'vault', SEALED_KEY_FILE)), /ENOENT/);

    await node.tpm.pcrExtend(0, sha256('firmware code v1.0'));
    const only0 = await rejection(checkMeasuredBoot(node.tpm));
    assert.ok(only0 instanceof NoMeasuredBootError);
    assert.deepEqual(only0.zeroPcrs, [4]);

    await node.swtpm.reboot();
    await node.tpm.pcrExtend(4, sha256('boot loader v1'));
    const only4 = await rejection(vault.open());
    assert.ok(only4 instanceof NoMeasuredBootError);
    assert.deepEqual(only4.zeroPcrs, [0]);

    await node.swtpm.reboot();
    await measuredBoot(node.tpm);
    const opened = await vault.open();
    assert.equal(opened.encrypted, true);
    assert.equal(opened.created, true);
    assert.equal(opened.key.length, 32);
    vaultKey = opened.key;

    const file = join(stateDir, 'vault', SEALED_KEY_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(stateDir, 'vault')).mode & 0o777, 0o700);
    const record = JSON.parse(readFileSync(file, 'utf8')) as { sealed: { pcrs: number[] }; sealingPcrs: Record<string, string> };
    assert.deepEqual(record.sealed.pcrs, VAULT_SEAL_PCRS);
    assert.deepEqual(Object.keys(record.sealingPcrs).map(Number), VAULT_SEAL_PCRS);
    assert.deepEqual(readdirSync(join(stateDir, 'vault')), [SEALED_KEY_FILE]); // no temporary left behind
    assertNotOnDisk(privateTmp, vaultKey);
  });

  test('a normal boot unseals the same key after a power cycle with the same measurements', async () => {
    await node.swtpm.reboot();
    await measuredBoot(node.tpm);
    const opened = await vault.open();
    assert.equal(opened.created, false);
    assert.deepEqual(opened.key, vaultKey);
  });

  test('before the measurements are replayed the vault is locked, and the error says which PCRs differ', async () => {
    await node.swtpm.reboot();
    const locked = await rejection(vault.open());
    assert.ok(locked instanceof VaultLockedError, String(locked));
    assert.deepEqual(locked.changed, [...MEASUREMENTS.keys()]);
    assert.ok([...locked.pcrs.values()].every((value) => value.every((byte) => byte === 0)));
    await measuredBoot(node.tpm);
    assert.deepEqual((await vault.open()).key, vaultKey);
  });

  test('escrow: ECDH key × device point equals device key × ECDH point, and the blob is EVE\'s AttestVolumeKey', async () => {
    const ecdhPublic = await node.tpm.publicKey(ECDH_KEY_HANDLE);
    const viaEcdhKey = await node.tpm.ecdhZGen(ECDH_KEY_HANDLE, eccPointOf(node.devicePublic));
    const viaDeviceKey = await node.tpm.ecdhZGen(DEVICE_KEY_HANDLE, eccPointOf(ecdhPublic), node.binding);
    assert.deepEqual(viaEcdhKey, viaDeviceKey);

    escrowed = await vault.escrow(vaultKey);
    assert.equal(escrowed.keyType, AttestVolumeKeyType.VSK);
    // It survives the wire: marshalled and parsed again as the controller stores and returns it.
    escrowed = fromBinary(AttestVolumeKeySchema, toBinary(AttestVolumeKeySchema, escrowed));
    const data = fromBinary(AttestVolumeKeyDataSchema, escrowed.key);
    assert.equal(data.version, AttestVolumeKeyVersion.V1);
    assert.deepEqual(Buffer.from(data.digestSha256), sha256(vaultKey));
    assert.equal(data.encryptedKey.length, 12 + 32 + 16);
    assert.equal(Buffer.from(escrowed.key).indexOf(Buffer.from(vaultKey)), -1);

    // The wrap key is SHA-256(Zx ‖ Zy), whichever side computed Z.
    const again = await escrowVaultKey(node.tpm, vaultKey, node.devicePublic);
    assert.notDeepEqual(again.key, escrowed.key, 'a fresh IV per escrow');
    assert.deepEqual(await recoverEscrowedKey(node.tpm, again, node.devicePublic), vaultKey);
  });

  test('after an upgrade (PCR 4 changed) open() throws VaultLockedError with the current PCR values', async () => {
    await node.swtpm.reboot();
    await measuredBoot(node.tpm, UPGRADE);
    const locked = await rejection(vault.open());
    assert.ok(locked instanceof VaultLockedError, String(locked));
    assert.deepEqual(locked.changed, [4]);
    assert.deepEqual([...locked.pcrs.keys()], VAULT_SEAL_PCRS);
    assert.deepEqual(locked.pcrs.get(4), (await node.tpm.pcrRead([4])).get(4));
    assert.match(locked.message, /PCR 4 changed.*attest/);
  });

  test('recover() restores the same key from the escrow and re-seals it: the next boot unseals it without escrow', async () => {
    const before = readFileSync(join(stateDir, 'vault', SEALED_KEY_FILE), 'utf8');
    const recovered = await vault.recover(escrowed);
    assert.deepEqual(recovered, vaultKey);
    assert.notEqual(readFileSync(join(stateDir, 'vault', SEALED_KEY_FILE), 'utf8'), before, 'a new sealed key file');

    await node.swtpm.reboot();
    await measuredBoot(node.tpm, UPGRADE);
    const opened = await vault.open();
    assert.equal(opened.created, false);
    assert.deepEqual(opened.key, vaultKey);

    // Re-sealed to the new PCRs: the old boot loader's measurements no longer open it.
    await node.swtpm.reboot();
    await measuredBoot(node.tpm);
    const downgraded = await rejection(vault.open());
    assert.ok(downgraded instanceof VaultLockedError);
    assert.deepEqual(downgraded.changed, [4]);
    await node.swtpm.reboot();
    await measuredBoot(node.tpm, UPGRADE);
    assertNotOnDisk(privateTmp, vaultKey);
  });

  test('an escrow blob from another TPM is refused in both directions', async () => {
    other = await startNode('other.example:443');
    const foreign = await escrowVaultKey(other.tpm, vaultKey, other.devicePublic);
    const sealedBefore = readFileSync(join(stateDir, 'vault', SEALED_KEY_FILE));
    const notOurs = await rejection(vault.recover(foreign));
    assert.ok(notOurs instanceof EscrowNotThisTpmError, String(notOurs));
    assert.match(notOurs.message, /another TPM/);
    assert.deepEqual(readFileSync(join(stateDir, 'vault', SEALED_KEY_FILE)), sealedBefore, 'a failed recovery leaves the sealed key alone');
    // Given our device key's point, the other TPM still computes a different Z.
    await assert.rejects(recoverEscrowedKey(other.tpm, escrowed, node.devicePublic), EscrowNotThisTpmError);
    await assert.rejects(recoverEscrowedKey(other.tpm, escrowed, other.devicePublic), EscrowNotThisTpmError);
    // And our own escrow, recovered with the wrong device key, fails too.
    await assert.rejects(recoverEscrowedKey(node.tpm, escrowed, other.devicePublic), EscrowNotThisTpmError);
  });

  test('altered escrow blobs fail with the error that names the problem', async () => {
    const data = fromBinary(AttestVolumeKeyDataSchema, escrowed.key);
    const withData = (change: Partial<{ encryptedKey: Uint8Array; digestSha256: Uint8Array; version: AttestVolumeKeyVersion }>): AttestVolumeKey =>
      create(AttestVolumeKeySchema, {
        keyType: AttestVolumeKeyType.VSK,
        key: toBinary(AttestVolumeKeyDataSchema, create(AttestVolumeKeyDataSchema, { ...data, ...change })),
      });
    const flip = (bytes: Uint8Array, at: number): Uint8Array => {
      const out = Uint8Array.from(bytes);
      out[at] = (out[at] ?? 0) ^ 0x01;
      return out;
    };

    for (const at of [0, 12, 43, 44, 59]) {
      await assert.rejects(vault.recover(withData({ encryptedKey: flip(data.encryptedKey, at) })), EscrowNotThisTpmError, `IV/ciphertext/tag byte ${at}`);
    }
    await assert.rejects(vault.recover(withData({ digestSha256: flip(data.digestSha256, 7) })), EscrowDigestError);
    await assert.rejects(vault.recover(withData({ version: AttestVolumeKeyVersion.LEGACY })), EscrowMalformedError);
    await assert.rejects(vault.recover(withData({ encryptedKey: data.encryptedKey.subarray(0, 59) })), EscrowMalformedError);
    await assert.rejects(vault.recover(create(AttestVolumeKeySchema, { keyType: AttestVolumeKeyType.INVALID, key: escrowed.key })), EscrowKeyTypeError);
    await assert.rejects(vault.recover(create(AttestVolumeKeySchema, { keyType: AttestVolumeKeyType.VSK, key: new Uint8Array() })), /first contact/);
    await assert.rejects(vault.recover(create(AttestVolumeKeySchema, { keyType: AttestVolumeKeyType.VSK, key: Buffer.from([0xff, 0xff, 0xff]) })), EscrowMalformedError);

    // Any single flipped byte of the marshalled AttestVolumeKeyData is caught, never a wrong key.
    // The one exception is the wire-type bit of a field tag: protobuf-es reads a known bytes or
    // varint field whatever its tag's wire type, so those flips decode to the very same fields.
    const sameFields: number[] = [];
    for (let at = 0; at < escrowed.key.length; at++) {
      const altered = create(AttestVolumeKeySchema, { keyType: AttestVolumeKeyType.VSK, key: flip(escrowed.key, at) });
      const outcome = await recoverEscrowedKey(node.tpm, altered, node.devicePublic).catch((error: unknown) => error);
      if (outcome instanceof Uint8Array) {
        assert.deepEqual(outcome, vaultKey, `byte ${at}`);
        assert.deepEqual(fromBinary(AttestVolumeKeyDataSchema, altered.key), data, `byte ${at}`);
        sameFields.push(at);
      } else {
        assert.ok(outcome instanceof EscrowError, `byte ${at}: ${String(outcome)}`);
      }
    }
    assert.deepEqual(sameFields, [0, 2 + 60, 2 + 60 + 2 + 32], 'only the three field tags');
    assert.deepEqual(await recoverEscrowedKey(node.tpm, escrowed, node.devicePublic), vaultKey);
  });

  test('a damaged sealed-key file is a VaultFileError naming the file, not a new key', async () => {
    const damagedState = join(privateTmp, 'damaged-state');
    mkdirSync(join(damagedState, 'vault'), { recursive: true });
    const file = join(damagedState, 'vault', SEALED_KEY_FILE);
    writeFileSync(file, '{"v":1,"sealed":{"v":1}}');
    const damaged = await rejection(new Vault(node.tpm, damagedState, node.devicePublic).open());
    assert.ok(damaged instanceof VaultFileError, String(damaged));
    assert.equal(damaged.file, file);
    assert.match(damaged.message, /do not delete it/);
    assert.equal(readFileSync(file, 'utf8'), '{"v":1,"sealed":{"v":1}}');
  });
});
