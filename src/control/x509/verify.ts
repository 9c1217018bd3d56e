// Chain verification as EVE does it for the controller's certs (eve-api.md §4,
// `VerifyLeavesCertChain`): Go's x509.Verify against one pinned root, intermediates from the set.
// Like Go it builds the chain by issuer name and signature (an unrelated or duplicate
// intermediate is harmless) and checks every cert's validity at `now` and EKU — none, any, or
// one including serverAuth, Go's default. Stricter than Go, every issuer, the root included,
// must be a basicConstraints CA. Not checked, as Go would: unknown critical extensions, name
// constraints.
import { X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import * as x509 from './lib.js';
import { certDerFromPem } from './pem.js';

export type ChainFailure = 'malformed' | 'untrusted-chain' | 'expired' | 'bad-eku';

export interface ChainError<R extends string = ChainFailure> {
  readonly reason: R;
  /** Which cert, and what is wrong with it. */
  readonly message: string;
}

export interface VerifiedCert {
  /** The PEM bytes as given (EVE hashes these for certHash and senderCertHash). */
  readonly pem: Uint8Array;
  readonly publicKey: KeyObject;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export type ChainResult =
  | { readonly ok: true; readonly leaf: VerifiedCert; /** DER, leaf first, root last. */ readonly chain: readonly Uint8Array[] }
  | { readonly ok: false; readonly error: ChainError };

interface Parsed {
  readonly der: Uint8Array;
  readonly node: NodeX509;
  readonly cert: x509.X509Certificate;
  readonly subjectDer: string;
  readonly issuerDer: string;
}

type Pem = string | Uint8Array;

function parse(pem: Pem): Parsed | undefined {
  const der = certDerFromPem(pem);
  if (der === undefined) return undefined;
  try {
    const cert = new x509.X509Certificate(der);
    return {
      der,
      node: new NodeX509(der),
      cert,
      subjectDer: Buffer.from(cert.subjectName.toArrayBuffer()).toString('hex'),
      issuerDer: Buffer.from(cert.issuerName.toArrayBuffer()).toString('hex'),
    };
  } catch {
    return undefined;
  }
}

const SERVER_AUTH: string = x509.ExtendedKeyUsage.serverAuth;
const ANY_EKU = '2.5.29.37.0';

const fail = (reason: ChainFailure, message: string): { readonly ok: false; readonly error: ChainError } => ({ ok: false, error: { reason, message } });

/** What every cert on the chain must satisfy on its own: validity at `now`, and the EKU. */
function checkCert(p: Parsed, now: Date): ChainError | undefined {
  const { cert } = p;
  if (now < cert.notBefore) return { reason: 'expired', message: `"${cert.subject}" is not valid before ${cert.notBefore.toISOString()}` };
  if (now > cert.notAfter) return { reason: 'expired', message: `"${cert.subject}" expired at ${cert.notAfter.toISOString()}` };
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku && !eku.usages.some((u) => u === SERVER_AUTH || u === ANY_EKU)) {
    return { reason: 'bad-eku', message: `"${cert.subject}" has ExtKeyUsage ${eku.usages.join(', ')} without serverAuth` };
  }
  return undefined;
}

/** What an issuer must be, beyond checkCert: a CA whose path length admits `below` CAs under it. */
function checkIssuer(p: Parsed, below: number): ChainError | undefined {
  const bc = p.cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) return { reason: 'untrusted-chain', message: `"${p.cert.subject}" signs certificates but is not a CA` };
  if (bc.pathLength !== undefined && below > bc.pathLength) {
    return { reason: 'untrusted-chain', message: `"${p.cert.subject}" allows ${bc.pathLength} CAs under it, the chain has ${below}` };
  }
  return undefined;
}

const MAX_DEPTH = 8;

interface Attempt {
  readonly error: ChainError;
  /** How close it came: errors found further up the chain are the more telling ones. */
  readonly progress: number;
}

type Built = { readonly chain: readonly Parsed[] } | Attempt;

/** Depth-first search for a path from `chain`'s last cert to `root` through `pool`. */
function build(chain: readonly Parsed[], pool: readonly Parsed[], root: Parsed, now: Date): Built {
  const current = chain[chain.length - 1] as Parsed;
  const named = pool.filter((c) => c.subjectDer === current.issuerDer && !chain.some((seen) => Buffer.compare(seen.der, c.der) === 0));
  const progress = chain.length * 2;
  let best: Attempt = {
    error: { reason: 'untrusted-chain', message: `"${current.cert.subject}" is issued by "${current.cert.issuer}", which is neither the root nor a given intermediate` },
    progress,
  };
  const consider = (attempt: Attempt): void => {
    if (attempt.progress > best.progress) best = attempt;
  };
  for (const candidate of named) {
    if (!current.node.verify(candidate.node.publicKey)) {
      consider({ error: { reason: 'untrusted-chain', message: `the signature on "${current.cert.subject}" does not verify under the key of "${candidate.cert.subject}"` }, progress: progress + 1 });
      continue;
    }
    const problem = checkIssuer(candidate, chain.length - 1) ?? checkCert(candidate, now);
    if (problem) {
      consider({ error: problem, progress: progress + 1 });
      continue;
    }
    if (Buffer.compare(candidate.der, root.der) === 0) return { chain: [...chain, candidate] };
    if (chain.length >= MAX_DEPTH) {
      consider({ error: { reason: 'untrusted-chain', message: `no path to the root within ${MAX_DEPTH} certificates` }, progress: progress + 1 });
      continue;
    }
    const above = build([...chain, candidate], pool, root, now);
    if ('chain' in above) return above;
    consider(above);
  }
  return best;
}

