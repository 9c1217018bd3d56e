// The map-server / map-resolver's Map-Request side (RFC 9301 §8.3-8.4; lisp-protocol.md §2.2-2.4,
// §2.7, §5.5-5.6), sans-IO: `handle({ bytes, source }, now)` takes a UDP 4342 payload and returns
// the datagrams to send and an outcome. No sockets, no clock (`now` is ms since 1970).
//
// Decision order for the (first) requested EID, cheapest and least revealing first:
//   1. decode: an ECM (E clear) carrying a Map-Request with a usable ITR-RLOC and an IPv4/IPv6
//      target; anything else is a counted drop;
//   2. no site's allowed prefix covers the target (nothing registered, nothing to protect):
//      negative, TTL 15 min;
//   3. the target is a crypto-EID, or its site has require-signature: the requester must be
//      authenticated (lookup-policy.ts), else negative ACT 5 auth-failure for the requested EID;
//   4. the lookup policy of the site / allowed prefix: denied -> negative ACT 4 policy-denied.
//      Checked for forwarded requests too (lispers.net checks policies only on proxy replies,
//      which would let anyone reach a non-proxy site's ETRs);
//   5. not registered: negative, TTL 1 min;
//   6. registered with P (proxy-reply): a Map-Reply from the registered record; else the
//      Map-Request is forwarded to one of the registration's RLOCs in an ECM with E set.
// Steps 3-4 run after 2 so that a request for unconfigured space costs no ECDSA; and before 5 so
// that an unauthorized requester cannot tell registered from unregistered EIDs.
// The requester's signature is verified only when step 3 needs it or the policy is not
// allow-all: unsigned lookups of open sites stay cheap.
//
// Negative actions (§5.6): natively-forward, but send-map-request when the target is a
// crypto-EID. Negative prefixes: a crypto-EID gets itself (/128, as lispers.net); otherwise the
// RFC 9301 §8.3 answer, the shortest prefix around the EID that covers no configured prefix
// (allowed prefixes of every site, crypto-EID prefixes) and no registration, bounded below by
// the longest allowed prefix covering the EID. Registrations are scanned only when that allowed
// prefix accepts more-specifics and the store holds at most `negativeScanLimit` registrations;
// beyond, the EID itself (what lispers.net answers for accept-more-specifics sites) - the store
// has no trie to answer "is anything registered under this prefix" quickly.
//
// Not handled (drops or ignored, see the report in issue 5): Map-Requests for names (hash-EIDs),
// more than the first target record, LISP-SEC (an ECM's S data is ignored), NAT-traversal reply
// paths, pub/sub, DDT referrals.
import type { Address } from '../address.js';
import { ByteWriter } from '../bytes.js';
import { decodeControl } from '../control.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../ip-text.js';
import { writeMapReply } from '../map-reply.js';
import type { MapRequest } from '../map-request.js';
import { MESSAGE_TYPE } from '../message-type.js';
import { eidPrefix, familyBits, prefixCovers, prefixOfEid, type EidPrefix } from '../prefix.js';
import { ACTION, type Action, type EidRecord, type LocatorRecord } from '../records.js';
import { isTicketLocator } from '../registration-record.js';
import { ticketTtl } from './attestation-ticket.js';
import { authenticateRequester, checkLookup, isAllowAll, policyFor, SIGNATURE_FAILURES, type LookupVerdict, type Requester, type SignatureFailure } from './lookup-policy.js';
import type { Endpoint, PrefixRegistration, RegistrationStore } from './registrations.js';
import { cryptoPrefixOverlapping, type AllowedPrefix, type ResolvedConfig, type SiteConfig } from './site.js';
import { NamedCounters } from '../named-counters.js';
import { addressFamily, REPLY_DESTINATION_REFUSALS, replyDestinationRefusal } from '../reply-destination.js';

export const LISP_CONTROL_PORT = 4342;

/** Why a datagram got no answer at all. */
export const REQUEST_DROP_REASONS = [
  'request-decode-error',
  /** A message that is not an ECM (a map-resolver takes Map-Requests only encapsulated). */
  'request-not-ecm',
  'request-ecm-not-map-request',
  /** E set: meant for an ETR; answering or forwarding it again could loop. */
  'request-ecm-to-etr',
  /** An RLOC-probe has no business at a map-server. */
  'request-probe',
  'request-no-record',
  /** The first target is not an IPv4/IPv6 EID (a name, a MAC, AFI 0). */
  'request-unsupported-eid',
  /** No ITR-RLOC is IPv4/IPv6 (bare or inside a Security Key / AFI-List LCAF). */
  'request-no-itr-rloc',
  /** To be forwarded, but the registration has no reachable unicast RLOC with priority < 255. */
  'request-no-etr-rloc',
  /** The reply would go to port 0, a non-unicast address or one our socket cannot reach. */
  ...REPLY_DESTINATION_REFUSALS,
] as const;

