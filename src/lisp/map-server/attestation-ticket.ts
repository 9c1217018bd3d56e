// Attestation-gated membership, the map-server's half: a site with `requireAttestationTicket`
// registers an IP EID-record only when the record carries a ticket (registration-record.ts,
// `{"attestation-ticket"}`) that an injected checker accepts for that EID at `now`. The checker
// holds the controller's signing certificates and the protobuf decoding, which live in
// src/control (ticket.ts ticketChecker); src/lisp only sees its verdict and the ticket's end.
// An accepted registration lives no longer than its ticket, and proxy replies for it get a TTL
// that ends with the ticket (to the minute), so peers' map-caches forget it soon after.
import { formatIpv4, formatIpv6 } from '../ip-text.js';
import type { EidPrefix } from '../prefix.js';
import type { EidRecord } from '../records.js';
import { recordTicket } from '../registration-record.js';

/** Why a checker refuses a ticket: bad signature, unknown signer, malformed or not yet valid; past not_after; EID or instance not listed. */
export type TicketRefusal = 'invalid' | 'expired' | 'not-admitted';

/** The EID-prefix a record registers, as a ticket lists it: `[iid]eid/length`. */
export interface TicketEid {
  readonly iid: number;
  /** RFC 5952 text for IPv6, dotted quad for IPv4. */
  readonly eid: string;
  /** The record's mask length: 128 for a crypto-EID. */
  readonly length: number;
}

export type TicketVerdict = { readonly ok: true; readonly notAfter: number } | { readonly ok: false; readonly reason: TicketRefusal; readonly detail: string };

/** Judges a ticket for one EID at `now` (ms since 1970); notAfter in ms too. Pure, never throws. */
export type TicketCheck = (ticket: Uint8Array, eid: TicketEid, now: number) => TicketVerdict;

export type TicketJudgement = { readonly ok: true; readonly notAfter: number } | { readonly ok: false; readonly reason: 'missing' | TicketRefusal; readonly detail: string };

/** Whether `record`, registering `prefix`, carries a ticket `check` accepts at `now`. */
export function judgeTicket(record: EidRecord, prefix: EidPrefix, check: TicketCheck | undefined, now: number): TicketJudgement {
  const ticket = recordTicket(record);
  if (ticket === undefined) return { ok: false, reason: 'missing', detail: 'the record carries no attestation ticket' };
  if (ticket === 'malformed') return { ok: false, reason: 'invalid', detail: 'the attestation-ticket locator is not one base64 string' };
  // resolveConfig refuses a ticket site without a checker; fail closed all the same.
  if (!check) return { ok: false, reason: 'invalid', detail: 'no ticket checker is configured' };
  const verdict = check(ticket, { iid: prefix.instanceId, eid: prefix.family === 4 ? formatIpv4(prefix.address) : formatIpv6(prefix.address), length: prefix.length }, now);
  // An acceptance that ends now or earlier could only shorten nothing and must extend nothing.
  if (verdict.ok && !(verdict.notAfter > now)) return { ok: false, reason: 'expired', detail: `the ticket ended at ${verdict.notAfter}` };
  return verdict;
}

/** A proxy reply's TTL (minutes) under a ticket: at most `ttl`, else the ticket's remaining time rounded up, at least 1. */
export function ticketTtl(ttl: number, notAfter: number, now: number): number {
  return Math.min(ttl, Math.max(1, Math.ceil((notAfter - now) / 60_000)));
}
