import type { ByteReader } from './bytes.js';
import type { Quirk, QuirkName } from './errors.js';
import { XTR_IDENTITY_LENGTH, readXtrIdentity, type XtrIdentity } from './xtr-identity.js';

/**
 * What follows the last record: the xTR-ID/site-ID trailer when a flag announces it, and any
 * bytes nobody announced (kept verbatim so the message re-encodes, and reported as a quirk).
 */
export function readTrailer(
  r: ByteReader,
  quirks: Quirk[],
  xtrIdentityAnnounced: boolean,
  unannouncedQuirk: QuirkName = 'trailing-bytes',
): { xtrIdentity?: XtrIdentity; trailer?: Uint8Array } {
  const out: { xtrIdentity?: XtrIdentity; trailer?: Uint8Array } = {};
  const extra = r.remaining - (xtrIdentityAnnounced ? XTR_IDENTITY_LENGTH : 0);
  if (xtrIdentityAnnounced) r.need(XTR_IDENTITY_LENGTH, 'xTR-ID/site-ID trailer');
  if (extra > 0) {
    quirks.push({ quirk: unannouncedQuirk, offset: r.offset });
    out.trailer = r.take(extra, 'trailing bytes');
  }
  if (xtrIdentityAnnounced) out.xtrIdentity = readXtrIdentity(r);
  return out;
}
