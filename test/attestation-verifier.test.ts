// The controller's side of EVE attestation with real quotes from swtpm: an attestation key in
// the TPM certified by the device certificate, a "measured boot" (PCRs 0–4, 7 and 14 extended
// with fixed digests), then cert → nonce → quote → integrity token, the token's hold on /config
// and attestation tickets, key escrow, and every way a quote is refused (EVE's NONCE_MISMATCH,
// NO_CERT_FOUND, QUOTE_FAILED) — each refusal revoking the token.
import assert from 'node:assert/strict';
import { TICKET_CLOCK_SKEW_MS } from '../src/controller/ticket-issuer.js';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { deviceCertHash } from '../src/control/cert-hash.js';
import { ControllerClient, ControllerError } from '../src/control/controller-client.js';
import {
  AttestStorageKeysResponseCode,
  AttestVolumeKeyDataSchema,
  AttestVolumeKeySchema,
  AttestVolumeKeyType,
  ZAttestQuoteSchema,
  ZAttestReqSchema,
  ZAttestReqType,
  ZAttestResponseCode,
  ZAttestRespType,
  ZCertType,
  type AttestVolumeKey,
} from '../src/control/proto/index.js';
import { ATTESTATION_KEY_HANDLE, Tpm } from '../src/control/tpm/index.js';
import { readControllerTrust } from '../src/control/trust.js';
import { createDeviceCert, issueEdgeNodeCert } from '../src/control/x509/device.js';
import { randomSerial } from '../src/control/x509/sign.js';
import { softwareSigner } from '../src/control/x509/software-signer.js';
import { ControllerApi } from '../src/controller/api.js';
import { addDevice, clearDevice, DeviceCommandError, listDevices } from '../src/controller/device-commands.js';
import { generateP256KeyPair } from '../src/crypto/p256.js';
import { extendedPcr, registerAttestingDevice, tpmQuote, type AttestingDevice } from './support/attesting-device.js';
import { startController, type ControllerFixture } from './support/controller-fixture.js';
import { startSwtpm, swtpmMissing, type SwtpmHandle } from '../src/node/lab/swtpm.js';

const TICKET_SECONDS = 300;
const digest = (text: string): Uint8Array => createHash('sha256').update(text).digest();
/** What firmware, bootloader and EVE's measure-config would extend: PCRs 0–4, 7 and 14. */
const BOOT: readonly (readonly [number, Uint8Array])[] = [
  [0, digest('firmware')],
  [1, digest('firmware config')],
  [2, digest('option ROMs')],
  [3, digest('option ROM config')],
  [4, digest('bootloader')],
  [7, digest('secure boot state')],
  [14, digest('/config')],
];
const MESH = `network-instances:
  - name: overlay
    instance-id: 1000
    eid-prefix: fd42:1::/32
    map-servers: [{ address: 198.18.0.10, credential: s3cret }]
`;

