// The xTR daemon: wires the TUN and the batched UDP socket to the sans-IO ITR and ETR. The only
// place where the data plane meets I/O. Each readable event drains its source in batches of 64.
import { cryptoSources, keyAuthentication } from './key-agreement.js';
import type { CipherBackend } from '../../crypto/cipher-backend.js';
import { DropCounters } from '../../lisp/drop-counters.js';
import { createEtrOutput, Etr } from '../../lisp/etr.js';
import { RateLimiter } from '../../lisp/icmp-too-big.js';
import { destinationOffset, sourceOffset } from '../../lisp/inner-ip.js';
import { Itr, ITR_HEADROOM } from '../../lisp/itr.js';
import { MapCache } from '../../lisp/map-cache.js';
import type { EidPrefix } from '../../lisp/prefix.js';
import { openTun, type NativeTunDevice } from '../../tun/tun-device.js';
import { allocateUdpBatch, openBatchUdpSocket, type BatchUdpSocket } from '../../tun/udp-socket.js';
import { cipherBackend } from '../cipher-backends.js';
import { servedEidPrefixes, type XtrConfig } from '../config/xtr-config.js';
import type { Logger } from '../log.js';
import { CaptureServer } from '../ops/capture-server.js';
import type { DaemonMetrics } from '../ops/metrics.js';
import { tapInnerBatch, tapUnderlayBatch, type PacketTap } from '../ops/packet-tap.js';
import type { ReloadPlan } from '../ops/reload.js';
import type { ReloadSummary, XtrStatusReport } from '../ops/status-report.js';
import { XtrControlPlane } from './control-plane.js';
import type { Peer } from './peers.js';
import { StaticMappings } from './static-mappings.js';
import { TunAddressing, tunLayout } from './tun-addressing.js';
import { registerXtrMetrics } from './xtr-metrics.js';
import { diffXtrConfig } from './xtr-reload.js';
import { buildXtrStatus } from './xtr-status.js';
import { ReceiveGuard } from '../receive-guard.js';

const BATCH = 64;
/** Batches per readable event before yielding to the other direction. */
const BURST = 16;

export interface XtrStats {
  readonly tun: { readonly in: number; readonly inBytes: number; readonly out: number; readonly outBytes: number };
  readonly underlay: { readonly in: number; readonly inBytes: number; readonly out: number; readonly outBytes: number };
  readonly drops: Readonly<Record<string, number>>;
  readonly peers: readonly { readonly locator: string; readonly encrypted: boolean; readonly sealed: number }[];
  readonly mapCache: { readonly size: number; readonly learned: number };
  readonly control: ReturnType<XtrControlPlane['status']> | undefined;
}

export class XtrNode {
  private readonly drops = new DropCounters();
  private readonly counts = { tunIn: 0, tunInBytes: 0, tunOut: 0, tunOutBytes: 0, udpIn: 0, udpInBytes: 0, udpOut: 0, udpOutBytes: 0 };
  private timer: NodeJS.Timeout | undefined;
  private control: XtrControlPlane | undefined;
  /** Set by run(): sends packets the control plane held during resolution. */
  private inject: (packets: readonly Uint8Array[]) => void = () => undefined;
  /** Set while `lispnode capture` runs (ops/capture-server.ts); idle, it costs one check per batch. */
  private tap: PacketTap | undefined;
  private capture: CaptureServer | undefined;
  /**
   * The EID-prefixes this node serves: one array shared by the ETR and the responder, changed in
   * place by a reload.
   */
  private readonly served: EidPrefix[];
  private readonly startedAt = Date.now();

  private constructor(
    /** The running configuration; a reload replaces it. */
    private config: XtrConfig,
    private readonly log: Logger,
    private readonly tun: NativeTunDevice,
    private readonly udp: BatchUdpSocket,
    private readonly addressing: TunAddressing,
    private readonly statics: StaticMappings,
    private readonly mapCache: MapCache<Peer['itr']>,
  ) {
    this.served = servedEidPrefixes(config);
  }

