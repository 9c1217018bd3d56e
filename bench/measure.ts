// Benchmark helpers: run a case several times, report the median rate and its ratio against a
// baseline measured in the same run (so machine load affects both alike).

export interface Case {
  readonly name: string;
  readonly run: (iterations: number) => void;
}

function rateOf(c: Case, iterations: number): number {
  const start = process.hrtime.bigint();
  c.run(iterations);
  return iterations / (Number(process.hrtime.bigint() - start) / 1e9);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** Interleaves baseline and subject runs (5 each after a warm-up) and prints medians and the ratio. */
export function compare(title: string, baseline: Case, subject: Case, iterations: number, print: (line: string) => void): void {
  rateOf(baseline, iterations / 10);
  rateOf(subject, iterations / 10);
  const b: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < 5; i++) {
    b.push(rateOf(baseline, iterations));
    s.push(rateOf(subject, iterations));
  }
  const mb = median(b);
  const ms = median(s);
  print(`${title}`);
  print(`  baseline ${baseline.name.padEnd(44)} ${format(mb)}/s`);
  print(`  subject  ${subject.name.padEnd(44)} ${format(ms)}/s   (${(ms / mb).toFixed(2)}x baseline)`);
}

function format(rate: number): string {
  return rate >= 1e6 ? `${(rate / 1e6).toFixed(2)} M` : `${(rate / 1e3).toFixed(1)} k`;
}
