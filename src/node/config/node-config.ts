// The node role's configuration file (YAML, `lispnode run`): where the node keeps its state,
// which controller it trusts (the server and root-CA files fixed at install time), how it
// onboards, where its keys live (TPM or files), and its underlay locator. What the node runs —
// the mesh network instances — comes from the controller's signed config, not from here.
import { dirname, resolve } from 'node:path';
import { loadYamlConfig } from './load-yaml.js';
import { loadOperations, operationsSchemaProperties, type OperationsConfig, type RawOperations } from './operations-config.js';

export type TpmMode = 'auto' | 'required' | 'none';

export interface NodeConfig {
  readonly file: string;
  readonly stateDir: string;
  readonly controller: { readonly serverFile: string; readonly rootCaFile: string; readonly pollInterval: number };
  readonly onboarding: { readonly certFile: string; readonly keyFile: string; readonly serial: string } | undefined;
  readonly tpm: { readonly mode: TpmMode; readonly tcti: string };
  readonly underlay: { readonly address: string };
  /** Status socket, metrics endpoint, log settings (operations-config.ts). */
  readonly ops: OperationsConfig;
}

interface RawNodeConfig extends RawOperations {
  'state-dir': string;
  controller: { 'server-file': string; 'root-ca-file': string; 'poll-interval': number };
  onboarding?: { 'cert-file': string; 'key-file': string; serial: string };
  tpm: { mode: TpmMode; tcti: string };
  underlay: { address: string };
}

const file = { type: 'string', minLength: 1 } as const;

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['state-dir', 'controller', 'underlay'],
  properties: {
    ...operationsSchemaProperties,
    'state-dir': file,
    controller: {
      type: 'object',
      additionalProperties: false,
      required: ['server-file', 'root-ca-file'],
      properties: {
        'server-file': file,
        'root-ca-file': file,
        'poll-interval': { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
      },
    },
    onboarding: {
      type: 'object',
      additionalProperties: false,
      required: ['cert-file', 'key-file', 'serial'],
      properties: { 'cert-file': file, 'key-file': file, serial: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,256}$' } },
    },
    tpm: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        mode: { type: 'string', enum: ['auto', 'required', 'none'], default: 'auto' },
        tcti: { type: 'string', minLength: 1, default: 'device:/dev/tpmrm0' },
      },
    },
    underlay: {
      type: 'object',
      additionalProperties: false,
      required: ['address'],
      properties: { address: { type: 'string', format: 'ip-address' } },
    },
  },
} as const;

export function loadNodeConfig(path: string): NodeConfig {
  const raw = loadYamlConfig<RawNodeConfig>(path, schema);
  const at = (p: string): string => resolve(dirname(path), p);
  return {
    file: path,
    stateDir: at(raw['state-dir']),
    controller: { serverFile: at(raw.controller['server-file']), rootCaFile: at(raw.controller['root-ca-file']), pollInterval: raw.controller['poll-interval'] },
    onboarding: raw.onboarding && { certFile: at(raw.onboarding['cert-file']), keyFile: at(raw.onboarding['key-file']), serial: raw.onboarding.serial },
    tpm: raw.tpm,
    underlay: raw.underlay,
    ops: loadOperations(path, 'node', raw, dirname(path)),
  };
}
