// `npm run attack [-- --per-port N --offers N --per-second R --seed S --spare-port-zero]`: the long
// attack run of issue 12 ("Done when" 2 and 3) in the namespace lab (test/support/attack-lab.ts).
//   1. The mutation flood: N (default 1,000,000) mutated and random datagrams at each of x2's UDP
//      4341 and 4342 and the map-server's 4342, while x1 pings x2 (test/support/flood-check.ts).
//   2. N (default 1,000,000) key offers naming fake locators at x2 (test/support/key-state-check.ts):
//      the lab may use 198.18.0.0/15 only, so the offers cycle through its 130,816 addresses
//      outside the lab's /24, each round under the next key-id.
// Prints the figures of each (sent, counted, top reasons, memory, ping loss) and exits 1 when a
// check failed, 2 on bad arguments.
import { parseArgs } from 'node:util';
import { AttackLab } from '../support/attack-lab.js';
import { describeFlood, floodAndCheck } from '../support/flood-check.js';
import { describeKeyState, fakeLocatorOffers } from '../support/key-state-check.js';

const { values } = parseArgs({
  options: {
    'per-port': { type: 'string', default: '1000000' },
    offers: { type: 'string', default: '1000000' },
    'per-second': { type: 'string', default: '9000' },
    'offers-per-second': { type: 'string', default: '2000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    'spare-port-zero': { type: 'boolean', default: false },
  },
});
const perPort = Number(values['per-port']);
const offers = Number(values.offers);
const perSecond = Number(values['per-second']);
const offersPerSecond = Number(values['offers-per-second']);
const seed = Number(values.seed);
if (![perPort, offers, perSecond, offersPerSecond].every((n) => Number.isInteger(n) && n >= 0) || !Number.isInteger(seed) || perSecond === 0 || offersPerSecond === 0) {
  process.stderr.write('usage: npm run attack -- [--per-port N] [--offers N] [--per-second R] [--offers-per-second R] [--seed S] [--spare-port-zero]\n');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  process.stderr.write('npm run attack needs root (network namespaces, TUN devices)\n');
  process.exit(2);
}

const out = (line: string): boolean => process.stdout.write(`${line}\n`);
const failures: string[] = [];
out(`attack run: ${perPort} datagrams per port at ${perSecond}/s in all, ${offers} key offers at ${offersPerSecond}/s, seed ${seed}${values['spare-port-zero'] ? ', sparing port-0 ECMs' : ''}`);
const lab = await AttackLab.start(`atkr${process.pid % 1000}`);
// An interrupted run still takes its namespaces and daemons down.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    out(`\n${signal}: tearing the lab down`);
    void lab.destroy().finally(() => process.exit(130));
  });
}
try {
  if (perPort > 0) {
    out('\nmutation flood');
    const flood = await floodAndCheck(lab, { perPort, perSecond, seed, warmUpPerPort: Math.min(20_000, perPort), sparePortZero: values['spare-port-zero'] });
    for (const line of describeFlood(flood)) out(`  ${line}`);
    failures.push(...flood.failures);
    await lab.revive();
  }
  if (offers > 0) {
    out('\nkey offers from fake locators');
    // The documented bound (KEY_OFFER_PEAK_BOUND_KB), whatever the number of offers.
    const keys = await fakeLocatorOffers(lab, { offers, perSecond: offersPerSecond });
    out(`  ${describeKeyState(keys)}`);
    failures.push(...keys.failures);
  }
} finally {
  await lab.destroy();
}
out(failures.length === 0 ? '\nall checks held' : `\n${failures.length} checks failed:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
process.exitCode = failures.length === 0 ? 0 : 1;
