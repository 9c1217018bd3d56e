// The signed key agreement on the wire (docs/key-agreement.md), sans-IO. A proof is a JSON
// object under "key-agreement" — the signer's crypto-EID, its P-256 public key (SPKI DER,
// base64) and the transcript signature (key-agreement-signature.ts, raw r||s, base64) — carried
// in the Map-Request's Source-EID JSON LCAF (the offer: next to the lookup signature of an ECM,
// alone in a probe) and in the keyed locator's AFI-List of the Map-Reply (the answer). Receivers
// that do not know it (lispers.net, OOR) skip JSON they do not read.
//
// A proof is checked from cheap to dear: shape, the EID inside the crypto-EID prefix, the EID
// derived from the key (one SHA-256), then one ECDSA verification.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { verifyCryptoEid, eidInPrefix, type EidDerivation, type EidPrefix as CryptoEidPrefix } from '../../crypto/crypto-eid.js';
import { decodeSignature, decodeStrictBase64, encodeSignature } from '../../crypto/ecdsa.js';
import { signKeyAgreement, verifyKeyAgreement, type KeyAgreementTranscript, type Signer } from '../../crypto/key-agreement-signature.js';
import { NO_ADDRESS, type Address } from '../address.js';
import { formatIpv6, parseIpv4, parseIpv6 } from '../ip-text.js';
import { addressSlot, type SessionAuthentication } from './key-exchange.js';

export const PROOF_FIELD = 'key-agreement';

/** This node's crypto-EID and what signs for it. */
export interface KeyAgreementIdentity {
  readonly instanceId: number;
  /** The crypto-EID, 16 bytes. */
  readonly eid: Uint8Array;
  /** Its P-256 public key, SPKI DER. */
  readonly spki: Uint8Array;
  readonly sign: Signer;
}

/** Which EIDs are crypto-EIDs, and how they derive from keys (the network's setting). */
export interface CryptoEidScope {
  readonly prefix: CryptoEidPrefix;
  readonly derivation: EidDerivation;
}

/** The JSON value under PROOF_FIELD. */
export interface ProofFields {
  readonly eid: string;
  readonly 'public-key': string;
  readonly signature: string;
}

export const KEY_PROOF_REFUSALS = [
  /** Not an object of three strings, an EID that does not parse, another instance, a key that is no P-256 SPKI. */
  'key-proof-malformed',
  /** The signer's EID lies outside the crypto-EID prefix. */
  'key-proof-not-crypto-eid',
  /** The signer's EID does not derive from the public key that came with it. */
  'key-proof-eid-not-derived',
  /** The signature does not verify over this exchange's transcript: something was rewritten. */
  'key-proof-invalid',
] as const;
export type KeyProofRefusal = (typeof KEY_PROOF_REFUSALS)[number];

export type CryptoEidAuthentication = Extract<SessionAuthentication, { kind: 'crypto-eid' }>;

export type ProofCheck =
  | { readonly kind: 'unsigned' }
  | { readonly kind: 'authenticated'; readonly authentication: CryptoEidAuthentication }
  | { readonly kind: 'refused'; readonly reason: KeyProofRefusal };

const UNSIGNED: ProofCheck = { kind: 'unsigned' };

/** An EID as the transcript holds it: 16 bytes, IPv4 as ::ffff:a.b.c.d; undefined for anything else. */
export function transcriptEid(text: string): Uint8Array | undefined {
  return parseIpv4(text) || parseIpv6(text) ? addressSlot(text).slot : undefined;
}

export function makeProof(identity: KeyAgreementIdentity, transcript: KeyAgreementTranscript): ProofFields {
  return {
    eid: `[${identity.instanceId}]${formatIpv6(identity.eid)}`,
    'public-key': Buffer.from(identity.spki).toString('base64'),
    signature: encodeSignature(signKeyAgreement(identity.sign, transcript)),
  };
}

