// The last line of every receive path. A datagram (or a batch of them) that meets a bug in a
// handler becomes a counted drop and a rate-limited log line instead of an uncaught exception,
// which would end the daemon and take its TUN, addresses and routes with it. Control sends go
// through `ControlSender`: a destination the socket cannot reach is refused and counted before
// dgram sees it, and send errors (synchronous or in the callback) are counted, not thrown.
import type { Socket } from 'node:dgram';
import { NamedCounters } from '../lisp/named-counters.js';
import { configuredDestinationRefusal, REPLY_DESTINATION_REFUSALS, replyDestinationRefusal } from '../lisp/reply-destination.js';
import type { Logger } from './log.js';

/** At most this many lines per kind and minute; the rest are counted and summed up in the next line. */
const LINES_PER_MINUTE = 5;

/** Log lines of one kind, at most LINES_PER_MINUTE a minute (a flood must not become a log flood). */
export class RateLimitedLog {
  private windowStart = -Infinity;
  private lines = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  warn(message: string, fields: Record<string, unknown>): void {
    const now = this.clock();
    if (now - this.windowStart >= 60_000) {
      this.windowStart = now;
      this.lines = 0;
    }
    if (this.lines >= LINES_PER_MINUTE) {
      this.suppressed++;
      return;
    }
    this.lines++;
    const extra = this.suppressed > 0 ? { suppressed: this.suppressed } : {};
    this.suppressed = 0;
    this.log.log('warn', message, { ...fields, ...extra });
  }
}

/** Catches what a handler throws for one datagram or batch: counted and logged, never rethrown. */
export class ReceiveGuard {
  private caughtCount = 0;
  private readonly lines: RateLimitedLog;

  constructor(
    log: Logger,
    /** Which receive path, for the log line ("control 4342", "map-server"). */
    private readonly path: string,
    clock?: () => number,
  ) {
    this.lines = new RateLimitedLog(log, clock);
  }

  /** Handler errors so far. */
  get errors(): number {
    return this.caughtCount;
  }

  caught(error: unknown, fields: Record<string, unknown> = {}): void {
    this.caughtCount++;
    const e = error instanceof Error ? error : new Error(String(error));
    this.lines.warn('receive handler failed; datagram dropped', { path: this.path, error: e.message, stack: e.stack?.split('\n').slice(1, 4).join(' | '), ...fields });
  }
}

export const SEND_REFUSALS = [...REPLY_DESTINATION_REFUSALS, 'send-threw', 'send-failed'] as const;
export type SendRefusal = (typeof SEND_REFUSALS)[number];

/** A dgram control socket that refuses what it cannot send and counts what the kernel refused. */
export class ControlSender {
  readonly refused = new NamedCounters(SEND_REFUSALS);
  private readonly lines: RateLimitedLog;

  constructor(
    private readonly socket: Socket,
    private readonly family: 4 | 6,
    log: Logger,
  ) {
    this.lines = new RateLimitedLog(log);
  }

  /**
   * Sends `bytes` to `address:port`; false when refused here. A destination that came out of a
   * received datagram (`untrusted`: a reply, a probe of a learned locator) must be a unicast peer;
   * `untrusted.origin`, the datagram's source, lets a loopback requester be answered on loopback.
   * Destinations from our own configuration need only be sendable.
   */
  send(bytes: Uint8Array, port: number, address: string, options: { readonly untrusted?: { readonly origin?: string }; readonly done?: () => void } = {}): boolean {
    const refusal = options.untrusted
      ? replyDestinationRefusal(address, port, this.family, options.untrusted.origin)
      : configuredDestinationRefusal(address, port, this.family);
    if (refusal) {
      this.refused.add(refusal);
      options.done?.();
      return false;
    }
    try {
      this.socket.send(bytes, port, address, (error) => {
        if (error) {
          this.refused.add('send-failed');
          this.lines.warn('control send failed', { to: `${address}:${port}`, error: error.message });
        }
        options.done?.();
      });
      return true;
    } catch (error) {
      this.refused.add('send-threw');
      this.lines.warn('control send refused by the socket', { to: `${address}:${port}`, error: (error as Error).message });
      options.done?.();
      return false;
    }
  }
}
