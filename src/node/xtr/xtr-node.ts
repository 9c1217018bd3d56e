// The xTR daemon: wires the TUN and the batched UDP socket to the sans-IO ITR and ETR. The only
// place where the data plane meets I/O. Each readable event drains its source in batches of 64.
import { performance } from 'node:perf_hooks';
import type { CipherBackend } from '../../crypto/cipher-backend.js';
import { DropCounters } from '../../lisp/drop-counters.js';
import { createEtrOutput, Etr } from '../../lisp/etr.js';
import { RateLimiter } from '../../lisp/icmp-too-big.js';
import { destinationOffset, sourceOffset } from '../../lisp/inner-ip.js';
import { Itr, ITR_HEADROOM } from '../../lisp/itr.js';
import { MapCache } from '../../lisp/map-cache.js';
import { formatPrefix } from '../../lisp/prefix.js';
import { applyInterfaceConfig } from '../../tun/interface.js';
import { openTun, type NativeTunDevice } from '../../tun/tun-device.js';
import { allocateUdpBatch, openBatchUdpSocket, type BatchUdpSocket } from '../../tun/udp-socket.js';
import { cipherBackend } from '../cipher-backends.js';
import { servedEidPrefixes, type XtrConfig } from '../config/xtr-config.js';
import type { Logger } from '../log.js';
import { XtrControlPlane } from './control-plane.js';
import { createPeer, PeerTable, type Peer } from './peers.js';

const BATCH = 64;
/** Batches per readable event before yielding to the other direction. */
const BURST = 16;

export interface XtrStats {
  readonly tun: { readonly in: number; readonly inBytes: number; readonly out: number; readonly outBytes: number };
  readonly underlay: { readonly in: number; readonly inBytes: number; readonly out: number; readonly outBytes: number };
  readonly drops: Readonly<Record<string, number>>;
  readonly peers: readonly { readonly locator: string; readonly encrypted: boolean; readonly sealed: number }[];
  readonly control: ReturnType<XtrControlPlane['status']> | undefined;
}

export class XtrNode {
  private readonly drops = new DropCounters();
  private readonly counts = { tunIn: 0, tunInBytes: 0, tunOut: 0, tunOutBytes: 0, udpIn: 0, udpInBytes: 0, udpOut: 0, udpOutBytes: 0 };
  private timer: NodeJS.Timeout | undefined;
  private control: XtrControlPlane | undefined;
  /** Set by run(): sends packets the control plane held during resolution. */
  private inject: (packets: readonly Uint8Array[]) => void = () => undefined;

  private constructor(
    private readonly config: XtrConfig,
    private readonly log: Logger,
    private readonly tun: NativeTunDevice,
    private readonly udp: BatchUdpSocket,
    private readonly teardownInterface: () => Promise<void>,
    private readonly peers: PeerTable,
    private readonly mapCache: MapCache<Peer['itr']>,
  ) {}

  static async start(config: XtrConfig, log: Logger): Promise<XtrNode> {
    const now = performance.now();
    const enc = config.encryption;
    const backend: CipherBackend | undefined = enc.mode === 'required' ? cipherBackend(enc.backend) : undefined;
    const peers = new PeerTable();
    const mapCache = new MapCache<Peer['itr']>();
    for (const entry of config.mapCache) {
      mapCache.insertStatic(entry.prefix, { locators: entry.locators.map((l) => ({ address: l.address, port: l.port, priority: l.priority, weight: l.weight })) }, now);
      const cached = mapCache.get(entry.prefix);
      for (const locator of cached?.kind === 'positive' ? cached.locators : []) {
        let peer = peers.get(locator.address);
        if (!peer) {
          const peerPublic = enc.mode === 'required' ? enc.peers.get(locator.address) : undefined;
          if (enc.mode === 'required' && !peerPublic) log.log('warn', 'no public key for a locator: packets to it are dropped (itr-no-key)', { locator: locator.address });
          const keys = enc.mode === 'required' && backend && peerPublic ? { suite: enc.suite, backend, own: enc.key, peerPublic, acceptClear: enc.acceptClear } : undefined;
          peer = createPeer(locator.address, locator.family, locator.port, keys, now);
          peers.add(peer);
        }
        locator.state = peer.itr;
      }
    }
    const tun = openTun({ name: config.tun.name, mtu: config.tun.mtu });
    let teardown: () => Promise<void>;
    try {
      teardown = await applyInterfaceConfig({
        name: tun.name,
        addresses: [
          ...config.localEids.flatMap((e) => (e.address ? [`${e.address}/${e.prefix.family === 4 ? 32 : 128}`] : [])),
          ...(config.cryptoEid ? [`${config.cryptoEid.eid}/128`] : []),
        ],
        routes: config.tun.routes.map((p) => formatPrefix(p).replace(/^\[\d+\]/, '')),
      });
    } catch (error) {
      tun.close();
      throw error;
    }
    let udp: BatchUdpSocket;
    try {
      udp = openBatchUdpSocket({ family: config.underlay.family, address: config.underlay.address, port: config.underlay.port, receiveBuffer: 4 << 20, sendBuffer: 4 << 20 });
    } catch (error) {
      await teardown();
      tun.close();
      throw error;
    }
    const node = new XtrNode(config, log, tun, udp, teardown, peers, mapCache);
    try {
      node.control = await XtrControlPlane.start(config, { mapCache, backend, reinject: (packets) => node.inject(packets) }, log);
    } catch (error) {
      await node.stop();
      throw error;
    }
    node.run();
    log.log('info', 'xTR started', {
      tun: tun.name,
      mtu: tun.mtu,
      locator: `${config.underlay.address}:${udp.port}`,
      encryption: enc.mode === 'required' ? `suite ${enc.suite} (${backend?.name ?? '?'})` : 'off',
      mapCache: mapCache.size,
      peers: [...peers.all()].length,
    });
    return node;
  }

