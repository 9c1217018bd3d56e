// The map-server's status report (ops/status-report.ts): its sites, every live registration with
// its RLOCs and expiry, and the message counters.
import type { MapServerConfig } from '../../lisp/map-server/site.js';
import type { RegistrationStore } from '../../lisp/map-server/registrations.js';
import { formatPrefix } from '../../lisp/prefix.js';
import { ipOf } from '../../lisp/xtr-control/key-exchange.js';
import type { MapServerRegistrationRow, MapServerStatusReport, ReloadSummary } from '../ops/status-report.js';
import type { MapServerStats } from './map-server-node.js';

/** Registration rows shown by default; `limit` in the request asks for more or fewer. */
export const DEFAULT_REGISTRATION_ROWS = 1000;

export interface MapServerStatusParts {
  readonly configFile: string;
  readonly listen: string;
  readonly startedAt: number;
  readonly reloads: ReloadSummary;
  readonly server: MapServerConfig;
  readonly store: RegistrationStore;
  readonly stats: MapServerStats;
}

const seconds = (ms: number): number => Math.max(0, Math.round(ms / 1000));

export function buildMapServerStatus(p: MapServerStatusParts, now: number, limit = DEFAULT_REGISTRATION_ROWS): MapServerStatusReport {
  const registrations: MapServerRegistrationRow[] = [];
  let truncated = false;
  for (const r of p.store.entries()) {
    if (now >= r.expiresAt) continue;
    if (registrations.length >= limit) {
      truncated = true;
      break;
    }
    registrations.push({
      eid: r.key,
      site: r.site,
      rlocs: r.record.locators.flatMap((l) => {
        const a = ipOf(l.locator);
        return a ? [a.address] : [];
      }),
      registeredBy: `${r.source.address}:${r.source.port}`,
      proxyReply: r.proxyReply,
      keyId: r.keyId,
      proof: r.proof.level,
      firstRegisteredSecondsAgo: seconds(now - r.firstRegisteredAt),
      lastRegisteredSecondsAgo: seconds(now - r.lastRegisteredAt),
      expiresInSeconds: seconds(r.expiresAt - now),
    });
  }
  return {
    role: 'map-server',
    pid: process.pid,
    configFile: p.configFile,
    startedAt: new Date(p.startedAt).toISOString(),
    uptimeSeconds: seconds(now - p.startedAt),
    reloads: p.reloads,
    listen: p.listen,
    sites: p.server.sites.map((s) => ({
      name: s.name,
      prefixes: s.allowedPrefixes.map((a) => formatPrefix(a.prefix)),
      keyIds: s.keys.map((k) => k.keyId),
      registrations: p.stats.sites[s.name] ?? 0,
      lookupPolicy: s.lookupPolicy !== undefined,
    })),
    registrations,
    truncated,
    messages: { received: p.stats.received, sent: p.stats.sent },
    counters: p.stats.counters,
    datagrams: p.stats.datagrams,
  };
}
