#!/usr/bin/env node
// lispnode <command>: the operator's entry point. Commands stay thin: they read files and
// arguments, call the pure modules, and print.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { hasDecodeError, packetJson, packetLine } from './node/decode-listing.js';
import { runDemo } from './node/demo.js';
import { CommandError, eidDerive, eidNew, eidSign, eidVerify, type EidOptions } from './node/eid-command.js';
import type { DaemonRole, OperationsConfig } from './node/config/operations-config.js';
import { loadMapServerConfig } from './node/config/map-server-config.js';
import { loadXtrConfig } from './node/config/xtr-config.js';
import { MapServerNode } from './node/map-server/map-server-node.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './node/log.js';
import { DaemonStartError, runDaemon, type DaemonSpec } from './node/ops/daemon-runner.js';
import { runStatus, type StatusCommandOptions } from './node/ops/status-command.js';
import { parseLig, runLig, type LigOptions } from './node/lig.js';
import { dataKeyPublic, newDataKey } from './node/xtr/data-key.js';
import { XtrNode } from './node/xtr/xtr-node.js';
import { lispPackets } from './node/lisp-capture.js';
import { runReplay, type ReplayCommandOptions } from './node/ops/replay-command.js';
import { runCaptureCommand, type CaptureCommandOptions } from './node/ops/capture-command.js';
import { readCapture } from './node/pcap-file.js';
import { addControlCommands } from './control-cli.js';
import { loadNodeConfig } from './node/config/node-config.js';
import { NodeDaemon } from './node/node-daemon.js';

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
  .command('capture')
  .description("write a pcap of the LISP packets a running xTR sends and receives on its underlay, and with --decrypted a second pcap of the inner packets in clear (asks the daemon over its capture socket)")
  .requiredOption('-w, --write <file>', 'the underlay pcap (LINKTYPE_RAW; mode 0600)')
  .option('--decrypted <file>', 'also write the decrypted inner packets here: SENSITIVE (the name must contain "decrypted"; mode 0600; never overwritten)')
  .option('--count <n>', 'stop after this many underlay packets')
  .option('--duration <seconds>', 'stop after this long')
  .option('--config <file>', "the daemon's config file: its capture socket is /run/lispnode/xtr-<file name>.capture.sock")
  .option('--name <name>', "the daemon's config name (xtr-<name>.capture.sock)")
  .option('--socket <path>', 'the capture socket itself')
  .addHelpText('after', '\nWithout --count or --duration, Ctrl-C stops. Without --config, --name or --socket, the only capture socket in /run/lispnode (LISPNODE_RUN_DIR) is used.\nExit status: 0 when the capture ran, 2 on usage errors or when the daemon cannot be reached.')
  .action(async (o: CaptureCommandOptions) => {
    const interrupted = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    try {
      (await runCaptureCommand(o, { interrupted, warn: (line) => process.stderr.write(`lispnode: ${line}\n`) })).forEach(print);
    } catch (error) {
      if (error instanceof CommandError) fail(error.message);
      throw error;
    }
  });

/** Commander argParser for a repeatable option. */
const collect = (value: string, previous: readonly string[]): string[] => [...previous, value];

