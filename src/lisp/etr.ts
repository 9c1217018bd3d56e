// The ETR data path (RFC 9300 §5.3, lisp-protocol.md §1.5), sans-IO: a batch of received UDP
// 4341 payloads in, a batch of inner packets for the TUN out, every other packet counted under
// its drop reason. Order of checks: header, instance, key (ICV before decryption, replay window),
// inner version and length, destination must be a local EID, source must be an EID-prefix
// mapped to the locator the packet came from (anti-spoofing), and a crypto-EID source must be the
// EID the opening key was agreed with (signed key agreement, docs/key-agreement.md).
import { SESSION_OPEN_STATUS, type OpeningSession, type SessionOpenStatus } from '../crypto/session.js';
import { CONTROL_IN_DATA_IID, DATA_HEADER_LENGTH } from './data-header.js';
import type { DropCounters, DropReason } from './drop-counters.js';
import { destinationOffset, ipFamily, ipPacketLength, sourceOffset } from './inner-ip.js';
import type { MapCache } from './map-cache.js';
import { prefixContains, type EidPrefix } from './prefix.js';

/** What the ETR knows about a sending locator. */
export interface EtrPeer {
  /** Decryption keys agreed with this peer, if any. */
  readonly opening: OpeningSession | undefined;
  /** Accept KK=0 packets from this peer (a peer that stopped encrypting). */
  readonly acceptClear: boolean;
}

/**
 * The received datagrams: payload i is bufs[i][0, lengths[i]) from the address in slot i of
 * `sourceAddress` (16 bytes per slot, IPv4 as IPv4-mapped ::ffff:a.b.c.d, as the UDP socket
 * reports it).
 */
export interface EtrInput {
  readonly bufs: readonly Uint8Array[];
  readonly lengths: Uint32Array;
  readonly count: number;
  readonly sourceAddress: Uint8Array;
}

/** 4 for an IPv4-mapped slot (its address at +12), else 6. */
export function slotFamily(slots: Uint8Array, base: number): 4 | 6 {
  for (let j = 0; j < 10; j++) if (slots[base + j] !== 0) return 6;
  return slots[base + 10] === 0xff && slots[base + 11] === 0xff ? 4 : 6;
}

/** Inner packets ready for the TUN: bufs[index[k]][offsets[k], offsets[k] + lengths[k]). */
export interface EtrOutput {
  readonly index: Uint32Array;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  count: number;
  /**
   * Dropped packets whose inner source EID the map-cache does not know (etr-unknown-source): the
   * inner packet starts at bufs[sourceMisses[k]][sourceMissOffsets[k]], so the control plane can
   * resolve the sender and the next packet of the flow gets through.
   */
  readonly sourceMisses: Uint32Array;
  readonly sourceMissOffsets: Uint32Array;
  sourceMissCount: number;
}

export interface EtrOptions {
  readonly instanceId: number;
  readonly localEids: readonly EidPrefix[];
  readonly mapCache: MapCache<unknown>;
  /** The peer behind a source locator (its bytes at address[offset..]: 4 or 16), or undefined for strangers. */
  readonly peerFor: (family: 4 | 6, address: Uint8Array, offset: number) => EtrPeer | undefined;
  /** With no peer entry: accept clear packets from strangers (no encryption configured at all). */
  readonly acceptClearFromStrangers: boolean;
  readonly drops: DropCounters;
  /**
   * Inner sources inside `prefix` (crypto-EIDs) are delivered only when the key that opened the
   * packet was agreed with exactly that EID; `eidOf` reads it from the key's meta (undefined:
   * not authenticated). Without it, any key of the sending locator will do.
   */
  readonly cryptoSources?: { readonly prefix: EidPrefix; readonly eidOf: (meta: unknown) => Uint8Array | undefined };
}

const OPEN_DROP: Readonly<Record<SessionOpenStatus, DropReason | undefined>> = {
  ok: undefined,
  'too-short': 'etr-too-short',
  'icv-mismatch': 'etr-icv-mismatch',
  'tag-mismatch': 'etr-tag-mismatch',
  'bad-length': 'etr-bad-length',
  'no-key': 'etr-no-key',
  'key-expired': 'etr-key-expired',
  replayed: 'etr-replayed',
  'too-old': 'etr-too-old',
};

export function createEtrOutput(capacity: number): EtrOutput {
  return {
    index: new Uint32Array(capacity),
    offsets: new Uint32Array(capacity),
    lengths: new Uint32Array(capacity),
    count: 0,
    sourceMisses: new Uint32Array(capacity),
    sourceMissOffsets: new Uint32Array(capacity),
    sourceMissCount: 0,
  };
}

/** Distinct sessions kept in the per-batch scratch map before it is cleared. */
const MAX_GROUPS = 256;

export class Etr {
  // Per-batch scratch: encrypted packets grouped by the session that opens them.
  private readonly groups = new Map<OpeningSession, number[]>();
  private groupBufs: Uint8Array[] = [];
  private groupLengths = new Uint32Array(0);
  private groupStatuses = new Uint8Array(0);
  private groupOffsets = new Uint32Array(0);
  private groupMetas: unknown[] = [];

  constructor(private readonly options: EtrOptions) {}

