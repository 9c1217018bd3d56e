#!/usr/bin/env node
// lispnode <command>: the operator's entry point. Commands stay thin: they read files and
// arguments, call the pure modules, and print.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { hasDecodeError, packetJson, packetLine } from './node/decode-listing.js';
import { runDemo } from './node/demo.js';
import { lispPackets } from './node/lisp-capture.js';
import { readCapture } from './node/pcap-file.js';

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
  .description('decode the bundled OOR and lispers.net captures and check their Map-Register authentication')
  .action(() => {
    if (!runDemo(print)) process.exitCode = 1;
  });

program
  .command('version')
  .description('print the version')
  .action(() => print(packageJson.version));

program.parse();
