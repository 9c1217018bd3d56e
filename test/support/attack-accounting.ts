// The attack suite's bookkeeping check: from two `lispnode status --json` reports of one daemon,
// taken before and after a flood, how many datagrams the daemon says it received on a port and how
// many it accounted for under a reason. "Every datagram counted under a reason" means the two are
// equal (and at least what the hostile host sent, less what the kernel dropped before the socket).
//
// Where the figures come from:
// - xTR, UDP 4341: `traffic.underlay.in` against the ETR's drop reasons (`drops`, etr-*) plus the
//   packets delivered to the TUN (`traffic.tun.out`: only the ETR writes there).
// - xTR, UDP 4342: `control.datagrams = { received, outcomes }`, every received datagram in exactly
//   one outcome.
// - map-server, UDP 4342: `datagrams = { received, outcomes }`, the same contract.
import type { MapServerStatus, XtrStatus } from './attack-lab.js';

export interface PortAccount {
  /** Datagrams the daemon received on the port between the reports. */
  readonly received: number;
  /** Datagrams it accounted for under a reason (the sum of `outcomes`). */
  readonly counted: number;
  /** Per reason, only those that moved. */
  readonly outcomes: Readonly<Record<string, number>>;
}

export type DaemonStatus = XtrStatus | MapServerStatus;

export function portAccount(port: 4341 | 4342, before: DaemonStatus, after: DaemonStatus): PortAccount {
  if (before.role !== after.role) throw new TypeError('two reports of different daemons');
  if (after.role === 'xtr' && before.role === 'xtr') {
    if (port === 4341) {
      const outcomes = delta(etrDrops(before.drops), etrDrops(after.drops));
      const delivered = after.traffic.tun.out.packets - before.traffic.tun.out.packets;
      if (delivered !== 0) outcomes.delivered = delivered;
      return account(after.traffic.underlay.in.packets - before.traffic.underlay.in.packets, outcomes);
    }
    const [b, a] = [before.control.datagrams, after.control.datagrams];
    return account(a.received - b.received, delta(b.outcomes, a.outcomes));
  }
  if (after.role === 'map-server' && before.role === 'map-server') {
    if (port === 4341) throw new RangeError('a map-server has no UDP 4341');
    const [b, a] = [before.datagrams, after.datagrams];
    return account(a.received - b.received, delta(b.outcomes, a.outcomes));
  }
  throw new TypeError(`no account for a ${after.role} report`);
}

/** The reasons that account for most datagrams, largest first. */
export function topOutcomes(a: PortAccount, n = 10): [string, number][] {
  return Object.entries(a.outcomes)
    .sort(([, x], [, y]) => y - x)
    .slice(0, n);
}

function account(received: number, outcomes: Record<string, number>): PortAccount {
  return { received, counted: Object.values(outcomes).reduce((s, v) => s + v, 0), outcomes };
}

function etrDrops(drops: Readonly<Record<string, number>>): Record<string, number> {
  return Object.fromEntries(Object.entries(drops).filter(([reason]) => reason.startsWith('etr-')));
}

function delta(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}
