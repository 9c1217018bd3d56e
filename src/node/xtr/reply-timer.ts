// Times Map-Requests and RLOC probes until their Map-Reply (matched by nonce), for the
// resolution-latency histogram. Bounded: a request older than `maxAgeMs` or beyond `max`
// outstanding ones is forgotten (it went unanswered, or the resolver retried with a new nonce).
import { decodeControl } from '../../lisp/control.js';

export type TimedRequest = 'map-request' | 'rloc-probe';

/** Map-Reply and Map-Request both carry their nonce in bytes 4..11. */
const NONCE_OFFSET = 4;

export class ReplyTimer {
  private readonly pending = new Map<bigint, { readonly kind: TimedRequest; readonly at: number }>();

  constructor(
    private readonly maxAgeMs = 30_000,
    private readonly max = 4096,
  ) {}

  /** A request left: `bytes` is an ECM'd Map-Request or a plain one (probe). */
  sent(kind: TimedRequest, bytes: Uint8Array, now: number): void {
    const decoded = decodeControl(bytes);
    if (!decoded.ok) return;
    const m = decoded.value;
    const nonce = m.type === 'ecm' ? (m.message.type === 'map-request' ? m.message.nonce : undefined) : m.type === 'map-request' ? m.nonce : undefined;
    if (nonce === undefined) return;
    for (const [n, p] of this.pending) {
      if (this.pending.size < this.max && now - p.at < this.maxAgeMs) break;
      this.pending.delete(n);
    }
    this.pending.set(nonce, { kind, at: now });
  }

  /** A Map-Reply arrived: what it answers and after how many milliseconds, if it was timed. */
  replied(bytes: Uint8Array, now: number): { readonly kind: TimedRequest; readonly ms: number } | undefined {
    if (bytes.length < NONCE_OFFSET + 8) return undefined;
    const nonce = Buffer.from(bytes.buffer, bytes.byteOffset + NONCE_OFFSET, 8).readBigUInt64BE(0);
    const p = this.pending.get(nonce);
    if (!p) return undefined;
    this.pending.delete(nonce);
    return { kind: p.kind, ms: now - p.at };
  }
}
