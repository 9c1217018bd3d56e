// The ITR data path (RFC 9300), sans-IO: inner packets read from the TUN (with headroom in front)
// in, LISP packets for the underlay out, written in place — the LISP header and IV go into the
// headroom, the cipher seals in the same buffer. Packets that cannot go are counted by reason;
// oversize ones get an ICMP error for the TUN (rate-limited).
import { maxSealOverhead, sealOverhead, type CipherSuite } from '../crypto/cipher-suite.js';
import type { SealingSession } from '../crypto/session.js';
import { DATA_HEADER_LENGTH, writeDataHeader, type DataHeader } from './data-header.js';
import type { DropCounters, DropReason } from './drop-counters.js';
import { packetTooBig, type RateLimiter } from './icmp-too-big.js';
import { destinationOffset, ipFamily } from './inner-ip.js';
import { chooseLocator, flowHash, type MapCache } from './map-cache.js';
import { ACTION, type Action } from './records.js';

/** Room in front of each inner packet: the LISP header and the largest IV (suite 2's 16 bytes). */
export const ITR_HEADROOM = DATA_HEADER_LENGTH + 16;
/** Room behind it: padding, GCM tag and ICV. */
const TAILROOM = 64;

/** A destination locator as the ITR sees it; the map-cache carries one per locator. */
export interface ItrPeer {
  readonly family: 4 | 6;
  /** The UDP socket's address slot: 16 bytes, IPv4 as IPv4-mapped ::ffff:a.b.c.d. */
  readonly address: Uint8Array;
  readonly port: number;
  /** Keys for this locator; undefined sends clear (when allowed). */
  readonly sealing: SealingSession | undefined;
}

export interface ItrOptions {
  readonly instanceId: number;
  readonly mapCache: MapCache<ItrPeer>;
  readonly drops: DropCounters;
  /** Largest outer IP packet the underlay carries. */
  readonly underlayMtu: number;
  readonly underlayFamily: 4 | 6;
  /** Refuse to send clear when a locator has no keys. */
  readonly requireEncryption: boolean;
  /** Worst-case suite overhead for the MTU advertised in ICMP errors. */
  readonly suite: CipherSuite | undefined;
  readonly tooBigLimiter: RateLimiter;
  /** Packets per batch and the largest inner packet (the TUN MTU). */
  readonly batchSize: number;
  readonly innerMtu: number;
}

/** Packets to send: buffers[index[k]] from offsets[k] for lengths[k] bytes, to peers[k]. */
export interface ItrOutput {
  readonly index: Uint32Array;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  readonly peers: ItrPeer[];
  count: number;
  /** ICMP errors to write back into the TUN. */
  readonly icmp: Uint8Array[];
  /** Buffers whose destination missed the map-cache: the control plane resolves them. */
  readonly misses: Uint32Array;
  missCount: number;
}

const NEGATIVE: Readonly<Record<Action, DropReason>> = {
  [ACTION.noAction]: 'itr-negative-drop',
  [ACTION.nativelyForward]: 'itr-negative-natively-forward',
  [ACTION.sendMapRequest]: 'itr-negative-send-map-request',
  [ACTION.drop]: 'itr-negative-drop',
  [ACTION.dropPolicyDenied]: 'itr-negative-policy-denied',
  [ACTION.dropAuthFailure]: 'itr-negative-auth-failure',
  [ACTION.sendPubSub]: 'itr-negative-send-map-request',
  [ACTION.notRegisteredYet]: 'itr-negative-send-map-request',
};

export class Itr {
  /** The TUN reads into these, at ITR_HEADROOM. */
  readonly buffers: Uint8Array[];
  /** Per buffer, its view from each possible packet start (IV length 0, 12 or 16): made once. */
  private readonly views = new Map<number, Uint8Array[]>();
  private readonly header: DataHeader;
  private readonly groups = new Map<ItrPeer, number[]>();
  private readonly sealLengths: Uint32Array;
  private groupViews: Uint8Array[] = [];
  private readonly groupLengths: Uint32Array;

  constructor(private readonly options: ItrOptions) {
    this.buffers = Array.from({ length: options.batchSize }, () => new Uint8Array(ITR_HEADROOM + options.innerMtu + TAILROOM));
    this.sealLengths = new Uint32Array(options.batchSize);
    this.groupLengths = new Uint32Array(options.batchSize);
    // OOR style: no nonce (N=0); I only when the instance is not 0, as lispers.net does.
    const iid = options.instanceId & 0xffffff;
    this.header = { nonceField: { kind: 'none' }, reservedBit: false, keyId: 0, ...(iid !== 0 && { instanceId: iid }) };
  }

  static output(batchSize: number): ItrOutput {
    return { index: new Uint32Array(batchSize), offsets: new Uint32Array(batchSize), lengths: new Uint32Array(batchSize), peers: [], count: 0, icmp: [], misses: new Uint32Array(batchSize), missCount: 0 };
  }

