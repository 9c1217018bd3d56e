// The attack suite's mutation flood, short version (`npm run attack` sends 1,000,000 per port):
// 50,000 mutated and random LISP datagrams (test/support/attack-flood.ts) at each of x2's UDP 4341
// and 4342 and the map-server's 4342, from the hostile host, while x1 pings x2. No daemon may exit,
// none may grow by more than 20 % past its warm-up memory, each must count every datagram it
// received under a reason (test/support/attack-accounting.ts), and the overlay must work again
// soon after (test/support/flood-check.ts has the checks). The seed is printed; set
// LISPNODE_ATTACK_SEED to run the same datagrams again. LISPNODE_ATTACK_SPARE_PORT0=1 leaves out
// the ECMs with inner UDP source port 0, to look past that known crash on code that still has it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attackLabPerFile } from './support/attack-lab.js';
import { describeFlood, floodAndCheck } from './support/flood-check.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';

const theLab = attackLabPerFile('atkf');

test('mutation flood: 50,000 datagrams at each of x2:4341, x2:4342, ms:4342: no exit, bounded memory, every datagram counted', { skip, timeout: 150_000 }, async (t) => {
  const seed = Number(process.env.LISPNODE_ATTACK_SEED ?? Date.now() % 2 ** 31);
  t.diagnostic(`seed ${seed}`);
  const sparePortZero = process.env.LISPNODE_ATTACK_SPARE_PORT0 === '1';
  if (sparePortZero) t.diagnostic('sparing the port-0 ECMs (LISPNODE_ATTACK_SPARE_PORT0=1)');
  const outcome = await floodAndCheck(await theLab(), { perPort: 50_000, perSecond: 9000, seed, warmUpPerPort: 10_000, sparePortZero });
  for (const line of describeFlood(outcome)) t.diagnostic(line);
  assert.deepEqual(outcome.failures, [], `the flood (seed ${seed}) got through`);
});
