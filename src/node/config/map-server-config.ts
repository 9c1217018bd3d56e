// The map-server role's configuration file (YAML): where it listens, its sites (keys, allowed
// EID-prefixes, signature requirements), the crypto-EID prefixes, and the snapshot file that keeps
// registrations across a restart. docs/configuration.md documents every key.
import { dirname, resolve } from 'node:path';
import { parseIpv4 } from '../../lisp/ip-text.js';
import { resolveConfig, type MapServerConfig } from '../../lisp/map-server/site.js';
import { authKeySchema, loadAuthKey, type RawAuthKey } from './auth-key.js';
import { ConfigError } from './config-error.js';
import { loadYamlConfig, parsePrefixText } from './load-yaml.js';
import { loadOperations, operationsSchemaProperties, type OperationsConfig, type RawOperations } from './operations-config.js';

interface RawMapServerConfig extends RawOperations {
  listen: { address: string; port: number };
  'snapshot-file'?: string;
  'crypto-eid-prefixes': { prefix: string; derivation: 'eve' | 'lispers' }[];
  sites: {
    name: string;
    keys: RawAuthKey[];
    prefixes: { prefix: string; 'accept-more-specifics': boolean }[];
    'require-signature': boolean;
    'require-registration-signature': boolean;
    lookup?: { allow: 'any' | string[]; deny: string[] };
  }[];
}

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['listen', 'sites'],
  properties: {
    ...operationsSchemaProperties,
    listen: {
      type: 'object',
      additionalProperties: false,
      required: ['address'],
      properties: { address: { type: 'string', format: 'ip-address' }, port: { type: 'integer', minimum: 1, maximum: 65535, default: 4342 } },
    },
    'snapshot-file': { type: 'string' },
    'crypto-eid-prefixes': {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['prefix'],
        properties: { prefix: { type: 'string', format: 'ip-prefix' }, derivation: { type: 'string', enum: ['eve', 'lispers'], default: 'eve' } },
      },
    },
    sites: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'keys', 'prefixes'],
        properties: {
          name: { type: 'string', minLength: 1 },
          keys: { type: 'array', minItems: 1, items: authKeySchema },
          prefixes: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['prefix'],
              properties: { prefix: { type: 'string', format: 'ip-prefix' }, 'accept-more-specifics': { type: 'boolean', default: true } },
            },
          },
          'require-signature': { type: 'boolean', default: false },
          'require-registration-signature': { type: 'boolean', default: false },
          lookup: {
            type: 'object',
            additionalProperties: false,
            properties: {
              allow: { anyOf: [{ type: 'string', const: 'any' }, { type: 'array', items: { type: 'string', format: 'ip-prefix' } }], default: 'any' },
              deny: { type: 'array', items: { type: 'string', format: 'ip-prefix' }, default: [] },
            },
          },
        },
      },
    },
  },
} as const;

export interface MapServerFileConfig {
  readonly file: string;
  readonly listen: { readonly address: string; readonly family: 4 | 6; readonly port: number };
  readonly snapshotFile: string | undefined;
  readonly server: MapServerConfig;
  /** Status socket, metrics endpoint, log settings (operations-config.ts). */
  readonly ops: OperationsConfig;
}

export function loadMapServerConfig(file: string): MapServerFileConfig {
  const raw = loadYamlConfig<RawMapServerConfig>(file, schema);
  const base = dirname(file);
  const prefix = (text: string, path: string): NonNullable<ReturnType<typeof parsePrefixText>> => {
    const p = parsePrefixText(text);
    if (!p) throw new ConfigError(file, path, 'expected an EID prefix such as [1000]fd00::/8 or 192.0.2.0/24');
    return p;
  };
  const server: MapServerConfig = {
    cryptoEidPrefixes: raw['crypto-eid-prefixes'].map((c, i) => ({ prefix: prefix(c.prefix, `/crypto-eid-prefixes/${i}/prefix`), derivation: c.derivation })),
    sites: raw.sites.map((s, i) => ({
      name: s.name,
      keys: s.keys.map((k, j) => loadAuthKey(file, base, k, `/sites/${i}/keys/${j}`)),
      allowedPrefixes: s.prefixes.map((p, j) => ({ prefix: prefix(p.prefix, `/sites/${i}/prefixes/${j}/prefix`), acceptMoreSpecifics: p['accept-more-specifics'] })),
      requireSignature: s['require-signature'],
      requireRegistrationSignature: s['require-registration-signature'],
      ...(s.lookup && {
        lookupPolicy: {
          allow: s.lookup.allow === 'any' ? 'any' : s.lookup.allow.map((p, j) => prefix(p, `/sites/${i}/lookup/allow/${j}`)),
          deny: s.lookup.deny.map((p, j) => prefix(p, `/sites/${i}/lookup/deny/${j}`)),
        },
      }),
    })),
  };
  try {
    resolveConfig(server);
  } catch (error) {
    throw new ConfigError(file, '/sites', (error as Error).message);
  }
  return {
    file,
    listen: { address: raw.listen.address, family: parseIpv4(raw.listen.address) ? 4 : 6, port: raw.listen.port },
    snapshotFile: raw['snapshot-file'] === undefined ? undefined : resolve(base, raw['snapshot-file']),
    server,
    ops: loadOperations(file, 'map-server', raw, base),
  };
}