  /** `sizes[i]` is the length of the inner packet in buffers[i] at ITR_HEADROOM. */
  process(sizes: Uint32Array, count: number, now: number, out: ItrOutput): void {
    out.count = 0;
    out.peers.length = 0;
    out.icmp.length = 0;
    out.missCount = 0;
    for (const list of this.groups.values()) list.length = 0;
    const { drops, mapCache } = this.options;
    for (let i = 0; i < count; i++) {
      const buf = this.buffers[i] ?? new Uint8Array(0);
      const size = sizes[i] ?? 0;
      const family = ipFamily(buf, ITR_HEADROOM, size);
      if (family === 0) {
        drops.add('itr-not-ip');
        continue;
      }
      const entry = mapCache.lookup(this.options.instanceId, family, buf, ITR_HEADROOM + destinationOffset(family), now);
      if (entry.kind === 'miss') {
        drops.add('itr-map-cache-miss');
        out.misses[out.missCount++] = i;
        continue;
      }
      if (entry.kind === 'negative') {
        drops.add(NEGATIVE[entry.action]);
        continue;
      }
      const peer = chooseLocator(entry, flowHash(buf, ITR_HEADROOM))?.state;
      if (!peer) {
        drops.add('itr-no-reachable-locator');
        continue;
      }
      const layout = peer.sealing?.current?.layout;
      if (!layout && (peer.sealing || this.options.requireEncryption)) {
        drops.add('itr-no-key');
        continue;
      }
      const outer = (peer.family === 4 ? 20 : 40) + 8 + DATA_HEADER_LENGTH + size + (layout ? sealOverhead(layout.suite, size) : 0);
      if (outer > this.options.underlayMtu) {
        this.tooBig(buf.subarray(ITR_HEADROOM, ITR_HEADROOM + size), family, now, out);
        drops.add('itr-too-big');
        continue;
      }
      const start = ITR_HEADROOM - DATA_HEADER_LENGTH - (layout?.ivLength ?? 0);
      writeDataHeader(buf, start, this.header);
      if (!layout) {
        this.emit(out, i, start, DATA_HEADER_LENGTH + size, peer);
        continue;
      }
      let list = this.groups.get(peer);
      if (!list) {
        list = [];
        this.groups.set(peer, list);
      }
      list.push(i);
      this.sealLengths[i] = ITR_HEADROOM - start + size;
    }
    for (const [peer, list] of this.groups) if (list.length > 0) this.seal(peer, list, out);
  }

  private seal(peer: ItrPeer, list: number[], out: ItrOutput): void {
    const sealing = peer.sealing;
    const ivLength = sealing?.current?.layout.ivLength ?? 0;
    const start = ITR_HEADROOM - DATA_HEADER_LENGTH - ivLength;
    const views = this.viewsFrom(start);
    const n = list.length;
    if (this.groupViews.length < n) this.groupViews = new Array<Uint8Array>(n);
    const lengths = this.groupLengths;
    for (let k = 0; k < n; k++) {
      const i = list[k] ?? 0;
      this.groupViews[k] = views[i] ?? new Uint8Array(0);
      lengths[k] = this.sealLengths[i] ?? 0;
    }
    const outcome = sealing ? sealing.sealBatch(this.groupViews, lengths, n) : { status: 'no-key' as const, sealed: 0 };
    for (let k = 0; k < outcome.sealed; k++) this.emit(out, list[k] ?? 0, start, lengths[k] ?? 0, peer);
    if (outcome.sealed < n) this.options.drops.add(outcome.status === 'key-exhausted' ? 'itr-key-exhausted' : 'itr-no-key', n - outcome.sealed);
  }

  private emit(out: ItrOutput, i: number, offset: number, length: number, peer: ItrPeer): void {
    const k = out.count++;
    out.index[k] = i;
    out.offsets[k] = offset;
    out.lengths[k] = length;
    out.peers[k] = peer;
  }

  private viewsFrom(start: number): Uint8Array[] {
    let views = this.views.get(start);
    if (!views) {
      views = this.buffers.map((b) => b.subarray(start));
      this.views.set(start, views);
    }
    return views;
  }

  private tooBig(packet: Uint8Array, family: 4 | 6, now: number, out: ItrOutput): void {
    if (!this.options.tooBigLimiter.allow(now)) return;
    const overhead = (this.options.underlayFamily === 4 ? 20 : 40) + 8 + DATA_HEADER_LENGTH + (this.options.suite ? maxSealOverhead(this.options.suite) : 0);
    const icmp = packetTooBig(packet, family, this.options.underlayMtu - overhead);
    if (icmp) out.icmp.push(icmp);
  }
}
