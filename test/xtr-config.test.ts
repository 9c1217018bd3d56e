// The xTR configuration: a valid file loads with its defaults; every broken one fails with one
// error that names the file, the key path and what was expected.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError } from '../src/node/config/config-error.js';
import { loadXtrConfig } from '../src/node/config/xtr-config.js';
import { newDataKey } from '../src/node/xtr/data-key.js';

const dir = mkdtempSync(join(tmpdir(), 'lispnode-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const peerKey = newDataKey(join(dir, 'peer.key'));
newDataKey(join(dir, 'node.key'));

const VALID = `
tun: { name: lisp0 }
underlay: { address: 198.18.0.1 }
local-eids:
  - { prefix: 192.0.2.0/28, address: 192.0.2.1 }
  - { prefix: "2001:db8:1::/64" }
map-cache:
  - prefix: 192.0.2.16/28
    locators: [ { address: 198.18.0.2, priority: 2, weight: 50 } ]
encryption:
  mode: required
  private-key-file: node.key
  peers: [ { locator: 198.18.0.2, public-key: "${peerKey}" } ]
`;

function load(text: string): ReturnType<typeof loadXtrConfig> {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return loadXtrConfig(file);
}

test('a valid file loads, defaults filled in, TUN MTU derived from the underlay', () => {
  const c = load(VALID);
  assert.equal(c.tun.mtu, 1500 - 36 - (12 + 16 + 20));
  assert.equal(c.underlay.port, 4341);
  assert.equal(c.instanceId, 0);
  assert.equal(c.mapCache[0]?.locators[0]?.priority, 2);
  assert.equal(c.encryption.mode, 'required');
  if (c.encryption.mode === 'required') {
    assert.equal(c.encryption.suite, 5);
    assert.equal(c.encryption.backend, 'native');
    assert.equal(c.encryption.peers.size, 1);
  }
  assert.deepEqual(c.learnedMapCache, { maxEntries: 100_000, maxTtlMinutes: 60 });
});

test('learned-map-cache: the cap and the lifetime bound as written', () => {
  const c = load(`${VALID}learned-map-cache: { max-entries: 5000, max-ttl-minutes: 1440 }\n`);
  assert.deepEqual(c.learnedMapCache, { maxEntries: 5000, maxTtlMinutes: 1440 });
});

const BROKEN: readonly (readonly [string, string, string, RegExp])[] = [
  ['wrong type', 'tun: { name: lisp0 }', 'tun: { name: 5 }', /\/tun\/name: expected string$/],
  ['unknown key', 'underlay: { address: 198.18.0.1 }', 'underlay: { address: 198.18.0.1, speed: fast }', /\/underlay\/speed: unknown key/],
  ['missing required field', 'tun: { name: lisp0 }\n', '', /\/tun: missing: this setting is required/],
  ['bad address', 'underlay: { address: 198.18.0.1 }', 'underlay: { address: 198.18.0.300 }', /\/underlay\/address: expected an IPv4 or IPv6 address/],
  ['bad prefix', 'prefix: 192.0.2.16/28', 'prefix: 192.0.2.17/28', /\/map-cache\/0\/prefix: expected an IP prefix/],
  ['bad key file', 'private-key-file: node.key', 'private-key-file: missing.key', /\/encryption\/private-key-file: expected an X25519 private key in PEM \(cannot read .*missing\.key \(ENOENT\)\)/],
  ['key file of the wrong kind', 'private-key-file: node.key', 'private-key-file: c.yaml', /\/encryption\/private-key-file: expected an X25519 private key/],
  ['bad public key', `public-key: "${peerKey}"`, 'public-key: "short"', /\/encryption\/peers\/0\/public-key: expected text matching/],
  ['enum', 'mode: required', 'mode: sometimes', /\/encryption\/mode: expected one of "required", "off"/],
  ['MTU too large', 'tun: { name: lisp0 }', 'tun: { name: lisp0, mtu: 1500 }', /\/tun\/mtu: at most 1416/],
  ['locator family', 'address: 198.18.0.2, priority', 'address: "2001:db8::2", priority', /\/map-cache\/0\/locators\/0\/address: expected an IPv4 locator/],
  ['YAML syntax', 'tun: { name: lisp0 }', 'tun: { name: lisp0', /line \d+: not valid YAML/],
  ['learned lifetime bound too long', 'tun: { name: lisp0 }', 'tun: { name: lisp0 }\nlearned-map-cache: { max-ttl-minutes: 1441 }', /\/learned-map-cache\/max-ttl-minutes: expected a number <= 1440$/],
  ['learned-entry cap of 0', 'tun: { name: lisp0 }', 'tun: { name: lisp0 }\nlearned-map-cache: { max-entries: 0 }', /\/learned-map-cache\/max-entries: expected a number >= 1$/],
  ['learned-map-cache unknown key', 'tun: { name: lisp0 }', 'tun: { name: lisp0 }\nlearned-map-cache: { max-ttl: 5 }', /\/learned-map-cache\/max-ttl: unknown key/],
];

for (const [what, from, to, message] of BROKEN) {
  test(`a broken config names file and key: ${what}`, () => {
    assert.ok(VALID.includes(from), `fixture has '${from}'`);
    writeFileSync(join(dir, 'c.yaml'), 'not a key');
    assert.throws(
      () => load(VALID.replace(from, to)),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.match(error.message, /^\/tmp\/lispnode-config-[^:]+\.yaml: /);
        assert.match(error.message, message);
        return true;
      },
    );
  });
}

test('a missing config file is a ConfigError too', () => {
  assert.throws(() => loadXtrConfig(join(dir, 'nope.yaml')), /nope\.yaml: \(top level\): cannot read the file \(ENOENT\)/);
});
