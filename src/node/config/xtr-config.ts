// The xTR role's configuration file (YAML): the TUN, the local locator, local EIDs, static
// map-cache entries, and data-plane encryption with static X25519 keys (until the control plane
// exchanges keys). docs/configuration.md documents every key.
import { dirname, resolve } from 'node:path';
import { formatIpv6, parseIpv4, parseIpv6 } from '../../lisp/ip-text.js';
import { maxSealOverhead, type CipherSuite } from '../../crypto/cipher-suite.js';
import { x25519FromPem, type X25519KeyPair } from '../../crypto/x25519-kdf.js';
import { deriveCryptoEid, type EidDerivation } from '../../crypto/crypto-eid.js';
import { importP256PrivateKey, type P256KeyPair } from '../../crypto/p256.js';
import type { AuthKey } from '../../lisp/auth.js';
import { authKeySchema, loadAuthKey, type RawAuthKey } from './auth-key.js';
import { ConfigError } from './config-error.js';
import { readKeyMaterial, type SecretReader } from './secret-ref.js';
import type { EidPrefix } from '../../lisp/prefix.js';
import { loadYamlConfig, parsePrefixText } from './load-yaml.js';
import { loadOperations, operationsSchemaProperties, type OperationsConfig, type RawOperations } from './operations-config.js';
import { DEFAULT_MAX_LEARNED_TTL_MINUTES } from '../../lisp/xtr-control/resolver.js';

/**
 * The daemon's cap on learned map-cache entries (MapCache alone is unbounded). A learned entry
 * takes about 2.2-2.6 KB of heap (measured with one locator, plain or keyed), so the cap is about
 * 250 MiB. With the default rates (10 Map-Requests/s, one entry per reply) and lifetime bound
 * (60 min) at most about 36,000 entries can exist at once anyway: the cap is the backstop for a
 * longer max-ttl-minutes or a faster request rate.
 */
export const DEFAULT_MAX_LEARNED_ENTRIES = 100_000;

interface RawLocator {
  address: string;
  port: number;
  priority: number;
  weight: number;
}

