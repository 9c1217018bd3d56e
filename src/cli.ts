#!/usr/bin/env node
// lispnode <command>: the operator's entry point. Commands stay thin: they read files and
// arguments, call the pure modules, and print.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { hasDecodeError, packetJson, packetLine } from './node/decode-listing.js';
import { runDemo } from './node/demo.js';
import { CommandError, eidDerive, eidNew, eidSign, eidVerify, type EidOptions } from './node/eid-command.js';
import { ConfigError } from './node/config/config-error.js';
import { loadMapServerConfig } from './node/config/map-server-config.js';
import { loadXtrConfig } from './node/config/xtr-config.js';
import { MapServerNode } from './node/map-server/map-server-node.js';
import { createLogger } from './node/log.js';
import { parseLig, runLig, type LigOptions } from './node/lig.js';
import { dataKeyPublic, newDataKey } from './node/xtr/data-key.js';
import { XtrNode } from './node/xtr/xtr-node.js';
import { lispPackets } from './node/lisp-capture.js';
import { readCapture } from './node/pcap-file.js';
import { addControlCommands } from './control-cli.js';

const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function fail(message: string): never {
  process.stderr.write(`lispnode: ${message}\n`);
  process.exit(2);
}

const program = new Command()
  .name('lispnode')
  .description('Userspace LISP overlay node: crypto-EIDs, encrypted data plane, TPM-rooted identity')
  .version(packageJson.version, '-V, --version');

program
  .command('decode')
  .description('print every LISP packet (data and control, ECM inner message included) of a pcap or pcapng file')
  .argument('<file>', 'capture file (pcap or pcapng; Ethernet, Linux SLL/SLL2, raw IP or loopback)')
  .option('--json', 'one JSON object per packet instead of one line')
  .addHelpText('after', '\nExit status: 0 when every LISP packet decoded, 1 when some did not, 2 when the file cannot be read.')
  .action((file: string, options: { json?: boolean }) => {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      fail(`cannot read ${file}: ${(error as Error).message}`);
    }
    const capture = readCapture(bytes);
    if (!capture.ok) fail(`${file}: not a readable capture (${capture.error.reason}): ${capture.error.message}`);
    const packets = lispPackets(capture.packets);
    for (const p of packets) print(options.json ? packetJson(p) : packetLine(p));
    if (packets.some(hasDecodeError)) process.exitCode = 1;
  });

program
  .command('demo')
  .description('build a two-node encrypted overlay in network namespaces (needs root), ping and measure across it, tear it down; then decode the bundled OOR and lispers.net captures and check their authentication')
  .addHelpText('after', '\nExit status: 0 when everything that ran worked (without root the overlay part is skipped), 1 otherwise.')
  .action(async () => {
    if (!(await runDemo(print))) process.exitCode = 1;
  });

/** Runs a command body; a CommandError is the user's mistake: message and exit 2. */
function guarded<A extends unknown[]>(body: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      body(...args);
    } catch (error) {
      if (error instanceof CommandError) fail(error.message);
      throw error;
    }
  };
}

const eid = program.command('eid').description('crypto-EID keys, derivation and signatures');

function eidCommand(name: string, description: string): Command {
  return eid
    .command(name)
    .description(description)
    .requiredOption('--iid <n>', 'instance-id (decimal)')
    .option('--prefix <prefix>', 'crypto-EID prefix', 'fd00::/8')
    .option('--derivation <kind>', "'eve' (binary hash input, the default) or 'lispers' (lispers.net text input)", 'eve');
}

eidCommand('new', 'create a P-256 key pair and print its EID, hash-EID name and public key')
  .option('--key <file>', 'write the private key (PEM, mode 0600) here; without it the PEM is printed')
  .option('--json', 'print one JSON object')
  .action(guarded((o: EidOptions & { key?: string; json?: boolean }) => eidNew(o).forEach(print)));

eidCommand('derive', 'print the EID and hash-EID name of a public key')
  .requiredOption('--pubkey <file>', 'public key, private key or certificate (PEM or DER)')
  .option('--json', 'print one JSON object')
  .action(guarded((o: EidOptions & { pubkey: string; json?: boolean }) => eidDerive(o).forEach(print)));

eidCommand('sign', 'print the EID signature: ECDSA P-256/SHA-256 over "[iid]eid", raw r||s in base64')
  .requiredOption('--key <file>', 'the EID private key (PEM or PKCS#8 DER)')
  .option('--eid <address>', 'the EID to sign (default: the EID derived from the key)')
  .action(guarded((o: EidOptions & { key: string; eid?: string }) => eidSign(o).forEach(print)));

