// RFC 8061 cipher suites in the framing lispers.net and EVE's data plane use (lisp-protocol.md
// §4.4): LISP header | IV | ciphertext [| GCM tag] | ICV, ICV = HMAC-SHA-256 truncated to 20 bytes.

export const CIPHER_SUITE = {
  /** LISP_EC25519_AES128_CBC_SHA256: lispers.net's default. */
  x25519Aes128CbcSha256: 2,
  /** LISP_256_EC25519_AES128_GCM: EVE's choice and ours. */
  x25519Aes128Gcm: 5,
} as const;

export type CipherSuite = (typeof CIPHER_SUITE)[keyof typeof CIPHER_SUITE];

export const DEFAULT_CIPHER_SUITE: CipherSuite = CIPHER_SUITE.x25519Aes128Gcm;

export interface SuiteLayout {
  readonly suite: CipherSuite;
  readonly ivLength: number;
  readonly tagLength: number;
  /** Plaintext is padded (with spaces) to a multiple of this. */
  readonly blockLength: number;
}

export const ICV_LENGTH = 20;
export const ENCRYPT_KEY_LENGTH = 16;
export const ICV_KEY_LENGTH = 20;

const LAYOUTS: Readonly<Record<CipherSuite, SuiteLayout>> = {
  2: { suite: 2, ivLength: 16, tagLength: 0, blockLength: 16 },
  5: { suite: 5, ivLength: 12, tagLength: 16, blockLength: 1 },
};

export function suiteLayout(suite: CipherSuite): SuiteLayout {
  return LAYOUTS[suite];
}

export type SuiteRefusal = { readonly ok: false; readonly reason: string };

/**
 * Suites 2 and 5 only. 1, 3 and 4 need MODP Diffie-Hellman, and lispers.net's 6 is a
 * non-standard ChaCha variant; a peer offering them gets a clear refusal, not a guess.
 */
export function parseCipherSuite(value: number): { readonly ok: true; readonly suite: CipherSuite } | SuiteRefusal {
  if (value === 2 || value === 5) return { ok: true, suite: value };
  const why: Readonly<Record<number, string>> = {
    0: 'suite 0 is reserved (lispers.net uses it for 1024-bit MODP)',
    1: 'suite 1 needs 2048-bit MODP Diffie-Hellman, which lispnode does not offer',
    3: 'suite 3 needs 2048-bit MODP Diffie-Hellman, which lispnode does not offer',
    4: 'suite 4 needs 3072-bit MODP Diffie-Hellman, which lispnode does not offer',
    6: "suite 6 as lispers.net implements it (ChaCha20 with 8 rounds) is not RFC 8439; refused",
  };
  return { ok: false, reason: why[value] ?? `unknown cipher suite ${value}` };
}

/** Bytes added to a plaintext of `length` bytes: IV, padding, tag and ICV. */
export function sealOverhead(suite: CipherSuite, length: number): number {
  const l = LAYOUTS[suite];
  const pad = (l.blockLength - (length % l.blockLength)) % l.blockLength;
  return l.ivLength + pad + l.tagLength + ICV_LENGTH;
}

/** Largest overhead for any plaintext: what a TUN MTU must leave room for. */
export function maxSealOverhead(suite: CipherSuite): number {
  const l = LAYOUTS[suite];
  return l.ivLength + (l.blockLength - 1) + l.tagLength + ICV_LENGTH;
}
