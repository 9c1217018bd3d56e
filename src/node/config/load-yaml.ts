// Reads a YAML config file and validates it against a JSON Schema (ajv), turning the first
// problems into ConfigErrors that name the file, the key path and the expectation.
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import { parseIpv4, parseIpv6 } from '../../lisp/ip-text.js';
import { parsePrefix, type EidPrefix } from '../../lisp/prefix.js';
import { ConfigError } from './config-error.js';

const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true });
ajv.addFormat('ip-address', (s: string) => parseIpv4(s) !== undefined || parseIpv6(s) !== undefined);
ajv.addFormat('ip-prefix', (s: string) => parsePrefixText(s) !== undefined);

/** `192.0.2.0/28`, `2001:db8::/32`, `[1000]fd00::/8`: an explicit length, no host bits set past it. */
export function parsePrefixText(text: string, instanceId = 0): EidPrefix | undefined {
  const slash = text.indexOf('/');
  const p = slash > 0 ? parsePrefix(text, instanceId) : undefined;
  const address = text.slice(0, slash).replace(/^\[\d+\]/, '');
  const written = slash > 0 ? (p?.family === 4 ? parseIpv4 : parseIpv6)(address) : undefined;
  return p && written && written.every((b, i) => b === p.address[i]) ? p : undefined;
}

function describe(e: ErrorObject): { path: string; expected: string } {
  const path = e.instancePath.replace(/~1/g, '/').replace(/~0/g, '~');
  switch (e.keyword) {
    case 'additionalProperties':
      return { path: `${path}/${String(e.params.additionalProperty)}`, expected: 'unknown key (not one of this section\'s settings)' };
    case 'required':
      return { path: `${path}/${String(e.params.missingProperty)}`, expected: 'missing: this setting is required' };
    case 'format':
      return { path, expected: e.params.format === 'ip-prefix' ? 'expected an IP prefix such as 192.0.2.0/28 or 2001:db8::/32 (no bits set past the length)' : 'expected an IPv4 or IPv6 address' };
    case 'type':
      return { path, expected: `expected ${String(e.params.type).replace(/,/g, ' or ')}` };
    case 'pattern':
      return { path, expected: `expected text matching ${String(e.params.pattern)}` };
    case 'minimum':
    case 'maximum':
      return { path, expected: `expected a number ${e.keyword === 'minimum' ? '>=' : '<='} ${String(e.params.limit)}` };
    case 'minItems':
      return { path, expected: `expected at least ${String(e.params.limit)} item(s)` };
    case 'enum':
      return { path, expected: `expected one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    default:
      return { path, expected: `expected a value that ${e.message ?? 'is valid'}` };
  }
}

const validators = new WeakMap<object, ValidateFunction>();

/**
 * Loads `file` and validates it against `schema`; returns the document with defaults filled in.
 * The caller's T must describe what the schema admits.
 */
export function loadYamlConfig<T>(file: string, schema: object): T {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, '', `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const doc = parseDocument(text, { prettyErrors: false });
  const problem = doc.errors[0];
  if (problem) throw new ConfigError(file, `line ${(problem.linePos?.[0].line ?? 0)}`, `not valid YAML: ${problem.message.split('\n')[0] ?? ''}`);
  const data: unknown = doc.toJS();
  let validate = validators.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    validators.set(schema, validate);
  }
  if (!validate(data)) {
    const first = validate.errors?.[0];
    if (!first) throw new ConfigError(file, '', 'invalid');
    const { path, expected } = describe(first);
    throw new ConfigError(file, path, expected);
  }
  return data as T;
}
