// The attacker of test/etr-flood.e2e.test.ts, run inside a lab namespace (`ip netns exec <ns> node
// flood-send.js <plan.json>`): sends a shuffled mix of bad LISP data packets at an ETR through the
// batched UDP socket, paced to a target duration and bounded by a deadline, then prints one JSON
// line saying how many of each kind the kernel took (`sent`) and how many it refused (`failed`).
//
// Each kind is built so that exactly one ETR check rejects it (src/lisp/etr.ts, src/crypto/session.ts
// for suite 5: header 8, IV 12, tag 16, ICV 20 bytes, so nothing under 56 bytes reaches the cipher):
//   truncated          0–7 bytes                                   -> etr-truncated
//   garbage-short      random, KK=1, 8–55 bytes, counter fresh     -> etr-too-short (peer) / etr-no-key (stranger)
//   garbage            random, KK=1, 56–1400 bytes, counter fresh  -> etr-icv-mismatch / etr-no-key
//   garbage-old        random, KK=1, 20–1400 bytes, counter ≥ 2^63 -> etr-too-old / etr-no-key
//   no-key             well-formed header, KK=2 or 3               -> etr-no-key
//   clear              KK=0 around a real ICMP echo EID -> EID     -> etr-clear-refused
//   wrong-key          suite 5, sealed under a key the attacker derived with its own X25519 pair,
//                      counter far ahead of the window             -> etr-icv-mismatch / etr-no-key
//   replay             a genuine packet captured earlier, verbatim -> etr-replayed / etr-no-key
//   wrong-instance     I bit, instance-id ≠ the ETR's              -> etr-unknown-instance
// "Counter fresh": the IV's counter is set to 2^40 + x, ahead of the replay window, so the window
// lets the packet through to the length and ICV checks; forged packets never move the window.
import { randomBytes, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { suiteLayout } from '../../src/crypto/cipher-suite.js';
import { deriveDataPlaneKeys, x25519FromPrivate } from '../../src/crypto/x25519-kdf.js';
import { internetChecksum } from '../../src/lisp/ip-udp.js';
import { cipherBackend } from '../../src/node/cipher-backends.js';
import { allocateUdpBatch, errnoName, openBatchUdpSocket, writeAddressSlot } from '../../src/tun/udp-socket.js';
import { prng } from './prng.js';

export const FLOOD_KINDS = ['truncated', 'garbage-short', 'garbage', 'garbage-old', 'no-key', 'clear', 'wrong-key', 'replay', 'wrong-instance'] as const;
export type FloodKind = (typeof FLOOD_KINDS)[number];

export interface FloodPlan {
  /** Local address to send from (one of the namespace's). */
  readonly bind: string;
  readonly target: string;
  readonly port: number;
  readonly counts: Readonly<Partial<Record<FloodKind, number>>>;
  /** Genuine encrypted LISP payloads (base64), for `replay`. */
  readonly replays: readonly string[];
  /** The target's X25519 public key (base64), for `wrong-key`. */
  readonly targetPublicKey: string;
  /** Inner packets of `clear` and `wrong-key`: source and destination EIDs per family. */
  readonly innerV4: { readonly source: string; readonly destination: string };
  readonly innerV6: { readonly source: string; readonly destination: string };
  /** Spread the packets over this long. */
  readonly durationMs: number;
  /** Stop sending after this long whatever is left. */
  readonly deadlineMs: number;
  readonly seed: number;
}

export interface FloodReport {
  readonly sent: Partial<Record<FloodKind, number>>;
  readonly failed: Partial<Record<FloodKind, number>>;
  readonly unsent: number;
  readonly elapsedMs: number;
  readonly firstErrno: string | undefined;
  readonly socket: { readonly sent: number; readonly sendErrors: number; readonly wouldBlock: number; readonly sendCalls: number };
}

const BATCH = 64;
const SLOT = 2048;
const HEADER = 8;
const layout = suiteLayout(5);
/** Smallest suite-5 packet the cipher looks at: header, IV, tag, ICV. */
const MIN_SEALED = HEADER + layout.ivLength + layout.tagLength + 20;

function ipv4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}

function ipv6Bytes(text: string): Uint8Array {
  const slot = new Uint8Array(16);
  writeAddressSlot(slot, 0, text);
  return slot;
}

