// Prometheus metrics of one daemon: its own prom-client Registry (never the global one, so two
// daemons in one process or a test never mix), filled at scrape time from the counters the daemon
// keeps anyway, and served over HTTP on GET /metrics.
//
// Other components add their figures through the same small API, e.g. the node control plane:
//   metrics.gauge('lispnode_attestation_state', 'Attestation state (1 = the labelled state)', ['state'],
//     () => [[{ state: attestor.state }, 1]]);
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type LabelSet = Readonly<Record<string, string | number>>;
/** One sample: its labels and value. */
export type Sample = readonly [labels: LabelSet, value: number];
/** What a collect function returns: a bare number for an unlabelled metric, else its samples. */
export type Samples = number | Iterable<Sample>;

/** Prometheus naming: [a-zA-Z_:][a-zA-Z0-9_:]*; ours all start with `lispnode_`. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export class DaemonMetrics {
  readonly registry = new Registry();

  constructor(defaultLabels: LabelSet = {}) {
    this.registry.setDefaultLabels(defaultLabels);
  }

  /**
   * Checks a name and frees it: registering a name again replaces the metric, so a component
   * restarted in process (the node's xTR after a config change) reports through its new self.
   */
  private claim(name: string): void {
    check(name);
    this.registry.removeSingleMetric(name);
  }

  /** A gauge read at scrape time; `collect` returns its current samples. */
  gauge(name: string, help: string, labelNames: readonly string[], collect: () => Samples): void {
    this.claim(name);
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of samples(collect)) this.set(labels, value);
      },
    });
  }

  /** A counter read at scrape time: `collect` returns totals the caller keeps (they only grow). */
  counter(name: string, help: string, labelNames: readonly string[], collect: () => Samples): void {
    this.claim(name);
    new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [labels, value] of samples(collect)) this.inc(labels, Math.max(0, value));
      },
    });
  }

  /** A histogram fed as events happen; returns its observe function. */
  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): (labels: LabelSet, value: number) => void {
    this.claim(name);
    const h = new Histogram({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] });
    return (labels, value) => h.observe(labels, value);
  }

  /** The exposition text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Serves GET /metrics on host:port (anything else: 404). */
  async serve(host: string, port: number): Promise<MetricsServer> {
    const server = createServer((request, response) => {
      if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
        return;
      }
      this.text().then(
        (body) => response.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new MetricsServer(server);
  }
}

export class MetricsServer {
  constructor(private readonly server: Server) {}

  /** host:port actually bound (port 0 picks one). */
  get address(): string {
    const a = this.server.address();
    return a && typeof a === 'object' ? `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}` : '';
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function check(name: string): void {
  if (!METRIC_NAME.test(name)) throw new RangeError(`metric name ${JSON.stringify(name)}: expected [a-zA-Z_:][a-zA-Z0-9_:]*`);
}

function samples(collect: () => Samples): Iterable<Sample> {
  const s = collect();
  return typeof s === 'number' ? [[{}, s]] : s;
}

/** `{ a: 1, b: 2 }` as samples labelled `label="a"`, `label="b"`. */
export function labelled(label: string, values: Readonly<Record<string, number>>): Sample[] {
  return Object.entries(values).map(([k, v]) => [{ [label]: k }, v]);
}
