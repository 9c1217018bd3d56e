// The Tpm class against a real software TPM (swtpm): EVE's keys and their signatures checked
// with node:crypto, NV counters and indexes, PCRs, quotes a verifier accepts or rejects, sealing
// that breaks when a PCR changes, ECDH agreeing with a software computation, persistence across
// a power cycle, and every failure arriving as the right typed error.
import assert from 'node:assert/strict';
import { createHash, diffieHellman, generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { p256 } from '@noble/curves/nist.js';
import {
  ATTESTATION_KEY_HANDLE,
  decodeEccPoint,
  decodeSealedBlob,
  DEVICE_KEY_HANDLE,
  ECDH_KEY_HANDLE,
  eccPointOf,
  encodeEccPoint,
  encodeSealedBlob,
  parseQuoteAttest,
  Tpm,
  TpmAuthError,
  TpmError,
  TpmPolicyError,
  TpmRc,
  TpmUnavailableError,
  tpmRcBase,
  verifyQuote,
  type EccPoint,
} from '../src/control/tpm/index.js';
import { ecdsaSignatureToRaw } from '../src/control/tpm/marshal.js';
import { toolFailure } from '../src/control/tpm/errors.js';
import { TpmRunner } from '../src/control/tpm/runner.js';
import { startSwtpm, swtpmMissing, type SwtpmHandle } from '../src/node/lab/swtpm.js';

// Everything this file puts in the temp dir (swtpm state, the runner's scratch dirs) goes to a
// private one, so the test can check that nothing is left behind.
const privateTmp = mkdtempSync(join(tmpdir(), 'lispnode-tpm-test-'));
process.env.TMPDIR = privateTmp;

const sha256 = (data: Uint8Array | string): Buffer => createHash('sha256').update(data).digest();
const AUTH = Buffer.from('0123456'); // EVE: the first 7 bytes of /config/tpm_credential
const EVE_SEAL_PCRS = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14];