/** An ICMP echo request (IPv4) or ICMPv6 echo request (IPv6) with correct checksums. */
function echoRequest(family: 4 | 6, source: string, destination: string, sequence: number): Uint8Array {
  const data = Buffer.from('lispnode etr-flood forged inner packet 0123456789');
  if (family === 4) {
    const p = new Uint8Array(20 + 8 + data.length);
    p.set([0x45, 0, p.length >> 8, p.length & 0xff, 0, 0, 0x40, 0, 64, 1, 0, 0], 0);
    p.set(ipv4Bytes(source), 12);
    p.set(ipv4Bytes(destination), 16);
    const hc = internetChecksum(p.subarray(0, 20));
    p[10] = hc >> 8;
    p[11] = hc & 0xff;
    p.set([8, 0, 0, 0, 0x12, 0x34, sequence >> 8, sequence & 0xff], 20);
    p.set(data, 28);
    const ic = internetChecksum(p.subarray(20));
    p[22] = ic >> 8;
    p[23] = ic & 0xff;
    return p;
  }
  const icmpLength = 8 + data.length;
  const p = new Uint8Array(40 + icmpLength);
  p.set([0x60, 0, 0, 0, icmpLength >> 8, icmpLength & 0xff, 58, 64], 0);
  p.set(ipv6Bytes(source), 8);
  p.set(ipv6Bytes(destination), 24);
  p.set([128, 0, 0, 0, 0x12, 0x34, sequence >> 8, sequence & 0xff], 40);
  p.set(data, 48);
  // Pseudo-header: addresses, upper-layer length, next header.
  const pseudo = new Uint8Array(40 + icmpLength);
  pseudo.set(p.subarray(8, 40), 0);
  pseudo.set([0, 0, icmpLength >> 8, icmpLength & 0xff, 0, 0, 0, 58], 32);
  pseudo.set(p.subarray(40), 40);
  const c = internetChecksum(pseudo);
  p[42] = c >> 8;
  p[43] = c & 0xff;
  return p;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: flood-send.js <plan.json>');
  const plan = JSON.parse(readFileSync(file, 'utf8')) as FloodPlan;
  const random = prng(plan.seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(random() * (hi - lo + 1));

  // The schedule: every packet's kind, shuffled so each batch mixes kinds.
  const kinds: number[] = [];
  FLOOD_KINDS.forEach((kind, k) => {
    for (let n = 0; n < (plan.counts[kind] ?? 0); n++) kinds.push(k);
  });
  const schedule = Uint8Array.from(kinds);
  for (let i = schedule.length - 1; i > 0; i--) {
    const j = int(0, i);
    const t = schedule[i] ?? 0;
    schedule[i] = schedule[j] ?? 0;
    schedule[j] = t;
  }
  const replays = plan.replays.map((b) => new Uint8Array(Buffer.from(b, 'base64')));
  if ((plan.counts.replay ?? 0) > 0 && replays.length === 0) throw new Error('replay packets asked for, none given');
  const inner = [echoRequest(4, plan.innerV4.source, plan.innerV4.destination, 1), echoRequest(6, plan.innerV6.source, plan.innerV6.destination, 1)];

  // The attacker's own key pair against the target's real public key: a key b never agreed to.
  const attacker = x25519FromPrivate(randomBytes(32));
  const keys = deriveDataPlaneKeys(attacker, new Uint8Array(Buffer.from(plan.targetPublicKey, 'base64')));
  const context = cipherBackend('native').createContext(5, keys.encryptKey, keys.icvKey);
  const salt = randomBytes(4);
  const sealLength = new Uint32Array(1);
  let wrongKeyCounter = 2 ** 40;

  const setFreshCounter = (p: Uint8Array, length: number): void => {
    // Counter bytes are IV[4..12) = packet[12..20): 2^40 + random low bits.
    if (length < 20) return;
    p[12] = 0;
    p[13] = 0;
    p[14] = 1;
  };
  const randomFlags = (p: Uint8Array, keyId: number): void => {
    // Random N/L/E/V/R bits, I clear (instance 0), the given key-id.
    p[0] = ((p[0] ?? 0) & 0xf4) | keyId;
  };

  /** Writes one packet of `kind` into p; returns its length. */
  const build = (kind: FloodKind, p: Uint8Array, index: number): number => {
    switch (kind) {
      case 'truncated': {
        const length = int(0, HEADER - 1);
        randomFillSync(p, 0, Math.max(length, 1));
        return length;
      }
      case 'garbage-short': {
        const length = int(HEADER, MIN_SEALED - 1);
        randomFillSync(p, 0, length);
        randomFlags(p, 1);
        setFreshCounter(p, length);
        return length;
      }
      case 'garbage': {
        const length = int(MIN_SEALED, 1400);
        randomFillSync(p, 0, length);
        randomFlags(p, 1);
        setFreshCounter(p, length);
        return length;
      }
      case 'garbage-old': {
        const length = int(HEADER + layout.ivLength, 1400);
        randomFillSync(p, 0, length);
        randomFlags(p, 1);
        p[12] = (p[12] ?? 0) | 0x80;
        return length;
      }
      case 'no-key': {
        const length = int(MIN_SEALED, 600);
        randomFillSync(p, 0, length);
        p.set([0x80 | int(2, 3), p[1] ?? 0, p[2] ?? 0, p[3] ?? 0, 0, 0, 0, 0], 0);
        return length;
      }
      case 'clear': {
        const packet = inner[index & 1] ?? new Uint8Array(0);
        p.set([0x80, p[1] ?? 0, p[2] ?? 0, p[3] ?? 0, 0, 0, 0, 0], 0);
        p.set(packet, HEADER);
        return HEADER + packet.length;
      }
      case 'wrong-key': {
        const packet = inner[index & 1] ?? new Uint8Array(0);
        p.set([0x01, 0, 0, 0, 0, 0, 0, 0], 0);
        p.set(salt, HEADER);
        const counter = wrongKeyCounter++;
        const hi = Math.floor(counter / 2 ** 32);
        p.set([hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff, counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff], HEADER + 4);
        p.set(packet, HEADER + layout.ivLength);
        sealLength[0] = HEADER + layout.ivLength + packet.length;
        context.sealBatch([p], sealLength, 1);
        return sealLength[0] ?? 0;
      }
      case 'replay': {
        const packet = replays[index % replays.length] ?? new Uint8Array(0);
        p.set(packet, 0);
        return packet.length;
      }
      case 'wrong-instance': {
        const length = int(HEADER, 600);
        randomFillSync(p, 0, length);
        const iid = int(1, 0xfffffe);
        p.set([(p[0] ?? 0) | 0x08, p[1] ?? 0, p[2] ?? 0, p[3] ?? 0, iid >>> 16, (iid >>> 8) & 0xff, iid & 0xff], 0);
        return length;
      }
    }
  };

  const socket = openBatchUdpSocket({ family: 4, address: plan.bind, port: 0, sendBuffer: 4 << 20 });
  const batch = allocateUdpBatch(BATCH, SLOT);
  for (let k = 0; k < BATCH; k++) {
    writeAddressSlot(batch.addresses, k, plan.target);
    batch.ports[k] = plan.port;
  }
  const sent: Partial<Record<FloodKind, number>> = {};
  const failed: Partial<Record<FloodKind, number>> = {};
  const bump = (to: Partial<Record<FloodKind, number>>, kind: FloodKind): void => {
    to[kind] = (to[kind] ?? 0) + 1;
  };
  const batchKinds: FloodKind[] = [];
  let firstErrno = 0;
  const total = schedule.length;
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const elapsed = performance.now() - start;
    if (elapsed > plan.deadlineMs) break;
    // Pacing: packets due by now, one batch ahead.
    const due = Math.min(total, Math.floor((elapsed * total) / plan.durationMs) + BATCH);
    if (i >= due) {
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    const n = Math.min(BATCH, total - i);
    for (let k = 0; k < n; k++) {
      const kind = FLOOD_KINDS[schedule[i + k] ?? 0] ?? 'truncated';
      batchKinds[k] = kind;
      batch.lengths[k] = build(kind, batch.packets[k] ?? new Uint8Array(0), i + k);
    }
    let done = 0;
    while (done < n) {
      const r = socket.sendBatch(
        batch.packets.slice(done, n),
        batch.offsets.subarray(done),
        batch.lengths.subarray(done),
        batch.addresses.subarray(16 * done),
        batch.ports.subarray(done),
        n - done,
        batch.errnos.subarray(done),
      );
      for (let k = done; k < done + r.consumed; k++) {
        const kind = batchKinds[k] ?? 'truncated';
        const errno = batch.errnos[k] ?? 0;
        if (errno === 0) bump(sent, kind);
        else {
          bump(failed, kind);
          if (firstErrno === 0) firstErrno = errno;
        }
      }
      done += r.consumed;
      if (done < n) {
        if (performance.now() - start > plan.deadlineMs) break;
        await new Promise<void>((resolve) => socket.waitWritable(resolve));
      }
    }
    i += done;
    if (done < n) break;
  }
  const elapsedMs = performance.now() - start;
  const stats = socket.stats();
  socket.close();
  context.close();
  const report: FloodReport = {
    sent,
    failed,
    unsent: total - i,
    elapsedMs: Math.round(elapsedMs),
    firstErrno: firstErrno === 0 ? undefined : errnoName(firstErrno),
    socket: { sent: stats.sent, sendErrors: stats.sendErrors, wouldBlock: stats.wouldBlock, sendCalls: stats.sendCalls },
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

await main();
