// The documented example configurations (docs/examples/) load through the real loaders, so they
// cannot rot; and broken variants of them, given to the real CLI (`lispnode xtr --config F`,
// `lispnode map-server --config F`), each stop it with exit status 2 and one line on stderr naming
// the file, the key path and what was expected, before anything is opened.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { exportPrivateKeyPem, generateP256KeyPair } from '../src/crypto/p256.js';
import { loadMapServerConfig } from '../src/node/config/map-server-config.js';
import { loadXtrConfig } from '../src/node/config/xtr-config.js';
import { loadNodeConfig } from '../src/node/config/node-config.js';
import { loadMeshSpec } from '../src/controller/mesh-spec.js';
import { newDataKey } from '../src/node/xtr/data-key.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const EXAMPLES = fileURLToPath(new URL('../../docs/examples/', import.meta.url));

// The examples beside the key files they name (node.key, site.key, eid.pem).
const dir = mkdtempSync(join(tmpdir(), 'lispnode-config-errors-'));
after(() => rmSync(dir, { recursive: true, force: true }));
newDataKey(join(dir, 'node.key'));
writeFileSync(join(dir, 'site.key'), 'example-site-password\n', { mode: 0o600 });
writeFileSync(join(dir, 'eid.pem'), exportPrivateKeyPem(generateP256KeyPair((n) => randomBytes(n))), { mode: 0o600 });
writeFileSync(join(dir, 'empty.key'), '');
for (const name of ['xtr.yaml', 'map-server.yaml', 'node.yaml', 'mesh.yaml']) copyFileSync(join(EXAMPLES, name), join(dir, name));

test('docs/examples/xtr.yaml loads through the real loader with the defaults it documents', () => {
  const c = loadXtrConfig(join(dir, 'xtr.yaml'));
  assert.equal(c.tun.name, 'lisp0');
  assert.equal(c.tun.mtu, 1500 - 36 - 48, 'mtu auto: underlay 1500 - IPv4 encapsulation - suite 5');
  assert.equal(c.underlay.port, 4341);
  assert.equal(c.instanceId, 0);
  assert.equal(c.mapServers[0]?.key.algorithmId, 2);
  assert.equal(c.mapCache[1]?.locators[0]?.priority, 1);
  assert.equal(c.mapCache[1]?.locators[0]?.weight, 100);
  assert.ok(c.cryptoEid?.eid.startsWith('fd'), 'the crypto-EID is derived from eid.pem');
  assert.equal(c.encryption.mode, 'required');
  assert.deepEqual(c.learnedMapCache, { maxEntries: 100_000, maxTtlMinutes: 60 });
});

test('docs/examples/map-server.yaml loads through the real loader', () => {
  const c = loadMapServerConfig(join(dir, 'map-server.yaml'));
  assert.equal(c.listen.port, 4342);
  assert.equal(c.server.sites[0]?.allowedPrefixes.length, 3);
  assert.equal(c.server.sites[0]?.allowedPrefixes[0]?.acceptMoreSpecifics, true);
  assert.equal(c.snapshotFile, '/var/lib/lispnode/map-server-registrations.json');
});

test('docs/examples/node.yaml and mesh.yaml load through the real loaders', () => {
  const c = loadNodeConfig(join(dir, 'node.yaml'));
  assert.equal(c.controller.pollInterval, 60);
  assert.deepEqual(c.tpm, { mode: 'auto', tcti: 'device:/dev/tpmrm0' });
  assert.equal(c.onboarding?.serial, 'SN-0001');
  assert.equal(c.ops.metrics, undefined);
  const mesh = loadMeshSpec(join(dir, 'mesh.yaml'), '00000000-0000-4000-8000-000000000000');
  assert.equal(mesh.instances[0]?.instanceId, 1000);
  assert.equal(mesh.instances[0]?.allocationPrefixLength, 8);
  assert.equal(mesh.ecos[0]?.interfaceName, 'eth0');
});

/** A broken variant of an example: replace `from` (which must be in it) with `to`. */
interface Broken {
  readonly what: string;
  readonly from: string;
  readonly to: string;
  /** The key path the error must name, and a pattern for what it must say was expected. */
  readonly path: string;
  readonly expected: RegExp;
}

