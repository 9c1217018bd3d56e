// ICMP Fragmentation-Needed / ICMPv6 Packet-Too-Big built for the TUN, checked by tshark.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { packetTooBig, RateLimiter } from '../src/lisp/icmp-too-big.js';
import { fromHex } from '../src/lisp/bytes.js';
import { internetChecksum } from '../src/lisp/ip-udp.js';
import { LINKTYPE_RAW, writePcap } from '../src/node/pcap-file.js';

/** An IPv4 UDP packet 192.0.2.2 -> 192.0.2.18 of `size` bytes, DF set. */
function ipv4Packet(size: number, protocol = 17, payload0 = 0): Uint8Array {
  const p = new Uint8Array(size);
  p.set(fromHex('45000000000040004000000000c0000202c0000212'.slice(0, 40)));
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[9] = protocol;
  p.set([192, 0, 2, 2], 12);
  p.set([192, 0, 2, 18], 16);
  p[20] = payload0;
  if (protocol === 17) {
    // A plausible UDP header (ports 4000 -> 5000, its length), so the quoted packet dissects.
    p.set([0x0f, 0xa0, 0x13, 0x88, (size - 20) >> 8, (size - 20) & 0xff], 20);
  }
  const sum = internetChecksum(p.subarray(0, 20));
  p[10] = sum >> 8;
  p[11] = sum & 0xff;
  return p;
}

function ipv6Packet(size: number, nextHeader = 17, payload0 = 0): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x60;
  p[4] = (size - 40) >> 8;
  p[5] = (size - 40) & 0xff;
  p[6] = nextHeader;
  p[7] = 64;
  p.set(fromHex('20010db8000100000000000000000002'), 8);
  p.set(fromHex('20010db8000200000000000000000002'), 24);
  p[40] = payload0;
  if (nextHeader === 17) p.set([0x0f, 0xa0, 0x13, 0x88, (size - 40) >> 8, (size - 40) & 0xff], 40);
  return p;
}

test('Fragmentation-Needed and Packet-Too-Big decode in tshark with valid checksums and the MTU', () => {
  const v4 = packetTooBig(ipv4Packet(1500), 4, 1400);
  const v6 = packetTooBig(ipv6Packet(1500), 6, 1380);
  assert.ok(v4 && v6);
  assert.equal(v4.length, 576, 'IPv4 quotes up to 576 bytes in all');
  assert.equal(v6.length, 1280, 'IPv6 quotes up to the minimum MTU');
  assert.deepEqual([...v4.subarray(12, 20)], [192, 0, 2, 18, 192, 0, 2, 2], 'from the destination back to the source');
  const dir = mkdtempSync(join(tmpdir(), 'lispnode-icmp-'));
  try {
    const file = join(dir, 'ptb.pcap');
    writeFileSync(file, writePcap([v4, v6].map((data) => ({ timestampNs: 0n, data })), LINKTYPE_RAW));
    const rows = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'icmp.type', '-e', 'icmp.code', '-e', 'icmp.mtu', '-e', 'icmp.checksum.status', '-e', 'icmpv6.type', '-e', 'icmpv6.mtu', '-e', 'icmpv6.checksum.status', '-e', '_ws.malformed'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => l.split('\t'));
    assert.deepEqual(rows[0], ['3', '4', '1400', '1', '', '', '', '']);
    assert.deepEqual(rows[1], ['', '', '', '', '2', '1380', '1', '']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no ICMP error answers another ICMP error or a later fragment', () => {
  assert.equal(packetTooBig(ipv4Packet(1500, 1, 3), 4, 1400), undefined, 'ICMP destination unreachable');
  assert.ok(packetTooBig(ipv4Packet(1500, 1, 8), 4, 1400), 'an echo request is answered');
  const fragment = ipv4Packet(1500);
  fragment[7] = 0x10;
  assert.equal(packetTooBig(fragment, 4, 1400), undefined);
  assert.equal(packetTooBig(ipv6Packet(1500, 58, 1), 6, 1380), undefined, 'ICMPv6 error');
  assert.ok(packetTooBig(ipv6Packet(1500, 58, 128), 6, 1380), 'an echo request is answered');
});

test('the rate limiter allows a burst, then the refill rate', () => {
  const limiter = new RateLimiter(10, 3);
  assert.deepEqual([0, 0, 0, 0].map(() => limiter.allow(1000)), [true, true, true, false]);
  assert.equal(limiter.allow(1050), false);
  assert.equal(limiter.allow(1100), true);
  assert.equal(limiter.allow(1100), false);
});