  /**
   * Opens the TUN and the sockets and starts forwarding. Time is Date.now() throughout: the
   * control plane must use wall time (registration signatures carry it) and shares the map-cache
   * and the sessions with the data plane, so one clock keeps TTLs and key lifetimes meaningful.
   */
  static async start(config: XtrConfig, log: Logger, metrics?: DaemonMetrics): Promise<XtrNode> {
    const now = Date.now();
    const enc = config.encryption;
    const backend: CipherBackend | undefined = enc.mode === 'required' ? cipherBackend(enc.backend) : undefined;
    const mapCache = new MapCache<Peer['itr']>({ maxLearnedEntries: config.learnedMapCache.maxEntries });
    const statics = new StaticMappings(mapCache, backend, log);
    statics.apply(config, now);
    const tun = openTun({ name: config.tun.name, mtu: config.tun.mtu });
    let addressing: TunAddressing;
    try {
      addressing = await TunAddressing.apply(tun.name, tunLayout(config));
    } catch (error) {
      tun.close();
      throw error;
    }
    let udp: BatchUdpSocket;
    try {
      udp = openBatchUdpSocket({ family: config.underlay.family, address: config.underlay.address, port: config.underlay.port, receiveBuffer: 4 << 20, sendBuffer: 4 << 20 });
    } catch (error) {
      await addressing.teardown();
      tun.close();
      throw error;
    }
    const node = new XtrNode(config, log, tun, udp, addressing, statics, mapCache);
    const observed = metrics ? registerXtrMetrics(metrics, node) : undefined;
    try {
      node.control = await XtrControlPlane.start(
        config,
        { mapCache, backend, reinject: (packets) => node.inject(packets), localEids: node.served, tap: () => node.tap, ...(observed && { replyLatency: observed.replyLatency }) },
        log,
      );
    } catch (error) {
      await node.stop();
      throw error;
    }
    node.run();
    node.capture = await CaptureServer.start({ role: 'xtr', configFile: config.file, underlay: ['data 4341', 'control 4342'], inner: true, log, attach: (tap) => (node.tap = tap) });
    log.log('info', 'xTR started', {
      tun: tun.name,
      mtu: tun.mtu,
      locator: `${config.underlay.address}:${udp.port}`,
      encryption: enc.mode === 'required' ? `suite ${enc.suite} (${backend?.name ?? '?'})` : 'off',
      mapCache: mapCache.size,
      peers: [...statics.peers.all()].length,
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
    const authentication = keyAuthentication(config);
    const crypto = authentication && cryptoSources(authentication, config.instanceId);
    const etr = new Etr({
      instanceId: config.instanceId,
      localEids: this.served,
      mapCache: this.mapCache,
      peerFor: (family, bytes, offset) => this.statics.peers.find(family, bytes, offset)?.etr ?? this.control?.responder.peerFor(family, bytes, offset),
      acceptClearFromStrangers: enc.mode === 'off',
      drops: this.drops,
      ...(crypto && { cryptoSources: crypto }),
    });
    const sizes = new Uint32Array(BATCH);
    const itrOut = Itr.output(BATCH);
    const send = allocateUdpBatch(BATCH, 0);
    const sendBufs: Uint8Array[] = new Array<Uint8Array>(BATCH);
    const icmpOffsets = new Uint32Array(BATCH);
    const icmpLengths = new Uint32Array(BATCH);

    /** Encapsulates and sends the n inner packets now in itr.buffers (sizes[i] bytes each). */
    const local = { address: config.underlay.address, port: this.udp.port };
    const forward = (n: number): void => {
      if (this.tap) tapInnerBatch(this.tap, 'out', itr.buffers, ITR_HEADROOM, sizes, n);
      this.counts.tunIn += n;
      for (let i = 0; i < n; i++) this.counts.tunInBytes += sizes[i] ?? 0;
      itr.process(sizes, n, Date.now(), itrOut);
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
        if (this.tap) tapUnderlayBatch(this.tap, 'out', local, sendBufs, send.offsets, send.lengths, send.addresses, send.ports, result.consumed);
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

    const guard = new ReceiveGuard(this.log, 'xtr data plane');
    /** One batch through `step`; what it throws costs that batch (counted), not the daemon. */
    const guarded = (step: (n: number) => void, n: number, reason: 'itr-handler-error' | 'etr-handler-error'): void => {
      try {
        step(n);
      } catch (error) {
        this.drops.add(reason, n);
        guard.caught(error, { batch: n });
      }
    };
    const fromTun = (): void => {
      for (let burst = 0; burst < BURST; burst++) {
        const n = this.tun.readBatch(itr.buffers, sizes, ITR_HEADROOM);
        if (n === 0) return;
        guarded(forward, n, 'itr-handler-error');
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
        guarded(forward, n, 'itr-handler-error');
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
        guarded(deliver, n, 'etr-handler-error');
        if (n < BATCH) return;
      }
    };
    const deliver = (n: number): void => {
      if (this.tap) tapUnderlayBatch(this.tap, 'in', local, recv.packets, 0, recv.lengths, recv.addresses, recv.ports, n);
      etr.process({ bufs: recv.packets, lengths: recv.lengths, count: n, sourceAddress: recv.addresses }, Date.now(), etrOut);
      for (let k = 0; k < etrOut.sourceMissCount; k++) {
        const buf = recv.packets[etrOut.sourceMisses[k] ?? 0] ?? new Uint8Array(0);
        const at = etrOut.sourceMissOffsets[k] ?? 0;
        const family = (buf[at] ?? 0) >>> 4 === 6 ? 6 : 4;
        const src = at + sourceOffset(family);
        this.control?.miss(config.instanceId, buf.subarray(src, src + (family === 4 ? 4 : 16)));
      }
      for (let k = 0; k < etrOut.count; k++) deliverBufs[k] = recv.packets[etrOut.index[k] ?? 0] ?? new Uint8Array(0);
      if (this.tap) tapInnerBatch(this.tap, 'in', deliverBufs, etrOut.offsets, etrOut.lengths, etrOut.count);
      let written = 0;
      while (written < etrOut.count) {
        const w = this.tun.writeBatch(deliverBufs.slice(written, etrOut.count), etrOut.offsets.subarray(written), etrOut.lengths.subarray(written), etrOut.count - written);
        if (w === 0) break;
        written += w;
      }
      this.counts.tunOut += written;
      for (let k = 0; k < written; k++) this.counts.tunOutBytes += etrOut.lengths[k] ?? 0;
      if (written < etrOut.count) this.drops.add('etr-tun-write-failed', etrOut.count - written);
    };

    this.tun.startReading(fromTun);
    this.udp.startReading(fromUnderlay);
    this.timer = setInterval(() => {
      const now = Date.now();
      this.mapCache.expire(now);
      for (const peer of this.statics.peers.all()) peer.etr.opening?.expire(now);
    }, 1000);
    this.timer.unref();
  }

  stats(): XtrStats {
    const c = this.counts;
    return {
      tun: { in: c.tunIn, inBytes: c.tunInBytes, out: c.tunOut, outBytes: c.tunOutBytes },
      underlay: { in: c.udpIn, inBytes: c.udpInBytes, out: c.udpOut, outBytes: c.udpOutBytes },
      drops: this.drops.snapshot(),
      peers: [...this.statics.peers.all()].map((p) => ({ locator: p.address, encrypted: p.itr.sealing !== undefined, sealed: p.itr.sealing?.packetsSealed ?? 0 })),
      mapCache: { size: this.mapCache.size, learned: this.mapCache.learnedCount },
      control: this.control?.status(),
    };
  }

  /** The status socket's answer (ops/status-report.ts). */
  status(reloads: ReloadSummary, limit?: number): XtrStatusReport {
    return buildXtrStatus(
      {
        config: this.config,
        startedAt: this.startedAt,
        reloads,
        stats: this.stats(),
        tunMtu: this.tun.mtu,
        served: this.served,
        mapCache: this.mapCache,
        staticPeers: this.statics.peers,
        control: this.control,
      },
      Date.now(),
      limit,
    );
  }

  /**
   * A reload to `next` (ops/reload.ts): what needs a restart, what would change, and how to apply
   * it without touching the TUN device, the sockets or established sessions.
   */
  prepareReload(next: XtrConfig): ReloadPlan {
    const diff = diffXtrConfig(this.config, next);
    this.control?.check(next);
    return {
      restart: diff.restart,
      changes: diff.changes,
      apply: async () => {
        const tun = await this.addressing.update(tunLayout(next));
        for (const problem of tun.problems) this.log.log('warn', 'reload: a TUN address or route could not be removed', { problem });
        this.served.splice(0, this.served.length, ...servedEidPrefixes(next));
        const statics = this.statics.apply(next, Date.now());
        this.control?.reconfigure(next, diff.removedEids);
        this.config = next;
        return [...diff.details, ...tun.changes, ...statics];
      },
    };
  }

  /** Sends every registration now (the node daemon calls it when the attestation ticket is renewed). */
  refreshRegistrations(): void {
    this.control?.refreshRegistrations();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.capture?.close();
    await this.control?.stop();
    this.tun.stopReading();
    this.udp.stopReading();
    this.udp.close();
    try {
      await this.addressing.teardown();
    } finally {
      this.tun.close();
      this.statics.close();
      this.log.log('info', 'xTR stopped', { tun: this.config.tun.name });
    }
  }
}