function verifiesRaw(publicKey: KeyObject, message: string, signature: Uint8Array): boolean {
  return verify('sha256', Buffer.from(message), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
}

function uncompressed(point: EccPoint): Buffer {
  return Buffer.concat([Buffer.of(4), point.x, point.y]);
}

after(() => rmSync(privateTmp, { recursive: true, force: true }));

describe('Tpm against swtpm', { skip: swtpmMissing() }, () => {
  let swtpm: SwtpmHandle | undefined;
  let tpm: Tpm;

  before(async () => {
    swtpm = await startSwtpm();
    tpm = await Tpm.open(swtpm.tcti);
  });

  after(async () => {
    await swtpm?.stop();
  });

  test('random bytes come from the TPM in any length, and differ between calls', async () => {
    assert.equal((await tpm.random(0)).length, 0);
    const a = await tpm.random(77); // more than one TPM2_GetRandom
    const b = await tpm.random(77);
    assert.equal(a.length, 77);
    assert.notDeepEqual(a, b);
    await assert.rejects(tpm.random(-1), RangeError);
  });

  test('device key: persistent at 0x817FFFFF, signs digests that node:crypto verifies, refuses a wrong auth', async () => {
    assert.equal(DEVICE_KEY_HANDLE, 0x817fffff);
    assert.ok(!(await tpm.persistentHandles()).includes(DEVICE_KEY_HANDLE));
    const publicKey = await tpm.createPersistentEccKey(DEVICE_KEY_HANDLE, 'device', AUTH);
    assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok((await tpm.persistentHandles()).includes(DEVICE_KEY_HANDLE));
    assert.ok((await tpm.publicKey(DEVICE_KEY_HANDLE)).equals(publicKey));

    // Several signatures: r or s with a leading zero byte must still come out 32 bytes each.
    for (let i = 0; i < 8; i++) {
      const message = `[1000]fd00::${i}`;
      const signature = await tpm.signDigest(DEVICE_KEY_HANDLE, sha256(message), AUTH);
      assert.equal(signature.length, 64);
      assert.ok(verifiesRaw(publicKey, message, signature), `signature ${i}`);
      assert.ok(!verifiesRaw(publicKey, `${message}x`, signature));
    }

    const wrong = await tpm.signDigest(DEVICE_KEY_HANDLE, sha256('x'), Buffer.from('6543210')).then(
      () => assert.fail('signed with a wrong auth'),
      (error: unknown) => error,
    );
    assert.ok(wrong instanceof TpmAuthError, String(wrong));
    assert.equal(wrong.tool, 'tpm2_sign');
    assert.equal(tpmRcBase(wrong.rc ?? 0), TpmRc.BAD_AUTH); // 0x9a2: session 1, no DA implications (noda)
    await assert.rejects(tpm.signDigest(DEVICE_KEY_HANDLE, sha256('x')), TpmAuthError); // no auth at all
    await assert.rejects(tpm.signDigest(DEVICE_KEY_HANDLE, sha256('x').subarray(0, 20), AUTH), RangeError);
    await assert.rejects(tpm.signDigest(DEVICE_KEY_HANDLE, sha256('x'), Buffer.alloc(33, 1)), RangeError);
  });

  test('the TPM ignores trailing zero bytes of an auth value', async () => {
    const signature = await tpm.signDigest(DEVICE_KEY_HANDLE, sha256('z'), Buffer.concat([AUTH, Buffer.of(0, 0)]));
    assert.ok(verifiesRaw(await tpm.publicKey(DEVICE_KEY_HANDLE), 'z', signature));
  });

  test('a taken handle is refused (TPM_RC_NV_DEFINED); an evicted key is gone; the same template gives the same key again', async () => {
    const before = await tpm.publicKey(DEVICE_KEY_HANDLE);
    const taken = await tpm.createPersistentEccKey(DEVICE_KEY_HANDLE, 'device', AUTH).catch((error: unknown) => error);
    assert.ok(taken instanceof TpmError && !(taken instanceof TpmAuthError), String(taken));
    assert.equal(tpmRcBase(taken.rc ?? 0), TpmRc.NV_DEFINED);

    await tpm.evict(DEVICE_KEY_HANDLE);
    assert.ok(!(await tpm.persistentHandles()).includes(DEVICE_KEY_HANDLE));
    const gone = await tpm.publicKey(DEVICE_KEY_HANDLE).catch((error: unknown) => error);
    assert.ok(gone instanceof TpmError);
    assert.equal(tpmRcBase(gone.rc ?? 0), TpmRc.HANDLE);
    await assert.rejects(tpm.signDigest(DEVICE_KEY_HANDLE, sha256('x'), AUTH), TpmError);

    // A primary key is a function of the owner seed and the template: re-created, it is the same.
    const again = await tpm.createPersistentEccKey(DEVICE_KEY_HANDLE, 'device', AUTH);
    assert.ok(again.equals(before));
  });

  test('ECDH key: a key of its own, Z agrees with a software ECDH, and EVE\'s self-ECDH is symmetric', async () => {
    assert.equal(ECDH_KEY_HANDLE, 0x81000005);
    const ecdhPublic = await tpm.createPersistentEccKey(ECDH_KEY_HANDLE, 'ecdh');
    const devicePublic = await tpm.publicKey(DEVICE_KEY_HANDLE);
    assert.ok(!ecdhPublic.equals(devicePublic), 'the ECDH key must not be the device key');

    // A controller-side ephemeral key: Z = e·Q_tpm computed in software equals d_tpm·E from the TPM.
    const ephemeral = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const scalar = Buffer.from(ephemeral.privateKey.export({ format: 'jwk' }).d ?? '', 'base64url');
    const z = await tpm.ecdhZGen(ECDH_KEY_HANDLE, eccPointOf(ephemeral.publicKey));
    assert.deepEqual(Buffer.from(uncompressed(z)), Buffer.from(p256.getSharedSecret(scalar, uncompressed(eccPointOf(ecdhPublic)), false)));
    assert.deepEqual(Buffer.from(z.x), diffieHellman({ privateKey: ephemeral.privateKey, publicKey: ecdhPublic }));

    // EVE's vault-key wrap: ECDH key × device point == device key × ECDH point.
    const za = await tpm.ecdhZGen(ECDH_KEY_HANDLE, eccPointOf(devicePublic));
    const zb = await tpm.ecdhZGen(DEVICE_KEY_HANDLE, eccPointOf(ecdhPublic), AUTH);
    assert.deepEqual(za, zb);
    await assert.rejects(tpm.ecdhZGen(DEVICE_KEY_HANDLE, eccPointOf(ecdhPublic), Buffer.from('nope')), TpmAuthError);

    // Key agreement only: the TPM refuses to sign with it, and not for want of authorization.
    const signing = await tpm.signDigest(ECDH_KEY_HANDLE, sha256('x')).catch((error: unknown) => error);
    assert.ok(signing instanceof TpmError && !(signing instanceof TpmAuthError), String(signing));
  });

  test('TPM2B_ECC_POINT encoding round-trips and pads short coordinates', () => {
    const point = { x: Buffer.from('01ff', 'hex'), y: Buffer.alloc(32, 7) };
    const encoded = encodeEccPoint(point);
    assert.equal(encoded.length, 70);
    assert.deepEqual(Buffer.from(encoded.subarray(0, 4)), Buffer.from('00440020', 'hex'));
    const decoded = decodeEccPoint(encoded);
    assert.deepEqual(Buffer.from(decoded.x), Buffer.concat([Buffer.alloc(30), Buffer.from('01ff', 'hex')]));
    assert.throws(() => decodeEccPoint(encoded.subarray(0, 60)), TypeError);
  });

  test('TPMT_SIGNATURE with a short r is left-padded into raw r||s', () => {
    const r = Buffer.alloc(31, 0x11);
    const s = Buffer.alloc(32, 0x22);
    const tss = Buffer.concat([Buffer.from('0018000b001f', 'hex'), r, Buffer.from('0020', 'hex'), s]);
    assert.deepEqual(Buffer.from(ecdsaSignatureToRaw(tss)), Buffer.concat([Buffer.of(0), r, s]));
    assert.throws(() => ecdsaSignatureToRaw(Buffer.from('0014000b', 'hex')), TypeError); // RSASSA
  });

  test('PCRs: read all 24 (in one tool call that loops 8 at a time), extend and event change them as the TPM defines', async () => {
    const all = await tpm.pcrRead(Array.from({ length: 24 }, (_, i) => i));
    assert.equal(all.size, 24);
    for (const value of all.values()) assert.equal(value.length, 32);
    assert.deepEqual(all.get(0), new Uint8Array(32)); // a fresh swtpm measured nothing

    const digest = sha256('kernel');
    const old16 = (await tpm.pcrRead([16])).get(16) ?? assert.fail();
    await tpm.pcrExtend(16, digest);
    assert.deepEqual(Buffer.from((await tpm.pcrRead([16])).get(16) ?? []), sha256(Buffer.concat([old16, digest])));

    const event = Buffer.from('file:/config/server exist:true content-hash:00');
    const old15 = (await tpm.pcrRead([15])).get(15) ?? assert.fail();
    await tpm.pcrEvent(15, event);
    assert.deepEqual(Buffer.from((await tpm.pcrRead([15])).get(15) ?? []), sha256(Buffer.concat([old15, sha256(event)])));

    await assert.rejects(tpm.pcrRead([24]), RangeError);
    await assert.rejects(tpm.pcrRead([]), RangeError);
    await assert.rejects(tpm.pcrExtend(16, Buffer.alloc(20)), RangeError);
  });

  test('quote: EVE\'s restricted AK signs PCRs 0-15 with the nonce; the signature verifies over SHA-256(attest); a wrong nonce or PCR does not', async () => {
    assert.equal(ATTESTATION_KEY_HANDLE, 0x81000004);
    const ak = await tpm.createPersistentEccKey(ATTESTATION_KEY_HANDLE, 'attestation');
    await tpm.pcrEvent(14, Buffer.from('file:/config/root-certificate.pem exist:true'));
    const nonce = randomBytes(32);
    const pcrs = Array.from({ length: 16 }, (_, i) => i);
    const quote = await tpm.quote(ATTESTATION_KEY_HANDLE, pcrs, nonce);

    assert.ok(verify('sha256', quote.attest, { key: ak, dsaEncoding: 'der' }, quote.signatureDer));
    const attest = parseQuoteAttest(quote.attest);
    assert.deepEqual(Buffer.from(attest.extraData), nonce);
    assert.deepEqual(attest.pcrs, pcrs);
    assert.deepEqual(quote.pcrs, await tpm.pcrRead(pcrs));
    assert.deepEqual(verifyQuote(ak, quote, nonce), { ok: true, attest });

    const otherNonce = verifyQuote(ak, quote, randomBytes(32));
    assert.equal(otherNonce.ok, false);
    const forged = new Map(quote.pcrs);
    forged.set(14, new Uint8Array(32));
    assert.equal(verifyQuote(ak, { ...quote, pcrs: forged }, nonce).ok, false);
    const tampered = Buffer.from(quote.attest);
    tampered.writeUInt8(tampered.readUInt8(tampered.length - 1) ^ 1, tampered.length - 1);
    assert.equal(verifyQuote(ak, { ...quote, attest: tampered }, nonce).ok, false);
    assert.equal(verifyQuote(await tpm.publicKey(DEVICE_KEY_HANDLE), quote, nonce).ok, false);

    // Restricted: it will not sign a digest it did not compute itself (TPM_RC_TICKET).
    const refused = await tpm.signDigest(ATTESTATION_KEY_HANDLE, sha256('forged TPMS_ATTEST')).catch((error: unknown) => error);
    assert.ok(refused instanceof TpmError && !(refused instanceof TpmAuthError), String(refused));
    await assert.rejects(tpm.quote(ATTESTATION_KEY_HANDLE, pcrs, new Uint8Array(0)), RangeError);
  });

  test('seal/unseal: EVE\'s 14-PCR set as a chain of PolicyPCR steps; a changed PCR 14 refuses (TpmPolicyError)', async () => {
    // EVE refuses to seal while PCR 0 or 4 is all-zero (no firmware measurements): emulate firmware.
    await tpm.pcrExtend(0, sha256('firmware'));
    await tpm.pcrExtend(4, sha256('bootloader'));
    const vaultKey = await tpm.random(32);
    const blob = await tpm.seal(vaultKey, EVE_SEAL_PCRS);
    assert.deepEqual(blob.pcrs, EVE_SEAL_PCRS);
    const stored = decodeSealedBlob(encodeSealedBlob(blob));
    assert.deepEqual(await tpm.unseal(stored), vaultKey);

    await tpm.pcrEvent(14, Buffer.from('file:/config/server exist:true content-hash:changed'));
    const refused = await tpm.unseal(stored).catch((error: unknown) => error);
    assert.ok(refused instanceof TpmPolicyError, String(refused));
    assert.equal(tpmRcBase(refused.rc ?? 0), TpmRc.POLICY_FAIL); // 0x99d

    // A PCR outside the policy does not matter; a small set needs a single step.
    const small = await tpm.seal(Buffer.from('secret'), [7, 16]);
    await tpm.pcrExtend(23, sha256('unrelated'));
    assert.deepEqual(Buffer.from(await tpm.unseal(small)), Buffer.from('secret'));

    await assert.rejects(tpm.seal(new Uint8Array(129), [7]), RangeError);
    await assert.rejects(tpm.seal(Buffer.from('x'), []), RangeError);
    assert.throws(() => decodeSealedBlob('{"v":1}'), TypeError);
  });

  test('NV counter: undefined until first incremented, then monotonic; a re-defined index does not roll back', async () => {
    const index = 0x01500100;
    assert.equal(await tpm.readCounter(index), undefined); // not defined
    await tpm.defineCounter(index);
    assert.equal(await tpm.readCounter(index), undefined); // defined, never incremented (TPM_RC_NV_UNINITIALIZED)
    const first = await tpm.incrementCounter(index);
    assert.equal(first, 1n); // a fresh swtpm: no counter ever existed before
    assert.equal(await tpm.incrementCounter(index), 2n);
    for (let i = 0; i < 5; i++) await tpm.incrementCounter(index);
    assert.equal(await tpm.readCounter(index), 7n);

    await tpm.nvUndefine(index);
    assert.equal(await tpm.readCounter(index), undefined);
    await tpm.defineCounter(index);
    assert.equal(await tpm.incrementCounter(index), 8n); // starts above the highest deleted counter
  });

  test('NV index: define, write (secret on stdin), read back, undefine', async () => {
    const index = 0x01800000; // EVE keeps the sealed vault key's TPM2B_PRIVATE here
    const data = randomBytes(160);
    await tpm.nvDefine(index, data.length);
    await tpm.nvWrite(index, data);
    assert.deepEqual(Buffer.from(await tpm.nvRead(index)), data);
    await tpm.nvUndefine(index);
    const gone = await tpm.nvRead(index).catch((error: unknown) => error);
    assert.ok(gone instanceof TpmError);
    assert.equal(tpmRcBase(gone.rc ?? 0), TpmRc.HANDLE);
    await assert.rejects(tpm.nvDefine(0x81000000, 8), RangeError);
  });

  test('power cycle: PCRs reset, persistent keys and counters survive; a sealed blob opens again once the same boot is measured', async () => {
    const handle = swtpm ?? assert.fail();
    const devicePublic = await tpm.publicKey(DEVICE_KEY_HANDLE);
    const counterBefore = await tpm.readCounter(0x01500100);
    assert.notEqual(counterBefore, undefined);
    await handle.reboot();
    const measureBoot = async (): Promise<void> => {
      await tpm.pcrExtend(0, sha256('firmware'));
      await tpm.pcrExtend(4, sha256('bootloader'));
    };
    await measureBoot();
    const blob = await tpm.seal(Buffer.from('vault key'), [0, 4]);

    const started = performance.now();
    await handle.reboot();
    const rebootMs = performance.now() - started;
    assert.ok(rebootMs < 5000);

    assert.deepEqual((await tpm.pcrRead([0])).get(0), new Uint8Array(32));
    const handles = await tpm.persistentHandles();
    for (const h of [DEVICE_KEY_HANDLE, ECDH_KEY_HANDLE, ATTESTATION_KEY_HANDLE]) assert.ok(handles.includes(h), `0x${h.toString(16)} survives`);
    assert.ok((await tpm.publicKey(DEVICE_KEY_HANDLE)).equals(devicePublic));
    assert.ok(verifiesRaw(devicePublic, 'after reboot', await tpm.signDigest(DEVICE_KEY_HANDLE, sha256('after reboot'), AUTH)));
    assert.equal(await tpm.readCounter(0x01500100), counterBefore);

    await assert.rejects(tpm.unseal(blob), TpmPolicyError); // PCRs 0 and 4 are zero again
    await measureBoot();
    assert.deepEqual(Buffer.from(await tpm.unseal(blob)), Buffer.from('vault key'));
    await tpm.pcrExtend(4, sha256('a different bootloader'));
    await assert.rejects(tpm.unseal(blob), TpmPolicyError);
  });

  test('operations queue behind each other: many at once do not exhaust swtpm\'s 3 object/session slots', async () => {
    const device = await tpm.publicKey(DEVICE_KEY_HANDLE);
    const work = Array.from({ length: 6 }, async (_, i) => {
      const blob = await tpm.seal(Buffer.from(`s${i}`), [16]);
      const [signature, secret] = await Promise.all([tpm.signDigest(DEVICE_KEY_HANDLE, sha256(`m${i}`), AUTH), tpm.unseal(blob)]);
      assert.ok(verifiesRaw(device, `m${i}`, signature));
      assert.deepEqual(Buffer.from(secret), Buffer.from(`s${i}`));
    });
    await Promise.all(work);
    // A second Tpm on the same TCTI shares the queue.
    const second = await Tpm.open(tpm.tcti);
    await Promise.all([second.random(8), tpm.seal(Buffer.from('x'), [16]), second.seal(Buffer.from('y'), [16]), tpm.random(8)]);
  });

  test('scratch files are private (0700 dir, 0600 files) and removed; nothing is left in the temp dir', async () => {
    const runner = new TpmRunner(tpm.tcti);
    let dir = '';
    await runner.operation(async (s) => {
      const file = await s.write('secret.bin', Buffer.from('auth'));
      dir = join(file, '..');
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(await s.secretOutput('z.bin')).mode & 0o777, 0o600);
    });
    assert.throws(() => statSync(dir), { code: 'ENOENT' });
    await tpm.signDigest(DEVICE_KEY_HANDLE, sha256('x'), Buffer.from('wrong')).catch(() => undefined); // failures clean up too
    const leftovers = readdirSync(privateTmp).filter((name) => name.startsWith('lispnode-tpm-'));
    assert.deepEqual(leftovers, []);
  });

  test('timings per operation (diagnostic)', async (t) => {
    const ops: [string, () => Promise<unknown>][] = [
      ['random(32)', () => tpm.random(32)],
      ['pcrRead(0-15)', () => tpm.pcrRead(Array.from({ length: 16 }, (_, i) => i))],
      ['pcrExtend', () => tpm.pcrExtend(16, sha256('t'))],
      ['signDigest', () => tpm.signDigest(DEVICE_KEY_HANDLE, sha256('t'), AUTH)],
      ['quote(0-15)', () => tpm.quote(ATTESTATION_KEY_HANDLE, Array.from({ length: 16 }, (_, i) => i), randomBytes(16))],
      ['seal(14 PCRs)', () => tpm.seal(Buffer.from('t'), EVE_SEAL_PCRS)],
      ['incrementCounter', () => tpm.incrementCounter(0x01500100)],
    ];
    for (const [name, op] of ops) {
      const started = performance.now();
      for (let i = 0; i < 3; i++) await op();
      t.diagnostic(`${name}: ${((performance.now() - started) / 3).toFixed(1)} ms`);
    }
  });
});

