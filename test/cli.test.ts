// `lispnode decode` and `lispnode demo` as an operator runs them: the compiled CLI in a child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const PCAP = (name: string): string => fileURLToPath(new URL(`../../pcap/${name}`, import.meta.url));

function lispnode(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('decode prints the registrations, notifies, requests, replies and data of oor-hub.pcap', () => {
  const { status, stdout } = lispnode('decode', PCAP('oor-hub.pcap'));
  assert.equal(status, 0);
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 68);
  const count = (pattern: RegExp): number => lines.filter((l) => pattern.test(l)).length;
  assert.equal(count(/ Map-Register \[M\] nonce 0x[0-9a-f]{16} key-id 0 alg 1 auth-len 20 records 1: (192\.0\.2\.(0|16)\/28|2001:db8:[12]::\/64) /), 8);
  assert.equal(count(/ Map-Notify nonce /), 8);
  assert.equal(count(/ ECM inner .* \| Map-Request nonce /), 16);
  assert.equal(count(/ Map-Reply nonce .* A -> 198\.18\.0\.1[12] \(p1 w100 LR\)$/), 8);
  assert.equal(count(/ LISP-data clear \| IPv4 192\.0\.2\.\d+ -> 192\.0\.2\.\d+ ICMP [08]\/0$/), 14);
  assert.equal(count(/ LISP-data clear \| IPv6 2001:db8:[12]::2 -> 2001:db8:[12]::2 ICMPv6 12[89]\/0$/), 14);
  assert.ok(!stdout.includes('DECODE ERROR'));
});

test('decode --json prints one parseable object per packet', () => {
  const { status, stdout } = lispnode('decode', '--json', PCAP('lispers-crypto-eid-register.pcap'));
  assert.equal(status, 0);
  const objects = stdout.trim().split('\n').map((l) => JSON.parse(l) as { frame: number; kind: string; message: { value: { type: string; nonce: string } } });
  assert.deepEqual(objects.map((o) => o.message.value.type), ['map-register', 'map-notify', 'map-register', 'map-notify']);
  assert.equal(objects[0]?.message.value.nonce, '0x01dfdfdfddccbbaa');
});

test('decode reports unreadable and malformed input with a non-zero exit', () => {
  const missing = lispnode('decode', '/nonexistent/file.pcap');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read \/nonexistent\/file\.pcap/);
  const dir = mkdtempSync(join(tmpdir(), 'lispnode-cli-'));
  try {
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, 'this is not a capture');
    const bad = lispnode('decode', junk);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /bad-magic/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('demo decodes every bundled capture and authenticates every registration', () => {
  const { status, stdout } = lispnode('demo');
  assert.equal(status, 0, stdout);
  assert.match(stdout, /== oor-hub\.pcap: 68 frames, 68 LISP packets/);
  assert.match(stdout, /-- 0 decode errors; site key check: 8 map-register authentic, 8 map-notify authentic/);
  assert.doesNotMatch(stdout, /DECODE ERROR|mac-mismatch/);
});

test('every command answers --help', () => {
  for (const command of [[], ['decode'], ['demo'], ['version'], ['eid'], ['eid', 'new'], ['eid', 'derive'], ['eid', 'sign'], ['eid', 'verify']]) {
    const { status, stdout } = lispnode(...command, '--help');
    assert.equal(status, 0);
    assert.match(stdout, /^Usage: lispnode/);
  }
});
