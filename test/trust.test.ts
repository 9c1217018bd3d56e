// Controller trust fails closed: a running node whose root-CA or server file changes stops
// talking to the controller at once (no signature, no request), says which file changed, and
// recovers when the file is restored; after a deliberate change only an explicit re-onboarding
// (identity cleared on both sides) brings it back.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { clearDevice } from '../src/controller/device-commands.js';
import { onboardNow } from '../src/node/control-commands.js';
import { NodeDaemon } from '../src/node/node-daemon.js';
import { ControllerError } from '../src/control/controller-client.js';
import { recordingLog, startController, type ControllerFixture } from './support/controller-fixture.js';
import { newPki } from './support/trust-files.js';

const fixtures: ControllerFixture[] = [];
after(async () => {
  for (const f of fixtures) await f.stop();
});

async function until(what: string, check: () => boolean, timeoutMs = 8000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) if (check()) return;
  assert.fail(`timed out waiting for ${what}`);
}

test('a changed root CA or server file stops the node talking (fail closed) until restored; re-onboarding recovers from a deliberate change', { timeout: 60_000 }, async () => {
  const f = await startController();
  fixtures.push(f);
  const uuid = f.addDevice('SN-T');
  const config = f.node('n1', 'SN-T');
  const log = recordingLog();
  let daemon = await NodeDaemon.start(config, log);
  try {
    await until('the node to onboard and fetch its config', () => daemon.stats().controller === 'connected' && daemon.stats().configHash !== '');
    assert.equal(daemon.stats().uuid, uuid);

    // The root CA file is replaced (an attacker's CA, or a careless edit).
    const originalRoot = readFileSync(config.controller.rootCaFile);
    writeFileSync(config.controller.rootCaFile, (await newPki()).root.certPem);
    await until('trust-changed', () => daemon.stats().controller === 'trust-changed');
    const frozen = f.requests.length;
    await new Promise((r) => setTimeout(r, 2500)); // two more polls
    assert.equal(f.requests.length, frozen, 'no request reaches any controller while the trust files differ');
    assert.match(daemon.stats().lastError ?? '', new RegExp(`${config.controller.rootCaFile}.*refuses to sign`));
    assert.ok(log.lines.some((l) => l.level === 'error' && l.message === 'controller trust-changed'), 'the change is logged as an error');

    // Restoring the file restores the connection.
    writeFileSync(config.controller.rootCaFile, originalRoot);
    await until('connected again', () => daemon.stats().controller === 'connected' && f.requests.length > frozen);

    // The server file changes the same way (here: the same controller spelled differently).
    writeFileSync(config.controller.serverFile, `localhost:${f.server.port}\n`);
    await until('trust-changed on the server file', () => daemon.stats().controller === 'trust-changed' && (daemon.stats().lastError ?? '').includes(config.controller.serverFile));
    await daemon.stop();

    // The operator means it: re-onboarding. The controller still holds the old device
    // certificate, so the new identity is refused until the device is cleared there too.
    writeFileSync(config.controller.serverFile, `127.0.0.1:${f.server.port} \n`); // a deliberate edit, same controller
    await assert.rejects(onboardNow(config, true), (e: unknown) => e instanceof ControllerError && e.status === 409);
    clearDevice(f.dir, uuid);
    const lines = await onboardNow(config, true);
    assert.match(lines[1] ?? '', new RegExp(`onboarded: device ${uuid}`));
    daemon = await NodeDaemon.start(config, log);
    await until('connected after re-onboarding', () => daemon.stats().controller === 'connected' && daemon.stats().configHash !== '');
  } finally {
    await daemon.stop();
  }
});