describe('controller attestation against swtpm quotes', { skip: swtpmMissing() }, () => {
  let swtpm: SwtpmHandle;
  let tpm: Tpm;
  /** Another TPM, hence another attestation key (primaries derive from the TPM's seed). */
  let otherSwtpm: SwtpmHandle;
  let otherTpm: Tpm;
  let f: ControllerFixture;
  let work: string;
  let skewMs = 0;
  let serials = 0;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'lispnode-attest-test-'));
    swtpm = await startSwtpm();
    tpm = await Tpm.open(swtpm.tcti);
    await tpm.createPersistentEccKey(ATTESTATION_KEY_HANDLE, 'attestation');
    otherSwtpm = await startSwtpm();
    otherTpm = await Tpm.open(otherSwtpm.tcti);
    await otherTpm.createPersistentEccKey(ATTESTATION_KEY_HANDLE, 'attestation');
    f = await startController({ api: (store, keys, log) => new ControllerApi(store, keys, log, { ticketLifetimeSeconds: TICKET_SECONDS, now: () => Date.now() + skewMs }) });
  });
  after(async () => {
    await f.stop();
    await swtpm.stop();
    await otherSwtpm.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** A power cycle (PCRs back to zero) and the same measured boot as always. */
  async function boot(): Promise<void> {
    await swtpm.reboot();
    for (const [index, value] of BOOT) await tpm.pcrExtend(index, value);
  }

  /** `controller device add` with these options, then the device registers a fresh certificate. */
  async function enroll(options: { attestation?: string; pcrPolicy?: Record<string, string> } = {}): Promise<AttestingDevice> {
    const serial = `SN-A${++serials}`;
    const mesh = join(work, `${serial}.yaml`);
    writeFileSync(mesh, MESH);
    let pcrPolicy: string | undefined;
    if (options.pcrPolicy) {
      pcrPolicy = join(work, `${serial}.pcrs.json`);
      writeFileSync(pcrPolicy, JSON.stringify(options.pcrPolicy));
    }
    const line = addDevice({ dir: f.dir, serial, onboardingCert: f.onboardingCert, mesh, ...(options.attestation && { attestation: options.attestation }), ...(pcrPolicy && { pcrPolicy }) })[0] ?? '';
    return registerAttestingDevice(f, /device (\S+)/.exec(line)?.[1] ?? '');
  }

  // EVE sends the same certificate files each time; a new one would be a (refused) swap.
  const issued = new Map<string, string>();
  async function attestationCert(device: AttestingDevice, t: Tpm): Promise<string> {
    const key = `${device.uuid} ${device.certPem} ${t.tcti}`;
    const pem = issued.get(key) ?? (await device.issue(await t.publicKey(ATTESTATION_KEY_HANDLE), 'attestation'));
    issued.set(key, pem);
    return pem;
  }

  async function sendTpmCerts(device: AttestingDevice, t = tpm): Promise<void> {
    const attestation = await attestationCert(device, t);
    const response = await device.sendCerts([device.zcert(device.ecdhCertPem, ZCertType.CERT_TYPE_DEVICE_ECDH_EXCHANGE), device.zcert(attestation, ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING)]);
    assert.equal(response.status, 200, response.reason);
    assert.equal(response.message?.respType, ZAttestRespType.ATTEST_RESP_CERT);
  }

  /** nonce → TPM quote → verdict. */
  async function attest(device: AttestingDevice, t = tpm) {
    const response = await device.quote(await tpmQuote(t, ATTESTATION_KEY_HANDLE, await device.nonce()));
    assert.equal(response.status, 200, response.reason);
    assert.equal(response.message?.respType, ZAttestRespType.ATTEST_RESP_QUOTE_RESP);
    const verdict = response.message.quoteResp;
    assert.ok(verdict);
    return { ...verdict, reason: response.reason };
  }

  async function attestedToken(device: AttestingDevice): Promise<Uint8Array> {
    const verdict = await attest(device);
    assert.equal(verdict.response, ZAttestResponseCode.SUCCESS, verdict.reason);
    return verdict.integrityToken;
  }

  test('cert → nonce → quote: SUCCESS with a token; /config answers 403 without it or with a wrong one, 200 with it', async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    await sendTpmCerts(device);
    const nonce = await device.nonce();
    assert.equal(nonce.length, 32);
    const verdict = await attest(device);
    assert.equal(verdict.response, ZAttestResponseCode.SUCCESS, verdict.reason);
    assert.equal(verdict.integrityToken.length, 64);
    assert.deepEqual(verdict.keys, [], 'first contact: nothing escrowed yet');

    const without = await device.config();
    assert.equal(without.status, 403);
    assert.match(without.reason ?? '', /no integrity token/);
    assert.equal((await device.config(randomBytes(64))).status, 403);
    assert.equal((await device.config(verdict.integrityToken)).status, 200);
    assert.match(listDevices(f.dir).find((l) => l.includes(device.uuid)) ?? '', /attestation tpm \(learn PCRs at the first attestation\), pinned/);
  });

  test('STORE_KEYS needs the current token; the escrowed keys come back verbatim with the next success', async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    await sendTpmCerts(device);
    const token = await attestedToken(device);
    const key = (policyId: number): AttestVolumeKey =>
      create(AttestVolumeKeySchema, {
        keyType: AttestVolumeKeyType.VSK,
        key: toBinary(AttestVolumeKeyDataSchema, create(AttestVolumeKeyDataSchema, { encryptedKey: randomBytes(48), digestSha256: randomBytes(32) })),
        hasPolicyPcrList: true,
        policyPcrList: { pcrIndices: [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14], policyId },
      });
    const store = (integrityToken: Uint8Array, keys: AttestVolumeKey[]) => device.attest({ reqType: ZAttestReqType.Z_ATTEST_REQ_TYPE_STORE_KEYS, storageKeys: { integrityToken, keys } });

    const refused = await store(randomBytes(64), [key(1)]);
    assert.equal(refused.status, 200);
    assert.equal(refused.message?.respType, ZAttestRespType.Z_ATTEST_RESP_TYPE_STORE_KEYS);
    assert.equal(refused.message.storageKeysResp?.response, AttestStorageKeysResponseCode.ITOKEN_MISMATCH);
    assert.equal((await store(token, [key(1)])).message?.storageKeysResp?.response, AttestStorageKeysResponseCode.SUCCESS);
    const latest = [key(2)];
    assert.equal((await store(token, latest)).message?.storageKeysResp?.response, AttestStorageKeysResponseCode.SUCCESS, 'newer keys replace older ones');

    const again = await attest(device);
    assert.equal(again.response, ZAttestResponseCode.SUCCESS, again.reason);
    assert.deepEqual(
      again.keys.map((k) => Buffer.from(toBinary(AttestVolumeKeySchema, k)).toString('hex')),
      latest.map((k) => Buffer.from(toBinary(AttestVolumeKeySchema, k)).toString('hex')),
    );
    assert.notDeepEqual(again.integrityToken, token);
    assert.equal((await device.config(token)).status, 403, 'the new token supersedes the old one');
    assert.equal((await device.config(again.integrityToken)).status, 200);
  });

  test('a changed PCR 14 fails the next quote naming PCR 14, and the revoked token stops /config and tickets', async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    await sendTpmCerts(device);
    const token = await attestedToken(device); // learn mode: this pins PCRs 0–15
    assert.equal((await device.ticket(token, ['[1000]fd42:1::1'])).status, 200);

    await tpm.pcrExtend(14, digest('a changed /config file'));
    const verdict = await attest(device);
    assert.equal(verdict.response, ZAttestResponseCode.QUOTE_FAILED);
    assert.match(verdict.reason ?? '', /PCR 14 differs from the values pinned/);
    assert.equal(verdict.integrityToken.length, 0);
    assert.deepEqual(verdict.keys, []);
    assert.equal((await device.config(token)).status, 403);
    const ticket = await device.ticket(token, ['[1000]fd42:1::1']);
    assert.equal(ticket.status, 403);
    assert.match(ticket.reason ?? '', /not current/);

    // The same measured boot again gives the pinned values back.
    await boot();
    assert.equal((await attest(device)).response, ZAttestResponseCode.SUCCESS);
  });

  test('nonces are single use, bound to the device that asked, and expire', async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    const other = await enroll({ attestation: 'tpm' });
    await sendTpmCerts(device);
    await sendTpmCerts(other);
    const nonce = await device.nonce();
    assert.equal((await device.quote(await tpmQuote(tpm, ATTESTATION_KEY_HANDLE, nonce))).message?.quoteResp?.response, ZAttestResponseCode.SUCCESS);
    const token = await attestedToken(device);

    const reused = await device.quote(await tpmQuote(tpm, ATTESTATION_KEY_HANDLE, nonce));
    assert.equal(reused.message?.quoteResp?.response, ZAttestResponseCode.NONCE_MISMATCH);
    assert.match(reused.reason ?? '', /never issued, or one already used/);
    assert.equal((await device.config(token)).status, 403, 'a refusal revokes the token');

    const othersNonce = await other.nonce();
    const stolen = await device.quote(await tpmQuote(tpm, ATTESTATION_KEY_HANDLE, othersNonce));
    assert.equal(stolen.message?.quoteResp?.response, ZAttestResponseCode.NONCE_MISMATCH);
    assert.match(stolen.reason ?? '', /issued to another device/);
    const late = await other.quote(await tpmQuote(tpm, ATTESTATION_KEY_HANDLE, othersNonce));
    assert.equal(late.message?.quoteResp?.response, ZAttestResponseCode.NONCE_MISMATCH, 'a nonce is tried once, by anyone');

    const stale = await device.nonce();
    skewMs = 121_000;
    try {
      const expired = await device.quote(await tpmQuote(tpm, ATTESTATION_KEY_HANDLE, stale));
      assert.equal(expired.message?.quoteResp?.response, ZAttestResponseCode.NONCE_MISMATCH);
      assert.match(expired.reason ?? '', /expired/);
    } finally {
      skewMs = 0;
    }
    const invented = await device.quote(await tpmQuote(tpm, ATTESTATION_KEY_HANDLE, randomBytes(32)));
    assert.equal(invented.message?.quoteResp?.response, ZAttestResponseCode.NONCE_MISMATCH);
  });

  test("a quote by another TPM's key than the stored attestation certificate's, or with forged PCR values → QUOTE_FAILED", async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    await sendTpmCerts(device);
    const token = await attestedToken(device);
    const verdict = await attest(device, otherTpm);
    assert.equal(verdict.response, ZAttestResponseCode.QUOTE_FAILED);
    assert.match(verdict.reason ?? '', /signature does not verify/);
    assert.equal((await device.config(token)).status, 403);

    // Tampered PCR values beside a genuine quote.
    const quote = await tpmQuote(tpm, ATTESTATION_KEY_HANDLE, await device.nonce());
    const pcr7 = quote.pcrValues.find((p) => p.index === 7);
    assert.ok(pcr7);
    pcr7.value = digest('forged');
    const forged = await device.quote(quote);
    assert.equal(forged.message?.quoteResp?.response, ZAttestResponseCode.QUOTE_FAILED);
    assert.match(forged.reason ?? '', /do not match the quoted digest/);
  });

  test('no stored attestation certificate → NO_CERT_FOUND; an empty quote from a tpm device → QUOTE_FAILED', async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    const verdict = await attest(device);
    assert.equal(verdict.response, ZAttestResponseCode.NO_CERT_FOUND);
    assert.match(verdict.reason ?? '', /no attestation certificate/);
    await device.nonce();
    const empty = await device.quote(create(ZAttestQuoteSchema));
    assert.equal(empty.message?.quoteResp?.response, ZAttestResponseCode.QUOTE_FAILED);
    assert.match(empty.reason ?? '', /empty quote/);
  });

  test('ATTEST_REQ_CERT: only certificates the device certificate issued; stored ones are immutable until the device is cleared', async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    // An attestation certificate issued by some other "device" key for the real TPM key.
    const stranger = softwareSigner(generateP256KeyPair((n) => randomBytes(n)));
    const strangerPem = await createDeviceCert(stranger, { now: new Date(), serial: randomSerial((n) => randomBytes(n)) });
    const foreign = await issueEdgeNodeCert(stranger, strangerPem, await tpm.publicKey(ATTESTATION_KEY_HANDLE), 'attestation', { now: new Date(), serial: randomSerial((n) => randomBytes(n)) });
    const refused = await device.sendCerts([device.zcert(foreign, ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING)]);
    assert.equal(refused.status, 403);
    assert.match(refused.reason ?? '', /CERT_TYPE_DEVICE_RESTRICTED_SIGNING \(11\): not issued by the device's registered certificate/);
    assert.equal((await attest(device)).response, ZAttestResponseCode.NO_CERT_FOUND, 'nothing was stored');
    const wrongType = await device.sendCerts([device.zcert(device.ecdhCertPem, ZCertType.CERT_TYPE_CONTROLLER_SIGNING)]);
    assert.equal(wrongType.status, 400);

    await sendTpmCerts(device);
    await sendTpmCerts(device); // EVE sends them again at every boot: the same ones are fine
    const token = await attestedToken(device);
    const swapped = await attestationCert(device, otherTpm);
    const conflict = await device.sendCerts([device.zcert(swapped, ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING)]);
    assert.equal(conflict.status, 409);
    assert.match(conflict.reason ?? '', /immutable/);
    assert.equal((await device.config(token)).status, 403, 'a swap attempt revokes the token');

    // Re-onboarding: the cleared device registers a new identity, whose certificates are new.
    clearDevice(f.dir, device.uuid);
    const reborn = await registerAttestingDevice(f, device.uuid);
    await sendTpmCerts(reborn, otherTpm);
    assert.equal((await attest(reborn, otherTpm)).response, ZAttestResponseCode.SUCCESS);
  });

  test('an explicit PCR policy (device add --pcr-policy): values met → SUCCESS, one differing → QUOTE_FAILED naming it', async () => {
    await boot();
    const measured = (index: number): string => extendedPcr(...BOOT.filter(([i]) => i === index).map(([, d]) => d));
    const policy = { 0: measured(0), 4: measured(4), 7: measured(7), 14: measured(14) };
    const good = await enroll({ pcrPolicy: policy }); // --pcr-policy implies --attestation tpm
    assert.match(listDevices(f.dir).find((l) => l.includes(good.uuid)) ?? '', /attestation tpm \(PCR policy 0,4,7,14\)/);
    await sendTpmCerts(good);
    assert.equal((await attest(good)).response, ZAttestResponseCode.SUCCESS);
    assert.equal((await attest(good)).response, ZAttestResponseCode.SUCCESS, 'an explicit policy pins nothing');

    const strict = await enroll({ attestation: 'tpm', pcrPolicy: { ...policy, 7: measured(0), 15: extendedPcr(digest('never measured')) } });
    await sendTpmCerts(strict);
    const verdict = await attest(strict);
    assert.equal(verdict.response, ZAttestResponseCode.QUOTE_FAILED);
    assert.match(verdict.reason ?? '', /PCR 7, 15 differ from the PCR policy/);

    const mesh = join(work, 'policy.yaml');
    writeFileSync(mesh, MESH);
    const bad = join(work, 'bad.json');
    for (const [content, error] of [
      ['{"16":"00"}', /"16" is not a quoted PCR index/],
      ['{"0":"abcd"}', /PCR 0: expected 64 hex digits/],
      ['[]', /expected an object/],
    ] as const) {
      writeFileSync(bad, content);
      assert.throws(() => addDevice({ dir: f.dir, serial: 'SN-BAD', onboardingCert: f.onboardingCert, mesh, pcrPolicy: bad }), (e: unknown) => e instanceof DeviceCommandError && error.test(e.message));
    }
    writeFileSync(bad, JSON.stringify(policy));
    assert.throws(() => addDevice({ dir: f.dir, serial: 'SN-BAD', onboardingCert: f.onboardingCert, mesh, attestation: 'none', pcrPolicy: bad }), /--pcr-policy needs --attestation tpm/);
    assert.throws(() => addDevice({ dir: f.dir, serial: 'SN-BAD', onboardingCert: f.onboardingCert, mesh, attestation: 'maybe' }), /--attestation maybe: expected none or tpm/);
  });

  test('attestation tickets: the device, its EIDs inside its mesh prefix, the configured lifetime; refused outside it', async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    await sendTpmCerts(device);
    const token = await attestedToken(device);
    const before = Date.now();
    const response = await device.ticket(token, ['[1000]fd42:1::1', '[1000]fd42:1:ffff::abcd', '[1000]fd42:1::1']);
    assert.equal(response.status, 200, response.reason);
    const ticket = response.message;
    assert.ok(ticket);
    assert.equal(ticket.deviceUuid, device.uuid);
    assert.deepEqual(ticket.deviceCertHash, deviceCertHash(device.certPem));
    assert.deepEqual(ticket.instanceIds, [1000]);
    assert.deepEqual(ticket.eidPrefixes, ['[1000]fd42:1::1/128', '[1000]fd42:1:ffff::abcd/128']);
    // Valid from a minute before issue (slow map-server clocks), for the lifetime after issue.
    const issued = Number(ticket.notBeforeUnixMs) + TICKET_CLOCK_SKEW_MS;
    assert.ok(issued >= before && issued <= Date.now());
    assert.equal(Number(ticket.notAfterUnixMs) - issued, TICKET_SECONDS * 1000);

    for (const [eid, why] of [
      ['[1000]fd43::1', /'\[1000\]fd43::1' is not inside the allocation prefix of a mesh instance with IID 1000/],
      ['[1001]fd42:1::1', /with IID 1001/],
      ['fd42:1::1', /is not "\[iid\]ipv6-address"/],
      ['[1000]198.18.0.1', /is not "\[iid\]ipv6-address"/],
      ['[1000]fd42:1::/64', /is not "\[iid\]ipv6-address"/],
    ] as const) {
      const refused = await device.ticket(token, ['[1000]fd42:1::2', eid]);
      assert.equal(refused.status, 400, eid);
      assert.match(refused.reason ?? '', why);
    }
    assert.equal((await device.ticket(token, [])).status, 400);
    assert.equal((await device.ticket(new Uint8Array(), ['[1000]fd42:1::1'])).status, 403);
  });

  test('a device in mode none: an empty quote earns a token and no keys; /config needs no token; no tickets', async () => {
    const device = await enroll(); // the default for device add
    assert.match(listDevices(f.dir).find((l) => l.includes(device.uuid)) ?? '', /attestation none/);
    await device.nonce();
    const verdict = await device.quote(create(ZAttestQuoteSchema));
    assert.equal(verdict.message?.quoteResp?.response, ZAttestResponseCode.SUCCESS);
    const token = verdict.message.quoteResp.integrityToken;
    assert.equal(token.length, 64);
    assert.deepEqual(verdict.message.quoteResp.keys, []);
    assert.equal((await device.config()).status, 200);
    const ticket = await device.ticket(token, ['[1000]fd42:1::1']);
    assert.equal(ticket.status, 403);
    assert.match(ticket.reason ?? '', /mode none/);
  });

  test("over HTTPS with the node's ControllerClient: attest, config with the token (403 without), ticket", async () => {
    await boot();
    const device = await enroll({ attestation: 'tpm' });
    const { controller } = f.node('https-node', 'unused');
    const trust = readControllerTrust(controller.serverFile, controller.rootCaFile);
    let saved: Date | undefined;
    const client = new ControllerClient(() => trust, { load: () => (saved ? { signingNotBefore: saved } : undefined), save: (d) => void (saved = d) });
    const signer = { signer: device.signer, certPem: device.certPem };
    const attestation = await attestationCert(device, tpm);
    const send = (request: MessageInitShape<typeof ZAttestReqSchema>) => client.attest(signer, device.uuid, create(ZAttestReqSchema, request));
    const certs = await send({ reqType: ZAttestReqType.ATTEST_REQ_CERT, certs: [device.zcert(attestation, ZCertType.CERT_TYPE_DEVICE_RESTRICTED_SIGNING)] });
    assert.equal(certs.respType, ZAttestRespType.ATTEST_RESP_CERT);
    const nonce = (await send({ reqType: ZAttestReqType.ATTEST_REQ_NONCE })).nonce?.nonce;
    assert.ok(nonce);
    const verdict = (await send({ reqType: ZAttestReqType.ATTEST_REQ_QUOTE, quote: await tpmQuote(tpm, ATTESTATION_KEY_HANDLE, nonce) })).quoteResp;
    assert.equal(verdict?.response, ZAttestResponseCode.SUCCESS);
    await assert.rejects(client.config(signer, device.uuid, ''), (e: unknown) => e instanceof ControllerError && e.status === 403);
    assert.ok((await client.config(signer, device.uuid, '', verdict.integrityToken))?.config);
    const envelope = await client.attestationTicket(signer, device.uuid, verdict.integrityToken, ['[1000]fd42:1::7']);
    assert.ok(envelope.length > 0);
  });
});

