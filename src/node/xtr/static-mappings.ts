// The configured side of the map-cache: static entries and the peers (one per locator, with the
// static X25519 keys) their locators point at. `apply` makes both match a configuration and says
// what it changed — at start on an empty map-cache, at a reload on the running one. A peer whose
// keys did not change keeps its sessions (and their counters); a changed or vanished one is closed.
import type { CipherBackend } from '../../crypto/cipher-backend.js';
import type { ItrPeer } from '../../lisp/itr.js';
import type { MapCache } from '../../lisp/map-cache.js';
import { formatPrefix, type EidPrefix } from '../../lisp/prefix.js';
import type { XtrConfig } from '../config/xtr-config.js';
import type { Logger } from '../log.js';
import { createPeer, PeerTable, type PeerKeys } from './peers.js';

interface PeerSpec {
  readonly family: 4 | 6;
  readonly port: number;
  readonly keys: PeerKeys | undefined;
  /** What the peer is built from; a different one means new sessions. */
  readonly fingerprint: string;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class StaticMappings {
  readonly peers = new PeerTable();
  /** Static entries by prefix text: the prefix and a fingerprint of its locators. */
  private readonly entries = new Map<string, { readonly prefix: EidPrefix; readonly fingerprint: string }>();
  /** Peer address -> the fingerprint it was built from. */
  private readonly built = new Map<string, string>();

  constructor(
    private readonly mapCache: MapCache<ItrPeer>,
    private readonly backend: CipherBackend | undefined,
    private readonly log: Logger,
  ) {}

  /** Makes the static entries and peers those of `config`; returns one line per change. */
  apply(config: XtrConfig, now: number): string[] {
    const changes: string[] = [];
    const wanted = this.peerSpecs(config);
    const replaced = new Set<string>();
    for (const peer of [...this.peers.all()]) {
      const spec = wanted.get(peer.address);
      if (spec?.fingerprint === this.built.get(peer.address)) continue;
      this.peers.remove(peer.address);
      this.built.delete(peer.address);
      if (spec) replaced.add(peer.address);
      else changes.push(`static peer -${peer.address}`);
    }
    for (const [address, spec] of wanted) {
      if (this.peers.get(address)) continue;
      if (config.encryption.mode === 'required' && !spec.keys) this.log.log('warn', 'no public key for a locator: packets to it are dropped (itr-no-key)', { locator: address });
      changes.push(`static peer ${replaced.has(address) ? '~' : '+'}${address}`);
      this.peers.add(createPeer(address, spec.family, spec.port, spec.keys, now));
      this.built.set(address, spec.fingerprint);
    }
    const next = new Map(config.mapCache.map((e) => [formatPrefix(e.prefix), e]));
    for (const [key, old] of this.entries) {
      if (next.has(key)) continue;
      this.mapCache.remove(old.prefix);
      this.entries.delete(key);
      changes.push(`map-cache -${key}`);
    }
    for (const [key, entry] of next) {
      const fingerprint = JSON.stringify(entry.locators);
      const old = this.entries.get(key);
      if (old?.fingerprint === fingerprint) continue;
      this.mapCache.insertStatic(entry.prefix, { locators: entry.locators.map((l) => ({ address: l.address, port: l.port, priority: l.priority, weight: l.weight })) }, now);
      changes.push(`map-cache ${old ? '~' : '+'}${key}`);
      this.entries.set(key, { prefix: entry.prefix, fingerprint });
    }
    // Replaced peers are new objects: every static locator points at the current one.
    for (const e of this.mapCache.entries()) {
      if (e.origin !== 'static') continue;
      for (const l of e.locators) l.state = this.peers.get(l.address)?.itr;
    }
    return changes;
  }

  close(): void {
    for (const peer of [...this.peers.all()]) this.peers.remove(peer.address);
  }

  private peerSpecs(config: XtrConfig): Map<string, PeerSpec> {
    const enc = config.encryption;
    const specs = new Map<string, PeerSpec>();
    for (const entry of config.mapCache) {
      for (const l of entry.locators) {
        if (specs.has(l.address)) continue;
        const peerPublic = enc.mode === 'required' ? enc.peers.get(l.address) : undefined;
        const keys = enc.mode === 'required' && this.backend && peerPublic ? { suite: enc.suite, backend: this.backend, own: enc.key, peerPublic, acceptClear: enc.acceptClear } : undefined;
        const fingerprint = [l.port, keys ? `${keys.suite}:${hex(keys.own.publicKey)}:${hex(keys.peerPublic)}:${keys.acceptClear}` : 'clear'].join('|');
        specs.set(l.address, { family: l.family, port: l.port, keys, fingerprint });
      }
    }
    return specs;
  }
}
