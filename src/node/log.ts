// Structured logs on stderr: one JSON object per line (time, level, message, fields), or a
// readable line (`--log-format text`, or LISPNODE_LOG=text). Lines below the level are skipped.
// Every field goes through `redact` first: a value whose field name says it is a secret (key,
// password, secret, credential, private, token, …) and any raw byte string are replaced, however
// deep they sit, so a careless `log(…, { config })` cannot leak a site key.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

export interface Logger {
  log(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** A logger whose level and format can change while it runs (SIGHUP reload). */
export interface DaemonLogger extends Logger {
  readonly level: LogLevel;
  readonly format: LogFormat;
  configure(options: { readonly level?: LogLevel | undefined; readonly format?: LogFormat | undefined }): void;
}

export const REDACTED = '[redacted]';

// Names are compared without case and punctuation: `private-key-file`, `privateKey`, `site_key`.
const SECRET_NAME = /key|passw|passphrase|secret|credential|private|token|salt|psk|cookie|auth/;
// … unless the name says it is about a key rather than the key: `key-id`, `key-installed`, `keyAge`.
const HARMLESS_NAME = /(id|ids|installed|installs|refused|malformed|suite|age|ageseconds|count|failed|exchanges|algorithm|author)$/;

export function isSecretName(name: string): boolean {
  const n = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_NAME.test(n) && !HARMLESS_NAME.test(n);
}

/** A copy of `value` with secret-named fields and byte strings replaced (cycles cut, depth bounded). */
export function redact(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (value instanceof Uint8Array) return `[${value.length} bytes ${REDACTED}]`;
  if (typeof value === 'bigint') return `0x${value.toString(16)}`;
  if (value instanceof Error) return value.message;
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value) || depth > 8) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v: unknown) => redact(v, depth + 1, seen));
  if (value instanceof Map) return redact(Object.fromEntries(value), depth, seen);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretName(k) && v !== undefined && v !== null ? REDACTED : redact(v, depth + 1, seen);
  return out;
}

/** LISPNODE_LOG=text asks for text; JSON otherwise. */
export function defaultLogFormat(): LogFormat {
  return process.env.LISPNODE_LOG === 'text' ? 'text' : 'json';
}

export function createLogger(
  options: { readonly format?: LogFormat | undefined; readonly level?: LogLevel | undefined; readonly write?: (line: string) => void } = {},
): DaemonLogger {
  let format = options.format ?? defaultLogFormat();
  let level = options.level ?? 'info';
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`));
  return {
    get level() {
      return level;
    },
    get format() {
      return format;
    },
    configure(o) {
      if (o.level) level = o.level;
      if (o.format) format = o.format;
    },
    log(lineLevel, message, fields = {}) {
      if (LOG_LEVELS.indexOf(lineLevel) < LOG_LEVELS.indexOf(level)) return;
      const time = new Date().toISOString();
      const safe = redact(fields) as Record<string, unknown>;
      if (format === 'json') write(JSON.stringify({ time, level: lineLevel, message, ...safe }));
      else write(`${time} ${lineLevel.padEnd(5)} ${message}${Object.entries(safe).map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('')}`);
    },
  };
}