program
  .command('replay')
  .description("re-send the LISP packets (data to the target's 4341, control to its 4342) of pcap/pcapng captures at a node, in capture order, optionally from their original source addresses")
  .argument('<files...>', 'capture files (pcap or pcapng), replayed one after the other')
  .requiredOption('--to <address>', "the target's locator (IPv4 or IPv6)")
  .option('--from-original-sources', "keep each packet's outer source address and port (a transparent socket: needs CAP_NET_ADMIN; the address need not be this host's)")
  .option('--rate <pps>', 'packets per second; 0 = as fast as possible', '100')
  .option('--kind <kind>', 'all, data (UDP 4341) or control (UDP 4342)', 'all')
  .option('--only-source <address>', 'only packets from this original outer source (repeatable)', collect, [])
  .option('--only-destination <address>', 'only packets to this original outer destination (repeatable)', collect, [])
  .option('--unique', 'skip a packet identical to one already sent (a capture on a bridge holds each packet twice)')
  .option('--data-port <port>', 'where data packets go at the target', '4341')
  .option('--control-port <port>', 'where control packets go at the target', '4342')
  .option('--replies <ms>', 'after the last packet, wait this long and print the replies that reached our sockets', '0')
  .option('--json', 'print one JSON object (replies with their payload in base64)')
  .addHelpText('after', '\nExit status: 0 when every selected packet was sent, 1 when some were not, 2 on usage errors or an unreadable capture.')
  .action(async (files: string[], o: ReplayCommandOptions) => {
    try {
      const result = await runReplay(files, o);
      result.lines.forEach(print);
      process.exitCode = result.exitCode;
    } catch (error) {
      if (error instanceof CommandError) fail(error.message);
      throw error;
    }
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

eidCommand('derive', 'print the EID and hash-EID name of a public key (alias: show)')
  .alias('show')
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

/** The log options both daemon roles take; they win over the configuration file's `log`. */
function daemonCommand(name: DaemonRole | 'run', description: string, configHelp: string): Command {
  return program
    .command(name)
    .description(description)
    .requiredOption('--config <file>', configHelp)
    .addOption(new Option('--log-level <level>', 'debug, info, warn or error (default: the file\'s log.level, else info)').choices(LOG_LEVELS))
    .addOption(new Option('--log-format <format>', 'json or text (default: the file\'s log.format, else json; LISPNODE_LOG=text)').choices(LOG_FORMATS));
}

interface DaemonOptions {
  config: string;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
}

/** Runs a role until SIGTERM (ops/daemon-runner.ts); a configuration or start failure exits 2. */
async function daemon<C extends { readonly ops: OperationsConfig }>(role: DaemonRole, o: DaemonOptions, load: (file: string) => C, start: DaemonSpec<C>['start']): Promise<void> {
  try {
    await runDaemon({ role, load: () => load(o.config), start, logOverrides: { level: o.logLevel, format: o.logFormat }, print });
  } catch (error) {
    if (error instanceof DaemonStartError) fail(error.message);
    throw error;
  }
}

daemonCommand('xtr', 'run the xTR data plane: TUN <-> encrypted LISP over UDP 4341 (SIGHUP reloads the configuration, SIGUSR1 prints counters, SIGTERM deregisters and stops)', 'xTR configuration (YAML, docs/configuration.md)').action(
  (o: DaemonOptions) => daemon('xtr', o, loadXtrConfig, (config, { log, metrics }) => XtrNode.start(config, log, metrics)),
);

daemonCommand('map-server', 'run the map-server: registrations on UDP 4342 (SIGHUP reloads sites and keys, SIGUSR1 prints counters, SIGTERM stops and saves the snapshot)', 'map-server configuration (YAML, docs/configuration.md)').action(
  (o: DaemonOptions) => daemon('map-server', o, loadMapServerConfig, (config, { log, metrics }) => MapServerNode.start(config, log, metrics)),
);

daemonCommand(
  'run',
  "run the node: identity, onboarding, attestation and the vault, the controller's signed config, and its mesh network instance as an xTR (SIGHUP reloads the poll interval and log settings, SIGUSR1 prints state, SIGTERM stops)",
  'node configuration (YAML, docs/node.md)',
).action((o: DaemonOptions) => daemon('node', o, loadNodeConfig, (config, { log, metrics }) => NodeDaemon.start(config, log, metrics)));

program
  .command('status')
  .description("show a running daemon's state through its status socket: for an xTR the map-cache, sessions, registrations, drops and traffic; for a map-server its sites and registrations; for a node its controller, attestation, vault and ticket state and its mesh xTR")
  .option('--socket <path>', 'the status socket (default: the only one in /run/lispnode)')
  .option('--json', 'print the report as one JSON object')
  .option('--limit <n>', 'at most this many map-cache entries or registrations (default 1000)')
  .option('--timeout <ms>', 'how long to wait for the answer', '5000')
  .addHelpText('after', '\nExit status: 0 with a report, 1 when no daemon answered (missing socket, refused, no answer), 2 on usage errors.')
  .action(async (o: StatusCommandOptions) => {
    const result = await runStatus(o);
    result.lines.forEach(print);
    if (result.error !== undefined) process.stderr.write(`lispnode: status: ${result.error}\n`);
    process.exitCode = result.exitCode;
  });

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