/** What was answered. */
export const REQUEST_REPLY_KINDS = [
  'reply-proxy',
  'reply-forwarded',
  'negative-no-site',
  'negative-not-registered',
  'negative-policy-denied',
  'negative-auth-failure',
] as const;

export type RequestDropReason = (typeof REQUEST_DROP_REASONS)[number];
export type RequestReplyKind = (typeof REQUEST_REPLY_KINDS)[number];
export type NegativeKind = Extract<RequestReplyKind, `negative-${string}`>;
/** Counter names: drops, replies by kind, and signature verdicts of the signed requests that were checked. */
export type RequestCounterName = RequestDropReason | RequestReplyKind | SignatureFailure | 'signature-valid';

const COUNTER_NAMES: readonly RequestCounterName[] = [...REQUEST_DROP_REASONS, ...REQUEST_REPLY_KINDS, ...SIGNATURE_FAILURES, 'signature-valid'];

/** RequestCounters: one counter per name. */
export class RequestCounters extends NamedCounters<RequestCounterName> {
  constructor() {
    super(COUNTER_NAMES);
  }
}

/** Record TTLs of the answers, in minutes. */
export interface ReplyTtls {
  /** Proxy replies: lispers.net's map-server sends 1440 whatever the registration's lifetime. */
  readonly positive: number;
  readonly noSite: number;
  readonly notRegistered: number;
  /**
   * Denials depend on state that changes (a policy reload, the requester's key registration
   * arriving), so they are cached briefly; the ITR's Map-Request rate limit bounds the load.
   */
  readonly policyDenied: number;
  readonly authFailure: number;
}

export const DEFAULT_REPLY_TTLS: ReplyTtls = { positive: 1440, noSite: 15, notRegistered: 1, policyDenied: 1, authFailure: 1 };

export interface RequestHandlerOptions {
  readonly ttls?: Partial<ReplyTtls>;
  /** Above this many registrations a negative prefix inside an accept-more-specifics prefix is the EID itself. */
  readonly negativeScanLimit?: number;
  /** The family of the socket replies leave from: ITR-RLOCs of the other family are passed over. */
  readonly family?: 4 | 6;
}

/** What the handler reads: the register handler (RegisterHandler) satisfies it, and its store follows a restore. */
export interface MapServerState {
  readonly config: ResolvedConfig;
  readonly store: RegistrationStore;
}

export interface MapRequestEvent {
  /** The UDP payload as received on 4342. */
  readonly bytes: Uint8Array;
  readonly source: Endpoint;
}

/** `to` is an IP address; the daemon sends from its control socket (4342, as lispers.net does). */
export type RequestAction = { readonly kind: 'send'; readonly to: string; readonly port: number; readonly bytes: Uint8Array };

export type RequestOutcome =
  | { readonly kind: 'dropped'; readonly reason: RequestDropReason }
  | {
      readonly kind: 'proxy-reply' | 'forwarded';
      readonly nonce: bigint;
      readonly target: EidPrefix;
      /** The registration key that answered. */
      readonly registration: string;
      readonly requester: Requester | undefined;
    }
  | {
      readonly kind: 'negative';
      readonly reply: NegativeKind;
      readonly nonce: bigint;
      readonly target: EidPrefix;
      readonly action: Action;
      readonly ttl: number;
      readonly prefix: EidPrefix;
      /** Set when the requester was checked (steps 3-4). */
      readonly requester: Requester | undefined;
      readonly policy?: Exclude<LookupVerdict, { allowed: true }>['reason'];
    };

export interface RequestResult {
  readonly actions: readonly RequestAction[];
  readonly outcome: RequestOutcome;
}

/** Where the target falls in the configuration. */
interface Placement {
  readonly site: SiteConfig;
  /** The longest allowed prefix covering the target (of `site`). */
  readonly allowed: AllowedPrefix;
}

const ECM_TO_ETR = 0x02000000;