const XTR_BROKEN: readonly Broken[] = [
  { what: 'wrong type', from: 'name: lisp0 ', to: 'name: 5 ', path: '/tun/name', expected: /expected string$/ },
  { what: 'wrong type (a mapping expected)', from: 'map-servers:                # default []: no registration\n', to: 'map-servers:\n  - 198.18.0.10\n', path: '/map-servers/0', expected: /expected a mapping \(key: value lines\)$/ },
  { what: 'unknown key', from: '  mtu: 1500 ', to: '  mtu: 1500\n  speed: fast ', path: '/underlay/speed', expected: /unknown key/ },
  { what: 'misspelt top-level key', from: 'map-resolvers:', to: 'map-resolver:', path: '/map-resolver', expected: /unknown key/ },
  { what: 'missing required field', from: '  address: 198.18.0.1 ', to: '  port4: 1 ', path: '/underlay/address', expected: /missing: this setting is required/ },
  { what: 'bad address', from: 'address: 198.18.0.1 ', to: 'address: 198.18.0.300 ', path: '/underlay/address', expected: /expected an IPv4 or IPv6 address, got "198\.18\.0\.300"/ },
  { what: 'bad locator address', from: '- address: 198.18.0.2 #', to: '- address: 198.18.2 #', path: '/map-cache/0/locators/0/address', expected: /expected an IPv4 or IPv6 address/ },
  { what: 'bad prefix', from: '- prefix: 192.0.2.0/28 ', to: '- prefix: 192.0.2.1/28 ', path: '/local-eids/0/prefix', expected: /expected an IP prefix such as/ },
  { what: 'bad key file (missing)', from: 'private-key-file: node.key', to: 'private-key-file: missing.key', path: '/encryption/private-key-file', expected: /expected an X25519 private key in PEM \(cannot read .*missing\.key \(ENOENT\)\)/ },
  { what: 'bad key file (wrong kind)', from: 'private-key-file: node.key', to: 'private-key-file: eid.pem', path: '/encryption/private-key-file', expected: /expected an X25519 private key in PEM/ },
  { what: 'bad crypto-EID key file', from: 'key-file: eid.pem', to: 'key-file: node.key', path: '/crypto-eid/key-file', expected: /expected a P-256 private key in PEM/ },
  { what: 'missing password file', from: 'password-file: site.key', to: 'password-file: nope.key', path: '/map-servers/0/key/password-file', expected: /cannot read .*nope\.key \(ENOENT\)/ },
  { what: 'empty password file', from: 'password-file: site.key', to: 'password-file: empty.key', path: '/map-servers/0/key/password-file', expected: /empty\.key is empty/ },
  { what: 'bad public key', from: '"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="', to: '"not-a-key"', path: '/encryption/peers/0/public-key', expected: /X25519 public key in base64, 44 characters/ },
  { what: 'a value of the wrong enum', from: 'mode: required', to: 'mode: sometimes', path: '/encryption/mode', expected: /expected one of "required", "off", got "sometimes"/ },
  { what: 'a number or "auto"', from: 'mtu: auto', to: 'mtu: big', path: '/tun/mtu', expected: /expected integer or "auto"$/ },
  { what: 'out of range', from: 'instance-id: 0 ', to: 'instance-id: 16777215 ', path: '/instance-id', expected: /expected a number <= 16777214/ },
  { what: 'YAML syntax', from: 'tun:\n', to: 'tun: [\n', path: 'line', expected: /not valid YAML/ },
  { what: 'a learned lifetime bound of 0', from: 'max-ttl-minutes: 60 ', to: 'max-ttl-minutes: 0 ', path: '/learned-map-cache/max-ttl-minutes', expected: /expected a number >= 1$/ },
  { what: 'a learned-entry cap that is not a number', from: 'max-entries: 100000 ', to: 'max-entries: lots ', path: '/learned-map-cache/max-entries', expected: /expected integer$/ },
];

const MAP_SERVER_BROKEN: readonly Broken[] = [
  { what: 'wrong type', from: 'name: overlay ', to: 'name: [overlay] ', path: '/sites/0/name', expected: /expected string$/ },
  { what: 'unknown key', from: '  port: 4342 ', to: '  port: 4342\n  backlog: 5 ', path: '/listen/backlog', expected: /unknown key/ },
  { what: 'missing required field', from: '  - name: overlay ', to: '  - nome: overlay ', path: '/sites/0/name', expected: /missing: this setting is required/ },
  { what: 'bad address', from: 'address: 198.18.0.10 ', to: 'address: "2001:db8::g" ', path: '/listen/address', expected: /expected an IPv4 or IPv6 address/ },
  { what: 'bad prefix', from: '- prefix: 192.0.2.0/24', to: '- prefix: 192.0.2.0/33', path: '/sites/0/prefixes/0/prefix', expected: /expected an IP prefix/ },
  { what: 'bad key file', from: 'password-file: site.key', to: 'password-file: missing.key', path: '/sites/0/keys/0/password-file', expected: /cannot read .*missing\.key \(ENOENT\)/ },
  { what: 'both password and password-file', from: 'password-file: site.key', to: 'password-file: site.key\n        password: inline', path: '/sites/0/keys/0', expected: /expected exactly one of password or password-file/ },
  { what: 'a value of the wrong enum', from: 'algorithm: hmac-sha256', to: 'algorithm: md5', path: '/sites/0/keys/0/algorithm', expected: /expected one of "hmac-sha1", "hmac-sha256", got "md5"/ },
  { what: 'an empty list', from: 'sites: ', to: 'sites: []\nx: ', path: '/x', expected: /unknown key/ },
];

