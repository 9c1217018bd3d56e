// Logs: levels filter, JSON and text formats, and the redaction that keeps secrets out of them —
// by field name at any depth, byte strings always, and a whole loaded configuration with a site
// password and private keys in it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { loadXtrConfig } from '../src/node/config/xtr-config.js';
import { createLogger, isSecretName, redact, REDACTED } from '../src/node/log.js';
import { newDataKey } from '../src/node/xtr/data-key.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lispnode-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function capture(options: Parameters<typeof createLogger>[0] = {}): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ ...options, write: (l) => lines.push(l) }), lines };
}

test('levels: lines below the level are skipped; configure() changes level and format while running', () => {
  const { log, lines } = capture({ level: 'warn', format: 'json' });
  log.log('debug', 'd');
  log.log('info', 'i');
  log.log('warn', 'w', { n: 1 });
  log.log('error', 'e');
  assert.deepEqual(
    lines.map((l) => (JSON.parse(l) as { level: string; message: string }).message),
    ['w', 'e'],
  );
  const first = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  assert.equal(first.level, 'warn');
  assert.equal(first.n, 1);
  assert.match(String(first.time), /^\d{4}-\d\d-\d\dT/);
  log.configure({ level: 'debug', format: 'text' });
  log.log('debug', 'now visible', { peer: '198.18.0.2', counts: { a: 1 } });
  assert.match(lines.at(-1) ?? '', /^\S+ debug now visible peer=198\.18\.0\.2 counts=\{"a":1\}$/);
  assert.equal(log.level, 'debug');
  assert.equal(log.format, 'text');
});

test('redaction by field name, at any depth, in both formats; key-ids and counters stay readable', () => {
  for (const format of ['json', 'text'] as const) {
    const { log, lines } = capture({ format });
    log.log('info', 'm', {
      password: 'hunter2',
      nested: { siteKey: 'k1', 'private-key-file': '/etc/x.pem', list: [{ secret: 's3' }, { credential: 'c4' }, { token: 't5' }] },
      'key-id': 3,
      keyId: 4,
      'key-installed': 5,
      peer: '198.18.0.2',
    });
    const line = lines[0] ?? '';
    for (const secret of ['hunter2', 'k1', '/etc/x.pem', 's3', 'c4', 't5']) assert.ok(!line.includes(secret), `${format}: ${secret} leaked: ${line}`);
    assert.ok(line.includes(REDACTED));
    for (const kept of ['198.18.0.2', 'key-id', 'keyId', 'key-installed']) assert.ok(line.includes(kept), `${format}: ${kept} missing: ${line}`);
  }
  assert.deepEqual(
    ['key', 'password', 'site-secret', 'credentials', 'privateKey', 'private_key_file', 'sessionToken', 'salt', 'psk', 'auth-data'].filter((n) => !isSecretName(n)),
    [],
  );
  assert.deepEqual(['key-id', 'keyIds', 'key-installed', 'peer', 'locator', 'eid', 'mtu', 'nonce'].filter(isSecretName), []);
});

test('byte strings are never printed, bigints become hex, cycles do not hang', () => {
  const cyclic: Record<string, unknown> = { name: 'x' };
  cyclic.self = cyclic;
  const out = redact({ raw: new Uint8Array([1, 2, 3]), buf: Buffer.from('secret-bytes'), nonce: 0xabcn, cyclic, map: new Map([['a', 1]]) }) as Record<string, unknown>;
  assert.equal(out.raw, `[3 bytes ${REDACTED}]`);
  assert.equal(out.buf, `[12 bytes ${REDACTED}]`);
  assert.equal(out.nonce, '0xabc');
  assert.deepEqual(out.map, { a: 1 });
  assert.equal((out.cyclic as Record<string, unknown>).self, '[…]');
});

test('a whole loaded xTR configuration logged as a field leaks neither the site password nor a private key', () => {
  const password = 'overlay-site-password-42';
  newDataKey(join(dir, 'node.key'));
  writeFileSync(join(dir, 'site.key'), `${password}\n`);
  const file = join(dir, 'xtr.yaml');
  writeFileSync(
    file,
    `tun: { name: lisp0 }
underlay: { address: 198.18.0.1 }
local-eids: [ { prefix: 192.0.2.0/28 } ]
map-servers: [ { address: 198.18.0.10, key: { key-id: 1, password-file: site.key } }, { address: 198.18.0.11, key: { key-id: 2, password: "${password}" } } ]
encryption: { mode: required, private-key-file: node.key }
`,
  );
  const config = loadXtrConfig(file);
  const pem = readFileSync(join(dir, 'node.key'), 'utf8');
  const { log, lines } = capture({ format: 'json' });
  log.log('info', 'the whole configuration', { config });
  const line = lines[0] ?? '';
  const privateRaw = config.encryption.mode === 'required' ? config.encryption.key.privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32) : Buffer.alloc(0);
  for (const leak of [password, Buffer.from(password).toString('hex'), Buffer.from(password).toString('base64'), privateRaw.toString('hex'), privateRaw.toString('base64'), pem.split('\n')[1] ?? '']) {
    assert.ok(leak.length > 0 && !line.includes(leak), `leaked ${leak}`);
  }
  assert.ok(line.includes('198.18.0.10') && line.includes('198.18.0.11') && line.includes('"proxyReply":false'), line);
});

test('--log-level and --log-format are offered by both daemons and checked', () => {
  for (const role of ['xtr', 'map-server']) {
    const help = spawnSync(process.execPath, [CLI, role, '--help'], { encoding: 'utf8' });
    assert.match(help.stdout, /--log-level <level>/);
    assert.match(help.stdout, /--log-format <format>/);
    const bad = spawnSync(process.execPath, [CLI, role, '--config', join(dir, 'none.yaml'), '--log-level', 'loud'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--log-level.*loud.*(debug|choices)/s);
  }
});