export class RequestHandler {
  readonly counters = new RequestCounters();
  readonly ttls: ReplyTtls;
  readonly negativeScanLimit: number;
  private readonly family: 4 | 6 | undefined;

  constructor(
    private readonly state: MapServerState,
    options: RequestHandlerOptions = {},
  ) {
    this.ttls = { ...DEFAULT_REPLY_TTLS, ...options.ttls };
    for (const [name, value] of Object.entries(this.ttls)) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0x7fffffff) throw new RangeError(`TTL ${name} must be 0..2^31-1 minutes`);
    }
    this.negativeScanLimit = options.negativeScanLimit ?? 4096;
    this.family = options.family;
  }

  handle(event: MapRequestEvent, now: number): RequestResult {
    const decoded = decodeControl(event.bytes);
    if (!decoded.ok) return this.drop('request-decode-error');
    const ecm = decoded.value;
    if (ecm.type !== 'ecm') return this.drop('request-not-ecm');
    if (ecm.toEtr) return this.drop('request-ecm-to-etr');
    const m = ecm.message;
    if (m.type !== 'map-request') return this.drop('request-ecm-not-map-request');
    if (m.probe) return this.drop('request-probe');
    const record = m.records[0];
    if (!record) return this.drop('request-no-record');
    const named = prefixOfEid(record.eid, record.eidMaskLength, 0);
    if (!named) return this.drop('request-unsupported-eid');
    // Matched as an address: lispers.net sends target mask-lengths it does not mean as prefixes.
    const target = eidPrefix(named.instanceId, named.family, addressBytes(record.eid), familyBits(named.family));
    const replyTo = m.itrRlocs.map(usableAddress).find((a) => a !== undefined && (this.family === undefined || addressFamily(a) === this.family));
    if (replyTo === undefined) return this.drop('request-no-itr-rloc');
    const reply = { to: replyTo, port: ecm.udp.sourcePort };
    const refusal = replyDestinationRefusal(reply.to, reply.port, this.family, event.source.address);
    if (refusal) return this.drop(refusal);

    const { config, store } = this.state;
    const crypto = target.family === 6 ? cryptoPrefixOverlapping(config, target) : undefined;
    const isCrypto = crypto !== undefined && prefixCovers(crypto.prefix, target);
    const registration = store.lookup(target.instanceId, target.address, now);
    const placement = this.place(target, registration);
    const negative = (kind: NegativeKind, action: Action, ttl: number, prefix: EidPrefix, requester: Requester | undefined, policy?: Exclude<LookupVerdict, { allowed: true }>['reason']): RequestResult => {
      this.counters.add(kind);
      const bytes = negativeReply(m, record.eid, prefix, action, ttl);
      const outcome: RequestOutcome = { kind: 'negative', reply: kind, nonce: m.nonce, target, action, ttl, prefix, requester, ...(policy && { policy }) };
      return { actions: [{ kind: 'send', ...reply, bytes }], outcome };
    };
    const unreachableAction = isCrypto ? ACTION.sendMapRequest : ACTION.nativelyForward;

    if (!placement) {
      const prefix = isCrypto ? target : this.negativePrefix(target, undefined, now);
      return negative('negative-no-site', unreachableAction, this.ttls.noSite, prefix, undefined);
    }

    let requester: Requester | undefined;
    const who = (): Requester => {
      if (!requester) {
        requester = authenticateRequester({ nonce: m.nonce, sourceEid: m.sourceEid, target }, config, store, now);
        if (requester.kind === 'authenticated') this.counters.add('signature-valid');
        else if (requester.kind === 'rejected') this.counters.add(requester.reason);
      }
      return requester;
    };
    // Requested EID, not the covering prefix: another EID under the same prefix may be open to this requester.
    if ((isCrypto || placement.site.requireSignature) && who().kind !== 'authenticated') {
      return negative('negative-auth-failure', ACTION.dropAuthFailure, this.ttls.authFailure, target, requester);
    }
    const policy = policyFor(placement.site, target);
    const verdict = checkLookup(policy, isAllowAll(policy) ? (requester ?? { kind: 'unsigned' }) : who());
    if (!verdict.allowed) {
      const prefix = isCrypto ? target : (registration?.prefix ?? this.negativePrefix(target, placement.allowed, now));
      return negative('negative-policy-denied', ACTION.dropPolicyDenied, this.ttls.policyDenied, prefix, requester, verdict.reason);
    }
    if (!registration) {
      const prefix = isCrypto ? target : this.negativePrefix(target, placement.allowed, now);
      return negative('negative-not-registered', unreachableAction, this.ttls.notRegistered, prefix, requester);
    }

    const answered = { nonce: m.nonce, target, registration: registration.key, requester };
    if (registration.proxyReply) {
      this.counters.add('reply-proxy');
      // A ticket-bound registration: peers' map-caches end with the ticket (to the minute).
      const ttl = registration.ticketNotAfter === undefined ? this.ttls.positive : ticketTtl(this.ttls.positive, registration.ticketNotAfter, now);
      return { actions: [{ kind: 'send', ...reply, bytes: proxyReply(m, registration, ttl) }], outcome: { kind: 'proxy-reply', ...answered } };
    }
    const etr = etrLocator(registration.record.locators, this.family);
    if (etr === undefined) return this.drop('request-no-etr-rloc');
    this.counters.add('reply-forwarded');
    return { actions: [{ kind: 'send', to: etr, port: LISP_CONTROL_PORT, bytes: forwardedEcm(event.bytes) }], outcome: { kind: 'forwarded', ...answered } };
  }

  private drop(reason: RequestDropReason): RequestResult {
    this.counters.add(reason);
    return { actions: [], outcome: { kind: 'dropped', reason } };
  }

  /**
   * The site that answers for `target`: the registration's owner, else the site with the longest
   * allowed prefix covering it (the first configured on a tie).
   */
  private place(target: EidPrefix, registration: PrefixRegistration | undefined): Placement | undefined {
    const { config } = this.state;
    const owner = registration ? config.siteByName.get(registration.site) : undefined;
    let best: Placement | undefined;
    for (const site of owner ? [owner] : config.sites) {
      for (const allowed of site.allowedPrefixes) {
        if (prefixCovers(allowed.prefix, target) && (!best || allowed.prefix.length > best.allowed.prefix.length)) best = { site, allowed };
      }
    }
    return best;
  }

  /**
   * RFC 9301 §8.3: the shortest prefix around `target`, inside `within` when given, covering no
   * configured prefix and no registration (see the module comment for the scan bound).
   */
  private negativePrefix(target: EidPrefix, within: AllowedPrefix | undefined, now: number): EidPrefix {
    const { config, store } = this.state;
    const bits = familyBits(target.family);
    let length = within?.prefix.length ?? 0;
    const avoid = (q: EidPrefix): void => {
      if (q.instanceId !== target.instanceId || q.family !== target.family || prefixCovers(q, target)) return;
      length = Math.max(length, commonPrefixLength(target.address, q.address, q.length) + 1);
    };
    for (const site of config.sites) for (const a of site.allowedPrefixes) avoid(a.prefix);
    for (const c of config.cryptoEidPrefixes) avoid(c.prefix);
    // Registrations lie inside allowed prefixes: outside an allowed prefix, or inside one that
    // admits only itself, avoiding the configured prefixes avoided them too.
    if (within?.acceptMoreSpecifics) {
      if (store.size > this.negativeScanLimit) return target;
      for (const r of store.entries()) if (r.kind === 'prefix' && now < r.expiresAt && prefixCovers(within.prefix, r.prefix)) avoid(r.prefix);
    }
    return eidPrefix(target.instanceId, target.family, target.address, Math.min(length, bits));
  }
}

