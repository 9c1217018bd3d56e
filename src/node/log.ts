// Structured logs: one JSON object per line on stderr (level, time, message, fields), or a
// readable line with LISPNODE_LOG=text. Secrets never go in fields.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
}

export function createLogger(options: { readonly format?: 'json' | 'text'; readonly write?: (line: string) => void } = {}): Logger {
  const format = options.format ?? (process.env.LISPNODE_LOG === 'text' ? 'text' : 'json');
  const write = options.write ?? ((line: string) => void process.stderr.write(`${line}\n`));
  return {
    log(level, message, fields = {}) {
      const time = new Date().toISOString();
      if (format === 'json') write(JSON.stringify({ time, level, message, ...fields }));
      else write(`${time} ${level.padEnd(5)} ${message}${Object.entries(fields).map(([k, v]) => ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join('')}`);
    },
  };
}