eidCommand('verify', 'check an EID signature (exit 0 valid, 1 invalid)')
  .requiredOption('--pubkey <file>', 'public key, private key or certificate (PEM or DER)')
  .requiredOption('--eid <address>', 'the signed EID')
  .requiredOption('--signature <base64>', 'the signature')
  .option('--binding', 'also check that the EID is derived from the key')
  .action(
    guarded((o: EidOptions & { pubkey: string; eid: string; signature: string; binding?: boolean }) => {
      const { lines, valid } = eidVerify(o);
      lines.forEach(print);
      if (!valid) process.exitCode = 1;
    }),
  );

/** A running role: counters on SIGUSR1, clean stop on SIGTERM/SIGINT. */
interface Daemon {
  stats(): unknown;
  stop(): void | Promise<void>;
}

/** Loads the config (a ConfigError exits 2 with its message), starts the role, wires the signals. */
async function runDaemon<C>(load: () => C, start: (config: C, log: ReturnType<typeof createLogger>) => Promise<Daemon>): Promise<void> {
  const log = createLogger();
  let config: C;
  try {
    config = load();
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
  let daemon: Daemon;
  try {
    daemon = await start(config, log);
  } catch (error) {
    fail(`cannot start: ${(error as Error).message}`);
  }
  process.on('SIGUSR1', () => print(JSON.stringify({ stats: daemon.stats() })));
  const stop = (signal: string): void => {
    log.log('info', 'stopping', { signal });
    Promise.resolve(daemon.stop()).then(
      () => process.exit(0),
      (error: unknown) => {
        log.log('error', 'teardown failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

program
  .command('xtr')
  .description('run the xTR data plane: TUN <-> encrypted LISP over UDP 4341 (SIGUSR1 prints counters, SIGTERM stops)')
  .requiredOption('--config <file>', 'xTR configuration (YAML, docs/configuration.md)')
  .action((o: { config: string }) => runDaemon(() => loadXtrConfig(o.config), (config, log) => XtrNode.start(config, log)));

program
  .command('map-server')
  .description('run the map-server: registrations on UDP 4342 (SIGUSR1 prints counters, SIGTERM stops and saves the snapshot)')
  .requiredOption('--config <file>', 'map-server configuration (YAML, docs/configuration.md)')
  .action((o: { config: string }) => runDaemon(() => loadMapServerConfig(o.config), (config, log) => MapServerNode.start(config, log)));

const datakey = program.command('datakey').description("the node's static X25519 data-plane key (until the control plane exchanges keys)");
datakey
  .command('new')
  .description('create a key file (PEM, mode 0600) and print its public key (base64) for the peers\' configs')
  .requiredOption('--key <file>', 'where to write the private key; never overwritten')
  .action(
    guarded((o: { key: string }) => {
      try {
        print(newDataKey(o.key));
      } catch (error) {
        throw new CommandError(`--key ${o.key}: cannot create (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      }
    }),
  );
datakey
  .command('show')
  .description('print the public key (base64) of a key file')
  .requiredOption('--key <file>', 'the private key file')
  .action(
    guarded((o: { key: string }) => {
      try {
        print(dataKeyPublic(o.key));
      } catch (error) {
        throw new CommandError(`--key ${o.key}: ${(error as Error).message}`);
      }
    }),
  );

program
  .command('lig')
  .description('the LISP Internet Groper: send an ECM Map-Request for <eid> to a map-resolver and print the Map-Reply (EID-prefix, TTL, action, locators, RTT)')
  .argument('<eid>', 'the EID to look up (IPv4 or IPv6 address)')
  .requiredOption('--map-resolver <address>', "the map-resolver (its UDP 4342)")
  .option('--source <rloc>', 'our RLOC: the ITR-RLOC and the socket address (default: the route\'s source towards the map-resolver)')
  .option('--iid <n>', 'instance-id (decimal)', '0')
  .option('--count <n>', 'attempts, each with a fresh nonce', '3')
  .option('--timeout <ms>', 'wait per attempt, in milliseconds', '2000')
  .option('--key <file>', "a P-256 crypto-EID private key (PEM): sign the Map-Request (lispers.net's signed Source-EID)")
  .option('--json', 'print one JSON object')
  .addHelpText('after', '\nExit status: 0 on a positive Map-Reply, 1 on a negative one or none, 2 on usage errors.')
  // Commander's own usage errors (a missing --map-resolver, an unknown option) exit 2 too: 1 means "no positive reply".
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
  .action(async (eidText: string, o: LigOptions) => {
    try {
      const result = await runLig(parseLig(eidText, o));
      result.lines.forEach(print);
      process.exitCode = result.exitCode;
    } catch (error) {
      if (error instanceof CommandError) fail(error.message);
      throw error;
    }
  });

addControlCommands(program);

program
  .command('version')
  .description('print the version')
  .action(() => print(packageJson.version));

await program.parseAsync();