function commonPrefixLength(a: Uint8Array, b: Uint8Array, limit: number): number {
  let n = 0;
  for (let i = 0; i < a.length && n < limit; i++) {
    const x = (a[i] ?? 0) ^ (b[i] ?? 0);
    if (x === 0) {
      n += 8;
      continue;
    }
    n += Math.clz32(x) - 24;
    break;
  }
  return Math.min(n, limit);
}

/** The IPv4/IPv6 bytes of an EID address (bare or in an Instance-ID LCAF); prefixOfEid accepted it. */
function addressBytes(eid: Address): Uint8Array {
  const a = eid.afi === 'lcaf' && eid.lcaf.type === 'instance-id' ? eid.lcaf.address : eid;
  const bytes = a.afi === 'ipv4' ? parseIpv4(a.address) : a.afi === 'ipv6' ? parseIpv6(a.address) : undefined;
  if (!bytes) throw new Error('unreachable: prefixOfEid accepted a non-IP EID');
  return bytes;
}

/**
 * The IP address a reply can go to: a bare IPv4/IPv6 address, the locator of a Security Key LCAF
 * (RFC 8061: ITR-RLOC 1 carries the ITR's key) or the first usable item of an AFI-List.
 */
export function usableAddress(a: Address): string | undefined {
  switch (a.afi) {
    case 'ipv4':
    case 'ipv6':
      return a.address;
    case 'lcaf':
      if (a.lcaf.type === 'security-key') return usableAddress(a.lcaf.locator);
      if (a.lcaf.type === 'afi-list') return a.lcaf.items.map(usableAddress).find((x) => x !== undefined);
      return undefined;
    case 'none':
    case 'mac':
    case 'distinguished-name':
      return undefined;
  }
}

