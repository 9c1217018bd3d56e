// A P256Signer over a key the process holds (EVE's soft-key fallback, the controller's keys,
// tests). It signs the caller's digest as is — no second hash — which node:crypto cannot do for
// ECDSA, hence @noble/curves with prehash off.
import { p256 } from '@noble/curves/nist.js';
import type { P256KeyPair } from '../../crypto/p256.js';
import type { P256Signer } from '../signer.js';

export function softwareSigner(pair: P256KeyPair): P256Signer {
  return {
    publicKey: pair.publicKey,
    signDigest: (digest) => Promise.resolve(p256.sign(digest, pair.scalar, { prehash: false })),
  };
}