interface RawXtrConfig extends RawOperations {
  'crypto-eid'?: { 'key-file': string; prefix: string; derivation: 'eve' | 'lispers'; 'attestation-ticket-file'?: string };
  'map-servers': { address: string; port: number; key: RawAuthKey; 'proxy-reply': boolean }[];
  'map-resolvers': { address: string; port: number }[];
  tun: { name: string; mtu: number | 'auto'; routes?: string[] };
  underlay: { address: string; port: number; mtu: number };
  'instance-id': number;
  'local-eids': { prefix: string; address?: string }[];
  'map-cache': { prefix: string; locators: RawLocator[] }[];
  'learned-map-cache': { 'max-entries': number; 'max-ttl-minutes': number };
  encryption: {
    mode: 'required' | 'off';
    'cipher-suite': number;
    backend: 'native' | 'node';
    'private-key-file'?: string;
    'accept-clear': boolean;
    peers: { locator: string; 'public-key': string }[];
  };
}

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['tun', 'underlay', 'local-eids'],
  properties: {
    ...operationsSchemaProperties,
    tun: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,15}$', description: 'an interface name of 1-15 letters, digits, _ . or -' },
        mtu: { anyOf: [{ type: 'integer', minimum: 576, maximum: 65535 }, { type: 'string', const: 'auto' }], default: 'auto' },
        routes: { type: 'array', items: { type: 'string', format: 'ip-prefix' } },
      },
    },
    underlay: {
      type: 'object',
      additionalProperties: false,
      required: ['address'],
      properties: {
        address: { type: 'string', format: 'ip-address' },
        port: { type: 'integer', minimum: 1, maximum: 65535, default: 4341 },
        mtu: { type: 'integer', minimum: 1280, maximum: 65535, default: 1500 },
      },
    },
    'instance-id': { type: 'integer', minimum: 0, maximum: 0xfffffe, default: 0 },
    'map-servers': {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['address', 'key'],
        properties: {
          address: { type: 'string', format: 'ip-address' },
          port: { type: 'integer', minimum: 1, maximum: 65535, default: 4342 },
          key: authKeySchema,
          'proxy-reply': { type: 'boolean', default: false },
        },
      },
    },
    'crypto-eid': {
      type: 'object',
      additionalProperties: false,
      required: ['key-file'],
      properties: {
        'key-file': { type: 'string', minLength: 1 },
        prefix: { type: 'string', format: 'ip-prefix', default: 'fd00::/8' },
        derivation: { type: 'string', enum: ['eve', 'lispers'], default: 'eve' },
        'attestation-ticket-file': { type: 'string', minLength: 1 },
      },
    },
    'map-resolvers': {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['address'],
        properties: { address: { type: 'string', format: 'ip-address' }, port: { type: 'integer', minimum: 1, maximum: 65535, default: 4342 } },
      },
    },
    'local-eids': {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['prefix'],
        properties: { prefix: { type: 'string', format: 'ip-prefix' }, address: { type: 'string', format: 'ip-address', nullable: true } },
      },
    },
    'map-cache': {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['prefix', 'locators'],
        properties: {
          prefix: { type: 'string', format: 'ip-prefix' },
          locators: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['address'],
              properties: {
                address: { type: 'string', format: 'ip-address' },
                port: { type: 'integer', minimum: 1, maximum: 65535, default: 4341 },
                priority: { type: 'integer', minimum: 0, maximum: 255, default: 1 },
                weight: { type: 'integer', minimum: 0, maximum: 255, default: 100 },
              },
            },
          },
        },
      },
    },
    'learned-map-cache': {
      type: 'object',
      additionalProperties: false,
      default: {},
      required: [],
      properties: {
        'max-entries': { type: 'integer', minimum: 1, maximum: 10_000_000, default: DEFAULT_MAX_LEARNED_ENTRIES },
        // At most a day, the TTL ETRs usually give: a bound above it would hardly ever bite.
        'max-ttl-minutes': { type: 'integer', minimum: 1, maximum: 1440, default: DEFAULT_MAX_LEARNED_TTL_MINUTES },
      },
    },
    encryption: {
      type: 'object',
      additionalProperties: false,
      default: {},
      required: [],
      properties: {
        mode: { type: 'string', enum: ['required', 'off'], default: 'off' },
        'cipher-suite': { type: 'integer', enum: [2, 5], default: 5 },
        backend: { type: 'string', enum: ['native', 'node'], default: 'native' },
        'private-key-file': { type: 'string', nullable: true },
        'accept-clear': { type: 'boolean', default: false },
        peers: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['locator', 'public-key'],
            properties: { locator: { type: 'string', format: 'ip-address' }, 'public-key': { type: 'string', pattern: '^[A-Za-z0-9+/]{43}=$', description: "the peer's X25519 public key in base64, 44 characters (lispnode datakey show prints it)" } },
          },
        },
      },
    },
  },
} as const;

