// The xTR control plane in memory, for tests: an ITR's resolver and ETR responders wired through a
// tiny in-test map-server that forwards ECM'd Map-Requests to the registered ETR (or proxy-replies
// without keys, as lispers.net's map-server does). No sockets, a fake clock; the data path is the
// real Itr/Etr, so "installed a key" means "a packet sealed by one side opens on the other". A
// node given a crypto-EID key serves its crypto-EID too and signs its key agreements.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deriveCryptoEid, nodeCipherBackend, type P256KeyPair } from '../../src/crypto/index.js';
import { ip } from '../../src/lisp/address.js';
import { decodeControl, encodeControl, type ControlMessage } from '../../src/lisp/control.js';
import { DropCounters } from '../../src/lisp/drop-counters.js';
import { createEtrOutput, Etr, type EtrInput } from '../../src/lisp/etr.js';
import { RateLimiter } from '../../src/lisp/icmp-too-big.js';
import { internetChecksum } from '../../src/lisp/ip-udp.js';
import { formatIpv4, formatIpv6, parseIpv4 } from '../../src/lisp/ip-text.js';
import { Itr, ITR_HEADROOM, type ItrPeer } from '../../src/lisp/itr.js';
import { MapCache } from '../../src/lisp/map-cache.js';
import type { MapRequest } from '../../src/lisp/map-request.js';
import { prefix, prefixCovers, prefixOfEid, type EidPrefix } from '../../src/lisp/prefix.js';
import { EID_RECORD_DEFAULTS, LOCATOR_DEFAULTS } from '../../src/lisp/records.js';
import type { KeyedLocatorForm } from '../../src/lisp/xtr-control/key-exchange.js';
import { itrPeerAttach, Resolver, type ResolverAction, type ResolverTimers } from '../../src/lisp/xtr-control/resolver.js';
import { Responder, type ResponderAction } from '../../src/lisp/xtr-control/responder.js';
import { cryptoSources, keyAuthenticationFor } from '../../src/node/xtr/key-agreement.js';

/** fd00::/8, the crypto-EID prefix of these tests (EVE's default). */
export const CRYPTO_PREFIX = { address: Uint8Array.of(0xfd, ...new Array<number>(15).fill(0)), length: 8 };

export const T0 = 1_000_000;
export const CONTROL_PORT = 61000;
export const MR1 = '198.18.0.10';
export const MR2 = '198.18.0.11';
export const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

export interface NodeSpec {
  readonly rloc: string;
  readonly eids: string;
  readonly form?: KeyedLocatorForm;
  /** The node's crypto-EID key: it then serves the crypto-EID in CRYPTO_PREFIX and signs its key agreements. */
  readonly cryptoEid?: P256KeyPair;
}

export const A: NodeSpec = { rloc: '198.18.0.1', eids: '192.0.2.0/28' };
export const B: NodeSpec = { rloc: '198.18.0.2', eids: '192.0.2.16/28' };
export const C: NodeSpec = { rloc: '198.18.0.3', eids: '192.0.2.32/28', form: 'direct' };

export interface NodeOptions {
  readonly timers?: Partial<ResolverTimers>;
  readonly encrypt?: boolean;
  readonly mapResolvers?: readonly string[];
  readonly maxLearnedEntries?: number;
  readonly maxLearnedTtlMinutes?: number;
  /** With a crypto-EID: sign key agreements (default true); false serves the crypto-EID with RFC 8061's unsigned agreement. */
  readonly signed?: boolean;
}

export class XtrNode {
  readonly drops = new DropCounters();
  readonly mapCache: MapCache<ItrPeer>;
  readonly resolver: Resolver<ItrPeer>;
  readonly responder: Responder;
  readonly itr: Itr;
  readonly etr: Etr;
  readonly local: EidPrefix;
  /** Every prefix the node serves: `local`, then its crypto-EID /128 when it has one. */
  readonly locals: readonly EidPrefix[];
  /** The crypto-EID, as text. */
  readonly cryptoEid: string | undefined;