const NODE_BROKEN: readonly Broken[] = [
  { what: 'wrong type', from: 'poll-interval: 60', to: 'poll-interval: soon', path: '/controller/poll-interval', expected: /expected integer/ },
  { what: 'unknown key', from: '  mode: auto', to: '  mode: auto\n  colour: blue', path: '/tpm/colour', expected: /unknown key/ },
  { what: 'missing required field', from: '  server-file: /etc/lispnode/server\n', to: '', path: '/controller/server-file', expected: /missing: this setting is required/ },
  { what: 'bad address', from: 'address: 198.18.0.1', to: 'address: 198.18.0.300', path: '/underlay/address', expected: /expected an IPv4 or IPv6 address/ },
  { what: 'a value of the wrong enum', from: 'mode: auto', to: 'mode: maybe', path: '/tpm/mode', expected: /expected one of "auto", "required", "none"/ },
];

function runCli(role: string, file: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, role, '--config', file], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function checkOneLine(role: string, file: string, path: string, expected: RegExp): void {
  const r = runCli(role, file);
  assert.notEqual(r.status, 0, `exit status (stderr: ${r.stderr})`);
  assert.equal(r.status, 2, 'a configuration error exits 2');
  assert.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  const line = lines[0] ?? '';
  assert.ok(line.startsWith(`lispnode: ${file}: ${path}`), `names the file and the key path ${path}: ${line}`);
  assert.match(line, expected);
}

for (const [role, example, cases] of [
  ['xtr', 'xtr.yaml', XTR_BROKEN],
  ['map-server', 'map-server.yaml', MAP_SERVER_BROKEN],
  ['run', 'node.yaml', NODE_BROKEN],
] as const) {
  const text = readFileSync(join(dir, example), 'utf8');
  for (const c of cases) {
    test(`lispnode ${role} with a broken config (${c.what}): exit 2, one line naming file, ${c.path} and the expectation`, () => {
      assert.ok(text.includes(c.from), `docs/examples/${example} contains ${JSON.stringify(c.from)}`);
      const file = join(dir, `${role}-${c.what.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, text.replace(c.from, c.to));
      checkOneLine(role, file, c.path, c.expected);
    });
  }
  test(`lispnode ${role} with an empty or missing config file: exit 2, one line`, () => {
    const empty = join(dir, `${role}-empty.yaml`);
    writeFileSync(empty, '');
    checkOneLine(role, empty, '(top level)', /expected a mapping \(key: value lines\), got an empty file/);
    checkOneLine(role, join(dir, 'nope.yaml'), '(top level)', /cannot read the file \(ENOENT\)/);
  });
}

test('a map-server site requiring attestation tickets: the rules that bind a ticket to its record are enforced at load', async () => {
  const { createControllerPki } = await import('../src/control/x509/controller-pki.js');
  const pki = await createControllerPki({ dnsName: 'controller.test', ipAddresses: [], now: new Date(), random: (n) => randomBytes(n) });
  writeFileSync(join(dir, 'signing.cert.pem'), pki.signing.certPem);
  const config = (site: string, extra = 'attestation: { controller-signing-certs: [signing.cert.pem] }\n'): string => {
    const file = join(dir, `ticket-${randomBytes(4).toString('hex')}.yaml`);
    writeFileSync(file, `listen: { address: 198.18.0.10 }\n${extra}crypto-eid-prefixes: [ { prefix: "[1000]fd00::/8" } ]\nsites:\n  - { name: s, keys: [ { key-id: 0, password: p } ], ${site} }\n`);
    return file;
  };
  const ok = loadMapServerConfig(config('prefixes: [ { prefix: "[1000]fd00::/8" } ], require-registration-signature: true, require-attestation-ticket: true'));
  assert.equal(ok.server.sites[0]?.requireAttestationTicket, true);
  assert.ok(ok.server.ticketCheck && ok.ticketCerts);
  assert.throws(() => loadMapServerConfig(config('prefixes: [ { prefix: "[1000]fd00::/8" } ], require-attestation-ticket: true')), /\/sites\/0\/require-attestation-ticket: needs 'require-registration-signature: true'/);
  assert.throws(() => loadMapServerConfig(config('prefixes: [ { prefix: "[1000]fd00::/8" } ], require-registration-signature: true, require-attestation-ticket: true', '')), /needs the top-level 'attestation' section/);
  assert.throws(() => loadMapServerConfig(config('prefixes: [ { prefix: "192.0.2.0/24" } ], require-registration-signature: true, require-attestation-ticket: true')), /\/sites\/0\/prefixes\/0\/prefix: a site requiring attestation tickets admits only crypto-EIDs/);
});