/**
 * Verifies `leafPem` up to `rootPem` (the only trust anchor) through any of `intermediates`, all
 * valid at `now`. Each PEM is its first CERTIFICATE block, as Go reads it.
 */
export function verifyChainToRoot(leafPem: Pem, intermediates: readonly Pem[], rootPem: Pem, now: Date): ChainResult {
  const root = parse(rootPem);
  if (!root) return fail('malformed', 'the root is not a PEM certificate');
  const leaf = parse(leafPem);
  if (!leaf) return fail('malformed', 'the leaf is not a PEM certificate');
  const pool: Parsed[] = [root];
  for (const [index, pem] of intermediates.entries()) {
    const parsed = parse(pem);
    if (!parsed) return fail('malformed', `intermediate #${index} is not a PEM certificate`);
    pool.push(parsed);
  }
  const own = checkCert(leaf, now);
  if (own) return { ok: false, error: own };
  const built = build([leaf], pool, root, now);
  if (!('chain' in built)) return { ok: false, error: built.error };
  return {
    ok: true,
    leaf: {
      pem: typeof leafPem === 'string' ? new Uint8Array(Buffer.from(leafPem)) : leafPem,
      publicKey: leaf.node.publicKey,
      subject: leaf.cert.subject,
      notBefore: leaf.cert.notBefore,
      notAfter: leaf.cert.notAfter,
    },
    chain: built.chain.map((c) => c.der),
  };
}

/** ZCertType, controller values (eve-api.md §4). */
export const ControllerCertType = { NONE: 0, SIGNING: 1, INTERMEDIATE: 2, ECDH_EXCHANGE: 3 } as const;

export interface ControllerCert {
  /** ZCertType. */
  readonly type: number;
  /** ZCert.cert: raw PEM bytes. */
  readonly pem: Uint8Array;
}

export type CertSetFailure = ChainFailure | 'no-signing' | 'many-signing' | 'no-ecdh' | 'unknown-type' | 'rollback';

export type CertSetResult =
  | {
      readonly ok: true;
      readonly signing: VerifiedCert;
      /** The first ECDH_EXCHANGE cert (the one EVE uses); every one of them was verified. */
      readonly ecdh: VerifiedCert;
    }
  | { readonly ok: false; readonly error: ChainError<CertSetFailure> };

const setFail = (reason: CertSetFailure, message: string): { readonly ok: false; readonly error: ChainError<CertSetFailure> } => ({ ok: false, error: { reason, message } });

/**
 * EVE's `VerifyLeavesCertChain` with requireECDH: exactly one SIGNING, at least one
 * ECDH_EXCHANGE, any INTERMEDIATE, nothing else; the leaves chain to `rootPem`. With `previous`
 * (the signing cert saved from the last accepted set), a signing cert issued before it is a
 * rollback and refused.
 */
export function verifyControllerCertSet(
  certs: readonly ControllerCert[],
  rootPem: Pem,
  now: Date,
  previous?: { readonly signingNotBefore: Date },
): CertSetResult {
  const signing: number[] = [];
  const ecdh: number[] = [];
  const intermediates: Uint8Array[] = [];
  for (const [index, { type, pem }] of certs.entries()) {
    if (type === ControllerCertType.SIGNING) signing.push(index);
    else if (type === ControllerCertType.ECDH_EXCHANGE) ecdh.push(index);
    else if (type === ControllerCertType.INTERMEDIATE) intermediates.push(pem);
    else return setFail('unknown-type', `cert #${index} has type ${type}, not SIGNING (1), INTERMEDIATE (2) or ECDH_EXCHANGE (3)`);
  }
  const [signingIndex] = signing;
  if (signingIndex === undefined) return setFail('no-signing', 'the set has no SIGNING cert');
  if (signing.length > 1) return setFail('many-signing', `the set has ${signing.length} SIGNING certs (#${signing.join(', #')}), EVE takes exactly one`);
  if (ecdh.length === 0) return setFail('no-ecdh', 'the set has no ECDH_EXCHANGE cert');

  const verifyLeaf = (index: number, role: string): VerifiedCert | ChainError => {
    const result = verifyChainToRoot((certs[index] as ControllerCert).pem, intermediates, rootPem, now);
    return result.ok ? result.leaf : { reason: result.error.reason, message: `${role} cert #${index}: ${result.error.message}` };
  };
  const signed = verifyLeaf(signingIndex, 'SIGNING');
  if ('reason' in signed) return { ok: false, error: signed };
  const exchanges: VerifiedCert[] = [];
  for (const index of ecdh) {
    const verified = verifyLeaf(index, 'ECDH_EXCHANGE');
    if ('reason' in verified) return { ok: false, error: verified };
    exchanges.push(verified);
  }
  if (previous && signed.notBefore < previous.signingNotBefore) {
    return setFail(
      'rollback',
      `SIGNING cert #${signingIndex} ("${signed.subject}") was issued ${signed.notBefore.toISOString()}, before the saved one (${previous.signingNotBefore.toISOString()})`,
    );
  }
  return { ok: true, signing: signed, ecdh: exchanges[0] as VerifiedCert };
}
