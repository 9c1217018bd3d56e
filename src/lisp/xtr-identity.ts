import type { ByteReader, ByteWriter } from './bytes.js';

/** The 128-bit xTR-ID and 64-bit site-ID trailer (RFC 9301 §5.6, RFC 9437), always the last 24 bytes. */
export interface XtrIdentity {
  readonly xtrId: Uint8Array;
  readonly siteId: bigint;
}

export const XTR_IDENTITY_LENGTH = 24;

export function readXtrIdentity(r: ByteReader): XtrIdentity {
  return { xtrId: r.take(16, 'xTR-ID'), siteId: r.u64('site-ID') };
}

export function writeXtrIdentity(w: ByteWriter, x: XtrIdentity): void {
  if (x.xtrId.length !== 16) throw new RangeError('an xTR-ID is 16 bytes');
  w.bytes(x.xtrId).u64(x.siteId);
}
