// `lispnode status` for people: the status report (status-report.ts) as aligned sections. Scripts
// use `--json`, which prints the report itself.
import type { DaemonHeader, MapServerStatusReport, StatusReport, XtrStatusReport, NodeStatusReport } from './status-report.js';

/** Columns padded to their widest cell, two spaces apart, indented by two. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return ['  (none)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
  return [line(header), ...rows.map(line)];
}

/** 3725 -> "1h2m5s"; null -> "-". */
export function duration(seconds: number | null): string {
  if (seconds === null) return '-';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return [d && `${d}d`, h && `${h}h`, m && `${m}m`, (s || seconds === 0) && `${s}s`].filter(Boolean).join('') || '0s';
}

const ago = (seconds: number | null): string => (seconds === null ? 'never' : `${duration(seconds)} ago`);

function counters(title: string, values: Readonly<Record<string, number>>): string[] {
  const entries = Object.entries(values).filter(([, n]) => n > 0);
  return [`${title}:`, ...(entries.length === 0 ? ['  (none)'] : table(['name', 'count'], entries.map(([k, n]) => [k, String(n)])).slice(1))];
}

function reloads(r: DaemonHeader['reloads']): string {
  const last = r.last ? `; last ${r.last.at} ${r.last.outcome}${r.last.detail.length > 0 ? `: ${r.last.detail.join(', ')}` : ''}` : '';
  return `reloads: ${r.applied} applied, ${r.refused} refused${last}`;
}

function xtr(s: XtrStatusReport): string[] {
  const t = s.traffic;
  return [
    `xTR ${s.tun.name} (pid ${s.pid}), locator ${s.locator}, TUN MTU ${s.tun.mtu}, up ${duration(s.uptimeSeconds)}`,
    `config ${s.configFile}; ${reloads(s.reloads)}`,
    `local EIDs: ${s.localEids.join(', ')}`,
    '',
    'traffic:',
    ...table(
      ['path', 'packets', 'bytes'],
      [
        ['tun in (to encapsulate)', String(t.tun.in.packets), String(t.tun.in.bytes)],
        ['underlay out', String(t.underlay.out.packets), String(t.underlay.out.bytes)],
        ['underlay in', String(t.underlay.in.packets), String(t.underlay.in.bytes)],
        ['tun out (decapsulated)', String(t.tun.out.packets), String(t.tun.out.bytes)],
      ],
    ),
    '',
    ...counters(`drops (${s.dropsTotal} in all)`, s.drops),
    '',
    `map-cache (${s.mapCache.size} ${s.mapCache.size === 1 ? 'entry' : 'entries'}${s.mapCache.truncated ? `, first ${s.mapCache.entries.length} shown` : ''}):`,
    ...table(
      ['EID-prefix', 'origin', 'TTL left', 'action', 'locators'],
      s.mapCache.entries.map((e) => [
        e.eidPrefix,
        e.origin,
        e.ttlSeconds === null ? 'static' : duration(e.ttlSeconds),
        e.kind === 'negative' ? e.action : '',
        e.locators.map((l) => `${l.address}:${l.port} p${l.priority} w${l.weight} ${l.reachable ? 'up' : 'DOWN'}${l.probed ? ' (probed)' : ''}`).join(', '),
      ]),
    ),
    '',
    'sessions:',
    ...table(
      ['peer', 'dir', 'origin', 'key-id', 'key age', 'packets'],
      s.sessions.map((x) => [x.peer, x.direction, x.origin, x.keyId === null ? '-' : String(x.keyId), duration(x.keyAgeSeconds), x.packets === null ? '-' : String(x.packets)]),
    ),
    '',
    'registrations:',
    ...table(
      ['map-server', 'state', 'last register', 'last Map-Notify', 'unanswered', 'sent', 'notified', 'failed'],
      s.registrations.map((r) => [r.mapServer, r.state, ago(r.lastRegisterSecondsAgo), ago(r.lastMapNotifySecondsAgo), String(r.unanswered), String(r.sent), String(r.notified), String(r.failed)]),
    ),
    '',
    ...counters('resolver (ITR)', s.control.resolver),
    ...counters('responder (ETR)', s.control.responder),
    ...(Object.keys(s.control.notifyRefused).length > 0 ? counters('Map-Notifies refused', s.control.notifyRefused) : []),
  ];
}

function mapServer(s: MapServerStatusReport): string[] {
  return [
    `map-server ${s.listen} (pid ${s.pid}), up ${duration(s.uptimeSeconds)}`,
    `config ${s.configFile}; ${reloads(s.reloads)}`,
    `messages: ${s.messages.received} received, ${s.messages.sent} sent`,
    '',
    'sites:',
    ...table(
      ['site', 'registrations', 'key-ids', 'lookup policy', 'prefixes'],
      s.sites.map((x) => [x.name, String(x.registrations), x.keyIds.join(','), x.lookupPolicy ? 'yes' : 'no', x.prefixes.join(', ')]),
    ),
    '',
    `registrations (${s.registrations.length}${s.truncated ? '+, truncated' : ''}):`,
    ...table(
      ['EID', 'site', 'RLOCs', 'expires in', 'registered by', 'last register', 'proof'],
      s.registrations.map((r) => [r.eid, r.site, r.rlocs.join(','), duration(r.expiresInSeconds), r.registeredBy, ago(r.lastRegisteredSecondsAgo), r.proof]),
    ),
    '',
    ...counters('counters', s.counters),
  ];
}

function node(report: NodeStatusReport): string[] {
  const n = report.node;
  const a = n.attestation;
  return [
    `node ${n.uuid ?? '(not onboarded)'}: controller ${n.controller}${n.lastError === undefined ? '' : ` (${n.lastError})`}`,
    `key store: ${n.keyStore}${n.degraded === undefined ? '' : ` — NO TPM: ${n.degraded}`}`,
    `vault: ${n.vault.status} (${n.vault.detail})${n.vault.fingerprint === undefined ? '' : `, key fingerprint ${n.vault.fingerprint}`}`,
    `attestation: ${a ? `${a.phase}, ${a.attested ? 'attested' : 'not attested'}, ${a.successes}/${a.attempts} rounds succeeded${a.lastError === undefined ? '' : `, last error: ${a.lastError}`}` : 'not started'}`,
    `attestation ticket: ${n.ticket ? `${n.ticket.eids.join(', ')} until ${n.ticket.notAfter}` : 'none'}`,
    `config: ${n.configHash || '(none yet)'}`,
    ...n.mesh.map((m) => `mesh instance ${m.name} (IID ${m.instanceId}): EID ${m.eid}, ${m.configFile}`),
    ...(report.xtr ? ['', ...xtr(report.xtr)] : []),
  ];
}

export function formatStatus(report: StatusReport): string[] {
  switch (report.role) {
    case 'xtr':
      return xtr(report);
    case 'map-server':
      return mapServer(report);
    case 'node':
      return node(report);
  }
}
