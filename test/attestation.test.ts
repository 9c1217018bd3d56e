// The node's attestation and vault against a real software TPM and the reference controller
// (in process, HTTPS on 127.0.0.1): a measured boot attests and gets its config; a changed PCR 14
// (a changed config file, measured at the next boot) is refused, /config answers 403 and the node
// keeps retrying without crashing, its vault locked and the controller keeping the key; an
// upgrade (PCR 4 changed) locks the vault locally, and recovery through attestation and escrow
// brings back the same key, resealed so the following boot unseals it alone.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Tpm } from '../src/control/tpm/index.js';
import { relearnPcrs } from '../src/controller/device-commands.js';
import type { NodeConfig } from '../src/node/config/node-config.js';
import { NodeDaemon } from '../src/node/node-daemon.js';
import { recordingLog, startController, type ControllerFixture } from './support/controller-fixture.js';
import { startSwtpm, swtpmMissing, type SwtpmHandle } from '../src/node/lab/swtpm.js';

const digest = (text: string): Uint8Array => new Uint8Array(createHash('sha256').update(text).digest());

/** What firmware, bootloader and the config measurement put in the PCRs at boot. */
async function measureBoot(tpm: Tpm, variant: { readonly pcr4?: string; readonly pcr14?: string } = {}): Promise<void> {
  for (const pcr of [0, 1, 2, 3, 7]) await tpm.pcrExtend(pcr, digest(`firmware stage ${pcr}`));
  await tpm.pcrExtend(4, digest(variant.pcr4 ?? 'boot loader v1'));
  await tpm.pcrExtend(14, digest(variant.pcr14 ?? 'config files v1'));
}

async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) if (check()) return;
  assert.fail(`timed out waiting for ${what}`);
}

describe('attestation and the vault (swtpm + reference controller)', { skip: swtpmMissing() }, () => {
  let swtpm: SwtpmHandle;
  let f: ControllerFixture;
  let config: NodeConfig;
  let uuid: string;
  before(async () => {
    swtpm = await startSwtpm();
    f = await startController();
    uuid = f.addDevice('SN-ATT', undefined, 'tpm');
    const base = f.node('n1', 'SN-ATT');
    config = { ...base, tpm: { mode: 'required', tcti: swtpm.tcti } };
  });
  after(async () => {
    await f?.stop();
    await swtpm?.stop();
  });

  /** A boot: the TPM power-cycles, the boot chain measures, the node starts. */
  async function boot(variant: Parameters<typeof measureBoot>[1] = {}): Promise<{ daemon: NodeDaemon; log: ReturnType<typeof recordingLog> }> {
    await swtpm.reboot();
    await measureBoot(await Tpm.open(swtpm.tcti), variant);
    const log = recordingLog();
    return { daemon: await NodeDaemon.start(config, log), log };
  }

  test('a measured boot attests, escrows its new vault key and gets its config with the token', { timeout: 60_000 }, async () => {
    const { daemon, log } = await boot();
    try {
      await until('attested and connected', () => daemon.stats().attestation?.attested === true && daemon.stats().controller === 'connected' && daemon.stats().configHash !== '');
      const s = daemon.stats();
      assert.equal(s.uuid, uuid);
      assert.equal(s.vault.status, 'unlocked');
      assert.match(s.vault.detail, /created and sealed/);
      await until('the vault key escrowed with the controller', () => f.server.store.attestation.escrowedKeys(uuid) !== undefined);
      assert.ok(log.lines.some((l) => l.message === 'attested'));
      await until('escrow done', () => daemon.stats().attestation?.phase === 'complete');
    } finally {
      await daemon.stop();
    }
  });

  test('a changed PCR 14 (config file) is refused: no token, /config 403, the vault stays locked, the node retries without crashing', { timeout: 60_000 }, async () => {
    const { daemon, log } = await boot({ pcr14: 'config files v2 (server file edited)' });
    try {
      await until('the refusal', () => (daemon.stats().attestation?.lastError ?? '').includes('quote-failed'));
      await until('config 403', () => daemon.stats().controller === 'attestation-required');
      const s = daemon.stats();
      assert.equal(s.attestation?.attested, false);
      assert.equal(s.vault.status, 'locked', 'PCR 14 is in the sealing set');
      assert.match(s.vault.detail, /PCR 14 changed/);
      assert.ok(log.lines.some((l) => l.level === 'error' && /refused the quote \(quote-failed\)/.test(l.message)), JSON.stringify(log.lines.map((l) => l.message)));
      // Still alive and still trying: a poll later, the state machine waits out its 15 s and starts over.
      const attempts = s.attestation?.attempts ?? 0;
      await until('another attestation round', () => (daemon.stats().attestation?.attempts ?? 0) > attempts, 25_000);
      assert.equal(daemon.stats().vault.status, 'locked', 'the controller returned no key for a refused quote');
    } finally {
      await daemon.stop();
    }
  });

  test('an upgrade (PCR 4 changed): the local unseal fails; recovery through attestation restores the same key and reseals it', { timeout: 90_000 }, async () => {
    // The first boot's key, as its fingerprint.
    let first = await boot();
    await until('attested', () => first.daemon.stats().attestation?.phase === 'complete');
    const fingerprint = first.daemon.stats().vault.fingerprint;
    assert.ok(fingerprint);
    await first.daemon.stop();

    // The operator upgrades the node: its boot loader measures differently now. The controller is told
    // to expect new values (relearn), as a fleet operator would before an upgrade.
    relearnPcrs(f.dir, uuid);
    const upgraded = await boot({ pcr4: 'boot loader v2' });
    try {
      await until('the vault recovered', () => upgraded.daemon.stats().vault.status === 'unlocked', 30_000);
      const s = upgraded.daemon.stats();
      assert.match(s.vault.detail, /recovered from the controller escrow and resealed/);
      assert.equal(s.vault.fingerprint, fingerprint, 'the same vault key came back');
      assert.ok(upgraded.log.lines.some((l) => l.message === 'vault locked' || /vault locked/.test(l.message)), 'the local unseal failed first');
      await until('re-escrowed', () => upgraded.daemon.stats().attestation?.phase === 'complete');
    } finally {
      await upgraded.daemon.stop();
    }

    // The next boot with the upgraded measurements unseals locally, without the controller.
    first = await boot({ pcr4: 'boot loader v2' });
    try {
      assert.equal(first.daemon.stats().vault.status, 'unlocked');
      assert.equal(first.daemon.stats().vault.detail, 'unsealed');
      assert.equal(first.daemon.stats().vault.fingerprint, fingerprint);
    } finally {
      await first.daemon.stop();
    }
  });
});
