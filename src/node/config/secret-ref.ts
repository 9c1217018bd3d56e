// Key material named in a config: a file, or `secret:<name>` — an entry of the node's secret
// store (encrypted under the vault key), which only the node daemon can open. The xTR configs
// the node generates use references, so no private key or credential sits in them or on disk
// in clear; `lispnode xtr` run by hand has no store and refuses them with that reason.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** The secret's text, or undefined when the store has no such entry. */
export type SecretReader = (name: string) => string | undefined;

const PREFIX = 'secret:';

export class KeyMaterialError extends Error {
  override readonly name = 'KeyMaterialError';
}

/** Reads `reference` (relative paths from `baseDir`); the error says what is missing where. */
export function readKeyMaterial(reference: string, baseDir: string, secrets: SecretReader | undefined): string {
  if (reference.startsWith(PREFIX)) {
    const name = reference.slice(PREFIX.length);
    if (!secrets) throw new KeyMaterialError(`${reference} names the node's secret store, which only 'lispnode run' can open`);
    const value = secrets(name);
    if (value === undefined) throw new KeyMaterialError(`${reference}: no such entry in the node's secret store`);
    return value;
  }
  const path = resolve(baseDir, reference);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new KeyMaterialError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

export function secretReference(name: string): string {
  return `${PREFIX}${name}`;
}
