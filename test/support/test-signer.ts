// P256Signers over software keys for tests, shaped like the TPM one: asynchronous, and it
// records every digest it is asked to sign so a test can tell it was really used. A "lying"
// signer claims one public key and signs with another, as a wrong TPM handle would.
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { generateP256KeyPair, type P256KeyPair } from '../../src/crypto/p256.js';
import type { P256Signer } from '../../src/control/signer.js';
import { softwareSigner } from '../../src/control/x509/software-signer.js';

export interface TestSigner extends P256Signer {
  readonly pair: P256KeyPair;
  /** Every digest signed, in order. */
  readonly digests: readonly Uint8Array[];
}

/** `pair` (a fresh key by default) signs; `claimed` (default: the same pair) is what it says its key is. */
export function testSigner(pair: P256KeyPair = generateP256KeyPair(randomBytes), claimed: P256KeyPair = pair): TestSigner {
  const inner = softwareSigner(pair);
  const digests: Uint8Array[] = [];
  return {
    pair,
    digests,
    publicKey: claimed.publicKey,
    async signDigest(digest) {
      digests.push(new Uint8Array(digest));
      await nextTurn(); // answer on a later turn, as a TPM round trip does
      return inner.signDigest(digest);
    },
  };
}