export interface LocatorConfig {
  readonly address: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

export interface XtrConfig {
  readonly file: string;
  /** `routes`: EID prefixes routed into the TUN (default: the static map-cache prefixes). */
  readonly tun: { readonly name: string; readonly mtu: number; readonly routes: readonly EidPrefix[] };
  readonly underlay: { readonly address: string; readonly family: 4 | 6; readonly port: number; readonly mtu: number };
  readonly instanceId: number;
  /** Where this xTR registers its local EIDs (empty: no registration). */
  readonly mapServers: readonly { readonly address: string; readonly port: number; readonly key: AuthKey; readonly proxyReply: boolean }[];
  /** Where the ITR resolves map-cache misses (empty: static mappings only). */
  readonly mapResolvers: readonly { readonly address: string; readonly port: number }[];
  readonly localEids: readonly { readonly prefix: EidPrefix; readonly address?: string }[];
  /**
   * This node's crypto-EID (docs/configuration.md): registered with its hash-EID key and
   * signatures, used to sign Map-Requests, and served like a local EID (/128 on the TUN).
   */
  readonly cryptoEid:
    | {
        readonly key: P256KeyPair;
        readonly eid: string;
        readonly prefix: EidPrefix;
        readonly derivation: EidDerivation;
        /** The controller's attestation ticket, carried in the Map-Registers (the node daemon renews it). */
        readonly ticketFile?: string;
      }
    | undefined;
  readonly mapCache: readonly { readonly prefix: EidPrefix; readonly locators: readonly LocatorConfig[] }[];
  /** Bounds on what Map-Replies put in the map-cache (static entries do not count). */
  readonly learnedMapCache: { readonly maxEntries: number; readonly maxTtlMinutes: number };
  readonly encryption:
    | { readonly mode: 'off' }
    | {
        readonly mode: 'required';
        readonly suite: CipherSuite;
        readonly backend: 'native' | 'node';
        readonly key: X25519KeyPair;
        readonly acceptClear: boolean;
        /** Peer locator address text -> raw X25519 public key. */
        readonly peers: ReadonlyMap<string, Uint8Array>;
      };
  /** Status socket, metrics endpoint, log settings (operations-config.ts). */
  readonly ops: OperationsConfig;
}

function family(address: string): 4 | 6 {
  return parseIpv4(address) ? 4 : 6;
}

/** Canonical text, so `2001:DB8::1` and `2001:db8:0::1` name the same peer. */
function canonical(address: string): string {
  const v6 = parseIpv4(address) ? undefined : parseIpv6(address);
  return v6 ? formatIpv6(v6) : address;
}

/** IPv4 outer: 20 + 8 + 8 bytes; IPv6: 40 + 8 + 8 (RFC 9300 §7). */
function encapsulationOverhead(underlayFamily: 4 | 6): number {
  return underlayFamily === 4 ? 36 : 56;
}

/** Every EID prefix this node serves: the configured ones and its crypto-EID as a /128. */
export function servedEidPrefixes(config: Pick<XtrConfig, 'localEids' | 'cryptoEid' | 'instanceId'>): EidPrefix[] {
  const own = config.cryptoEid ? parsePrefixText(`${config.cryptoEid.eid}/128`, config.instanceId) : undefined;
  return [...config.localEids.map((e) => e.prefix), ...(own ? [own] : [])];
}

/** `secrets` resolves `secret:` key references (the node daemon's secret store; secret-ref.ts). */
export function loadXtrConfig(file: string, options: { readonly secrets?: SecretReader } = {}): XtrConfig {
  const raw = loadYamlConfig<RawXtrConfig>(file, schema);
  const underlayFamily = family(raw.underlay.address);
  const enc = raw.encryption;
  const overhead = encapsulationOverhead(underlayFamily) + (enc.mode === 'required' ? maxSealOverhead(enc['cipher-suite'] as CipherSuite) : 0);
  const autoMtu = raw.underlay.mtu - overhead;
  if (raw.tun.mtu !== 'auto' && raw.tun.mtu > autoMtu) {
    throw new ConfigError(file, '/tun/mtu', `at most ${autoMtu}: the underlay MTU ${raw.underlay.mtu} minus ${overhead} bytes of encapsulation${enc.mode === 'required' ? ' and encryption' : ''}`);
  }
  const prefix = (text: string, path: string): EidPrefix => {
    const p = parsePrefixText(text);
    if (!p) throw new ConfigError(file, path, 'expected an IP prefix');
    return p;
  };
  const localEids = raw['local-eids'].map((e, i) => {
    const p = prefix(e.prefix, `/local-eids/${i}/prefix`);
    if (e.address !== undefined && family(e.address) !== p.family) throw new ConfigError(file, `/local-eids/${i}/address`, `expected an IPv${p.family} address inside ${e.prefix}`);
    return { prefix: p, ...(e.address !== undefined && { address: e.address }) };
  });
  const cryptoEid = raw['crypto-eid'] === undefined ? undefined : loadCryptoEid(file, raw['crypto-eid'], raw['instance-id'], options.secrets);
  // A crypto-EID is an EID of its own: an xTR serving only that needs no other.
  if (localEids.length === 0 && !cryptoEid) throw new ConfigError(file, '/local-eids', 'expected at least one local EID (or a crypto-eid)');
  const mapCache = raw['map-cache'].map((entry, i) => ({
    prefix: prefix(entry.prefix, `/map-cache/${i}/prefix`),
    locators: entry.locators.map((l, j) => {
      if (family(l.address) !== underlayFamily) {
        throw new ConfigError(file, `/map-cache/${i}/locators/${j}/address`, `expected an IPv${underlayFamily} locator (the underlay address ${raw.underlay.address} is IPv${underlayFamily})`);
      }
      return { address: canonical(l.address), family: underlayFamily, port: l.port, priority: l.priority, weight: l.weight };
    }),
  }));
  return {
    file,
    tun: {
      name: raw.tun.name,
      mtu: raw.tun.mtu === 'auto' ? autoMtu : raw.tun.mtu,
      routes: raw.tun.routes ? raw.tun.routes.map((r, i) => prefix(r, `/tun/routes/${i}`)) : mapCache.map((e) => e.prefix),
    },
    underlay: { address: canonical(raw.underlay.address), family: underlayFamily, port: raw.underlay.port, mtu: raw.underlay.mtu },
    instanceId: raw['instance-id'],
    mapServers: raw['map-servers'].map((m, i) => ({ address: canonical(m.address), port: m.port, key: loadAuthKey(file, dirname(file), m.key, `/map-servers/${i}/key`, options.secrets), proxyReply: m['proxy-reply'] })),
    mapResolvers: raw['map-resolvers'].map((m) => ({ address: canonical(m.address), port: m.port })),
    localEids,
    cryptoEid,
    mapCache,
    learnedMapCache: { maxEntries: raw['learned-map-cache']['max-entries'], maxTtlMinutes: raw['learned-map-cache']['max-ttl-minutes'] },
    encryption: enc.mode === 'off' ? { mode: 'off' } : loadEncryption(file, enc, options.secrets),
    ops: loadOperations(file, 'xtr', raw, dirname(file)),
  };
}

function loadCryptoEid(file: string, c: NonNullable<RawXtrConfig['crypto-eid']>, instanceId: number, secrets: SecretReader | undefined): NonNullable<XtrConfig['cryptoEid']> {
  let key: P256KeyPair;
  try {
    key = importP256PrivateKey(readKeyMaterial(c['key-file'], dirname(file), secrets));
  } catch (error) {
    throw new ConfigError(file, '/crypto-eid/key-file', `expected a P-256 private key in PEM (${(error as Error).message}; lispnode eid new makes one)`);
  }
  const prefix = parsePrefixText(c.prefix, instanceId);
  if (!prefix || prefix.family !== 6 || prefix.length % 8 !== 0 || prefix.length < 8 || prefix.length > 120) {
    throw new ConfigError(file, '/crypto-eid/prefix', 'expected an IPv6 prefix whose length is a multiple of 8 between 8 and 120');
  }
  const { eid } = deriveCryptoEid({ iid: instanceId, spki: key.spki, prefix: { address: prefix.address, length: prefix.length }, derivation: c.derivation });
  const ticket = c['attestation-ticket-file'];
  return { key, eid: formatIpv6(eid), prefix, derivation: c.derivation, ...(ticket !== undefined && { ticketFile: resolve(dirname(file), ticket) }) };
}

function loadEncryption(file: string, enc: RawXtrConfig['encryption'], secrets: SecretReader | undefined): XtrConfig['encryption'] {
  const keyFile = enc['private-key-file'];
  if (keyFile === undefined) throw new ConfigError(file, '/encryption/private-key-file', 'missing: encryption needs this node\'s X25519 private key (lispnode datakey new)');
  let key: X25519KeyPair;
  try {
    key = x25519FromPem(readKeyMaterial(keyFile, dirname(file), secrets));
  } catch (error) {
    throw new ConfigError(file, '/encryption/private-key-file', `expected an X25519 private key in PEM (${(error as Error).message})`);
  }
  const peers = new Map<string, Uint8Array>();
  enc.peers.forEach((p, i) => {
    const raw = Buffer.from(p['public-key'], 'base64');
    if (raw.length !== 32) throw new ConfigError(file, `/encryption/peers/${i}/public-key`, 'expected a base64 X25519 public key (32 bytes)');
    peers.set(canonical(p.locator), new Uint8Array(raw));
  });
  return { mode: 'required', suite: enc['cipher-suite'] as CipherSuite, backend: enc.backend, key, acceptClear: enc['accept-clear'], peers };
}
