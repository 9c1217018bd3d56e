// Lookup access control (issue 5; lisp-protocol.md §5.5, §5.6): who may resolve a site's EIDs.
//
// Two questions, answered separately so the expensive one is asked only when it matters:
//   1. Who is asking? `authenticateRequester` checks a signed Map-Request (the Source-EID JSON
//      LCAF `{"source-eid", "signature-eid", "signature"}`): the signature-EID is a crypto-EID
//      whose public key is registered under its hash-EID name, the SHA-1 signature over
//      nonce + source + target verifies with that key (lispers.net's format), AND the claimed
//      source EID is the signature-EID or another crypto-EID registered with the same key.
//      lispers.net skips that last check, so any key holder could claim any source and satisfy a
//      source-EID policy meant for someone else.
//   2. May they? `checkLookup` applies a site's (or one of its allowed prefixes') allow/deny
//      lists of requester EID prefixes. Deny wins. A requester without an authenticated source
//      (unsigned, or a signature that does not hold) matches only an allow-all policy: otherwise
//      anyone could dodge a deny entry by not signing.
import type { KeyObject } from 'node:crypto';
import { hashEidName, verifyMapRequestSignature } from '../../crypto/index.js';
import type { Address } from '../address.js';
import { formatIpv4, formatIpv6 } from '../ip-text.js';
import { parsePrefix, prefixCovers, type EidPrefix } from '../prefix.js';
import type { RegistrationStore } from './registrations.js';
import { cryptoPrefixOverlapping, type ResolvedConfig, type SiteConfig } from './site.js';

export interface LookupPolicy {
  /** Requester EID prefixes that may look up; 'any' admits every requester the deny list does not name. */
  readonly allow: 'any' | readonly EidPrefix[];
  /** Requester EID prefixes that may not; wins over `allow`. */
  readonly deny: readonly EidPrefix[];
}

/** The default: anyone, signed or not, may look up (today's behaviour, and lispers.net's). */
export const ALLOW_ALL: LookupPolicy = { allow: 'any', deny: [] };

/** Only an allow-all policy can be satisfied without knowing who asks. */
export function isAllowAll(policy: LookupPolicy): boolean {
  return policy.allow === 'any' && policy.deny.length === 0;
}

/**
 * The policy guarding `target` in `site`: the policy of the longest allowed prefix covering it
 * that has one, else the site's, else ALLOW_ALL.
 */
export function policyFor(site: SiteConfig, target: EidPrefix): LookupPolicy {
  let best: { readonly length: number; readonly policy: LookupPolicy } | undefined;
  for (const a of site.allowedPrefixes) {
    if (a.lookupPolicy && prefixCovers(a.prefix, target) && (!best || a.prefix.length > best.length)) best = { length: a.prefix.length, policy: a.lookupPolicy };
  }
  return best?.policy ?? site.lookupPolicy ?? ALLOW_ALL;
}

/** Why a signed Map-Request's source is not taken as authenticated. */
export const SIGNATURE_FAILURES = [
  /** JSON that does not parse, or lacks / mistypes one of the three fields. */
  'signature-malformed',
  /** `signature-eid` is not a crypto-EID of a configured crypto-EID prefix. */
  'signature-eid-not-crypto',
  /** No live hash-EID registration for the signature-EID. */
  'signature-key-unknown',
  /** `source-eid` is neither the signature-EID nor a crypto-EID registered with the same key. */
  'signature-source-mismatch',
  'signature-invalid',
] as const;
export type SignatureFailure = (typeof SIGNATURE_FAILURES)[number];

export type Requester =
  | { readonly kind: 'unsigned' }
  /** `signer`: the hash-EID registration key (`[iid]'hash-…'`) whose public key verified. */
  | { readonly kind: 'authenticated'; readonly eid: EidPrefix; readonly signer: string }
  | { readonly kind: 'rejected'; readonly reason: SignatureFailure };

export type LookupVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: 'requester-unauthenticated' | 'requester-denied' | 'requester-not-allowed' };

