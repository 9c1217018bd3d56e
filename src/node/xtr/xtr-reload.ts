// What a reload of the xTR's configuration changes, worked out before anything is touched: the
// settings that need a restart (the TUN, the underlay sockets, the data plane's fixed options),
// the ones that can be applied in place, and the local EIDs that come and go.
import { formatPrefix, type EidPrefix } from '../../lisp/prefix.js';
import type { XtrConfig } from '../config/xtr-config.js';
import { fingerprint } from '../ops/reload.js';

export interface XtrConfigDiff {
  /** Key paths whose change needs a restart (the reload is refused when there is one). */
  readonly restart: readonly string[];
  /** Key paths that changed and are applied in place. */
  readonly changes: readonly string[];
  /** One line per local EID or map-server added (+), removed (-) or changed (~). */
  readonly details: readonly string[];
  readonly removedEids: readonly EidPrefix[];
}

export function diffXtrConfig(old: XtrConfig, next: XtrConfig): XtrConfigDiff {
  const restart: string[] = [];
  const changes: string[] = [];
  const details: string[] = [];
  const compare = (path: string, a: unknown, b: unknown, into: string[]): void => {
    if (fingerprint(a) !== fingerprint(b)) into.push(path);
  };
  // Fixed for the process: the device, the sockets, what the ITR and ETR were built with.
  compare('/tun/name', old.tun.name, next.tun.name, restart);
  compare('/tun/mtu', old.tun.mtu, next.tun.mtu, restart);
  compare('/underlay/address', old.underlay.address, next.underlay.address, restart);
  compare('/underlay/port', old.underlay.port, next.underlay.port, restart);
  compare('/underlay/mtu', old.underlay.mtu, next.underlay.mtu, restart);
  compare('/instance-id', old.instanceId, next.instanceId, restart);
  compare('/learned-map-cache', old.learnedMapCache, next.learnedMapCache, restart);
  compare('/crypto-eid', old.cryptoEid && { spki: old.cryptoEid.key.spki, prefix: old.cryptoEid.prefix, derivation: old.cryptoEid.derivation }, next.cryptoEid && { spki: next.cryptoEid.key.spki, prefix: next.cryptoEid.prefix, derivation: next.cryptoEid.derivation }, restart);
  const oldEnc = old.encryption;
  const nextEnc = next.encryption;
  compare('/encryption/mode', oldEnc.mode, nextEnc.mode, restart);
  if (oldEnc.mode === 'required' && nextEnc.mode === 'required') {
    compare('/encryption/cipher-suite', oldEnc.suite, nextEnc.suite, restart);
    compare('/encryption/backend', oldEnc.backend, nextEnc.backend, restart);
    compare('/encryption/accept-clear', oldEnc.acceptClear, nextEnc.acceptClear, restart);
    compare('/encryption/private-key-file', oldEnc.key.publicKey, nextEnc.key.publicKey, changes);
    compare('/encryption/peers', [...oldEnc.peers], [...nextEnc.peers], changes);
  }
  // The resolver exists or not from the start; its list can change.
  if ((old.mapResolvers.length === 0) !== (next.mapResolvers.length === 0)) restart.push('/map-resolvers');
  else compare('/map-resolvers', old.mapResolvers, next.mapResolvers, changes);

  compare('/tun/routes', old.tun.routes.map(formatPrefix).sort(), next.tun.routes.map(formatPrefix).sort(), changes);
  compare('/map-cache', old.mapCache, next.mapCache, changes);

  const oldEids = new Map(old.localEids.map((e) => [formatPrefix(e.prefix), e]));
  const nextEids = new Map(next.localEids.map((e) => [formatPrefix(e.prefix), e]));
  const removedEids: EidPrefix[] = [];
  for (const [key, e] of oldEids) {
    if (nextEids.has(key)) continue;
    removedEids.push(e.prefix);
    details.push(`local-eid -${key}`);
  }
  for (const [key, e] of nextEids) {
    const before = oldEids.get(key);
    if (!before) details.push(`local-eid +${key}`);
    else if (before.address !== e.address) details.push(`local-eid ~${key} (address ${before.address ?? 'none'} -> ${e.address ?? 'none'})`);
  }
  if (details.length > 0) changes.push('/local-eids');

  const server = (m: XtrConfig['mapServers'][number]): string => `${m.address}:${m.port}`;
  const oldServers = new Map(old.mapServers.map((m) => [server(m), fingerprint(m)]));
  const nextServers = new Map(next.mapServers.map((m) => [server(m), fingerprint(m)]));
  const serverLines = [
    ...[...oldServers.keys()].filter((k) => !nextServers.has(k)).map((k) => `map-server -${k}`),
    ...[...nextServers].filter(([k]) => !oldServers.has(k)).map(([k]) => `map-server +${k}`),
    // The key (or proxy-reply) changed: everything is registered again under the new key.
    ...[...nextServers].filter(([k, f]) => oldServers.has(k) && oldServers.get(k) !== f).map(([k]) => `map-server ~${k} (key or flags)`),
  ];
  if (serverLines.length > 0) changes.push('/map-servers');
  details.push(...serverLines);
  return { restart, changes, details, removedEids };
}
