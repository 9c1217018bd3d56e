// End to end: two lispnode xTRs in network namespaces, real TUN devices and UDP sockets. IPv4 and
// IPv6 EIDs ping both ways, encrypted (suite 5) and clear; a capture of the underlay never shows
// the marker sent inside the pings when encrypted, and tshark sees LISP data with key-id bits;
// afterwards nothing the test created is left.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { NetnsLab, run } from '../src/node/lab/netns-lab.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices';

const MARKER = 'lispnode-marker';
const MARKER_HEX = Buffer.from(MARKER).toString('hex');

const NODES = [
  { name: 'a', locator: '198.18.0.1', eids: [{ prefix: '192.0.2.0/28', address: '192.0.2.1' }, { prefix: '2001:db8:1::/64', address: '2001:db8:1::1' }] },
  { name: 'b', locator: '198.18.0.2', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.17' }, { prefix: '2001:db8:2::/64', address: '2001:db8:2::1' }] },
] as const;

const labs: NetnsLab[] = [];
after(async () => {
  for (const lab of labs) await lab.destroy();
});

async function ping(lab: NetnsLab, from: string, to: string): Promise<string> {
  return run(lab.node(from).namespace, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '-p', MARKER_HEX, to]);
}

for (const encryption of ['required', 'off'] as const) {
  test(`two namespaced nodes, ${encryption === 'required' ? 'encrypted (suite 5)' : 'clear'}: IPv4 and IPv6 EIDs ping both ways`, { skip, timeout: 120_000 }, async () => {
    const lab = await NetnsLab.create({ nodes: NODES, encryption });
    labs.push(lab);
    const warmUp = (): Promise<string> => run(lab.node('a').namespace, 'ping', ['-c', '1', '-W', '1', '192.0.2.17']);
    const file = await lab.capture('a', warmUp, async () => {
      for (const [from, to] of [['a', '192.0.2.17'], ['b', '192.0.2.1'], ['a', '2001:db8:2::1'], ['b', '2001:db8:1::1']] as const) {
        const out = await ping(lab, from, to);
        assert.match(out, / 0% packet loss/, `${from} -> ${to}\n${out}`);
      }
    });
    const bytes = readFileSync(file);
    const fields = (await run(undefined, 'tshark', ['-r', file, '-Y', 'lisp-data', '-T', 'fields', '-e', 'lisp-data.flags', '-e', 'udp.dstport'])).trim().split('\n').filter(Boolean);
    assert.ok(fields.length >= 24, `tshark decodes the pings as LISP data (${fields.length} packets)`);
    const keyIds = new Set(fields.map((l) => Number(l.split('\t')[0]) & 0x03));
    if (encryption === 'required') {
      assert.equal(bytes.includes(MARKER), false, 'the marker never appears on the underlay');
      assert.deepEqual([...keyIds], [1], 'every data packet carries key-id 1');
    } else {
      assert.equal(bytes.includes(MARKER), true, 'in clear the marker is visible (the check above is meaningful)');
      assert.deepEqual([...keyIds], [0]);
    }
    const a = await lab.stats('a');
    const b = await lab.stats('b');
    assert.ok(a.tun.out >= 12 && b.tun.out >= 12, 'both ETRs delivered into their TUN');
    assert.deepEqual(Object.keys(b.drops).filter((r) => r.startsWith('etr-')), [], 'no ETR drops');
    await lab.destroy();
    assert.deepEqual(await lab.leftovers(), [], 'no namespace or process left');
    labs.splice(labs.indexOf(lab), 1);
  });
}
