// `npm run bench [-- codec|cipher|map-server|overlay|tpm …]`: every benchmark (or the named ones), printed as
// medians with ratios against same-run baselines.
import { cpus } from 'node:os';
import { cipherBenchmarks } from './cipher.bench.js';
import { codecBenchmarks } from './codec.bench.js';
import { mapServerBenchmarks } from './map-server.bench.js';
import { overlayBenchmarks } from './overlay.bench.js';
import { tpmBenchmarks } from './tpm.bench.js';

const print = (line: string): void => void process.stdout.write(`${line}\n`);
const all = ['codec', 'cipher', 'map-server', 'overlay', 'tpm'] as const;
type Name = (typeof all)[number];
const isName = (name: string): name is Name => (all as readonly string[]).includes(name);

const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !isName(name));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')} (expected any of: ${all.join(', ')})\n`);
  process.exit(2);
}
const selected = new Set<Name>(requested.length === 0 ? all : requested.filter(isName));

print(`lispnode benchmarks — node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}`);
if (selected.has('codec') || selected.has('cipher') || selected.has('map-server')) print('medians of 5 interleaved runs after a warm-up\n');
if (selected.has('codec')) {
  codecBenchmarks(print);
  print('');
}
if (selected.has('cipher')) {
  cipherBenchmarks(print);
  print('');
}
if (selected.has('map-server')) await mapServerBenchmarks(print);
if (selected.has('overlay') && (await overlayBenchmarks(print)) === 'failed') process.exitCode = 1;
if (selected.has('tpm')) {
  print('');
  await tpmBenchmarks(print);
}
