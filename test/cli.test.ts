// `lispnode decode` and `lispnode demo` as an operator runs them: the compiled CLI in a child process.
// The demo's overlay part needs root; as root it is also run as `nobody` to check the fallback.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
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

const isRoot = process.getuid?.() === 0;

/** `lispnode demo` as `uid` (default: ours), bounded: on timeout it gets SIGTERM, which makes it tear its lab down. */
function demo(uid?: number): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'demo'], { encoding: 'utf8', timeout: 90_000, ...(uid === undefined ? {} : { uid, gid: uid }) });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The one-line-per-capture summary that ends every demo. */
function assertCaptureSummary(stdout: string): void {
  assert.match(stdout, /^== Captures: /m);
  assert.match(stdout, /^oor-hub\.pcap: 68 frames, 68 LISP packets, 0 decode errors; site key check: 8 map-register authentic, 8 map-notify authentic$/m);
  const lines = stdout.split('\n').filter((l) => /^\S+\.pcap: /.test(l));
  assert.equal(lines.length, 5, 'one line per bundled capture');
  for (const line of lines) assert.match(line, /: \d+ frames, \d+ LISP packets, 0 decode errors(; site key check: (\d+ map-(register|notify) authentic(, )?)+)?$/);
  assert.doesNotMatch(stdout, /DECODE ERROR|mac-mismatch|Map-Register \[/, 'a summary, not the packet listing');
}

test('demo builds an encrypted two-node overlay, pings and measures across it, tears it down, then summarises the captures', { skip: isRoot ? false : 'needs root (CAP_NET_ADMIN) for network namespaces and TUN devices', timeout: 120_000 }, () => {
  const { status, stdout, stderr } = demo();
  assert.equal(status, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /^== Overlay: .*suite 5/m);
  assert.match(stdout, /^ping 192\.0\.2\.1 -> 192\.0\.2\.17 \(IPv4\): 5\/5 replies, 0% loss, rtt min\/avg\/max [\d.]+\/[\d.]+\/[\d.]+ ms$/m);
  assert.match(stdout, /^ping 2001:db8:1::1 -> 2001:db8:2::1 \(IPv6\): 5\/5 replies, 0% loss, rtt min\/avg\/max [\d.]+\/[\d.]+\/[\d.]+ ms$/m);
  const throughput = /^iperf3 TCP 192\.0\.2\.1 -> 192\.0\.2\.17, 3 s: ([\d.]+) ([MG])b\/s received/m.exec(stdout);
  assert.ok(throughput, 'a throughput figure');
  assert.ok(Number(throughput[1]) * (throughput[2] === 'G' ? 1000 : 1) > 1, 'more than 1 Mb/s went through');
  const number = (text: string | undefined): number => Number((text ?? '').replaceAll(',', ''));
  for (const [from, to] of [['a', 'b'], ['b', 'a']] as const) {
    const counters = new RegExp(`^  ${from} -> ${to}: ${from} read ([\\d,]+) packets / [\\d.]+ k?[MG]?B from its TUN and sent ([\\d,]+) / [\\d.]+ k?[MG]?B; ${to} received ([\\d,]+) / [\\d.]+ k?[MG]?B and delivered ([\\d,]+) / [\\d.]+ k?[MG]?B into its TUN$`, 'm').exec(stdout);
    assert.ok(counters, `counters ${from} -> ${to}\n${stdout}`);
    const [read, sent, received, delivered] = counters.slice(1).map(number);
    assert.ok((sent ?? 0) >= 10 && (sent ?? 0) <= (read ?? 0), `${from} sent what it read from its TUN`);
    assert.ok((delivered ?? 0) >= 10 && (delivered ?? 0) <= (received ?? 0), `${to} delivered what it received`);
  }
  assert.match(stdout, /^ {2}drops by reason: a: .+; b: .+$/m);
  assert.match(stdout, /^map-server ms \(198\.18\.0\.10\): 4 registrations/m);
  assert.match(stdout, /^resolution: both xTRs resolved each other through the map-server/m);
  const dropLine = /^ {2}drops by reason: (.+)$/m.exec(stdout)?.[1] ?? '';
  assert.doesNotMatch(dropLine.replace(/etr-unknown-source \d+/g, ''), /etr-/, 'no ETR drops but the first packets of unresolved senders');
  assert.match(stdout, /^ {2}every peer encrypted: yes/m);
  const id = /netns (ln\w+)-a,/.exec(stdout)?.[1];
  assert.ok(id, 'the demo names its namespaces');
  assert.match(stdout, new RegExp(`^torn down: xTRs and map-server stopped, namespaces ${id}-\\{a,b,ms,u\\}`, 'm'));
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`${id}-`));
  assert.deepEqual(namespaces, [], 'no namespace of the demo is left');
  assert.ok(stdout.indexOf('== Overlay') < stdout.indexOf('== Captures'), 'the overlay first, then the captures');
  // The node part: onboarding, attestation, vault, tickets, and ECOs that reach each other.
  assert.match(stdout, /^onboarded, attested and ticketed in [\d.]+ s/m);
  assert.equal(stdout.match(/^ {3}n\d: controller connected; vault unlocked \(created and sealed\); attestation valid; ticket until /gm)?.length, 2, stdout);
  assert.match(stdout, /^map-server ms: 2 crypto-EIDs admitted with tickets/m);
  assert.match(stdout, /^ping fd[\da-f:]+ -> fd[\da-f:]+ \(ECO to ECO, encrypted\): 5\/5 replies, 0% loss$/m);
  const nodesId = /netns (ln\w+)-ctl,/.exec(stdout)?.[1];
  assert.match(stdout, new RegExp(`^torn down: controller, nodes, software TPMs and map-server stopped, namespaces ${nodesId ?? '?'}-\\* removed`, 'm'));
  assert.deepEqual(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`${nodesId ?? '?'}-`)), []);
  assert.match(stdout, /^== Where to look next$/m);
  assertCaptureSummary(stdout);
});

test('demo without root explains that the overlay needs CAP_NET_ADMIN and still summarises the captures', { skip: isRoot ? false : 'runs the demo as nobody, which needs root to switch to', timeout: 60_000 }, (t) => {
  const { status, stdout, stderr } = demo(65534);
  if (status !== 0 && /EACCES|permission denied|Cannot find module/i.test(stderr)) return t.skip(`this checkout is not readable by nobody: ${stderr.split('\n')[0] ?? ''}`);
  assert.equal(status, 0, `${stdout}\n${stderr}`);
  assert.match(stdout, /needs root \(CAP_NET_ADMIN\)/);
  assert.match(stdout, /^== Nodes: .*\n {3}skipped: .*needs root/m);
  assert.doesNotMatch(stdout, /^ping /m);
  assertCaptureSummary(stdout);
});

test('every command answers --help', () => {
  for (const command of [[], ['decode'], ['demo'], ['version'], ['lig'], ['eid'], ['eid', 'new'], ['eid', 'derive'], ['eid', 'sign'], ['eid', 'verify']]) {
    const { status, stdout } = lispnode(...command, '--help');
    assert.equal(status, 0);
    assert.match(stdout, /^Usage: lispnode/);
  }
});
