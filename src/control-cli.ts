// The node control plane's commands (identity, onboarding, the node daemon, side-channel
// bundles) and the reference controller's, kept apart from cli.ts so each family reads on its
// own. Commands stay thin: they load files and call src/control, src/controller and src/node.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError } from './node/config/config-error.js';
import { loadNodeConfig } from './node/config/node-config.js';
import { createLogger } from './node/log.js';
import { stopOnSignals } from './node/ops/daemon-runner.js';
import { applyBundleFile, identityInit, identityClear, identityShow, onboardNow } from './node/control-commands.js';
import { initControllerDir } from './controller/controller-dir.js';
import { ControllerServer } from './controller/server.js';
import { parseTicketLifetime } from './controller/ticket-issuer.js';
import { addDevice, clearDevice, exportBundle, listDevices, relearnPcrs, setAttestation, setDeviceMesh } from './controller/device-commands.js';
import { createOnboardingCert } from './control/x509/device.js';

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function fail(message: string): never {
  process.stderr.write(`lispnode: ${message}\n`);
  process.exit(2);
}

/** Runs a command body; any error is reported in one line with exit 2 (1 is for "refused"). */
function guarded<A extends unknown[]>(body: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await body(...args);
    } catch (error) {
      fail(error instanceof ConfigError ? error.message : (error as Error).message);
    }
  };
}

