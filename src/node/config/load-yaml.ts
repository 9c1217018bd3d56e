// Reads a YAML config file and validates it against a JSON Schema (ajv), turning the first
// problems into ConfigErrors that name the file, the key path and the expectation.
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parseDocument } from 'yaml';
import { parseIpv4, parseIpv6 } from '../../lisp/ip-text.js';
import { parsePrefix, type EidPrefix } from '../../lisp/prefix.js';
import { ConfigError } from './config-error.js';

// verbose: errors carry the data and schema they are about (found() and descriptions use them).
const ajv = new Ajv({ allErrors: true, strict: true, useDefaults: true, verbose: true });
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

/** JSON pointer of an error's key (ajv escapes '/' and '~'). */
function keyPath(e: ErrorObject): string {
  return e.instancePath.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * What one failed keyword wanted, as a phrase ("an IPv4 or IPv6 address"). A schema's
 * `description` names a pattern's meaning, which the pattern itself does not say to a reader.
 */
function wanted(e: ErrorObject): string {
  const description = (e.parentSchema as { description?: unknown } | undefined)?.description;
  switch (e.keyword) {
    case 'format':
      return e.params.format === 'ip-prefix' ? 'an IP prefix such as 192.0.2.0/28 or 2001:db8::/32 (no bits set past the length)' : 'an IPv4 or IPv6 address';
    case 'type':
      return String(e.params.type)
        .split(',')
        .map((t) => (t === 'object' ? 'a mapping (key: value lines)' : t === 'array' ? 'a list' : t))
        .join(' or ');
    case 'pattern':
      return `text matching ${String(e.params.pattern)}${typeof description === 'string' ? `: ${description}` : ''}`;
    case 'minimum':
    case 'maximum':
      return `a number ${e.keyword === 'minimum' ? '>=' : '<='} ${String(e.params.limit)}`;
    case 'minItems':
      return `at least ${String(e.params.limit)} item(s)`;
    case 'minLength':
      return 'text that is not empty';
    case 'enum':
      return `one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return JSON.stringify(e.params.allowedValue);
    default:
      return `a value that ${e.message ?? 'is valid'}`;
  }
}

/** The value found, for the kinds of error where it helps and is never a secret (no passwords). */
function found(e: ErrorObject): string {
  const data: unknown = e.data;
  if (e.keyword === 'format' || e.keyword === 'enum' || e.keyword === 'const') return typeof data === 'string' ? `, got ${JSON.stringify(data.slice(0, 80))}` : '';
  if (e.keyword === 'type' && (data === null || data === undefined)) return e.instancePath === '' ? ', got an empty file' : ', got nothing (an empty value)';
  return '';
}

/**
 * The first problem as key path and expectation. An `anyOf` (e.g. tun.mtu: a number or "auto")
 * fails in every branch; the message names what each branch wanted, not just the first.
 */
function describe(errors: readonly ErrorObject[]): { path: string; expected: string } {
  const first = errors[0];
  if (!first) return { path: '', expected: 'invalid' };
  const path = keyPath(first);
  switch (first.keyword) {
    case 'additionalProperties':
      return { path: `${path}/${String(first.params.additionalProperty)}`, expected: "unknown key (not one of this section's settings)" };
    case 'required':
      return { path: `${path}/${String(first.params.missingProperty)}`, expected: 'missing: this setting is required' };
  }
  const anyOf = errors.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath && first.schemaPath.startsWith(`${e.schemaPath}/`));
  if (anyOf) {
    const branches = new Map<string, ErrorObject[]>();
    for (const e of errors) {
      if (e.instancePath !== first.instancePath || !e.schemaPath.startsWith(`${anyOf.schemaPath}/`)) continue;
      const branch = e.schemaPath.slice(anyOf.schemaPath.length + 1).split('/')[0] ?? '';
      branches.set(branch, [...(branches.get(branch) ?? []), e]);
    }
    // Within a branch, a type error says less than the others (a const "auto" is a string anyway).
    const phrases = [...branches.values()].map((list) => wanted(list.find((e) => e.keyword !== 'type') ?? list[0] ?? first));
    return { path, expected: `expected ${phrases.join(' or ')}` };
  }
  return { path, expected: `expected ${wanted(first)}${found(first)}` };
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
    const { path, expected } = describe(validate.errors ?? []);
    throw new ConfigError(file, path, expected);
  }
  return data as T;
}
