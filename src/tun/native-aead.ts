// TypeScript face of the addon's batched RFC 8061 data-plane AEAD (src/tun/native/aead.cc).
// A packet buffer holds LISP header (8) | IV (12 for suite 5, 16 for suite 2) | payload, header and
// IV already written; sealBatch encrypts in place and appends [GCM tag |] ICV, openBatch checks the
// ICV (constant time, before decrypting), decrypts in place and reports one status per packet.
// One OpenSSL context per key is reused for every packet, so there is no per-packet JS object.
import { nativeClass, nativeClassAvailable } from './native-addon.js';

export type NativeOpenStatus = 'ok' | 'too-short' | 'icv-mismatch' | 'tag-mismatch' | 'bad-length';

/** Names of openBatch's status bytes: `NATIVE_OPEN_STATUS[statuses[i]]`. */
export const NATIVE_OPEN_STATUS: readonly NativeOpenStatus[] = Object.freeze([
  'ok',
  'too-short',
  'icv-mismatch',
  'tag-mismatch',
  'bad-length',
] as const);

export interface NativeAeadContext {
  /**
   * Seals packets[0, count) in place. lengths[i] in: 8 + IV + plaintext; out: sealed length. Each
   * packet's buffer must have room for pad + tag + ICV. Throws (having changed nothing) on a bad
   * argument.
   */
  sealBatch(packets: readonly Uint8Array[], lengths: Uint32Array, count: number): void;
  /**
   * Opens packets[0, count) in place. lengths[i] in: sealed length; out: 8 + IV + plaintext length
   * when statuses[i] === 0 (suite 2: the space-padded plaintext; trim by the inner IP length), left
   * as it was otherwise. A malformed packet is a status, never an exception.
   */
  openBatch(packets: readonly Uint8Array[], lengths: Uint32Array, statuses: Uint8Array, count: number): void;
  /** Frees the OpenSSL contexts (keys included); idempotent. Later calls to the batch methods throw. */
  close(): void;
}

interface NativeAddon {
  readonly AeadContext: new (suite: number, encryptKey: Uint8Array, icvKey: Uint8Array) => NativeAeadContext;
}

/** Whether the addon is built and loads. */
export function nativeAddonAvailable(): boolean {
  return nativeClassAvailable('AeadContext');
}

/**
 * A context for one suite and key pair: suite 2 (AES-128-CBC) or 5 (AES-128-GCM), a 16-byte encrypt
 * key and a 20-byte ICV key (HMAC-SHA-256). Throws TypeError/RangeError on bad arguments and Error
 * when the addon is not built.
 */
export function createNativeAeadContext(suite: 2 | 5, encryptKey: Uint8Array, icvKey: Uint8Array): NativeAeadContext {
  const AeadContext = nativeClass<NativeAddon['AeadContext']>('AeadContext');
  return new AeadContext(suite, encryptKey, icvKey);
}