  constructor(
    readonly spec: NodeSpec,
    options: NodeOptions = {},
  ) {
    const encrypt = options.encrypt ?? true;
    this.mapCache = new MapCache<ItrPeer>(options.maxLearnedEntries === undefined ? {} : { maxLearnedEntries: options.maxLearnedEntries });
    this.local = prefix(spec.eids);
    const key = spec.cryptoEid;
    this.cryptoEid = key && formatIpv6(deriveCryptoEid({ iid: 0, spki: key.spki, prefix: CRYPTO_PREFIX }).eid);
    this.locals = this.cryptoEid === undefined ? [this.local] : [this.local, prefix(`${this.cryptoEid}/128`)];
    const authentication = key && this.cryptoEid !== undefined && encrypt && (options.signed ?? true) ? keyAuthenticationFor({ key, eid: this.cryptoEid, prefix: CRYPTO_PREFIX, derivation: 'eve' }, 0) : undefined;
    const sourceEid = spec.eids.replace(/\.\d+\/\d+$/, (m) => `.${Number(m.slice(1, m.indexOf('/'))) + 1}`);
    this.resolver = new Resolver<ItrPeer>({
      mapCache: this.mapCache,
      mapResolvers: options.mapResolvers ?? [MR1, MR2],
      rlocs: [spec.rloc],
      sourceEids: { ipv4: sourceEid, ...(this.cryptoEid !== undefined && { ipv6: this.cryptoEid }) },
      ...(key && this.cryptoEid !== undefined && { signer: { instanceId: 0, eid: this.cryptoEid, scalar: key.scalar } }),
      ...(authentication && { authentication }),
      controlPort: CONTROL_PORT,
      ...(encrypt && { encryption: { suite: 5, backend: nodeCipherBackend } }),
      ...(options.timers && { timers: options.timers }),
      ...(options.maxLearnedTtlMinutes !== undefined && { maxLearnedTtlMinutes: options.maxLearnedTtlMinutes }),
      random,
      attach: itrPeerAttach,
    });
    this.responder = new Responder({
      instanceId: 0,
      localEids: this.locals,
      rlocs: [spec.rloc],
      ...(encrypt && { encryption: { backend: nodeCipherBackend, ...(spec.form && { form: spec.form }) } }),
      acceptClear: !encrypt,
      random,
      ...(authentication && { authentication }),
    });
    this.itr = new Itr({
      instanceId: 0,
      mapCache: this.mapCache,
      drops: this.drops,
      underlayMtu: 1500,
      underlayFamily: 4,
      requireEncryption: encrypt,
      suite: encrypt ? 5 : undefined,
      tooBigLimiter: new RateLimiter(10, 10),
      batchSize: 16,
      innerMtu: 1500,
    });
    this.etr = new Etr({
      instanceId: 0,
      localEids: this.locals,
      mapCache: this.mapCache,
      peerFor: this.responder.peerFor,
      acceptClearFromStrangers: !encrypt,
      drops: this.drops,
      ...(authentication && { cryptoSources: cryptoSources(authentication, 0) }),
    });
  }

  /** The ITR's wire datagrams for `packets`, and the peers they go to. */
  send(packets: readonly Uint8Array[], now: number): { to: string; bytes: Uint8Array }[] {
    const sizes = new Uint32Array(packets.length);
    packets.forEach((p, i) => {
      this.itr.buffers[i]?.set(p, ITR_HEADROOM);
      sizes[i] = p.length;
    });
    const out = Itr.output(16);
    this.itr.process(sizes, packets.length, now, out);
    return Array.from({ length: out.count }, (_, k) => {
      const peer = out.peers[k];
      const to = peer ? [...peer.address.subarray(12)].join('.') : '?';
      return { to, bytes: (this.itr.buffers[out.index[k] ?? 0] ?? new Uint8Array()).slice(out.offsets[k], (out.offsets[k] ?? 0) + (out.lengths[k] ?? 0)) };
    });
  }

  /** The ETR's delivered inner packets for datagrams from `from`. */
  receive(datagrams: readonly Uint8Array[], from: string, now: number): Uint8Array[] {
    const bufs = datagrams.map((d) => {
      const b = new Uint8Array(2048);
      b.set(d);
      return b;
    });
    const sourceAddress = new Uint8Array(16 * bufs.length);
    bufs.forEach((_, i) => {
      sourceAddress.set([0xff, 0xff], 16 * i + 10);
      sourceAddress.set(parseIpv4(from) ?? [], 16 * i + 12);
    });
    const input: EtrInput = { bufs, lengths: Uint32Array.from(datagrams, (d) => d.length), count: bufs.length, sourceAddress };
    const out = createEtrOutput(bufs.length);
    this.etr.process(input, now, out);
    return Array.from({ length: out.count }, (_, k) => (bufs[out.index[k] ?? 0] ?? new Uint8Array()).slice(out.offsets[k], (out.offsets[k] ?? 0) + (out.lengths[k] ?? 0)));
  }
}

/** Everything that crossed the "network", for the tshark check. */
export const wire: { source: string; destination: string; sourcePort: number; destinationPort: number; bytes: Uint8Array }[] = [];

/**
 * The underlay plus a map-server at MR1/MR2: forwards ECMs (E set) to the ETR that registered
 * the EID, or (proxy) answers itself without keys. `drop` loses datagrams to a destination.
 */
export class Network {
  readonly nodes = new Map<string, XtrNode>();
  proxyReply = false;
  readonly down = new Set<string>();
  /** Map-Replies on their way to an ITR, held back when `holdReplies` is set. */
  holdReplies = false;
  readonly heldReplies: { node: XtrNode; bytes: Uint8Array }[] = [];
  reinjected: { node: XtrNode; packets: readonly Uint8Array[] }[] = [];
  /** An on-path host: sees (and may rewrite) every control datagram between two addresses. */
  tamper: ((from: string, to: string, bytes: Uint8Array) => Uint8Array) | undefined;
  discarded: { node: XtrNode; reason: string; count: number }[] = [];

  add(node: XtrNode): XtrNode {
    this.nodes.set(node.spec.rloc, node);
    return node;
  }

