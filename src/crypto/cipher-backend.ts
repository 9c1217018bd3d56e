// The seam between the data-plane session (IVs, key-ids, replay, rekeying) and the bulk cipher
// work. Two implementations produce identical bytes: node:crypto below (the reference) and the
// project's N-API addon (src/tun/native-aead.ts), which reuses one OpenSSL context per key.
//
// A packet buffer holds the 8-byte LISP header, then the IV (both already written), then the
// payload, and has room behind it for padding, tag and ICV.
import type { CipherSuite } from './cipher-suite.js';

/** Per-packet results of openBatch; index = status byte. Names double as drop counters. */
export const OPEN_STATUS = ['ok', 'too-short', 'icv-mismatch', 'tag-mismatch', 'bad-length'] as const;
export type OpenStatus = (typeof OPEN_STATUS)[number];

export interface CipherContext {
  /** lengths[i] in: 8 + IV + plaintext; out: the sealed length. */
  sealBatch(packets: readonly Uint8Array[], lengths: Uint32Array, count: number): void;
  /** lengths[i] in: the sealed length; out: 8 + IV + (padded) plaintext when statuses[i] is 0. */
  openBatch(packets: readonly Uint8Array[], lengths: Uint32Array, statuses: Uint8Array, count: number): void;
  close(): void;
}

export interface CipherBackend {
  readonly name: string;
  createContext(suite: CipherSuite, encryptKey: Uint8Array, icvKey: Uint8Array): CipherContext;
}
