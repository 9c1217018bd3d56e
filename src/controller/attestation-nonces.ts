// The nonces the controller hands out for quotes (ATTEST_REQ_NONCE): random, bound to the device
// that asked, single use and short-lived, so a quote proves the PCRs are current and cannot be
// replayed by this or any other device. In memory: a nonce outlives no controller restart,
// which only costs the device one more round trip.
import { randomBytes } from 'node:crypto';

/** EVE's tpmmgr takes 12..32 bytes; the most it takes is the hardest to guess. */
export const NONCE_BYTES = 32;
export const DEFAULT_NONCE_LIFETIME_MS = 120_000;
/** A device asking for nonces without quoting must not grow the book without bound. */
const MAX_PER_DEVICE = 8;

/** Why a nonce is not good for this device's quote. */
export type NonceRefusal = 'unknown' | 'expired' | 'other-device';

export interface NonceBookOptions {
  readonly lifetimeMs?: number;
  readonly now?: () => number;
}

interface Issued {
  readonly device: string;
  readonly expires: number;
}

const key = (nonce: Uint8Array): string => Buffer.from(nonce).toString('hex');

export class NonceBook {
  // Insertion-ordered, so the oldest of a device's nonces is the first found.
  private readonly issued = new Map<string, Issued>();
  private readonly lifetimeMs: number;
  private readonly now: () => number;

  constructor(options: NonceBookOptions = {}) {
    this.lifetimeMs = options.lifetimeMs ?? DEFAULT_NONCE_LIFETIME_MS;
    this.now = options.now ?? Date.now;
  }

  issue(device: string): Uint8Array {
    const now = this.now();
    const mine: string[] = [];
    for (const [k, entry] of this.issued) {
      if (entry.expires <= now) this.issued.delete(k);
      else if (entry.device === device) mine.push(k);
    }
    for (const k of mine.slice(0, Math.max(0, mine.length - MAX_PER_DEVICE + 1))) this.issued.delete(k);
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
    this.issued.set(key(nonce), { device, expires: now + this.lifetimeMs });
    return nonce;
  }

  /** Uses the nonce up whatever the answer: a nonce is tried once, by anyone. */
  consume(nonce: Uint8Array, device: string): NonceRefusal | undefined {
    const k = key(nonce);
    const entry = this.issued.get(k);
    this.issued.delete(k);
    if (!entry) return 'unknown';
    if (entry.device !== device) return 'other-device';
    if (entry.expires <= this.now()) return 'expired';
    return undefined;
  }
}
