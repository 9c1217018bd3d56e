// What a reload of the map-server's configuration changes: the listening socket needs a restart;
// sites (keys, prefixes, signature requirements, lookup policy), crypto-EID prefixes and the
// snapshot file are applied in place.
import type { MapServerFileConfig } from '../config/map-server-config.js';
import { fingerprint } from '../ops/reload.js';

export interface MapServerConfigDiff {
  readonly restart: readonly string[];
  readonly changes: readonly string[];
  /** One line per site added (+), removed (-) or changed (~). */
  readonly details: readonly string[];
}

export function diffMapServerConfig(old: MapServerFileConfig, next: MapServerFileConfig): MapServerConfigDiff {
  const restart: string[] = [];
  const changes: string[] = [];
  if (old.listen.address !== next.listen.address) restart.push('/listen/address');
  if (old.listen.port !== next.listen.port) restart.push('/listen/port');
  if (old.snapshotFile !== next.snapshotFile) changes.push('/snapshot-file');
  if (fingerprint(old.server.cryptoEidPrefixes) !== fingerprint(next.server.cryptoEidPrefixes)) changes.push('/crypto-eid-prefixes');
  // The checker is a function: its certificates' digest tells whether the trust changed.
  if (old.ticketCerts !== next.ticketCerts) changes.push('/attestation');
  const oldSites = new Map(old.server.sites.map((s) => [s.name, fingerprint(s)]));
  const nextSites = new Map(next.server.sites.map((s) => [s.name, fingerprint(s)]));
  const details = [
    ...[...oldSites.keys()].filter((n) => !nextSites.has(n)).map((n) => `site -${n}`),
    ...[...nextSites].filter(([n]) => !oldSites.has(n)).map(([n]) => `site +${n}`),
    ...[...nextSites].filter(([n, f]) => oldSites.has(n) && oldSites.get(n) !== f).map(([n]) => `site ~${n}`),
  ];
  if (details.length > 0) changes.push('/sites');
  if (changes.includes('/crypto-eid-prefixes')) details.push('crypto-eid-prefixes changed');
  if (changes.includes('/attestation')) details.push('trusted controller signing certificates changed (registrations re-checked)');
  return { restart, changes, details };
}
