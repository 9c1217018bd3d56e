// The two signatures of the crypto-EID scheme as EVE and lispers.net compute them
// (shared/spec/lisp-protocol.md §5.3, §5.5; eve-security.md §1.2):
// - the EID signature: ECDSA P-256 / SHA-256 over "[iid]eid", static, proves key possession;
// - the Map-Request signature: ECDSA P-256 / SHA-1 over hex(nonce as little-endian u64) +
//   "[iid]source-eid" + "[iid]target-eid", for lookup authorization.
// Both are replayable by design; registration-signature.ts adds one that is not.
import type { KeyObject } from 'node:crypto';
import { decodeSignature, encodeSignature, signRaw, verifyRaw } from './ecdsa.js';

/** An EID as the signatures print it: instance-id and RFC 5952 text. */
export interface EidText {
  readonly iid: number;
  /** RFC 5952 canonical text (the caller formats; crypto does not parse addresses). */
  readonly text: string;
}

export function eidSignatureInput(eid: EidText): string {
  return `[${eid.iid}]${eid.text}`;
}

export function signEid(scalar: Uint8Array, eid: EidText): string {
  return encodeSignature(signRaw(scalar, Buffer.from(eidSignatureInput(eid), 'latin1'), 'sha256'));
}

export function verifyEidSignature(publicKey: KeyObject, eid: EidText, signature: string): boolean {
  const raw = decodeSignature(signature);
  return raw !== undefined && verifyRaw(publicKey, Buffer.from(eidSignatureInput(eid), 'latin1'), raw, 'sha256');
}

/** lispers.net renders the 8 nonce bytes as a little-endian integer in lowercase hex, no padding. */
export function nonceTextLittleEndian(nonceBytes: Uint8Array): string {
  if (nonceBytes.length !== 8) throw new RangeError('a control nonce is 8 bytes');
  return Buffer.from(nonceBytes).readBigUInt64LE(0).toString(16);
}

export function mapRequestSignatureInput(nonceBytes: Uint8Array, source: EidText, target: EidText): string {
  return `${nonceTextLittleEndian(nonceBytes)}${eidSignatureInput(source)}${eidSignatureInput(target)}`;
}

export function signMapRequest(scalar: Uint8Array, nonceBytes: Uint8Array, source: EidText, target: EidText): string {
  return encodeSignature(signRaw(scalar, Buffer.from(mapRequestSignatureInput(nonceBytes, source, target), 'latin1'), 'sha1'));
}

export function verifyMapRequestSignature(publicKey: KeyObject, nonceBytes: Uint8Array, source: EidText, target: EidText, signature: string): boolean {
  const raw = decodeSignature(signature);
  return raw !== undefined && verifyRaw(publicKey, Buffer.from(mapRequestSignatureInput(nonceBytes, source, target), 'latin1'), raw, 'sha1');
}
