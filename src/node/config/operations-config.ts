// The settings every daemon role shares for being operated: where its status socket is, whether
// and where it serves Prometheus metrics, and its log level and format. Both role schemas spread
// `operationsSchemaProperties` into their own; `loadOperations` turns the validated raw form into
// typed values. docs/configuration.md documents the keys.
import { basename, extname, resolve } from 'node:path';
import { parseIpv4, parseIpv6 } from '../../lisp/ip-text.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../log.js';
import { ConfigError } from './config-error.js';

export type DaemonRole = 'xtr' | 'map-server' | 'node';

/** Where status sockets live unless `status-socket` says otherwise. */
export const STATUS_SOCKET_DIR = '/run/lispnode';

/** STATUS_SOCKET_DIR, or LISPNODE_RUN_DIR when set (tests, unusual hosts). */
export function runDir(): string {
  return process.env.LISPNODE_RUN_DIR ?? STATUS_SOCKET_DIR;
}

/** Default metrics ports: distinct per role so an xTR and a map-server on one host both start. */
export const DEFAULT_METRICS_PORT: Readonly<Record<DaemonRole, number>> = { xtr: 9464, 'map-server': 9465, node: 9466 };

export interface RawOperations {
  'status-socket'?: string;
  metrics?: { listen?: string };
  log?: { level?: LogLevel; format?: LogFormat };
}

export const operationsSchemaProperties = {
  'status-socket': { type: 'string', minLength: 1 },
  metrics: {
    type: 'object',
    additionalProperties: false,
    properties: { listen: { type: 'string', minLength: 1 } },
  },
  log: {
    type: 'object',
    additionalProperties: false,
    properties: {
      level: { type: 'string', enum: LOG_LEVELS },
      format: { type: 'string', enum: LOG_FORMATS },
    },
  },
} as const;

export interface OperationsConfig {
  /** Absolute path of the unix status socket. */
  readonly statusSocket: string;
  /** The Prometheus endpoint; undefined = none (no `metrics` key). */
  readonly metrics: { readonly host: string; readonly port: number } | undefined;
  /** Undefined = not set in the file (the command line or the default decides). */
  readonly log: { readonly level: LogLevel | undefined; readonly format: LogFormat | undefined };
}

/** `/run/lispnode/<role>-<config file name without extension>.sock`. */
export function defaultStatusSocket(role: DaemonRole, configFile: string): string {
  return resolve(runDir(), `${role}-${basename(configFile, extname(configFile))}.sock`);
}

/** `127.0.0.1:9464`, `[::1]:9464`, or a bare port (127.0.0.1). Undefined when malformed. */
export function parseListen(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const host = m[1] || m[2] || '127.0.0.1';
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] ? !parseIpv6(host) : !parseIpv4(host)) return undefined;
  return { host, port };
}

export function loadOperations(file: string, role: DaemonRole, raw: RawOperations, baseDir: string): OperationsConfig {
  let metrics: OperationsConfig['metrics'];
  if (raw.metrics) {
    const text = raw.metrics.listen ?? `127.0.0.1:${DEFAULT_METRICS_PORT[role]}`;
    metrics = parseListen(text);
    if (!metrics) throw new ConfigError(file, '/metrics/listen', 'expected address:port such as 127.0.0.1:9464 or [::1]:9464');
  }
  return {
    statusSocket: raw['status-socket'] === undefined ? defaultStatusSocket(role, file) : resolve(baseDir, raw['status-socket']),
    metrics,
    log: { level: raw.log?.level, format: raw.log?.format },
  };
}
