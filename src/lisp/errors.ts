// Decode failures are data: every decoder returns a DecodeResult, never throws to its caller.
// Internally the codecs throw DecodeError from deep inside the byte reader (so each read site
// stays one line) and the public entry points turn it into a result with `decodeSafely`.

export type DecodeReason =
  | 'truncated'
  | 'bad-type'
  | 'bad-afi'
  | 'bad-lcaf-length'
  | 'bad-length'
  | 'bad-value'
  | 'bad-checksum'
  | 'bad-ip-version'
  | 'bad-name'
  | 'trailing-bytes'
  | 'too-deep'
  | 'conflicting-flags';

export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor(
    readonly reason: DecodeReason,
    readonly offset: number,
    detail: string,
  ) {
    super(`${reason} at byte ${offset}: ${detail}`);
  }
}

/** A tolerated deviation from the standard wire form, seen in a real peer's packets. */
export type QuirkName =
  | 'json-lcaf-length' // lispers.net: JSON LCAF Length 2 short in RLOC-records
  | 'nat-lcaf-length' // lispers.net: NAT-Traversal LCAF Length fixed at 16
  | 'map-notify-trailer' // lispers.net: xTR-ID/site-ID copied into a Map-Notify with I clear
  | 'trailing-bytes' // bytes after the last record that no flag announces
  | 'ignored-bits'; // reserved bits a decoder drops: data header fields whose flag is clear, LCAF Rsvd/Flags

export interface Quirk {
  readonly quirk: QuirkName;
  readonly offset: number;
}

export type DecodeResult<T> =
  | { readonly ok: true; readonly value: T; readonly quirks: readonly Quirk[] }
  | { readonly ok: false; readonly error: DecodeError };

/**
 * Runs a throwing decoder and returns its outcome as data. Only DecodeError is converted; any
 * other exception is a bug in a decoder and is rethrown so tests and the fuzzer see it.
 */
export function decodeSafely<T>(decode: (quirks: Quirk[]) => T): DecodeResult<T> {
  const quirks: Quirk[] = [];
  try {
    return { ok: true, value: decode(quirks), quirks };
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, error };
    throw error;
  }
}