export function addControlCommands(program: Command): void {
  const configOption = ['--config <file>', 'node configuration (YAML, docs/configuration.md#node)'] as const;

  const identity = program.command('identity').description("the node's device identity: TPM-rooted (or file) device key, device and EdgeNode certificates");
  identity
    .command('init')
    .description('create the device key (bound to the controller-trust files), the device certificate and the ECDH and attestation certificates')
    .requiredOption(...configOption)
    .action(guarded(async (o: { config: string }) => (await identityInit(loadNodeConfig(o.config))).forEach(print)));
  identity
    .command('show')
    .description('print the identity: key store (TPM or files, loudly), certificates, UUID, trust binding state, bundle counter')
    .requiredOption(...configOption)
    .option('--json', 'print one JSON object')
    .action(guarded(async (o: { config: string; json?: boolean }) => (await identityShow(loadNodeConfig(o.config), o.json ?? false)).forEach(print)));
  identity
    .command('clear')
    .description('delete the identity (TPM keys or key files, certificates, UUID): the first step of re-onboarding')
    .requiredOption(...configOption)
    .action(guarded(async (o: { config: string }) => (await identityClear(loadNodeConfig(o.config))).forEach(print)));

  program
    .command('onboard')
    .description('register with the controller (onboarding certificate + serial) and fetch the device UUID; --clear re-onboards from a fresh identity')
    .requiredOption(...configOption)
    .option('--clear', 'delete the current identity first and create a new one bound to the current trust files (explicit re-onboarding)')
    .action(guarded(async (o: { config: string; clear?: boolean }) => (await onboardNow(loadNodeConfig(o.config), o.clear ?? false)).forEach(print)));

  program
    .command('apply-config')
    .description('apply a side-channel config bundle (lispnode controller export-config): it must verify against the pinned root CA and be newer than the last one applied')
    .requiredOption(...configOption)
    .argument('<bundle>', 'the bundle file')
    .addHelpText('after', '\nExit status: 0 applied, 1 refused (the reason is printed), 2 usage or file errors.')
    .action(
      guarded(async (bundle: string, o: { config: string }) => {
        const result = await applyBundleFile(loadNodeConfig(o.config), bundle);
        result.lines.forEach(print);
        if (!result.applied) process.exitCode = 1;
      }),
    );

  const controller = program.command('controller').description('the reference controller: EVE API v2 onboarding, signed configs, side-channel bundles');
  const dirOption = ['--dir <dir>', 'the controller data directory (PKI, SQLite store)'] as const;
  controller
    .command('init')
    .description('create the data directory: root CA, signing, ECDH and TLS certificates, and the server file nodes pin')
    .requiredOption(...dirOption)
    .requiredOption('--name <dns-name>', 'the name nodes dial (in the TLS certificate and the server file)')
    .option('--address <ip...>', 'addresses the TLS certificate also covers', [])
    .option('--port <n>', 'the HTTPS port', '8443')
    .action(
      guarded(async (o: { dir: string; name: string; address: string[]; port: string }) => {
        await initControllerDir(o.dir, { dnsName: o.name, addresses: o.address, port: Number(o.port) });
        print(`controller initialised in ${o.dir}; install ${o.dir}/server and ${o.dir}/root-certificate.pem on each node`);
      }),
    );
  controller
    .command('run')
    .description('serve the EVE API v2 over HTTPS (SIGTERM stops)')
    .requiredOption(...dirOption)
    .option('--listen <address>', 'address to listen on', '0.0.0.0')
    .option('--port <n>', 'port', '8443')
    .option('--ticket-lifetime <seconds>', 'lifetime of the attestation tickets it issues', '600')
    .action(
      guarded(async (o: { dir: string; listen: string; port: string; ticketLifetime: string }) => {
        const log = createLogger();
        const server = await ControllerServer.start({ dir: o.dir, host: o.listen, port: Number(o.port), log, ticketLifetimeSeconds: parseTicketLifetime(o.ticketLifetime) });
        process.on('SIGUSR1', () => print(JSON.stringify({ stats: { devices: server.store.devices().length } })));
        stopOnSignals(log, () => server.stop());
      }),
    );
  const device = controller.command('device').description('pre-registered devices');
  device
    .command('add')
    .description('pre-register a device by its onboarding certificate and serial, with its mesh definition')
    .requiredOption(...dirOption)
    .requiredOption('--serial <serial>', "the device's serial")
    .requiredOption('--onboarding-cert <file>', 'the onboarding certificate (PEM) baked into the device image')
    .requiredOption('--mesh <file>', 'the mesh definition (YAML, docs/controller.md)')
    .option('--attestation <mode>', "'tpm': the device must attest with a verifying TPM quote before it gets its config; 'none': no TPM (default, or 'tpm' with --pcr-policy)")
    .option('--pcr-policy <file>', 'the expected PCR values, JSON {"0":"<sha-256 hex>",…}; without it the first attestation pins them')
    .action(guarded((o: { dir: string; serial: string; onboardingCert: string; mesh: string; attestation?: string; pcrPolicy?: string }) => addDevice(o).forEach(print)));
  device
    .command('list')
    .description('list devices')
    .requiredOption(...dirOption)
    .action(guarded((o: { dir: string }) => listDevices(o.dir).forEach(print)));
  device
    .command('clear')
    .description("forget a device's registered certificate so a re-onboarded node can register; the old certificate can never register again")
    .requiredOption(...dirOption)
    .argument('<device>', 'UUID or serial')
    .action(guarded((key: string, o: { dir: string }) => clearDevice(o.dir, key).forEach(print)));
  device
    .command('set-attestation')
    .description("change a device's attestation mode, or give its explicit PCR policy (e.g. the values expected after an upgrade)")
    .requiredOption(...dirOption)
    .argument('<device>', 'UUID or serial')
    .option('--attestation <mode>', "'tpm' (quotes required) or 'none' (no TPM)")
    .option('--pcr-policy <file>', 'JSON {"<pcr>":"<sha-256 hex>"}; implies tpm')
    .action(guarded((key: string, o: { dir: string; attestation?: string; pcrPolicy?: string }) => setAttestation(o.dir, key, o).forEach(print)));
  device
    .command('relearn-pcrs')
    .description("forget the PCR values a device's first attestation pinned (after an intended upgrade); its next successful attestation pins the new ones")
    .requiredOption(...dirOption)
    .argument('<device>', 'UUID or serial')
    .action(guarded((key: string, o: { dir: string }) => relearnPcrs(o.dir, key).forEach(print)));
  device
    .command('set-mesh')
    .description("replace a device's mesh definition")
    .requiredOption(...dirOption)
    .argument('<device>', 'UUID or serial')
    .requiredOption('--mesh <file>', 'the mesh definition (YAML)')
    .action(guarded((key: string, o: { dir: string; mesh: string }) => setDeviceMesh(o.dir, key, o.mesh).forEach(print)));
  controller
    .command('export-config')
    .description("write a device's signed config bundle for side-channel delivery (USB stick, file)")
    .requiredOption(...dirOption)
    .requiredOption('--device <device>', 'UUID or serial')
    .requiredOption('--out <file>', 'the bundle file to write')
    .option('--version <n>', "the bundle version (default: the device's next)")
    .action(guarded(async (o: { dir: string; device: string; out: string; version?: string }) => (await exportBundle(o)).forEach(print)));
  controller
    .command('onboarding-cert')
    .description('create an onboarding certificate and key for a device image (what EVE bakes into /config)')
    .requiredOption('--cert <file>', 'where to write the certificate (PEM)')
    .requiredOption('--key <file>', 'where to write the key (PEM, mode 0600)')
    .option('--name <cn>', 'common name', 'lispnode onboarding')
    .action(
      guarded(async (o: { cert: string; key: string; name: string }) => {
        const pair = await createOnboardingCert({ commonName: o.name, now: new Date(), random: (n) => randomBytes(n) });
        writeFileSync(o.key, pair.keyPem, { mode: 0o600, flag: 'wx' });
        writeFileSync(o.cert, pair.certPem, { flag: 'wx' });
        print(`onboarding certificate ${o.cert}, key ${o.key}`);
      }),
    );
}
