// Runs a daemon role as a process: loads its configuration, starts it with a logger and a metrics
// registry, opens its status socket and (if configured) its metrics endpoint, and wires the
// signals: SIGHUP reloads, SIGUSR1 prints the counters, SIGTERM/SIGINT stop it cleanly (status
// socket removed, registrations withdrawn by the role's stop). Any role can run this way; the
// `ready` log line says the status socket answers.
import { ConfigError } from '../config/config-error.js';
import type { DaemonRole, OperationsConfig } from '../config/operations-config.js';
import { createLogger, type DaemonLogger, type LogFormat, type Logger, type LogLevel } from '../log.js';
import { DaemonMetrics, type MetricsServer } from './metrics.js';
import { Reloader, type ReloadPlan } from './reload.js';
import { StatusServer } from './status-server.js';
import type { ReloadSummary } from './status-report.js';

/** What a started role offers the process around it. */
export interface RunningDaemon<C> {
  stats(): unknown;
  status(reloads: ReloadSummary, limit?: number): unknown;
  prepareReload(next: C): ReloadPlan;
  stop(): void | Promise<void>;
}

export interface DaemonContext {
  readonly log: DaemonLogger;
  /** The daemon's own registry: roles and other components add their metrics here. */
  readonly metrics: DaemonMetrics;
}

export interface DaemonSpec<C extends { readonly ops: OperationsConfig }> {
  readonly role: DaemonRole;
  readonly load: () => C;
  readonly start: (config: C, context: DaemonContext) => Promise<RunningDaemon<C>>;
  /** --log-level / --log-format: they win over the configuration file. */
  readonly logOverrides: { readonly level?: LogLevel | undefined; readonly format?: LogFormat | undefined };
  /** Where SIGUSR1's counters go (standard output). */
  readonly print: (line: string) => void;
}

/** The daemon did not start; the message says why (the caller prints it and exits 2). */
export class DaemonStartError extends Error {
  override readonly name = 'DaemonStartError';
}

export async function runDaemon<C extends { readonly ops: OperationsConfig }>(spec: DaemonSpec<C>): Promise<void> {
  // SIGHUP's default action ends the process: from the first moment, a reload asked for while the
  // daemon starts is remembered and done once it runs.
  let early = false;
  let reload = (): void => void (early = true);
  process.on('SIGHUP', () => reload());
  let config: C;
  try {
    config = spec.load();
  } catch (error) {
    if (error instanceof ConfigError) throw new DaemonStartError(error.message);
    throw error;
  }
  const o = spec.logOverrides;
  const log = createLogger({ level: o.level ?? config.ops.log.level, format: o.format ?? config.ops.log.format });
  const metrics = new DaemonMetrics();
  let daemon: RunningDaemon<C>;
  try {
    daemon = await spec.start(config, { log, metrics });
  } catch (error) {
    throw new DaemonStartError(`cannot start: ${(error as Error).message}`);
  }
  const reloader = new Reloader({ load: spec.load, current: config, prepare: (next) => daemon.prepareReload(next), log, logOverrides: o });
  let status: StatusServer | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    status = await StatusServer.listen(config.ops.statusSocket, {
      status: (request) => daemon.status(reloader.summary(), typeof request.limit === 'number' ? request.limit : undefined),
      stats: () => daemon.stats(),
    });
    const m = config.ops.metrics;
    if (m) metricsServer = await metrics.serve(m.host, m.port).catch((error: NodeJS.ErrnoException) => Promise.reject(new Error(`metrics on ${m.host}:${m.port}: ${error.code ?? error.message}`)));
  } catch (error) {
    await status?.close();
    await daemon.stop();
    throw new DaemonStartError(`cannot start: ${(error as Error).message}`);
  }
  log.log('info', 'ready', { role: spec.role, statusSocket: status.path, ...(metricsServer && { metrics: `http://${metricsServer.address}/metrics` }) });

  process.on('SIGUSR1', () => spec.print(JSON.stringify({ stats: daemon.stats() })));
  reload = () => void reloader.reload().catch((error: unknown) => log.log('error', 'reload failed', { error: String(error) }));
  if (early) reload();
  stopOnSignals(log, async () => {
    await status?.close();
    await metricsServer?.close();
    await daemon.stop();
  });
}

/** SIGTERM or SIGINT: log it, run `teardown`, exit 0 (1 if the teardown failed). */
export function stopOnSignals(log: Logger, teardown: () => Promise<void>): void {
  const stop = (signal: string): void => {
    log.log('info', 'stopping', { signal });
    teardown().then(
      () => process.exit(0),
      (error: unknown) => {
        log.log('error', 'teardown failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
