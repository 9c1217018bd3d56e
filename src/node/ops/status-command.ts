// `lispnode status`: asks a running daemon through its status socket and prints the answer, for
// people (status-format.ts) or, with --json, as the report itself.
import { findStatusSocket, queryStatus, StatusClientError } from './status-client.js';
import { formatStatus } from './status-format.js';
import type { StatusReport } from './status-report.js';

export interface StatusCommandOptions {
  readonly socket?: string;
  readonly json?: boolean;
  readonly limit?: string;
  readonly timeout?: string;
}

export interface StatusCommandResult {
  /** For standard output. */
  readonly lines: readonly string[];
  /** For standard error, when there is no report. */
  readonly error?: string;
  /** 0 with the report, 1 when no daemon answered, 2 for a usage mistake. */
  readonly exitCode: number;
}

export async function runStatus(o: StatusCommandOptions): Promise<StatusCommandResult> {
  const limit = o.limit === undefined ? undefined : Number(o.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) return { lines: [], error: `--limit ${o.limit}: expected a whole number`, exitCode: 2 };
  try {
    const socket = o.socket ?? findStatusSocket();
    const report = (await queryStatus(socket, 'status', { timeoutMs: Number(o.timeout ?? 5000), ...(limit !== undefined && { extra: { limit } }) })) as StatusReport;
    return { lines: o.json ? [JSON.stringify(report)] : formatStatus(report), exitCode: 0 };
  } catch (error) {
    if (error instanceof StatusClientError) return { lines: [], error: error.message, exitCode: 1 };
    throw error;
  }
}
