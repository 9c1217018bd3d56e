// A map-server authentication key as both roles' configs write it: key-id, algorithm, and the
// password inline or (better) in a file of its own.
import { passwordKey, type AuthAlgorithmId, type AuthKey } from '../../lisp/auth.js';
import { ConfigError } from './config-error.js';
import { readKeyMaterial, type SecretReader } from './secret-ref.js';

export interface RawAuthKey {
  'key-id': number;
  algorithm: 'hmac-sha1' | 'hmac-sha256';
  password?: string;
  'password-file'?: string;
}

/** The JSON Schema of one key (defaults: algorithm hmac-sha256). */
export const authKeySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['key-id'],
  properties: {
    'key-id': { type: 'integer', minimum: 0, maximum: 255 },
    algorithm: { type: 'string', enum: ['hmac-sha1', 'hmac-sha256'], default: 'hmac-sha256' },
    password: { type: 'string', minLength: 1 },
    'password-file': { type: 'string', minLength: 1 },
  },
} as const;

const ALGORITHM: Readonly<Record<RawAuthKey['algorithm'], AuthAlgorithmId>> = { 'hmac-sha1': 1, 'hmac-sha256': 2 };

/** `configFile` names the config (for errors and relative paths); `path` is the key's key path. */
export function loadAuthKey(configFile: string, baseDir: string, k: RawAuthKey, path: string, secrets?: SecretReader): AuthKey {
  if ((k.password === undefined) === (k['password-file'] === undefined)) throw new ConfigError(configFile, path, 'expected exactly one of password or password-file');
  let password = k.password;
  if (password === undefined) {
    const reference = k['password-file'] ?? '';
    try {
      password = readKeyMaterial(reference, baseDir, secrets).trim();
    } catch (error) {
      throw new ConfigError(configFile, `${path}/password-file`, (error as Error).message);
    }
    if (password === '') throw new ConfigError(configFile, `${path}/password-file`, `${reference} is empty`);
  }
  return passwordKey(k['key-id'], ALGORITHM[k.algorithm], password);
}
