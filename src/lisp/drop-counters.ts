// Every packet the data plane does not forward is counted under a named reason. The names are
// the counters' names in status output and metrics; the hot path increments a typed array slot.

export const DROP_REASONS = [
  // ITR: TUN -> UDP
  'itr-not-ip',
  'itr-map-cache-miss',
  'itr-negative-natively-forward',
  'itr-negative-send-map-request',
  'itr-negative-drop',
  'itr-negative-policy-denied',
  'itr-negative-auth-failure',
  'itr-no-reachable-locator',
  'itr-no-key',
  'itr-key-exhausted',
  'itr-too-big',
  'itr-send-failed',
  // ETR: UDP -> TUN
  'etr-truncated',
  'etr-control-in-data',
  'etr-unknown-instance',
  'etr-no-key',
  'etr-key-expired',
  'etr-replayed',
  'etr-too-old',
  'etr-too-short',
  'etr-icv-mismatch',
  'etr-tag-mismatch',
  'etr-bad-length',
  'etr-clear-refused',
  'etr-bad-inner-version',
  'etr-bad-inner-length',
  'etr-not-local-eid',
  'etr-unknown-source',
  'etr-spoofed-source',
  'etr-tun-write-failed',
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

const INDEX = Object.fromEntries(DROP_REASONS.map((r, i) => [r, i])) as Readonly<Record<DropReason, number>>;

export class DropCounters {
  private readonly counts = new Float64Array(DROP_REASONS.length);

  add(reason: DropReason, n = 1): void {
    this.counts[INDEX[reason]] = (this.counts[INDEX[reason]] ?? 0) + n;
  }

  get(reason: DropReason): number {
    return this.counts[INDEX[reason]] ?? 0;
  }

  total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  /** The non-zero counters by name. */
  snapshot(): Partial<Record<DropReason, number>> {
    const out: Partial<Record<DropReason, number>> = {};
    DROP_REASONS.forEach((r, i) => {
      const n = this.counts[i] ?? 0;
      if (n > 0) out[r] = n;
    });
    return out;
  }
}
