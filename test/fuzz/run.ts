// `npm run fuzz [-- --inputs N --seed S]`: the long run (default 1,000,000 inputs).
import { parseArgs } from 'node:util';
import { fuzz } from './harness.js';

const { values } = parseArgs({
  options: { inputs: { type: 'string', default: '1000000' }, seed: { type: 'string', default: String(Date.now() % 2 ** 31) } },
});
const inputs = Number(values.inputs);
const seed = Number(values.seed);
if (!Number.isInteger(inputs) || inputs <= 0 || !Number.isInteger(seed)) {
  process.stderr.write('usage: npm run fuzz -- [--inputs N] [--seed S]\n');
  process.exit(2);
}
process.stdout.write(`fuzzing ${inputs} inputs, seed ${seed}\n`);
const report = fuzz({ inputs, seed });
const rate = Math.round(report.inputs / report.seconds);
process.stdout.write(
  `${report.inputs} inputs, ${report.decoderCalls} decoder calls in ${report.seconds.toFixed(1)} s (${rate} inputs/s, ${Math.round(report.decoderCalls / report.seconds)} calls/s)\n` +
    `accepted ${report.accepted}, rejected by reason:\n` +
    Object.entries(report.rejected)
      .sort(([, a], [, b]) => b - a)
      .map(([reason, n]) => `  ${reason.padEnd(40)} ${n}\n`)
      .join('') +
    `escaped exceptions: ${report.escapes.length}\n`,
);
for (const e of report.escapes) process.stdout.write(`  ${e.target}: ${e.error}\n    input ${e.inputHex}\n`);
process.exitCode = report.escapes.length === 0 ? 0 : 1;
