// The map-server's judge of attestation tickets (proto/lispnode/bundle.proto AttestationTicket):
// an AuthContainer signed by one of the controller's SIGNING certificates, hashed as a device
// hashes them (SHA-256 over the exact PEM bytes, cert-hash.ts), around a ticket whose validity
// window holds `now` and that lists the registered EID. Pure: the clock is a parameter, bad
// input is a refusal, nothing throws once the checker is built.
import { createHash } from 'node:crypto';
import { fromBinary } from '@bufbuild/protobuf';
import type { TicketCheck, TicketEid, TicketRefusal, TicketVerdict } from '../lisp/map-server/attestation-ticket.js';
import { parsePrefix, samePrefix } from '../lisp/prefix.js';
import { certResolver, knownControllerCert } from './cert-hash.js';
import { openEnvelope } from './envelope.js';
import { AttestationTicketSchema, type AttestationTicket } from './proto/index.js';

const refuse = (reason: TicketRefusal, detail: string): TicketVerdict => ({ ok: false, reason, detail });

/**
 * A TicketCheck trusting tickets signed by any of `signingCertPems` (several, so a map-server
 * keeps accepting tickets across a rotation of the controller's signing certificate). Throws at
 * once for an empty list (RangeError) or a PEM without a certificate (TypeError): configuration
 * errors, not peer input.
 */
export function ticketChecker(signingCertPems: readonly string[]): TicketCheck {
  if (signingCertPems.length === 0) throw new RangeError('a ticket checker needs at least one controller signing certificate');
  const resolve = certResolver(signingCertPems.map((pem) => knownControllerCert(pem)));
  // A node sends the same ticket with every refresh until it is renewed: its signature is checked
  // once and the decoded ticket kept (by the digest of its exact bytes); time and admission are
  // judged each time.
  const verified = new Map<string, AttestationTicket>();
  return (bytes, eid, now) => {
    const key = createHash('sha256').update(bytes).digest('base64');
    let ticket = verified.get(key);
    if (!ticket) {
      const opened = openEnvelope(bytes, resolve);
      if (!opened.ok) return refuse('invalid', `not signed by a trusted controller signing certificate (${opened.error.message})`);
      try {
        ticket = fromBinary(AttestationTicketSchema, opened.payload);
      } catch (error) {
        return refuse('invalid', `the payload is not an AttestationTicket (${error instanceof Error ? error.message : String(error)})`);
      }
      if (verified.size >= VERIFIED_TICKETS) verified.delete(verified.keys().next().value ?? '');
      verified.set(key, ticket);
    }
    return judge(ticket, eid, now);
  };
}

/** How many verified tickets a checker remembers (oldest forgotten first): a few per node. */
const VERIFIED_TICKETS = 65_536;

function judge(ticket: AttestationTicket, eid: TicketEid, now: number): TicketVerdict {
  const notBefore = Number(ticket.notBeforeUnixMs);
  const notAfter = Number(ticket.notAfterUnixMs);
  if (!(notAfter > notBefore)) return refuse('invalid', `the ticket's window is empty (${notBefore}..${notAfter})`);
  if (now < notBefore) return refuse('invalid', `the ticket is valid only from ${new Date(notBefore).toISOString()}`);
  if (now >= notAfter) return refuse('expired', `the ticket expired at ${new Date(notAfter).toISOString()}`);
  const named = `[${eid.iid}]${eid.eid}/${eid.length}`;
  const target = parsePrefix(named);
  if (!ticket.instanceIds.includes(eid.iid)) return refuse('not-admitted', `the ticket does not admit instance-id ${eid.iid}`);
  // Compared as prefixes, so any spelling of the same EID matches (the controller writes RFC 5952).
  const listed = target !== undefined && ticket.eidPrefixes.some((text) => {
    const p = parsePrefix(text);
    return p !== undefined && samePrefix(p, target);
  });
  if (!listed) return refuse('not-admitted', `the ticket of device ${ticket.deviceUuid || '(none)'} does not list ${named}`);
  return { ok: true, notAfter };
}
