// SIGHUP: read the configuration file again and move the running daemon to it without a restart.
// A file that does not load (ConfigError), or that changes a setting only a restart can change,
// is refused with one log line naming why, and the daemon runs on as before. Otherwise the role
// applies the difference (ReloadPlan) and the log names what changed. Reloads run one at a time.
import { ConfigError } from '../config/config-error.js';
import type { OperationsConfig } from '../config/operations-config.js';
import { defaultLogFormat, type DaemonLogger, type LogFormat, type LogLevel } from '../log.js';
import type { ReloadSummary } from './status-report.js';

/** A role's answer to a new configuration: checked, not yet applied. */
export interface ReloadPlan {
  /** Key paths (e.g. /tun/name) whose change needs a restart; any refuses the reload. */
  readonly restart: readonly string[];
  /** Key paths that changed and `apply` carries out; empty = nothing to do. */
  readonly changes: readonly string[];
  /** Applies the changes; resolves to one line per change made. */
  apply(): Promise<readonly string[]>;
}

export type ReloadOutcome =
  | { readonly kind: 'applied'; readonly changes: readonly string[] }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'refused'; readonly reason: 'invalid' | 'restart'; readonly detail: readonly string[] }
  | { readonly kind: 'failed'; readonly detail: readonly string[] };

/** Canonical JSON for comparing configuration values (bytes as hex, maps as entry lists). */
export function fingerprint(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
    if (typeof v === 'bigint') return v.toString();
    if (v instanceof Map) return [...(v as Map<unknown, unknown>)];
    return v;
  }) ?? 'undefined';
}

/** The shared operations settings: the status socket and metrics endpoint stay, the log follows. */
export function planOperations(old: OperationsConfig, next: OperationsConfig): { readonly restart: string[]; readonly changes: string[] } {
  const restart: string[] = [];
  if (old.statusSocket !== next.statusSocket) restart.push('/status-socket');
  if (fingerprint(old.metrics) !== fingerprint(next.metrics)) restart.push('/metrics');
  return { restart, changes: fingerprint(old.log) === fingerprint(next.log) ? [] : ['/log'] };
}

export interface ReloaderOptions<C extends { readonly ops: OperationsConfig }> {
  readonly load: () => C;
  readonly current: C;
  /** May throw RangeError for a configuration the role cannot take (refused as invalid). */
  readonly prepare: (next: C) => ReloadPlan;
  readonly log: DaemonLogger;
  /** Log settings given on the command line: they win over the file's, at start and at reloads. */
  readonly logOverrides: { readonly level?: LogLevel | undefined; readonly format?: LogFormat | undefined };
}

export class Reloader<C extends { readonly ops: OperationsConfig }> {
  private current: C;
  private queue: Promise<unknown> = Promise.resolve();
  private applied = 0;
  private refused = 0;
  private last: ReloadSummary['last'];

  constructor(private readonly options: ReloaderOptions<C>) {
    this.current = options.current;
  }

  summary(): ReloadSummary {
    return { applied: this.applied, refused: this.refused, last: this.last };
  }

  /** Reloads once the reload before it (if any) is done. */
  reload(): Promise<ReloadOutcome> {
    const run = this.queue.then(() => this.once());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async once(): Promise<ReloadOutcome> {
    const outcome = await this.attempt();
    this.record(outcome);
    return outcome;
  }

  private async attempt(): Promise<ReloadOutcome> {
    const { log } = this.options;
    let next: C;
    let plan: ReloadPlan;
    try {
      next = this.options.load();
      plan = this.options.prepare(next);
    } catch (error) {
      if (!(error instanceof ConfigError) && !(error instanceof RangeError)) throw error;
      const fields = error instanceof ConfigError ? { file: error.file, setting: error.keyPath || '(top level)', expected: error.expected } : { error: error.message };
      log.log('error', 'reload refused: the configuration is invalid; running on as before', fields);
      return { kind: 'refused', reason: 'invalid', detail: [error.message] };
    }
    const ops = planOperations(this.current.ops, next.ops);
    const restart = [...ops.restart, ...plan.restart];
    if (restart.length > 0) {
      log.log('error', 'reload refused: these settings only change with a restart; running on as before', { settings: restart });
      return { kind: 'refused', reason: 'restart', detail: restart };
    }
    if (plan.changes.length === 0 && ops.changes.length === 0) {
      this.current = next;
      log.log('info', 'reload: no change');
      return { kind: 'unchanged' };
    }
    let changes: readonly string[];
    try {
      changes = plan.changes.length > 0 ? await plan.apply() : [];
    } catch (error) {
      log.log('error', 'reload failed part way; what was applied stays', { error: (error as Error).message });
      return { kind: 'failed', detail: [(error as Error).message] };
    }
    const o = this.options.logOverrides;
    log.configure({ level: o.level ?? next.ops.log.level ?? 'info', format: o.format ?? next.ops.log.format ?? defaultLogFormat() });
    this.current = next;
    const all = [...changes, ...(ops.changes.length > 0 ? [`log level ${log.level}, format ${log.format}`] : [])];
    log.log('info', 'reload applied', { changes: all });
    return { kind: 'applied', changes: all };
  }

  private record(outcome: ReloadOutcome): void {
    if (outcome.kind === 'refused' || outcome.kind === 'failed') this.refused++;
    else this.applied++;
    this.last = {
      at: new Date().toISOString(),
      outcome: outcome.kind,
      detail: outcome.kind === 'applied' ? outcome.changes : outcome.kind === 'unchanged' ? [] : outcome.detail,
    };
  }
}
