// lispnode's signed RFC 8061 key agreement (docs/key-agreement.md): the ITR's key offer and the
// ETR's answer are each signed by the sender's crypto-EID key over one transcript. The receiver
// checks that the signer's EID derives from the public key that verifies (crypto-eid.ts), so a
// crypto-EID certifies its own key: no lookup and no configured peer key. An on-path host that
// rewrites an X25519 key, the key-id, the suite or an EID breaks the signature; the answer
// covers the offer's nonce and key, so it answers that one exchange and no other.
import type { KeyObject } from 'node:crypto';
import { verifyRaw } from './ecdsa.js';

export const KEY_AGREEMENT_LABEL = 'lispnode-key-agreement-v1';
const LABEL = Buffer.from(KEY_AGREEMENT_LABEL, 'latin1');
const ROLE = { offer: 1, answer: 2 } as const;
const EID_LENGTH = 16;
const KEY_LENGTH = 32;

/** Signs a message with a P-256 key: raw r||s over SHA-256 (the caller supplies the signer). */
export type Signer = (message: Uint8Array) => Uint8Array;

export interface KeyAgreementTranscript {
  readonly role: 'offer' | 'answer';
  /** The Map-Request's nonce (a probe's or an ECM's); the answer is the Map-Reply with it. */
  readonly nonce: bigint;
  readonly instanceId: number;
  /** The ITR's crypto-EID (16 bytes). */
  readonly itrEid: Uint8Array;
  /**
   * Offer: the EID the request asks for (16 bytes, IPv4 as ::ffff:a.b.c.d), since the ITR need
   * not know which node answers. Answer: the answering ETR's own crypto-EID.
   */
  readonly etrEid: Uint8Array;
  readonly suite: number;
  readonly keyId: number;
  /** The ITR's X25519 public key. */
  readonly itrKey: Uint8Array;
  /** The ETR's X25519 public key: the answer's only. */
  readonly etrKey?: Uint8Array;
}

/** The bytes signed: label, role, nonce, instance-id, both EIDs, suite, key-id, the keys. */
export function transcriptBytes(t: KeyAgreementTranscript): Uint8Array {
  check(t.itrEid, EID_LENGTH, 'itrEid');
  check(t.etrEid, EID_LENGTH, 'etrEid');
  check(t.itrKey, KEY_LENGTH, 'itrKey');
  if ((t.role === 'answer') !== (t.etrKey !== undefined)) throw new RangeError('the ETR key belongs in the answer, and only there');
  if (t.etrKey) check(t.etrKey, KEY_LENGTH, 'etrKey');
  if (!Number.isInteger(t.instanceId) || t.instanceId < 0 || t.instanceId > 0xffffffff) throw new RangeError(`instance-id ${t.instanceId}`);
  for (const [name, v] of [['suite', t.suite], ['keyId', t.keyId]] as const) if (!Number.isInteger(v) || v < 0 || v > 255) throw new RangeError(`${name} ${v}`);
  const out = new Uint8Array(LABEL.length + 1 + 8 + 4 + 2 * EID_LENGTH + 2 + KEY_LENGTH + (t.etrKey ? KEY_LENGTH : 0));
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(LABEL, at);
  at += LABEL.length;
  out[at++] = ROLE[t.role];
  view.setBigUint64(at, BigInt.asUintN(64, t.nonce));
  at += 8;
  view.setUint32(at, t.instanceId);
  at += 4;
  out.set(t.itrEid, at);
  at += EID_LENGTH;
  out.set(t.etrEid, at);
  at += EID_LENGTH;
  out[at++] = t.suite;
  out[at++] = t.keyId;
  out.set(t.itrKey, at);
  at += KEY_LENGTH;
  if (t.etrKey) out.set(t.etrKey, at);
  return out;
}

export function signKeyAgreement(sign: Signer, t: KeyAgreementTranscript): Uint8Array {
  return sign(transcriptBytes(t));
}

export function verifyKeyAgreement(publicKey: KeyObject, t: KeyAgreementTranscript, signature: Uint8Array): boolean {
  return verifyRaw(publicKey, transcriptBytes(t), signature, 'sha256');
}

function check(b: Uint8Array, length: number, name: string): void {
  if (b.length !== length) throw new RangeError(`${name} is ${length} bytes, not ${b.length}`);
}
