// The map-server's Prometheus metrics, read at scrape time from its counters.
import { labelled, type DaemonMetrics, type Sample } from '../ops/metrics.js';
import type { MapServerStats } from './map-server-node.js';

export function registerMapServerMetrics(metrics: DaemonMetrics, node: { stats(): MapServerStats }): void {
  metrics.gauge('lispnode_map_server_registrations', 'Live registrations (EID-prefixes and hash-EID records), by site', ['site'], () => labelled('site', node.stats().sites));
  metrics.counter('lispnode_map_server_messages_total', 'Control messages received and sent on UDP 4342', ['direction'], (): Sample[] => {
    const s = node.stats();
    return [
      [{ direction: 'in' }, s.received],
      [{ direction: 'out' }, s.sent],
    ];
  });
  metrics.counter(
    'lispnode_map_server_events_total',
    'Map-Register and Map-Request outcomes by name: map-register-received/accepted/dropped, record-registered/refreshed/deregistered/refused, map-notify-sent, map-request-received, reply kinds, and every drop or refusal reason',
    ['event'],
    () => labelled('event', node.stats().counters),
  );
}
