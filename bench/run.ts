// `npm run bench`: every benchmark, printed as medians with ratios against same-run baselines.
import { cpus } from 'node:os';
import { cipherBenchmarks } from './cipher.bench.js';
import { codecBenchmarks } from './codec.bench.js';

const print = (line: string): void => void process.stdout.write(`${line}\n`);
print(`lispnode benchmarks — node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}`);
print('medians of 5 interleaved runs after a warm-up\n');
codecBenchmarks(print);
print('');
cipherBenchmarks(print);