  /** Runs actions from `from` (and everything they cause) to completion. */
  run(from: XtrNode, actions: readonly (ResolverAction | ResponderAction)[], now: number): void {
    for (const a of actions) {
      if (a.kind === 'reinject') {
        this.reinjected.push({ node: from, packets: a.packets });
        continue;
      }
      if (a.kind === 'discard') {
        this.discarded.push({ node: from, reason: a.reason, count: a.count });
        continue;
      }
      const sourcePort = a.what === 'map-reply' ? 4342 : CONTROL_PORT;
      const bytes = this.onPath(from.spec.rloc, a.to, a.bytes);
      wire.push({ source: from.spec.rloc, destination: a.to, sourcePort, destinationPort: a.port, bytes });
      if (this.down.has(a.to)) continue;
      if (a.to === MR1 || a.to === MR2) {
        this.mapServer(from, a.to, bytes, now);
        continue;
      }
      const target = this.nodes.get(a.to);
      if (!target) continue;
      if (a.what === 'map-reply') {
        assert.equal(a.port, CONTROL_PORT, 'Map-Replies go to the requester control port');
        if (this.holdReplies) this.heldReplies.push({ node: target, bytes });
        else this.run(target, target.resolver.receive(bytes, now), now);
      } else {
        this.run(target, target.responder.receive(bytes, { address: from.spec.rloc, port: sourcePort, to: a.to }, now), now);
      }
    }
  }

  private onPath(from: string, to: string, bytes: Uint8Array): Uint8Array {
    return this.tamper ? this.tamper(from, to, bytes) : bytes;
  }

  private mapServer(from: XtrNode, ms: string, bytes: Uint8Array, now: number): void {
    const decoded = decodeControl(bytes);
    assert.ok(decoded.ok && decoded.value.type === 'ecm' && decoded.value.message.type === 'map-request');
    const ecm = decoded.value;
    const request = ecm.message as MapRequest;
    const target = request.records[0];
    assert.ok(target);
    const requested = prefixOfEid(target.eid, target.eidMaskLength, 0);
    assert.ok(requested);
    const etr = [...this.nodes.values()].find((n) => n.locals.some((l) => prefixCovers(l, requested)));
    const served = etr?.locals.find((l) => prefixCovers(l, requested));
    if (!etr || !served) return;
    if (this.proxyReply) {
      const reply: ControlMessage = {
        type: 'map-reply',
        probe: false,
        echoNonceCapable: false,
        security: false,
        reservedFlags: 0,
        nonce: request.nonce,
        records: [
          {
            ...EID_RECORD_DEFAULTS,
            eidMaskLength: served.length,
            eid: ip(served.family === 4 ? formatIpv4(served.address) : formatIpv6(served.address)),
            locators: [{ ...LOCATOR_DEFAULTS, locator: ip(etr.spec.rloc) }],
          },
        ],
      };
      const replyBytes = this.onPath(ms, from.spec.rloc, encodeControl(reply));
      wire.push({ source: ms, destination: from.spec.rloc, sourcePort: 4342, destinationPort: ecm.udp.sourcePort, bytes: replyBytes });
      this.run(from, from.resolver.receive(replyBytes, now), now);
      return;
    }
    const forwarded = this.onPath(ms, etr.spec.rloc, encodeControl({ ...ecm, toEtr: true }));
    wire.push({ source: ms, destination: etr.spec.rloc, sourcePort: 4342, destinationPort: 4342, bytes: forwarded });
    this.run(etr, etr.responder.receive(forwarded, { address: ms, port: 4342, to: etr.spec.rloc }, now), now);
  }
}

/** An ICMP echo request between two IPv4 EIDs, with a marker in the payload. */
export function ping(source: string, destination: string, marker = 'lispnode-marker'): Uint8Array {
  const p = new Uint8Array(84);
  p.set([0x45, 0, 0, 84, 0, 1, 0x40, 0, 64, 1, 0, 0]);
  p.set(parseIpv4(source) ?? [], 12);
  p.set(parseIpv4(destination) ?? [], 16);
  const sum = internetChecksum(p.subarray(0, 20));
  p[10] = sum >> 8;
  p[11] = sum & 0xff;
  p[20] = 8;
  p.set(Buffer.from(marker), 28);
  return p;
}

export function eidBytes(text: string): Uint8Array {
  return parseIpv4(text) ?? new Uint8Array(4);
}

export function sends(actions: readonly ResolverAction[]): Extract<ResolverAction, { kind: 'send' }>[] {
  return actions.filter((a): a is Extract<ResolverAction, { kind: 'send' }> => a.kind === 'send');
}

export function hex(b: Uint8Array | undefined): string {
  return Buffer.from(b ?? []).toString('hex');
}

export function world(options: NodeOptions = {}): { net: Network; a: XtrNode; b: XtrNode; c: XtrNode } {
  const net = new Network();
  const a = net.add(new XtrNode(A, options));
  const b = net.add(new XtrNode(B, options));
  const c = net.add(new XtrNode(C, options));
  return { net, a, b, c };
}