/** The offer's transcript without the ITR's EID (the proof names it). */
export type OfferFacts = Omit<KeyAgreementTranscript, 'role' | 'itrEid' | 'etrKey'>;
/** The answer's transcript without the ETR's EID (the proof names it). */
export type AnswerFacts = Omit<KeyAgreementTranscript, 'role' | 'etrEid'> & { readonly etrKey: Uint8Array };

export function offerTranscript(facts: OfferFacts, itrEid: Uint8Array): KeyAgreementTranscript {
  return { ...facts, role: 'offer', itrEid };
}

export function answerTranscript(facts: AnswerFacts, etrEid: Uint8Array): KeyAgreementTranscript {
  return { ...facts, role: 'answer', etrEid };
}

/** A JSON LCAF holding `fields` (and nothing else). */
export function jsonAddress(fields: Readonly<Record<string, unknown>>): Address {
  return { afi: 'lcaf', lcaf: { type: 'json', json: JSON.stringify(fields), jsonFlags: 0, address: NO_ADDRESS } };
}

/** The proof in a JSON LCAF: the address itself, inside an Instance-ID LCAF, or an item of an AFI-List. */
export function proofIn(a: Address): unknown {
  const json = jsonIn(a, 0);
  if (json === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)[PROOF_FIELD] : undefined;
}

function jsonIn(a: Address, depth: number): string | undefined {
  if (a.afi !== 'lcaf' || depth > 2) return undefined;
  const l = a.lcaf;
  if (l.type === 'json') return l.json;
  if (l.type === 'instance-id') return jsonIn(l.address, depth + 1);
  if (l.type === 'afi-list') {
    for (const item of l.items) {
      const found = jsonIn(item, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * Checks a proof (what `proofIn` found; undefined = unsigned) against the transcript it must
 * sign, `complete` filling in the signer's EID.
 */
export function checkProof(proof: unknown, instanceId: number, complete: (signerEid: Uint8Array) => KeyAgreementTranscript, scope: CryptoEidScope): ProofCheck {
  if (proof === undefined) return UNSIGNED;
  const fields = proofFields(proof);
  const eid = fields && signerEid(fields.eid, instanceId);
  const signature = fields && decodeSignature(fields.signature);
  const spki = fields && decodeStrictBase64(fields['public-key'], 1024);
  if (!eid || !signature || !spki?.length) return refused('key-proof-malformed');
  if (!eidInPrefix(eid, scope.prefix)) return refused('key-proof-not-crypto-eid');
  if (!verifyCryptoEid({ iid: instanceId, eid, spki, prefix: scope.prefix, derivation: scope.derivation })) return refused('key-proof-eid-not-derived');
  const publicKey = p256Key(spki);
  if (!publicKey) return refused('key-proof-malformed');
  let transcript: KeyAgreementTranscript;
  try {
    transcript = complete(eid);
  } catch {
    return refused('key-proof-malformed');
  }
  if (!verifyKeyAgreement(publicKey, transcript, signature)) return refused('key-proof-invalid');
  return { kind: 'authenticated', authentication: { kind: 'crypto-eid', peerEid: formatIpv6(eid), eid } };
}

function refused(reason: KeyProofRefusal): ProofCheck {
  return { kind: 'refused', reason };
}

function proofFields(v: unknown): ProofFields | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const [eid, key, signature] = [o.eid, o['public-key'], o.signature];
  return typeof eid === 'string' && typeof key === 'string' && typeof signature === 'string' ? { eid, 'public-key': key, signature } : undefined;
}

/** `[iid]ipv6` of exactly our instance; undefined for anything else. */
function signerEid(text: string, instanceId: number): Uint8Array | undefined {
  const m = /^\[(\d{1,10})\]([0-9a-fA-F:.]{2,45})$/.exec(text);
  if (!m || Number(m[1]) !== instanceId) return undefined;
  return parseIpv6(m[2] ?? '');
}

function p256Key(spki: Uint8Array): KeyObject | undefined {
  try {
    const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? key : undefined;
  } catch {
    return undefined;
  }
}