  process(input: EtrInput, now: number, out: EtrOutput): void {
    out.count = 0;
    out.sourceMissCount = 0;
    const { drops } = this.options;
    // Sessions come and go (rekeys, evicted peers): the scratch map must not keep them alive.
    if (this.groups.size > MAX_GROUPS) this.groups.clear();
    for (const list of this.groups.values()) list.length = 0;
    for (let i = 0; i < input.count; i++) {
      const buf = input.bufs[i];
      const length = input.lengths[i] ?? 0;
      if (!buf || length < DATA_HEADER_LENGTH) {
        drops.add('etr-truncated');
        continue;
      }
      const flags = buf[0] ?? 0;
      const iid = (flags & 0x08) !== 0 ? ((buf[4] ?? 0) << 16) | ((buf[5] ?? 0) << 8) | (buf[6] ?? 0) : 0;
      if (iid === CONTROL_IN_DATA_IID) {
        drops.add('etr-control-in-data');
        continue;
      }
      if (iid !== (this.options.instanceId & 0xffffff)) {
        drops.add('etr-unknown-instance');
        continue;
      }
      const family = slotFamily(input.sourceAddress, 16 * i);
      const peer = this.options.peerFor(family, input.sourceAddress, 16 * i + (family === 4 ? 12 : 0));
      if ((flags & 0x03) === 0) {
        if (peer ? !peer.acceptClear : !this.options.acceptClearFromStrangers) {
          drops.add('etr-clear-refused');
          continue;
        }
        this.inner(input, i, DATA_HEADER_LENGTH, length - DATA_HEADER_LENGTH, undefined, now, out);
        continue;
      }
      if (!peer?.opening) {
        drops.add('etr-no-key');
        continue;
      }
      let list = this.groups.get(peer.opening);
      if (!list) {
        list = [];
        this.groups.set(peer.opening, list);
      }
      list.push(i);
    }
    for (const [session, list] of this.groups) if (list.length > 0) this.openGroup(session, list, input, now, out);
  }

  private openGroup(session: OpeningSession, list: number[], input: EtrInput, now: number, out: EtrOutput): void {
    const n = list.length;
    if (this.groupLengths.length < n) {
      this.groupLengths = new Uint32Array(n);
      this.groupStatuses = new Uint8Array(n);
      this.groupOffsets = new Uint32Array(n);
      this.groupBufs = new Array<Uint8Array>(n);
    }
    for (let k = 0; k < n; k++) {
      const i = list[k] ?? 0;
      this.groupBufs[k] = input.bufs[i] ?? new Uint8Array(0);
      this.groupLengths[k] = input.lengths[i] ?? 0;
    }
    session.openBatch(this.groupBufs, this.groupLengths, this.groupStatuses, n, now, this.groupOffsets, this.groupMetas);
    for (let k = 0; k < n; k++) {
      const status = SESSION_OPEN_STATUS[this.groupStatuses[k] ?? 255] ?? 'bad-length';
      const drop = OPEN_DROP[status];
      if (drop) {
        this.options.drops.add(drop);
        continue;
      }
      const i = list[k] ?? 0;
      const start = this.groupOffsets[k] ?? DATA_HEADER_LENGTH;
      this.inner(input, i, start, (this.groupLengths[k] ?? 0) - start, this.groupMetas[k], now, out);
    }
  }

  private isLocal(family: 4 | 6, buf: Uint8Array, at: number): boolean {
    for (const p of this.options.localEids) if (p.family === family && prefixContains(p, buf, at)) return true;
    return false;
  }

  /** The inner-packet checks, then delivery. */
  private inner(input: EtrInput, i: number, offset: number, available: number, keyMeta: unknown, now: number, out: EtrOutput): void {
    const { drops } = this.options;
    const buf = input.bufs[i] ?? new Uint8Array(0);
    const family = ipFamily(buf, offset, available);
    if (family === 0) {
      drops.add('etr-bad-inner-version');
      return;
    }
    // Decryptors pad: the inner header says how long the packet really is.
    const length = ipPacketLength(buf, offset, available, family);
    if (length < 0) {
      drops.add('etr-bad-inner-length');
      return;
    }
    if (!this.isLocal(family, buf, offset + destinationOffset(family))) {
      drops.add('etr-not-local-eid');
      return;
    }
    const source = this.options.mapCache.lookup(this.options.instanceId, family, buf, offset + sourceOffset(family), now);
    if (source.kind !== 'positive') {
      drops.add('etr-unknown-source');
      if (source.kind === 'miss') {
        out.sourceMisses[out.sourceMissCount] = i;
        out.sourceMissOffsets[out.sourceMissCount++] = offset;
      }
      return;
    }
    const from = input.sourceAddress;
    const fromFamily = slotFamily(from, 16 * i);
    const at = 16 * i + (fromFamily === 4 ? 12 : 0);
    if (!cameFrom(source.locators, fromFamily, from, at)) {
      drops.add('etr-spoofed-source');
      return;
    }
    const crypto = this.options.cryptoSources;
    if (crypto && family === 6 && prefixContains(crypto.prefix, buf, offset + sourceOffset(6))) {
      const eid = keyMeta === undefined ? undefined : crypto.eidOf(keyMeta);
      if (!eid || !sameBytes(eid, buf, offset + sourceOffset(6))) {
        drops.add('etr-crypto-eid-unauthenticated');
        return;
      }
    }
    const k = out.count++;
    out.index[k] = i;
    out.offsets[k] = offset;
    out.lengths[k] = length;
  }
}

/** Plain loops, not .some(closure): these run for every delivered packet. */
function cameFrom(locators: readonly { readonly family: 4 | 6; readonly bytes: Uint8Array }[], family: 4 | 6, from: Uint8Array, at: number): boolean {
  for (const l of locators) if (l.family === family && sameBytes(l.bytes, from, at)) return true;
  return false;
}

function sameBytes(a: Uint8Array, b: Uint8Array, offset: number): boolean {
  for (let j = 0; j < a.length; j++) if (a[j] !== b[offset + j]) return false;
  return true;
}
