// The map-server role's configuration file (YAML): where it listens, its sites (keys, allowed
// EID-prefixes, signature requirements), the crypto-EID prefixes, and the snapshot file that keeps
// registrations across a restart. docs/configuration.md documents every key.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ticketChecker } from '../../control/ticket.js';
import type { TicketCheck } from '../../lisp/map-server/index.js';
import { prefixCovers } from '../../lisp/prefix.js';
import { parseIpv4 } from '../../lisp/ip-text.js';
import { resolveConfig, type MapServerConfig } from '../../lisp/map-server/site.js';
import { authKeySchema, loadAuthKey, type RawAuthKey } from './auth-key.js';
import { ConfigError } from './config-error.js';
import { loadYamlConfig, parsePrefixText } from './load-yaml.js';
import { loadOperations, operationsSchemaProperties, type OperationsConfig, type RawOperations } from './operations-config.js';

interface RawMapServerConfig extends RawOperations {
  listen: { address: string; port: number };
  'snapshot-file'?: string;
  attestation?: { 'controller-signing-certs': string[] };
  'crypto-eid-prefixes': { prefix: string; derivation: 'eve' | 'lispers' }[];
  sites: {
    name: string;
    keys: RawAuthKey[];
    prefixes: { prefix: string; 'accept-more-specifics': boolean }[];
    'require-signature': boolean;
    'require-registration-signature': boolean;
    'require-attestation-ticket': boolean;
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
    attestation: {
      type: 'object',
      additionalProperties: false,
      required: ['controller-signing-certs'],
      properties: { 'controller-signing-certs': { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } } },
    },
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
          'require-attestation-ticket': { type: 'boolean', default: false },
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
  /** SHA-256 of the trusted controller signing certificates (what a reload compares), if any. */
  readonly ticketCerts: string | undefined;
  /** Status socket, metrics endpoint, log settings (operations-config.ts). */
  readonly ops: OperationsConfig;
}

/** The controller signing certificates a ticket may be signed with (several across a rotation). */
function readTicketCerts(file: string, base: string, certFiles: readonly string[]): string[] {
  const pems = certFiles.map((f, i) => {
    try {
      return readFileSync(resolve(base, f), 'utf8');
    } catch (error) {
      throw new ConfigError(file, `/attestation/controller-signing-certs/${i}`, `cannot read ${resolve(base, f)} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
    }
  });
  return pems;
}

function ticketCheckOf(file: string, pems: readonly string[]): TicketCheck {
  try {
    return ticketChecker(pems);
  } catch (error) {
    throw new ConfigError(file, '/attestation/controller-signing-certs', `expected PEM certificates (${(error as Error).message})`);
  }
}

export function loadMapServerConfig(file: string): MapServerFileConfig {
  const raw = loadYamlConfig<RawMapServerConfig>(file, schema);
  const base = dirname(file);
  const prefix = (text: string, path: string): NonNullable<ReturnType<typeof parsePrefixText>> => {
    const p = parsePrefixText(text);
    if (!p) throw new ConfigError(file, path, 'expected an EID prefix such as [1000]fd00::/8 or 192.0.2.0/24');
    return p;
  };
  raw.sites.forEach((s, i) => {
    if (!s['require-attestation-ticket']) return;
    if (!raw.attestation) throw new ConfigError(file, `/sites/${i}/require-attestation-ticket`, "needs the top-level 'attestation' section (the controller's signing certificates to trust)");
    // Without the registration signature nothing binds a ticket to the record it rides on.
    if (!s['require-registration-signature']) throw new ConfigError(file, `/sites/${i}/require-attestation-ticket`, "needs 'require-registration-signature: true' too, which binds the ticket to its record");
  });
  const ticketPems = raw.attestation && readTicketCerts(file, base, raw.attestation['controller-signing-certs']);
  const server: MapServerConfig = {
    ...(ticketPems && { ticketCheck: ticketCheckOf(file, ticketPems) }),
    cryptoEidPrefixes: raw['crypto-eid-prefixes'].map((c, i) => ({ prefix: prefix(c.prefix, `/crypto-eid-prefixes/${i}/prefix`), derivation: c.derivation })),
    sites: raw.sites.map((s, i) => ({
      name: s.name,
      keys: s.keys.map((k, j) => loadAuthKey(file, base, k, `/sites/${i}/keys/${j}`)),
      allowedPrefixes: s.prefixes.map((p, j) => ({ prefix: prefix(p.prefix, `/sites/${i}/prefixes/${j}/prefix`), acceptMoreSpecifics: p['accept-more-specifics'] })),
      requireSignature: s['require-signature'],
      requireRegistrationSignature: s['require-registration-signature'],
      requireAttestationTicket: s['require-attestation-ticket'],
      ...(s.lookup && {
        lookupPolicy: {
          allow: s.lookup.allow === 'any' ? 'any' : s.lookup.allow.map((p, j) => prefix(p, `/sites/${i}/lookup/allow/${j}`)),
          deny: s.lookup.deny.map((p, j) => prefix(p, `/sites/${i}/lookup/deny/${j}`)),
        },
      }),
    })),
  };
  // A ticket is bound to its record only by the crypto-EID's registration signature: every prefix
  // of a ticket site must therefore hold crypto-EIDs, or a ticket copied off the wire would do.
  server.sites.forEach((site, i) => {
    if (!site.requireAttestationTicket) return;
    site.allowedPrefixes.forEach((allowed, j) => {
      if (!server.cryptoEidPrefixes.some((c) => prefixCovers(c.prefix, allowed.prefix))) {
        throw new ConfigError(file, `/sites/${i}/prefixes/${j}/prefix`, 'a site requiring attestation tickets admits only crypto-EIDs: expected a prefix inside one of the crypto-eid-prefixes');
      }
    });
  });
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
    ticketCerts: ticketPems && createHash('sha256').update(ticketPems.join('\0')).digest('hex'),
    ops: loadOperations(file, 'map-server', raw, base),
  };
}
