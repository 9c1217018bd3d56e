// EVE's AuthContainer (eve-api.md §9, eve-security.md §3.3): the envelope around every body
// under /api/v2/edgedevice/. Only SHA-256(protectedPayload.payload) is signed; the header fields
// travel unsigned, so the sender's cert hash is merely a lookup hint that the signature then has
// to bear out. Opening never throws on bad input: every way a container can be wrong is an
// EnvelopeError reason, which the HTTP layer maps to a status.
import { createHash, verify, type KeyObject } from 'node:crypto';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { hashLength, type CertResolver } from './cert-hash.js';
import { AuthContainerSchema, HashAlgorithm, type AuthContainer } from './proto/index.js';
import type { P256Signer } from './signer.js';

export type EnvelopeErrorReason =
  | 'malformed' // not a protobuf AuthContainer at all
  | 'no-payload' // no protectedPayload (absent, or encrypted, which lispnode does not decrypt)
  | 'hash-algo' // algo is neither SHA256_16BYTES (1) nor SHA256_32BYTES (2): EVE's AlgoFail
  | 'hash-size' // senderCertHash length does not fit algo: EVE's HashSizeError
  | 'unknown-cert' // no known cert has that hash: EVE's CertMiss (re-fetch /certs)
  | 'bad-signature'; // the known cert's key does not verify the payload

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  constructor(
    readonly reason: EnvelopeErrorReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

/** Who signs: the hash of their cert as the receiver indexes it (see cert-hash.ts). */
export interface EnvelopeSender {
  readonly certHash: Uint8Array;
  readonly algo: HashAlgorithm;
  /** Register only: base64 of the onboarding cert's PEM (pem-base64.ts). */
  readonly senderCert?: Uint8Array;
}

export interface OpenedEnvelope {
  readonly ok: true;
  /** The marshalled inner message; a view into the input bytes. */
  readonly payload: Uint8Array;
  readonly certHash: Uint8Array;
  readonly algo: HashAlgorithm;
  readonly senderCert?: Uint8Array;
}

export type EnvelopeResult = OpenedEnvelope | { readonly ok: false; readonly error: EnvelopeError };

const sha256 = (data: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(data).digest());
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const failure = (reason: EnvelopeErrorReason, detail: string): EnvelopeResult => ({
  ok: false,
  error: new EnvelopeError(reason, detail),
});

/**
 * Wraps a marshalled message: the signer signs SHA-256(payload) and returns raw r||s. An empty
 * payload (UuidRequest) still gets its protectedPayload, as tag 1 with length 0. Throws a
 * RangeError when the cert hash does not fit the algorithm (a caller bug, not peer input), and
 * passes on the signer's rejection.
 */
export async function sealEnvelope(payload: Uint8Array, signer: P256Signer, sender: EnvelopeSender): Promise<Uint8Array> {
  const length = hashLength(sender.algo);
  if (length === undefined || sender.certHash.length !== length) {
    throw new RangeError(`a ${sender.certHash.length}-byte cert hash does not fit hash algorithm ${sender.algo}`);
  }
  const signature = await signer.signDigest(sha256(payload));
  const container = create(AuthContainerSchema, {
    protectedPayload: { payload },
    algo: sender.algo,
    senderCertHash: sender.certHash,
    signatureHash: signature,
    ...(sender.senderCert === undefined ? {} : { senderCert: sender.senderCert }),
  });
  return toBinary(AuthContainerSchema, container);
}

function parse(bytes: Uint8Array): AuthContainer | EnvelopeError {
  try {
    return fromBinary(AuthContainerSchema, bytes);
  } catch (error) {
    return new EnvelopeError('malformed', `not an AuthContainer (${error instanceof Error ? error.message : String(error)})`);
  }
}

function unwrapped(container: AuthContainer): EnvelopeResult {
  if (container.protectedPayload === undefined) {
    return failure(
      'no-payload',
      container.cipherData === undefined ? 'the container has no protectedPayload' : 'the payload is encrypted (cipherData), which lispnode does not decrypt',
    );
  }
  return {
    ok: true,
    payload: container.protectedPayload.payload,
    certHash: container.senderCertHash,
    algo: container.algo,
    ...(container.senderCert.length === 0 ? {} : { senderCert: container.senderCert }),
  };
}

/**
 * The payload without checking the signature. Only for the two places EVE does the same:
 * `/certs` (the device cannot know the signing cert yet; the chain is checked instead) and a
 * register request read to find its `senderCert`, after which the controller checks it with
 * `openEnvelope(bytes, certResolver([knownDeviceCert(onboardingPem)]))`.
 */
export function unwrapUnverified(bytes: Uint8Array): EnvelopeResult {
  const container = parse(bytes);
  return container instanceof EnvelopeError ? { ok: false, error: container } : unwrapped(container);
}

// ECDSA as raw r||s (EVE's envelope form, not DER); RSA PKCS#1 v1.5, which EVE also accepts
// from a controller whose signing cert is RSA. Node's verify hashes the payload with SHA-256.
function verifies(payload: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  try {
    if (key.asymmetricKeyType === 'ec') return verify('sha256', payload, { key, dsaEncoding: 'ieee-p1363' }, signature);
    if (key.asymmetricKeyType === 'rsa') return verify('sha256', payload, key, signature);
    return false;
  } catch {
    return false; // e.g. a signature of the wrong size for the key
  }
}

/**
 * Checks an envelope in EVE's order (algorithm, hash size, cert lookup, signature) and returns
 * the payload only when `resolve` knows a key for the sender's hash and that key signed it.
 */
export function openEnvelope(bytes: Uint8Array, resolve: CertResolver): EnvelopeResult {
  const container = parse(bytes);
  if (container instanceof EnvelopeError) return { ok: false, error: container };
  const opened = unwrapped(container);
  if (!opened.ok) return opened;

  const { algo, certHash } = opened;
  const length = hashLength(algo);
  if (length === undefined) {
    return failure('hash-algo', `hash algorithm ${algo} is neither SHA256_16BYTES (1) nor SHA256_32BYTES (2)`);
  }
  if (certHash.length !== length) {
    return failure('hash-size', `senderCertHash is ${certHash.length} bytes; ${HashAlgorithm[algo]} needs ${length}`);
  }
  const key = resolve(certHash, algo);
  if (key === undefined) return failure('unknown-cert', `no known cert has hash ${hex(certHash)}`);
  if (!verifies(opened.payload, container.signatureHash, key)) {
    return failure('bad-signature', `the signature does not verify with the ${key.asymmetricKeyType ?? 'unknown'} key of cert ${hex(certHash)}`);
  }
  return opened;
}
