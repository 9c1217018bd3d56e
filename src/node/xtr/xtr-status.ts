// The xTR's status report (ops/status-report.ts) from its live parts: the map-cache with TTLs and
// probed reachability, the data-plane sessions of both directions (static keys and exchanged
// ones), the registrations per map-server, drops and traffic. Read-only; called per request.
import { describeAuthentication } from '../../lisp/xtr-control/key-exchange.js';
import type { KeyId } from '../../crypto/session.js';
import type { ItrPeer } from '../../lisp/itr.js';
import type { MapCache } from '../../lisp/map-cache.js';
import { formatPrefix, type EidPrefix } from '../../lisp/prefix.js';
import { ACTION_NAMES } from '../../lisp/records.js';
import type { XtrConfig } from '../config/xtr-config.js';
import type { MapCacheRow, ReloadSummary, SessionRow, XtrStatusReport } from '../ops/status-report.js';
import type { XtrControlPlane } from './control-plane.js';
import type { PeerTable } from './peers.js';
import type { XtrStats } from './xtr-node.js';

/** Map-cache rows shown by default; `limit` in the request asks for more or fewer. */
export const DEFAULT_MAP_CACHE_ROWS = 1000;

export interface XtrStatusParts {
  readonly config: XtrConfig;
  readonly startedAt: number;
  readonly reloads: ReloadSummary;
  readonly stats: XtrStats;
  readonly tunMtu: number;
  readonly served: readonly EidPrefix[];
  readonly mapCache: MapCache<ItrPeer>;
  readonly staticPeers: PeerTable;
  readonly control: XtrControlPlane | undefined;
}

const seconds = (ms: number): number => Math.max(0, Math.round(ms / 1000));

export function buildXtrStatus(p: XtrStatusParts, now: number, limit = DEFAULT_MAP_CACHE_ROWS): XtrStatusReport {
  const { stats, control } = p;
  const registration = stats.control?.registration;
  return {
    role: 'xtr',
    pid: process.pid,
    configFile: p.config.file,
    startedAt: new Date(p.startedAt).toISOString(),
    uptimeSeconds: seconds(now - p.startedAt),
    reloads: p.reloads,
    tun: { name: p.config.tun.name, mtu: p.tunMtu },
    locator: `${p.config.underlay.address}:${p.config.underlay.port}`,
    localEids: p.served.map(formatPrefix),
    traffic: {
      tun: { in: { packets: stats.tun.in, bytes: stats.tun.inBytes }, out: { packets: stats.tun.out, bytes: stats.tun.outBytes } },
      underlay: { in: { packets: stats.underlay.in, bytes: stats.underlay.inBytes }, out: { packets: stats.underlay.out, bytes: stats.underlay.outBytes } },
    },
    drops: stats.drops,
    dropsTotal: Object.values(stats.drops).reduce((a, b) => a + b, 0),
    ...mapCacheRows(p, now, limit),
    sessions: sessions(p, now),
    registrations: (registration?.mapServers ?? []).map((s) => ({
      mapServer: `${s.address}:${s.port}`,
      state: s.state,
      lastRegisterSecondsAgo: s.lastSentAt === undefined ? null : seconds(now - s.lastSentAt),
      lastMapNotifySecondsAgo: s.lastMapNotifyAt === undefined ? null : seconds(now - s.lastMapNotifyAt),
      unanswered: s.unanswered,
      ...(control?.registrations.get(s.address, s.port) ?? { sent: 0, notified: 0, failed: 0 }),
    })),
    control: {
      resolver: stats.control?.resolver ?? {},
      responder: stats.control?.responder ?? {},
      notifyRefused: Object.fromEntries(Object.entries(registration?.refused ?? {}).filter(([, n]) => n > 0)),
      unsupported: stats.control?.unsupported ?? 0,
      heldDiscarded: stats.control?.heldDiscarded ?? 0,
      datagrams: stats.control?.datagrams ?? { received: 0, outcomes: {} },
      sendRefused: Object.fromEntries(Object.entries(stats.control?.sendRefused ?? {}).filter(([, n]) => n > 0)),
    },
  };
}

function mapCacheRows(p: XtrStatusParts, now: number, limit: number): Pick<XtrStatusReport, 'mapCache'> {
  const entries: MapCacheRow[] = [];
  let truncated = false;
  for (const e of p.mapCache.entries()) {
    if (entries.length >= limit) {
      truncated = true;
      break;
    }
    entries.push({
      eidPrefix: formatPrefix(e.prefix),
      origin: e.origin,
      kind: e.kind,
      action: ACTION_NAMES[e.action],
      ttlSeconds: e.expiresAt === Infinity ? null : seconds(e.expiresAt - now),
      locators: e.locators.map((l) => ({
        address: l.address,
        port: l.port,
        priority: l.priority,
        weight: l.weight,
        reachable: l.reachable,
        probed: p.control?.resolver?.reachability(l.address) !== undefined,
      })),
    });
  }
  return { mapCache: { size: p.mapCache.size, entries, truncated } };
}

const KEY_IDS: readonly KeyId[] = [1, 2, 3];

function sessions(p: XtrStatusParts, now: number): SessionRow[] {
  const rows: SessionRow[] = [];
  for (const peer of p.staticPeers.all()) {
    const sealing = peer.itr.sealing;
    const authentication = 'static key';
    if (sealing) rows.push({ peer: peer.address, direction: 'out', origin: 'static', keyId: sealing.current?.keyId ?? null, keyAgeSeconds: seconds(now - peer.keyedAt), packets: sealing.packetsSealed, authentication });
    const opening = peer.etr.opening;
    if (opening) rows.push({ peer: peer.address, direction: 'in', origin: 'static', keyId: KEY_IDS.find((k) => opening.hasKey(k)) ?? null, keyAgeSeconds: seconds(now - peer.keyedAt), packets: null, authentication });
  }
  const control = p.control;
  if (!control) return rows;
  const learned = new Set<string>();
  for (const e of p.mapCache.entries()) if (e.origin === 'learned') for (const l of e.locators) learned.add(l.address);
  for (const address of learned) {
    const s = control.resolver?.sealingFor(address);
    if (s?.keyed) rows.push({ peer: address, direction: 'out', origin: 'exchanged', keyId: s.keyId ?? null, keyAgeSeconds: seconds(now - s.installedAt), packets: s.sealing.packetsSealed, authentication: describeAuthentication(s.authentication) });
  }
  // Proven inbound sessions only: unproven candidates are counted, not listed (a flood of offers would fill the page).
  for (const o of control.responder.allOpenings()) {
    const auth = o.authentication;
    if (o.current === undefined || !auth) continue;
    const installed = o.opening.keys().find((k) => k.role === 'current' && k.keyId === o.current)?.installedAt;
    rows.push({ peer: o.address, direction: 'in', origin: 'exchanged', keyId: o.current, keyAgeSeconds: installed === undefined ? null : seconds(now - installed), packets: null, authentication: describeAuthentication(auth), candidates: o.candidates });
  }
  return rows;
}