export function checkLookup(policy: LookupPolicy, requester: Requester): LookupVerdict {
  if (isAllowAll(policy)) return { allowed: true };
  if (requester.kind !== 'authenticated') return { allowed: false, reason: 'requester-unauthenticated' };
  const eid = requester.eid;
  if (policy.deny.some((p) => prefixCovers(p, eid))) return { allowed: false, reason: 'requester-denied' };
  if (policy.allow === 'any' || policy.allow.some((p) => prefixCovers(p, eid))) return { allowed: true };
  return { allowed: false, reason: 'requester-not-allowed' };
}

/** The Source-EID JSON of a signed Map-Request, if the field is a JSON LCAF (bare or in an Instance-ID LCAF). */
export function sourceEidJson(sourceEid: Address): string | undefined {
  let a = sourceEid;
  if (a.afi === 'lcaf' && a.lcaf.type === 'instance-id') a = a.lcaf.address;
  return a.afi === 'lcaf' && a.lcaf.type === 'json' ? a.lcaf.json : undefined;
}

/** What the signature covers besides the JSON: the nonce and the requested EID. */
export interface SignedRequest {
  readonly nonce: bigint;
  /** The Source-EID field of the Map-Request. */
  readonly sourceEid: Address;
  /** The requested EID (a host prefix). */
  readonly target: EidPrefix;
}

/**
 * Who signed the Map-Request, checked as the module comment says. Cheap checks (parse, key
 * lookup, the source binding) come before the ECDSA verification.
 */
export function authenticateRequester(request: SignedRequest, config: ResolvedConfig, store: RegistrationStore, now: number): Requester {
  const text = sourceEidJson(request.sourceEid);
  if (text === undefined) return { kind: 'unsigned' };
  const reject = (reason: SignatureFailure): Requester => ({ kind: 'rejected', reason });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return reject('signature-malformed');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return reject('signature-malformed');
  const fields = json as Record<string, unknown>;
  const sourceText = fields['source-eid'];
  const signerText = fields['signature-eid'];
  const signature = fields.signature;
  if (typeof sourceText !== 'string' || typeof signerText !== 'string' || typeof signature !== 'string') return reject('signature-malformed');
  const source = hostPrefix(sourceText);
  const signerEid = hostPrefix(signerText);
  if (!source || !signerEid) return reject('signature-malformed');

  const signer = registeredKey(signerEid, config, store, now);
  if (signer === 'not-crypto') return reject('signature-eid-not-crypto');
  if (signer === 'unknown') return reject('signature-key-unknown');
  if (!sameHost(source, signerEid)) {
    const claimed = registeredKey(source, config, store, now);
    if (typeof claimed === 'string' || !claimed.publicKey.equals(signer.publicKey)) return reject('signature-source-mismatch');
  }
  const nonceBytes = new Uint8Array(8);
  new DataView(nonceBytes.buffer).setBigUint64(0, request.nonce);
  const ok = verifyMapRequestSignature(signer.publicKey, nonceBytes, eidText(source), eidText(request.target), signature);
  return ok ? { kind: 'authenticated', eid: source, signer: signer.key } : reject('signature-invalid');
}

/** `[iid]address` without a mask (a host); undefined for anything else. */
function hostPrefix(text: string): EidPrefix | undefined {
  if (text.includes('/')) return undefined;
  return parsePrefix(text);
}

function sameHost(a: EidPrefix, b: EidPrefix): boolean {
  return prefixCovers(a, b) && prefixCovers(b, a);
}

function eidText(p: EidPrefix): { readonly iid: number; readonly text: string } {
  return { iid: p.instanceId, text: p.family === 4 ? formatIpv4(p.address) : formatIpv6(p.address) };
}

function registeredKey(
  eid: EidPrefix,
  config: ResolvedConfig,
  store: RegistrationStore,
  now: number,
): { readonly key: string; readonly publicKey: KeyObject } | 'not-crypto' | 'unknown' {
  const crypto = eid.family === 6 ? cryptoPrefixOverlapping(config, eid) : undefined;
  if (!crypto || !prefixCovers(crypto.prefix, eid)) return 'not-crypto';
  const name = hashEidName(eid.address, crypto.prefix.length);
  const r = store.publicKeyOf(eid.instanceId, name, now);
  // The register handler admitted this key only because it derives the name's EID, so the key
  // is bound to `eid` (lispers.net never checks that binding).
  return r ? { key: r.key, publicKey: r.publicKey } : 'unknown';
}
