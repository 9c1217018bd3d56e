// Side-channel config bundles: exported and signed by the controller, applied by the node only
// if they verify against its pinned root CA, are for this device, and are newer than the last
// one applied — kept in a TPM NV counter where there is a TPM. A running node with no
// controller in reach runs the applied bundle.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import { sealBundle } from '../src/control/bundle.js';
import { ConfigResponseSchema } from '../src/control/proto/index.js';
import { Tpm } from '../src/control/tpm/index.js';
import { FileVersionCounter, MAX_COUNTER_STEP, TpmVersionCounter } from '../src/control/version-counter.js';
import { softwareSigner } from '../src/control/x509/software-signer.js';
import { exportBundle } from '../src/controller/device-commands.js';
import { importP256PrivateKey } from '../src/crypto/p256.js';
import { applyBundleFile, onboardNow } from '../src/node/control-commands.js';
import { NodeDaemon } from '../src/node/node-daemon.js';
import { recordingLog, startController, type ControllerFixture } from './support/controller-fixture.js';
import { startSwtpm, swtpmMissing } from '../src/node/lab/swtpm.js';
import { newPki } from './support/trust-files.js';

const fixtures: ControllerFixture[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'lispnode-side-channel-test-'));
after(async () => {
  for (const f of fixtures) await f.stop();
  rmSync(scratch, { recursive: true, force: true });
});

test('a bundle applies once; an older one, one from another CA, or one for another device is refused with its reason', { timeout: 60_000 }, async () => {
  const f = await startController();
  fixtures.push(f);
  const uuid = f.addDevice('SN-B');
  const config = f.node('n1', 'SN-B');
  await onboardNow(config, false);
  const bundle = async (name: string, version?: string): Promise<string> => {
    const out = join(scratch, name);
    await exportBundle({ dir: f.dir, device: uuid, out, ...(version !== undefined && { version }) });
    return out;
  };
  const first = await bundle('v1.bundle');
  const second = await bundle('v2.bundle');

  const applied = await applyBundleFile(config, first);
  assert.equal(applied.applied, true, applied.lines.join('\n'));
  assert.match(applied.lines[0] ?? '', /applied bundle version 1/);
  const again = await applyBundleFile(config, first);
  assert.deepEqual([again.applied, again.lines[0]?.split(':')[0]], [false, 'refused (replayed)']);
  assert.equal((await applyBundleFile(config, second)).applied, true);
  const older = await applyBundleFile(config, first);
  assert.match(older.lines[0] ?? '', /^refused \(replayed\): bundle version 1 is not newer than the last applied one \(2\)/);

  // Signed by another controller's CA, for this very device and with a higher version.
  const other = await newPki();
  const forged = await sealBundle(
    { signer: softwareSigner(importP256PrivateKey(other.signing.keyPem)), signingCertPem: other.signing.certPem, ecdhCertPem: other.ecdh.certPem, intermediatePems: [] },
    { version: 99n, deviceUuid: uuid, config: create(ConfigResponseSchema, { config: { id: { uuid } }, configHash: 'x' }), created: new Date() },
  );
  writeFileSync(join(scratch, 'forged.bundle'), forged);
  const untrusted = await applyBundleFile(config, join(scratch, 'forged.bundle'));
  assert.match(untrusted.lines[0] ?? '', /^refused \(untrusted\): its certificates are not the controller's \(untrusted-chain/);

  // Tampered: one byte of the signed payload changed.
  const tampered = Uint8Array.from(readFileSync(second));
  tampered[tampered.length - 80] = (tampered[tampered.length - 80] ?? 0) ^ 0x01;
  writeFileSync(join(scratch, 'tampered.bundle'), tampered);
  const bad = await applyBundleFile(config, join(scratch, 'tampered.bundle'));
  assert.equal(bad.applied, false);
  assert.match(bad.lines[0] ?? '', /^refused \((signature|malformed|untrusted)\)/);

  // Another device's bundle.
  const stranger = f.addDevice('SN-OTHER');
  await exportBundle({ dir: f.dir, device: stranger, out: join(scratch, 'other-device.bundle'), version: '50' });
  const misdirected = await applyBundleFile(config, join(scratch, 'other-device.bundle'));
  assert.match(misdirected.lines[0] ?? '', new RegExp(`^refused \\(device\\): the bundle is for device ${stranger}`));

  // With the controller gone, a running node runs the applied bundle (verified again on load).
  const third = await bundle('v3.bundle');
  assert.equal((await applyBundleFile(config, third)).applied, true);
  await f.server.stop();
  fixtures.splice(fixtures.indexOf(f), 1);
  const log = recordingLog();
  const daemon = await NodeDaemon.start(config, log);
  try {
    for (let i = 0; i < 100 && !log.lines.some((l) => l.message === 'side-channel bundle applied'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(log.lines.some((l) => l.message === 'side-channel bundle applied' && l.fields.version === '3'), JSON.stringify(log.lines));
    assert.notEqual(daemon.stats().configHash, '');
  } finally {
    await daemon.stop();
  }
});

describe('the bundle counter', () => {
  test('file counter: moves only up', async () => {
    const counter = new FileVersionCounter(join(scratch, 'counter'));
    assert.equal(await counter.read(), 0n);
    await counter.advanceTo(3n);
    await counter.advanceTo(2n);
    assert.equal(await counter.read(), 3n);
  });

  test('TPM NV counter (swtpm): moves only up, survives a reboot, refuses a huge jump', { skip: swtpmMissing() }, async () => {
    const swtpm = await startSwtpm();
    try {
      const tpm = await Tpm.open(swtpm.tcti);
      const counter = new TpmVersionCounter(tpm);
      assert.equal(await counter.read(), 0n);
      await counter.advanceTo(3n);
      await counter.advanceTo(1n);
      assert.equal(await counter.read(), 3n);
      await swtpm.reboot();
      assert.equal(await new TpmVersionCounter(await Tpm.open(swtpm.tcti)).read(), 3n);
      await assert.rejects(counter.advanceTo(3n + MAX_COUNTER_STEP + 1n), /more than 4096 past the TPM counter/);
    } finally {
      await swtpm.stop();
    }
  });
});