  private run(): void {
    const config = this.config;
    const enc = config.encryption;
    const itr = new Itr({
      instanceId: config.instanceId,
      mapCache: this.mapCache,
      drops: this.drops,
      underlayMtu: config.underlay.mtu,
      underlayFamily: config.underlay.family,
      requireEncryption: enc.mode === 'required',
      suite: enc.mode === 'required' ? enc.suite : undefined,
      tooBigLimiter: new RateLimiter(10, 10),
      batchSize: BATCH,
      innerMtu: this.tun.mtu,
    });
    const etr = new Etr({
      instanceId: config.instanceId,
      localEids: servedEidPrefixes(config),
      mapCache: this.mapCache,
      peerFor: (family, bytes, offset) => this.peers.find(family, bytes, offset)?.etr ?? this.control?.responder.peerFor(family, bytes, offset),
      acceptClearFromStrangers: enc.mode === 'off',
      drops: this.drops,
    });
    const sizes = new Uint32Array(BATCH);
    const itrOut = Itr.output(BATCH);
    const send = allocateUdpBatch(BATCH, 0);
    const sendBufs: Uint8Array[] = new Array<Uint8Array>(BATCH);
    const icmpOffsets = new Uint32Array(BATCH);
    const icmpLengths = new Uint32Array(BATCH);

    /** Encapsulates and sends the n inner packets now in itr.buffers (sizes[i] bytes each). */
    const forward = (n: number): void => {
      this.counts.tunIn += n;
      for (let i = 0; i < n; i++) this.counts.tunInBytes += sizes[i] ?? 0;
      itr.process(sizes, n, performance.now(), itrOut);
      for (let k = 0; k < itrOut.missCount; k++) {
        const i = itrOut.misses[k] ?? 0;
        const buf = itr.buffers[i] ?? new Uint8Array(0);
        const family = (buf[ITR_HEADROOM] ?? 0) >>> 4 === 6 ? 6 : 4;
        const at = ITR_HEADROOM + destinationOffset(family);
        this.control?.miss(config.instanceId, buf.subarray(at, at + (family === 4 ? 4 : 16)), buf.subarray(ITR_HEADROOM, ITR_HEADROOM + (sizes[i] ?? 0)));
      }
      for (let k = 0; k < itrOut.count; k++) {
        sendBufs[k] = itr.buffers[itrOut.index[k] ?? 0] ?? new Uint8Array(0);
        send.offsets[k] = itrOut.offsets[k] ?? 0;
        send.lengths[k] = itrOut.lengths[k] ?? 0;
        const peer = itrOut.peers[k];
        if (peer) {
          send.addresses.set(peer.address, 16 * k);
          send.ports[k] = peer.port;
        }
      }
      if (itrOut.count > 0) {
        const result = this.udp.sendBatch(sendBufs, send.offsets, send.lengths, send.addresses, send.ports, itrOut.count);
        this.counts.udpOut += result.sent;
        for (let k = 0; k < result.consumed; k++) this.counts.udpOutBytes += send.lengths[k] ?? 0;
        const failed = itrOut.count - result.sent;
        if (failed > 0) this.drops.add('itr-send-failed', failed);
      }
      if (itrOut.icmp.length > 0) {
        itrOut.icmp.forEach((p, k) => {
          icmpOffsets[k] = 0;
          icmpLengths[k] = p.length;
        });
        this.tun.writeBatch(itrOut.icmp, icmpOffsets, icmpLengths, itrOut.icmp.length);
      }
    };

    const fromTun = (): void => {
      for (let burst = 0; burst < BURST; burst++) {
        const n = this.tun.readBatch(itr.buffers, sizes, ITR_HEADROOM);
        if (n === 0) return;
        forward(n);
        if (n < BATCH) return;
      }
    };
    this.inject = (packets) => {
      for (let start = 0; start < packets.length; start += BATCH) {
        const n = Math.min(BATCH, packets.length - start);
        for (let i = 0; i < n; i++) {
          const p = packets[start + i] ?? new Uint8Array(0);
          itr.buffers[i]?.set(p.subarray(0, this.tun.mtu), ITR_HEADROOM);
          sizes[i] = Math.min(p.length, this.tun.mtu);
        }
        forward(n);
      }
    };

    const recv = allocateUdpBatch(BATCH, 65536);
    const etrOut = createEtrOutput(BATCH);
    const deliverBufs: Uint8Array[] = new Array<Uint8Array>(BATCH);
    const fromUnderlay = (): void => {
      for (let burst = 0; burst < BURST; burst++) {
        const n = this.udp.recvBatch(recv.packets, 0, recv.lengths, recv.addresses, recv.ports, BATCH);
        if (n === 0) return;
        this.counts.udpIn += n;
        for (let i = 0; i < n; i++) this.counts.udpInBytes += recv.lengths[i] ?? 0;
        etr.process({ bufs: recv.packets, lengths: recv.lengths, count: n, sourceAddress: recv.addresses }, performance.now(), etrOut);
        for (let k = 0; k < etrOut.sourceMissCount; k++) {
          const buf = recv.packets[etrOut.sourceMisses[k] ?? 0] ?? new Uint8Array(0);
          const at = etrOut.sourceMissOffsets[k] ?? 0;
          const family = (buf[at] ?? 0) >>> 4 === 6 ? 6 : 4;
          const src = at + sourceOffset(family);
          this.control?.miss(config.instanceId, buf.subarray(src, src + (family === 4 ? 4 : 16)));
        }
        for (let k = 0; k < etrOut.count; k++) deliverBufs[k] = recv.packets[etrOut.index[k] ?? 0] ?? new Uint8Array(0);
        let written = 0;
        while (written < etrOut.count) {
          const w = this.tun.writeBatch(deliverBufs.slice(written, etrOut.count), etrOut.offsets.subarray(written), etrOut.lengths.subarray(written), etrOut.count - written);
          if (w === 0) break;
          written += w;
        }
        this.counts.tunOut += written;
        for (let k = 0; k < written; k++) this.counts.tunOutBytes += etrOut.lengths[k] ?? 0;
        if (written < etrOut.count) this.drops.add('etr-tun-write-failed', etrOut.count - written);
        if (n < BATCH) return;
      }
    };

    this.tun.startReading(fromTun);
    this.udp.startReading(fromUnderlay);
    this.timer = setInterval(() => {
      const now = performance.now();
      this.mapCache.expire(now);
      for (const peer of this.peers.all()) peer.etr.opening?.expire(now);
    }, 1000);
    this.timer.unref();
  }

  stats(): XtrStats {
    const c = this.counts;
    return {
      tun: { in: c.tunIn, inBytes: c.tunInBytes, out: c.tunOut, outBytes: c.tunOutBytes },
      underlay: { in: c.udpIn, inBytes: c.udpInBytes, out: c.udpOut, outBytes: c.udpOutBytes },
      drops: this.drops.snapshot(),
      peers: [...this.peers.all()].map((p) => ({ locator: p.address, encrypted: p.itr.sealing !== undefined, sealed: p.itr.sealing?.packetsSealed ?? 0 })),
      control: this.control?.status(),
    };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.control?.stop();
    this.tun.stopReading();
    this.udp.stopReading();
    this.udp.close();
    try {
      await this.teardownInterface();
    } finally {
      this.tun.close();
      for (const peer of this.peers.all()) {
        peer.itr.sealing?.close();
        peer.etr.opening?.close();
      }
      this.log.log('info', 'xTR stopped', { tun: this.config.tun.name });
    }
  }
}
