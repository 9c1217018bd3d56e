/**
 * Counters over a fixed list of names (drop reasons, reply kinds): a typed-array slot per name on
 * the hot path, and the non-zero ones by name for status output and metrics.
 */
export class NamedCounters<N extends string> {
  private readonly counts: Float64Array;
  private readonly index: ReadonlyMap<N, number>;

  constructor(private readonly names: readonly N[]) {
    this.counts = new Float64Array(names.length);
    this.index = new Map(names.map((name, i) => [name, i]));
  }

  add(name: N, n = 1): void {
    const i = this.index.get(name) ?? -1;
    this.counts[i] = (this.counts[i] ?? 0) + n;
  }

  get(name: N): number {
    return this.counts[this.index.get(name) ?? -1] ?? 0;
  }

  total(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  /** The non-zero counters by name. */
  snapshot(): Partial<Record<N, number>> {
    const out: Partial<Record<N, number>> = {};
    this.names.forEach((name, i) => {
      const n = this.counts[i] ?? 0;
      if (n > 0) out[name] = n;
    });
    return out;
  }
}
