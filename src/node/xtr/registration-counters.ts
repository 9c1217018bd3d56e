// Per map-server registration figures for status and metrics: Map-Registers sent, verified
// Map-Notifies taken, register rounds that went unanswered. The registrar keeps states, not
// totals, so these are derived: sends are counted as they leave, the other two from how the
// registrar's status moves (a newer lastMapNotifyAt, a higher unanswered count).
import type { RegistrarStatus } from '../../lisp/xtr-control/registrar.js';

export interface RegistrationTotals {
  sent: number;
  notified: number;
  failed: number;
}

export class RegistrationCounters {
  private readonly totals = new Map<string, RegistrationTotals>();
  private readonly seen = new Map<string, { readonly lastMapNotifyAt: number | undefined; readonly unanswered: number }>();

  /** A Map-Register left for the map-server at to:port. */
  sent(to: string, port: number): void {
    this.of(`${to}:${port}`).sent++;
  }

  /** Call after every registrar event with its status. */
  observe(status: RegistrarStatus): void {
    for (const s of status.mapServers) {
      const key = `${s.address}:${s.port}`;
      const before = this.seen.get(key);
      const t = this.of(key);
      if (s.lastMapNotifyAt !== undefined && s.lastMapNotifyAt !== before?.lastMapNotifyAt) t.notified++;
      if (s.unanswered > (before?.unanswered ?? 0)) t.failed += s.unanswered - (before?.unanswered ?? 0);
      this.seen.set(key, { lastMapNotifyAt: s.lastMapNotifyAt, unanswered: s.unanswered });
    }
  }

  /** The totals of the map-server at address:port (zeros when never seen). */
  get(address: string, port: number): Readonly<RegistrationTotals> {
    return this.totals.get(`${address}:${port}`) ?? { sent: 0, notified: 0, failed: 0 };
  }

  /** Every map-server's totals, keyed address:port (removed map-servers stay: totals never go back). */
  all(): ReadonlyMap<string, Readonly<RegistrationTotals>> {
    return this.totals;
  }

  private of(key: string): RegistrationTotals {
    let t = this.totals.get(key);
    if (!t) {
      t = { sent: 0, notified: 0, failed: 0 };
      this.totals.set(key, t);
    }
    return t;
  }
}
