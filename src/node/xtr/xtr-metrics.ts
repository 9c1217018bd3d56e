// The xTR's Prometheus metrics, read at scrape time from the counters it keeps anyway (one
// stats() call per scrape), plus the resolution-latency histogram the control plane feeds.
import { DROP_REASONS } from '../../lisp/drop-counters.js';
import { labelled, type DaemonMetrics, type Sample } from '../ops/metrics.js';
import type { TimedRequest } from './reply-timer.js';
import type { XtrStats } from './xtr-node.js';

/** Seconds: a LAN answer takes about a millisecond, a lost first request a retry (1 s and more). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function registerXtrMetrics(metrics: DaemonMetrics, node: { stats(): XtrStats }): { readonly replyLatency: (kind: TimedRequest, ms: number) => void } {
  // Every metric of one scrape reads the same snapshot.
  let cached: { at: number; stats: XtrStats } | undefined;
  const stats = (): XtrStats => {
    const now = Date.now();
    if (!cached || now - cached.at > 100) cached = { at: now, stats: node.stats() };
    return cached.stats;
  };
  const traffic = (field: 'packets' | 'bytes'): Sample[] => {
    const s = stats();
    const pick = (c: XtrStats['tun'], dir: 'in' | 'out'): number => (field === 'packets' ? c[dir] : dir === 'in' ? c.inBytes : c.outBytes);
    return [
      [{ interface: 'tun', direction: 'in' }, pick(s.tun, 'in')],
      [{ interface: 'tun', direction: 'out' }, pick(s.tun, 'out')],
      [{ interface: 'underlay', direction: 'in' }, pick(s.underlay, 'in')],
      [{ interface: 'underlay', direction: 'out' }, pick(s.underlay, 'out')],
    ];
  };
  metrics.counter('lispnode_packets_total', 'Packets by interface (tun: workloads, underlay: UDP 4341) and direction', ['interface', 'direction'], () => traffic('packets'));
  metrics.counter('lispnode_bytes_total', 'Bytes by interface and direction (inner packets on the TUN, LISP datagrams on the underlay)', ['interface', 'direction'], () => traffic('bytes'));
  metrics.counter('lispnode_drops_total', 'Data-plane packets not forwarded, by reason', ['reason'], () => DROP_REASONS.map((r): Sample => [{ reason: r }, stats().drops[r] ?? 0]));
  metrics.gauge('lispnode_map_cache_entries', 'Map-cache entries by origin', ['origin'], () => {
    const m = stats().mapCache;
    return [
      [{ origin: 'static' }, m.size - m.learned],
      [{ origin: 'learned' }, m.learned],
    ];
  });
  const registrations = (pick: 'sent' | 'notified' | 'failed') => (): Sample[] => Object.entries(stats().control?.registrationTotals ?? {}).map(([ms, t]) => [{ map_server: ms }, t[pick]]);
  metrics.counter('lispnode_map_registers_sent_total', 'Map-Registers sent, by map-server', ['map_server'], registrations('sent'));
  metrics.counter('lispnode_map_notifies_total', 'Verified Map-Notifies that acknowledged a registration, by map-server', ['map_server'], registrations('notified'));
  metrics.counter('lispnode_registration_failures_total', 'Register rounds that got no verified Map-Notify in time, by map-server', ['map_server'], registrations('failed'));
  metrics.counter('lispnode_map_notifies_refused_total', 'Map-Notifies refused, by reason', ['reason'], () => labelled('reason', stats().control?.registration?.refused ?? {}));
  metrics.gauge('lispnode_registered', 'Whether the map-server acknowledges our registration (1) or not (0)', ['map_server'], () =>
    (stats().control?.registration?.mapServers ?? []).map((s): Sample => [{ map_server: `${s.address}:${s.port}` }, s.state === 'registered' ? 1 : 0]),
  );
  metrics.counter('lispnode_keys_installed_total', 'Data-plane keys from key exchange (first keys and rekeys): ITR side installed for sealing, ETR side candidates answered (current once a packet proves them)', ['side'], () => [
    [{ side: 'itr' }, stats().control?.resolver?.['key-installed'] ?? 0],
    [{ side: 'etr' }, stats().control?.responder['key-candidate'] ?? 0],
  ]);
  metrics.gauge('lispnode_etr_peers', 'ITR locators the ETR holds keys for: proven (a packet opened under a current key) or holding only unproven candidates', ['state'], () => {
    const p = stats().control?.inboundPeers;
    return p ? [[{ state: 'proven' }, p.peers - p.unproven], [{ state: 'unproven' }, p.unproven]] : [];
  });
  metrics.counter('lispnode_control_events_total', 'Control-plane events of the resolver (ITR) and responder (ETR), by name', ['plane', 'event'], () => {
    const c = stats().control;
    return [
      ...Object.entries(c?.resolver ?? {}).map(([event, n]): Sample => [{ plane: 'resolver', event }, n]),
      ...Object.entries(c?.responder ?? {}).map(([event, n]): Sample => [{ plane: 'responder', event }, n]),
    ];
  });
  const observe = metrics.histogram('lispnode_resolution_latency_seconds', 'Time from a Map-Request (map-request) or RLOC probe (rloc-probe) to its Map-Reply', ['kind'], LATENCY_BUCKETS);
  return { replyLatency: (kind, ms) => observe({ kind }, ms / 1000) };
}