/** The ETR to forward to: the first reachable locator of the best priority below 255. */
function etrLocator(locators: readonly LocatorRecord[], family: 4 | 6 | undefined): string | undefined {
  let best: { readonly priority: number; readonly address: string } | undefined;
  for (const l of locators) {
    if (l.priority >= 255 || !l.reachable) continue;
    const address = usableAddress(l.locator);
    // A registered RLOC is a site member's word: never forward to ourselves, a group or another family.
    if (address === undefined || replyDestinationRefusal(address, LISP_CONTROL_PORT, family) !== undefined) continue;
    if (!best || l.priority < best.priority) best = { priority: l.priority, address };
  }
  return best?.address;
}

function mapReply(m: MapRequest, record: EidRecord): Uint8Array {
  const w = new ByteWriter(64);
  writeMapReply(w, { type: 'map-reply', probe: false, echoNonceCapable: false, security: false, reservedFlags: 0, nonce: m.nonce, records: [record] });
  return w.finish();
}

/**
 * The registered record with the map-server's TTL, A clear (not from the site's ETR) and every
 * locator as registered, the priority-255 JSON locators (signatures, public keys) included so an
 * ITR may check them end to end (§5.6) — except an attestation ticket: it is for the map-server
 * (an ITR cannot check it), it names the node's device, and it would cost ~400 bytes per reply.
 * L and p are cleared: they describe the sender's own locators and probes, and the sender is now
 * the map-server.
 */
function proxyReply(m: MapRequest, r: PrefixRegistration, ttl: number): Uint8Array {
  const locators = r.record.locators.filter((l) => !isTicketLocator(l)).map((l) => ({ ...l, local: false, probed: false }));
  return mapReply(m, { ...r.record, ttl, authoritative: false, locators });
}

/** A negative record: no locators, in the address form the request used (Instance-ID LCAF or bare). */
function negativeReply(m: MapRequest, requested: Address, prefix: EidPrefix, action: Action, ttl: number): Uint8Array {
  const address = prefixAddress(prefix);
  const withIid = requested.afi === 'lcaf' || prefix.instanceId !== 0;
  const eid: Address = withIid ? { afi: 'lcaf', lcaf: { type: 'instance-id', instanceId: prefix.instanceId, maskLength: 0, address } } : address;
  return mapReply(m, { ttl, action, authoritative: false, reserved: 0, reservedHigh: 0, mapVersion: 0, eidMaskLength: prefix.length, eid, locators: [] });
}

function prefixAddress(p: EidPrefix): Address {
  return p.family === 4 ? { afi: 'ipv4', address: formatIpv4(p.address) } : { afi: 'ipv6', address: formatIpv6(p.address) };
}

/**
 * The received ECM with E (to-ETR) as its only flag and everything after its 4-byte header
 * (inner IP, inner UDP, the Map-Request) copied byte for byte, so the ETR sees the ITR's
 * addresses, port and nonce unchanged and its checksums still hold. A LISP-SEC trailer is not
 * forwarded.
 */
function forwardedEcm(received: Uint8Array): Uint8Array {
  const view = new DataView(received.buffer, received.byteOffset, received.byteLength);
  const version = (received[4] ?? 0) >>> 4;
  // decodeControl checked both lengths against the datagram.
  const innerLength = version === 4 ? view.getUint16(4 + 2) : 40 + view.getUint16(4 + 4);
  const out = new Uint8Array(4 + innerLength);
  new DataView(out.buffer).setUint32(0, ((MESSAGE_TYPE.ecm << 28) | ECM_TO_ETR) >>> 0);
  out.set(received.subarray(4, 4 + innerLength), 4);
  return out;
}
