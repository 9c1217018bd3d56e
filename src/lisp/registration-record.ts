// Carrying signatures in Map-Register records (lisp-protocol.md §5.2–5.3, docs/registration-signature.md):
// a priority-255 locator whose address is AFI-List{AFI none, JSON LCAF}, as lispers.net writes it.
// Four JSON bodies travel this way: {"public-key"} on the hash-EID record, the legacy static
// {"signature-eid", "signature"}, lispnode's replay-proof {"registration-signature", …}, and
// lispnode's {"attestation-ticket"} (the controller's signed admission of the EID; opaque here).
import { createHash, type KeyObject } from 'node:crypto';
import { signRegistration, verifyRegistration, type RegistrationVerdict } from '../crypto/registration-signature.js';
import type { EidText } from '../crypto/eid-signature.js';
import { NO_ADDRESS, type Address } from './address.js';
import { ByteWriter } from './bytes.js';
import { LOCATOR_DEFAULTS, writeEidRecord, type EidRecord, type LocatorRecord } from './records.js';

/** A locator that carries JSON and is never used for forwarding (priority 255). */
export function jsonLocator(json: Readonly<Record<string, string | number>>): LocatorRecord {
  const items: Address[] = [NO_ADDRESS, { afi: 'lcaf', lcaf: { type: 'json', json: JSON.stringify(json), jsonFlags: 0, address: NO_ADDRESS } }];
  return { ...LOCATOR_DEFAULTS, priority: 255, weight: 0, multicastPriority: 255, multicastWeight: 0, locator: { afi: 'lcaf', lcaf: { type: 'afi-list', items } } };
}

/** The JSON object a locator carries (directly or inside an AFI-List), if any parses. */
export function locatorJson(l: LocatorRecord): Readonly<Record<string, unknown>> | undefined {
  const find = (a: Address): string | undefined => {
    if (a.afi !== 'lcaf') return undefined;
    if (a.lcaf.type === 'json') return a.lcaf.json;
    if (a.lcaf.type === 'afi-list') for (const item of a.lcaf.items) { const j = find(item); if (j !== undefined) return j; }
    return undefined;
  };
  const text = find(l.locator);
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const REGISTRATION_KEY = 'registration-signature';

function isRegistrationLocator(l: LocatorRecord): boolean {
  return locatorJson(l)?.[REGISTRATION_KEY] !== undefined;
}

/** SHA-256 of the record's wire bytes without registration-signature locators. */
export function registrationRecordDigest(record: EidRecord): Uint8Array {
  const w = new ByteWriter();
  writeEidRecord(w, { ...record, locators: record.locators.filter((l) => !isRegistrationLocator(l)) });
  return new Uint8Array(createHash('sha256').update(w.finish()).digest());
}

/** Returns the record with a registration-signature locator appended (replacing an older one). */
export function addRegistrationSignature(record: EidRecord, scalar: Uint8Array, claims: { readonly eid: EidText; readonly nonce: bigint; readonly timestamp: number }): EidRecord {
  const base = { ...record, locators: record.locators.filter((l) => !isRegistrationLocator(l)) };
  const signature = signRegistration(scalar, { ...claims, recordDigest: registrationRecordDigest(base) });
  const locator = jsonLocator({ [REGISTRATION_KEY]: signature, 'signed-eid': `[${claims.eid.iid}]${claims.eid.text}`, timestamp: claims.timestamp });
  return { ...base, locators: [...base.locators, locator] };
}

const TICKET_KEY = 'attestation-ticket';
// Standard base64 with padding, nothing else: one spelling per ticket.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Whether the locator carries an attestation ticket (well-formed or not). */
export function isTicketLocator(l: LocatorRecord): boolean {
  return locatorJson(l)?.[TICKET_KEY] !== undefined;
}

/** The locator that carries an attestation ticket (the controller's envelope bytes, as base64). */
export function ticketLocator(ticket: Uint8Array): LocatorRecord {
  return jsonLocator({ [TICKET_KEY]: Buffer.from(ticket).toString('base64') });
}

/**
 * Returns the record with `ticket` in an attestation-ticket locator (replacing an older one),
 * placed before any registration-signature locator. Add it before `addRegistrationSignature`:
 * the registration signature's digest then covers it, so the ticket cannot be lifted onto
 * another record, and a registration signature made before it no longer verifies.
 */
export function addAttestationTicket(record: EidRecord, ticket: Uint8Array): EidRecord {
  const others = record.locators.filter((l) => !isTicketLocator(l));
  const at = others.findIndex(isRegistrationLocator);
  const cut = at < 0 ? others.length : at;
  return { ...record, locators: [...others.slice(0, cut), ticketLocator(ticket), ...others.slice(cut)] };
}

/** The ticket bytes a record carries; 'malformed' for two tickets, a non-string or non-base64 value. */
export function recordTicket(record: EidRecord): Uint8Array | undefined | 'malformed' {
  const values = record.locators.map((l) => locatorJson(l)?.[TICKET_KEY]).filter((v) => v !== undefined);
  if (values.length === 0) return undefined;
  const [value] = values;
  if (values.length > 1 || typeof value !== 'string' || value.length === 0 || !BASE64.test(value)) return 'malformed';
  return new Uint8Array(Buffer.from(value, 'base64'));
}

export type RegistrationCheck = RegistrationVerdict | 'missing' | 'malformed' | 'eid-mismatch';

/**
 * Verifies the record's registration signature for `eid` under the Map-Register `nonce`.
 * `now` is the caller's clock in seconds.
 */
export function checkRegistrationSignature(
  record: EidRecord,
  publicKey: KeyObject,
  expected: { readonly eid: EidText; readonly nonce: bigint },
  freshness: { readonly nowSeconds: number; readonly maxAgeSeconds: number; readonly maxSkewSeconds: number },
): RegistrationCheck {
  const carriers = record.locators.map(locatorJson).filter((j) => j?.[REGISTRATION_KEY] !== undefined);
  if (carriers.length === 0) return 'missing';
  const json = carriers[0];
  if (carriers.length > 1 || !json) return 'malformed';
  const signature = json[REGISTRATION_KEY];
  const signedEid = json['signed-eid'];
  const timestamp = json.timestamp;
  if (typeof signature !== 'string' || typeof signedEid !== 'string' || typeof timestamp !== 'number' || !Number.isSafeInteger(timestamp)) return 'malformed';
  if (signedEid !== `[${expected.eid.iid}]${expected.eid.text}`) return 'eid-mismatch';
  const claims = { eid: expected.eid, nonce: expected.nonce, timestamp, recordDigest: registrationRecordDigest(record) };
  return verifyRegistration(publicKey, claims, signature, freshness);
}
