// The operator's description of a device's mesh (YAML, `lispnode controller device add --mesh`):
// overlay instances and the ECOs on them. It becomes the device's MeshConfig, with UUIDs derived
// from the device and the names, so the same file always yields the same config (and hash).
import { createHash } from 'node:crypto';
import { ConfigError } from '../node/config/config-error.js';
import { loadYamlConfig, parsePrefixText } from '../node/config/load-yaml.js';
import type { MeshConfig, MeshNetworkInstance } from '../control/mesh.js';

interface RawMeshSpec {
  'network-instances': {
    name: string;
    'instance-id': number;
    'eid-prefix': string;
    'map-servers': { address: string; credential: string }[];
    rtrs: string[];
    allocate: boolean;
  }[];
  apps: { name: string; network: string; interface: string }[];
}

const name = { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' } as const;

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['network-instances'],
  properties: {
    'network-instances': {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'instance-id', 'map-servers'],
        properties: {
          name,
          'instance-id': { type: 'integer', minimum: 1, maximum: 0xfffffe },
          'eid-prefix': { type: 'string', format: 'ip-prefix', default: 'fd00::/8' },
          'map-servers': {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['address', 'credential'],
              properties: { address: { type: 'string', format: 'ip-address' }, credential: { type: 'string', minLength: 1 } },
            },
          },
          rtrs: { type: 'array', default: [], items: { type: 'string', format: 'ip-address' } },
          allocate: { type: 'boolean', default: true },
        },
      },
    },
    apps: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'network'],
        properties: { name, network: name, interface: { ...name, default: 'eth0' } },
      },
    },
  },
} as const;

/** A name-based UUID (RFC 9562 version 8, from SHA-256): stable across exports and restarts. */
export function derivedUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x80;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export function loadMeshSpec(file: string, deviceUuid: string): MeshConfig {
  const raw = loadYamlConfig<RawMeshSpec>(file, schema);
  const instances = raw['network-instances'].map((ni, i): MeshNetworkInstance => {
    const prefix = parsePrefixText(ni['eid-prefix']);
    if (!prefix || prefix.family !== 6 || prefix.length % 8 !== 0 || prefix.length < 8 || prefix.length > 120) {
      throw new ConfigError(file, `/network-instances/${i}/eid-prefix`, 'expected an IPv6 prefix whose length is a multiple of 8 between 8 and 120');
    }
    return {
      uuid: derivedUuid(deviceUuid, 'network-instance', ni.name),
      name: ni.name,
      instanceId: ni['instance-id'],
      allocationPrefix: prefix.address.slice(0, prefix.length / 8),
      allocationPrefixLength: prefix.length,
      mapServers: ni['map-servers'],
      rtrs: ni.rtrs,
      allocate: ni.allocate,
    };
  });
  const seen = new Set<string>();
  raw['network-instances'].forEach((ni, i) => {
    if (seen.has(ni.name)) throw new ConfigError(file, `/network-instances/${i}/name`, `a second network instance named ${ni.name}`);
    seen.add(ni.name);
  });
  const ecos = raw.apps.map((app, i) => {
    const ni = instances.find((n) => n.name === app.network);
    if (!ni) throw new ConfigError(file, `/apps/${i}/network`, `expected the name of one of the network-instances (${instances.map((n) => n.name).join(', ')})`);
    return { appUuid: derivedUuid(deviceUuid, 'app', app.name), appName: app.name, networkUuid: ni.uuid, interfaceName: app.interface, privateKeyPem: undefined };
  });
  return { instances, ecos };
}
