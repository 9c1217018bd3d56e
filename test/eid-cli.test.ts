// `lispnode eid …` against independent tools: OpenSSL derives the same EVE crypto-EID from the
// public key, and verifies what `eid sign` prints.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { parseIpv6 } from '../src/lisp/ip-text.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lispnode-eid-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function lispnode(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function openssl(args: string[], input?: Uint8Array): Buffer {
  return execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Raw r||s (64 bytes) as the DER ECDSA-Sig-Value OpenSSL expects. */
function derSignature(raw: Uint8Array): Buffer {
  const integer = (b: Uint8Array): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = Buffer.from(b.subarray(i));
    const body = (v[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.of(0), v]) : v;
    return Buffer.concat([Buffer.of(0x02, body.length), body]);
  };
  const seq = Buffer.concat([integer(raw.subarray(0, 32)), integer(raw.subarray(32))]);
  return Buffer.concat([Buffer.of(0x30, seq.length), seq]);
}

test('eid derive agrees with OpenSSL over IID || prefix || SPKI DER', () => {
  const keyFile = join(dir, 'eid.pem');
  const created = lispnode('eid', 'new', '--iid', '1000', '--key', keyFile, '--json');
  assert.equal(created.status, 0, created.stderr);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'the private key is readable by its owner only');
  const pubFile = join(dir, 'eid.pub.pem');
  writeFileSync(pubFile, openssl(['pkey', '-in', keyFile, '-pubout']));
  const spki = openssl(['pkey', '-pubin', '-in', pubFile, '-outform', 'DER']);
  // The independent computation: sha256(00 00 03 e8 || fd || SPKI DER), EID = fd || first 15 bytes.
  const digest = openssl(['dgst', '-sha256', '-binary'], Buffer.concat([Buffer.from('000003e8fd', 'hex'), spki]));
  const expected = Buffer.concat([Buffer.of(0xfd), digest.subarray(0, 15)]);
  const derived = lispnode('eid', 'derive', '--iid', '1000', '--pubkey', pubFile, '--json');
  assert.equal(derived.status, 0, derived.stderr);
  const fields = JSON.parse(derived.stdout) as { eid: string; 'hash-eid': string };
  assert.equal(Buffer.from(parseIpv6(fields.eid.replace('[1000]', '')) ?? []).toString('hex'), expected.toString('hex'));
  assert.equal((JSON.parse(created.stdout) as { eid: string }).eid, fields.eid, 'eid new and eid derive agree');
  assert.match(fields['hash-eid'], /^\[1000\]'hash-[0-9a-f]{2}(:[0-9a-f]{4}){7}'$/);
});

test('eid sign output verifies with OpenSSL given the public key', () => {
  const keyFile = join(dir, 'sign.pem');
  assert.equal(lispnode('eid', 'new', '--iid', '7', '--key', keyFile).status, 0);
  const pubFile = join(dir, 'sign.pub.pem');
  writeFileSync(pubFile, openssl(['pkey', '-in', keyFile, '-pubout']));
  const derived = JSON.parse(lispnode('eid', 'derive', '--iid', '7', '--pubkey', pubFile, '--json').stdout) as { eid: string };
  const signed = lispnode('eid', 'sign', '--iid', '7', '--key', keyFile);
  assert.equal(signed.status, 0, signed.stderr);
  const raw = Buffer.from(signed.stdout.trim(), 'base64');
  assert.equal(raw.length, 64);
  const message = join(dir, 'message');
  writeFileSync(message, derived.eid); // "[7]fd…": exactly the signed text
  const sig = join(dir, 'sig.der');
  writeFileSync(sig, derSignature(raw));
  const verified = spawnSync('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', sig, message], { encoding: 'utf8' });
  assert.equal(verified.stdout.trim(), 'Verified OK');
  // And our own verify, with the binding check, agrees; a wrong IID does not.
  const ok = lispnode('eid', 'verify', '--iid', '7', '--pubkey', pubFile, '--eid', derived.eid, '--signature', signed.stdout.trim(), '--binding');
  assert.equal(ok.status, 0, ok.stdout);
  const wrong = lispnode('eid', 'verify', '--iid', '8', '--pubkey', pubFile, '--eid', derived.eid, '--signature', signed.stdout.trim());
  assert.equal(wrong.status, 1);
  assert.match(wrong.stdout, /INVALID/);
});

test('eid commands name the option and the problem on bad input', () => {
  const cases: readonly (readonly [string[], RegExp])[] = [
    [['eid', 'derive', '--iid', 'x', '--pubkey', '/nonexistent'], /--iid: expected an instance-id/],
    [['eid', 'derive', '--iid', '1', '--pubkey', '/nonexistent'], /--pubkey \/nonexistent: cannot read \(ENOENT\)/],
    [['eid', 'derive', '--iid', '1', '--prefix', 'fd00::/12', '--pubkey', CLI], /--prefix: the length must be a multiple of 8/],
    [['eid', 'derive', '--iid', '1', '--derivation', 'orchid', '--pubkey', CLI], /--derivation: expected 'eve' or 'lispers'/],
    [['eid', 'derive', '--iid', '1', '--pubkey', CLI], /--pubkey .*: not a P-256 public key/],
    [['eid', 'sign', '--iid', '1', '--key', CLI], /--key .*: not a P-256 private key/],
  ];
  for (const [args, message] of cases) {
    const r = lispnode(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, message);
  }
  for (const sub of ['new', 'derive', 'sign', 'verify']) assert.match(lispnode('eid', sub, '--help').stdout, /^Usage: lispnode eid/);
});