describe('Tpm without a TPM', () => {
  test('a TCTI nobody listens on: TpmUnavailableError from open()', async () => {
    const error = await Tpm.open('swtpm:host=127.0.0.1,port=1').catch((e: unknown) => e);
    assert.ok(error instanceof TpmUnavailableError, String(error));
    assert.match(error.message, /cannot be reached|not installed/);
  });

  test('a device that does not exist, or an unknown TCTI: TpmUnavailableError', async () => {
    await assert.rejects(Tpm.open('device:/dev/tpmrm-lispnode-none'), TpmUnavailableError);
    await assert.rejects(Tpm.open('nonsense:x'), TpmUnavailableError);
  });

  test('tpm2-tools missing: TpmUnavailableError naming the tool', async () => {
    const error = await Tpm.open('swtpm:host=127.0.0.1,port=1', { toolsDir: join(privateTmp, 'no-such-dir') }).catch((e: unknown) => e);
    assert.ok(error instanceof TpmUnavailableError, String(error));
    assert.match(error.message, /tpm2-tools are not installed/);
  });

  test('a TPM that goes away: later operations fail with TpmUnavailableError', { skip: swtpmMissing() }, async () => {
    const swtpm = await startSwtpm();
    try {
      const tpm = await Tpm.open(swtpm.tcti);
      await tpm.random(4);
      await swtpm.stop();
      await assert.rejects(tpm.random(4), TpmUnavailableError);
      await assert.rejects(tpm.pcrRead([0]), TpmUnavailableError);
    } finally {
      await swtpm.stop();
    }
  });

  test('stderr of tpm2-tools becomes the right typed error', () => {
    const auth = toolFailure('tpm2_sign', 'WARNING:esys:src/tss2-esys/api/Esys_Sign.c:311:Esys_Sign_Finish() Received TPM Error \nERROR:esys:src/tss2-esys/api/Esys_Sign.c:105:Esys_Sign() Esys Finish ErrorCode (0x000009a2) \nERROR: Eys_Sign(0x9A2) - tpm:session(1):authorization failure without DA implications\nERROR: Unable to run tpm2_sign\n');
    assert.ok(auth instanceof TpmAuthError);
    assert.equal(auth.rc, 0x9a2);
    assert.equal(auth.message, 'tpm2_sign: tpm:session(1):authorization failure without DA implications (rc 0x9a2)');
    assert.ok(toolFailure('tpm2_sign', 'ERROR: Esys_Sign(0x98E) - tpm:session(1):the authorization HMAC check failed and DA counter incremented\n') instanceof TpmAuthError);
    const policy = toolFailure('tpm2_unseal', 'ERROR:esys:x Esys Finish ErrorCode (0x0000099d)\nERROR: Esys_Unseal(0x99D) - tpm:session(1):a policy check failed\n');
    assert.ok(policy instanceof TpmPolicyError);
    const io = toolFailure('tpm2_getrandom', 'ERROR: Esys_GetRandom(0xA000A) - tcti:IO failure\n');
    assert.ok(io instanceof TpmUnavailableError);
    assert.equal(io.rc, 0xa000a);
    const other = toolFailure('tpm2_evictcontrol', 'ERROR: Esys_EvictControl(0x14C) - tpm:error(2.0): NV Index or persistent object already defined\n');
    assert.ok(other instanceof TpmError && !(other instanceof TpmAuthError) && !(other instanceof TpmPolicyError));
    assert.equal(tpmRcBase(other.rc ?? 0), TpmRc.NV_DEFINED);
    const bare = toolFailure('tpm2_getrandom', 'ERROR: TPM getrandom is bounded by max hash size, which is: 64\n');
    assert.equal(bare.rc, undefined);
    assert.match(bare.message, /bounded by max hash size/);
  });
});
