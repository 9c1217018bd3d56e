// The logging the control plane and the controller need: one structured line at a level.
// src/node's Logger is one; defining it here keeps src/control free of the daemon's modules.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Log {
  log(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
}
