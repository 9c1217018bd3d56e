// The ETR's answers to Map-Requests (RFC 9301 §5.4, §6.1; RFC 8061 §6; lisp-protocol.md §2.1,
// §2.7, §4.2), sans-IO: a Map-Request forwarded by a map-server (ECM with E set) or an RLOC probe
// sent straight to us in, a Map-Reply to the requester's first usable ITR-RLOC out, and, when the
// first ITR-RLOC offers a key in a suite we accept, an opening key for that ITR locator.
//
// Decisions:
// - Port: the inner UDP source port of an ECM (the ITR's control port), the outer source port of
//   an unencapsulated request (probes).
// - Our key goes on every one of our locators (lispers.net does the same), in the AFI-List form
//   lispers.net sends unless `form: 'direct'` is chosen; the resolver reads both.
// - A fresh X25519 pair for every new offer (key-exchange.ts LocatorOpening): the key it leads to
//   is a candidate until a packet from that locator proves it. A re-offer of a key we hold is
//   answered with the same public key (lispers.net re-offers its pair in every probe).
// - The key is for the locator the offer came from: a probe's outer source must be the locator
//   its Security Key LCAF names (else it is answered without a key); a Map-Request forwarded by a
//   map-server (E) comes from the map-server, so its key is for the LCAF's locator, and our
//   answer goes there and nowhere else.
// - Bounded: at most `maxUnproven` locators holding only candidates (the oldest go first) and
//   `maxPeers` in all (then the unproven, then the longest idle go).
// - A request WITHOUT a Security Key does NOT delete the ITR's opening keys (lispers.net deletes
//   them). Map-Requests are unauthenticated UDP: anyone could otherwise strip any ITR's keys by
//   spoofing its RLOC. Keys go when replaced (grace period) or when `forget` is called; an ITR
//   that stopped encrypting is still accepted in clear when `acceptClear` says so.
// - A refused suite (parseCipherSuite: 6, MODP suites, unknown) is answered without a key.
// - Signed offers (key-agreement-proof.ts, with `authentication` set): a valid proof makes the
//   candidate authenticated as the ITR's crypto-EID and our answer carries our own proof; a proof
//   that fails is answered without a key (counted by its reason); an unsigned offer is answered
//   unsigned, as RFC 8061 (and lispers.net) expect.
import type { CipherBackend } from '../../crypto/cipher-backend.js';
import type { CipherSuite } from '../../crypto/cipher-suite.js';
import type { KeyId, SessionLimits } from '../../crypto/session.js';
import { ip, withInstanceId, type Address } from '../address.js';
import { decodeControl, encodeControl } from '../control.js';
import type { EtrPeer } from '../etr.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../ip-text.js';
import { LOCATOR_DEFAULTS, EID_RECORD_DEFAULTS, type LocatorRecord } from '../records.js';
import type { MapReply } from '../map-reply.js';
import { MAP_REQUEST_DEFAULTS, type MapRequest } from '../map-request.js';
import { prefixCovers, prefixOfEid, type EidPrefix } from '../prefix.js';
import { REPLY_DESTINATION_REFUSALS, replyDestinationRefusal } from '../reply-destination.js';
import { answerTranscript, checkProof, jsonAddress, KEY_PROOF_REFUSALS, makeProof, offerTranscript, PROOF_FIELD, proofIn, transcriptEid, type KeyAgreementIdentity, type CryptoEidScope } from './key-agreement-proof.js';
import { ipOf, keyedLocator, LocatorOpening, offeredKey, UNAUTHENTICATED, type KeyedLocatorForm, type OfferedKey, type Random, type SessionAuthentication } from './key-exchange.js';

export interface ResponderOptions {
  readonly instanceId: number;
  readonly localEids: readonly EidPrefix[];
  /** Our RLOCs (IPv4/IPv6 text), in the order they appear in our Map-Replies. */
  readonly rlocs: readonly string[];
  /** Record TTL in minutes; default 1440. */
  readonly ttlMinutes?: number;
  readonly priority?: number;
  readonly weight?: number;
  /** Key exchange on; absent = offered keys are ignored and replies carry none. */
  readonly encryption?: {
    readonly backend: CipherBackend;
    /** Suites we accept from ITRs; default [5, 2]. */
    readonly suites?: readonly CipherSuite[];
    readonly limits?: SessionLimits;
    /** Default 'afi-list' (lispers.net's form). */
    readonly form?: KeyedLocatorForm;
  };
  /** EtrPeer.acceptClear for ITRs we hold keys for. */
  readonly acceptClear: boolean;
  readonly random: Random;
  /** Bounds on per-ITR key state; defaults DEFAULT_RESPONDER_LIMITS. */
  readonly limits?: Partial<ResponderLimits>;
  /** Signed key agreement: our crypto-EID signs answers to signed offers, which are checked in `scope`. */
  readonly authentication?: { readonly identity: KeyAgreementIdentity; readonly scope: CryptoEidScope };
}

export interface ResponderLimits {
  /** ITR locators holding only unproven candidate keys. */
  readonly maxUnproven: number;
  /** ITR locators holding any key. */
  readonly maxPeers: number;
}

export const DEFAULT_RESPONDER_LIMITS: ResponderLimits = { maxUnproven: 1024, maxPeers: 16384 };

export type ResponderAction = { readonly kind: 'send'; readonly what: 'map-reply' | 'smr'; readonly to: string; readonly port: number; readonly bytes: Uint8Array };

/** How many requesting ITRs the responder remembers for SMRs. */
const MAX_REMEMBERED_REQUESTERS = 4096;
const LISP_CONTROL_PORT = 4342;

export const RESPONDER_COUNTERS = [
  'map-reply-sent',
  'probe-answered',
  'decode-error',
  'not-a-map-request',
  'ecm-not-to-etr',
  'smr-not-handled',
  'no-record',
  'not-our-eid',
  'no-itr-rloc',
  /** A new offer: a candidate key under a fresh pair of ours. */
  'key-candidate',
  /** An offer of a key we hold: answered with the same public key, nothing changed. */
  'key-unchanged',
  /** A probe whose Security Key LCAF names another locator than the one it came from. */
  'key-offer-not-from-locator',
  /** The key's locator is of a family we have no locator of: no answer could reach it. */
  'key-locator-unreachable',
  'key-candidate-evicted',
  'peer-evicted',
  'key-refused-suite',
  'key-suite-not-enabled',
  'key-malformed',
  'key-derivation-failed',
  /** A signed offer whose proof held: the candidate is authenticated as the ITR's crypto-EID. */
  'key-offer-authenticated',
  ...KEY_PROOF_REFUSALS,
  'smr-sent',
  ...REPLY_DESTINATION_REFUSALS,
] as const;
export type ResponderCounter = (typeof RESPONDER_COUNTERS)[number];

/** Where a request came from: the outer UDP source, and (optionally) the address it was sent to. */
export interface RequestOrigin {
  readonly address: string;
  readonly port: number;
  /** Our RLOC the datagram arrived on: marks the probed locator (p). */
  readonly to?: string;
}

export class Responder {
  readonly counters = new Map<ResponderCounter, number>();
  private readonly limits: ResponderLimits;
  /** Opening state per ITR locator address text. */
  private readonly openings = new Map<string, LocatorOpening>();
  /** Locators whose keys are all unproven, oldest first. */
  private readonly unproven = new Set<string>();
  private readonly v4 = new Map<number, LocatorOpening>();
  private readonly v6 = new Map<string, LocatorOpening>();
  /** ITR-RLOCs we answered, and when: the ITRs that may cache our mapping (for SMRs). */
  private readonly requesters = new Map<string, number>();

  constructor(private readonly options: ResponderOptions) {
    this.limits = { ...DEFAULT_RESPONDER_LIMITS, ...options.limits };
  }

  /** How many ITR locators we hold keys for, and how many of them only unproven ones. */
  get peerCounts(): { readonly peers: number; readonly unproven: number } {
    return { peers: this.openings.size, unproven: this.unproven.size };
  }

  /** Every ITR locator we hold keys for. */
  allOpenings(): IterableIterator<LocatorOpening> {
    return this.openings.values();
  }

  openingFor(address: string): LocatorOpening | undefined {
    return this.openings.get(address);
  }

  /**
   * EtrOptions.peerFor: the peer of a source locator (4 or 16 bytes at `offset`), without a
   * string for IPv4. Undefined for ITRs we hold no keys for (the ETR's stranger policy applies);
   * a daemon with static peers too asks its PeerTable first.
   */
  readonly peerFor = (family: 4 | 6, bytes: Uint8Array, offset: number): EtrPeer | undefined => {
    if (family === 4) return this.v4.get(u32(bytes, offset))?.peer;
    return this.v6.get(Buffer.from(bytes.buffer, bytes.byteOffset + offset, 16).toString('hex'))?.peer;
  };

  /** Forgets an ITR's opening keys. */
  forget(address: string): void {
    const o = this.openings.get(address);
    if (!o) return;
    o.opening.close();
    this.openings.delete(address);
    this.unproven.delete(address);
    this.index(address, undefined);
  }

  /** Drops keys whose grace period (or a candidate's wait) is over, and locators left without any. */
  expire(now: number): void {
    for (const [address, o] of this.openings) {
      o.opening.expire(now);
      if (o.opening.empty) this.forget(address);
      else if (o.opening.proven) this.unproven.delete(address);
    }
  }

  /** A datagram on UDP 4342 that is a Map-Request or an ECM holding one. */
  receive(bytes: Uint8Array, from: RequestOrigin, now: number): ResponderAction[] {
    const decoded = decodeControl(bytes);
    if (!decoded.ok) {
      this.count('decode-error');
      return [];
    }
    const m = decoded.value;
    if (m.type === 'ecm') {
      if (m.message.type !== 'map-request') {
        this.count('not-a-map-request');
        return [];
      }
      if (!m.toEtr) {
        this.count('ecm-not-to-etr');
        return [];
      }
      return this.handleRequest(m.message, m.udp.sourcePort, from, true, now);
    }
    if (m.type !== 'map-request') {
      this.count('not-a-map-request');
      return [];
    }
    return this.handleRequest(m, from.port, from, false, now);
  }

  /** Answers `request` to its first usable ITR-RLOC at `replyPort`. */
  private handleRequest(request: MapRequest, replyPort: number, from: RequestOrigin, forwarded: boolean, now: number): ResponderAction[] {
    const probedRloc = from.to;
    if (request.smr) {
      // SMRs ask us, as an ITR, to re-resolve: the resolver's job, not an answer.
      this.count('smr-not-handled');
      return [];
    }
    const target = request.records[0];
    if (!target) {
      this.count('no-record');
      return [];
    }
    const requested = prefixOfEid(target.eid, target.eidMaskLength, this.options.instanceId);
    const local = requested && this.options.localEids.find((p) => p.instanceId === requested.instanceId && prefixCovers(p, requested));
    if (!local) {
      this.count('not-our-eid');
      return [];
    }
    const ourFamilies = new Set(this.options.rlocs.map((r) => (r.includes(':') ? 6 : 4)));
    const first = request.itrRlocs[0];
    const offer = first ? offeredKey(first) : { kind: 'none' as const };
    const keyLocator = offer.kind === 'key' && first ? this.keyLocator(first, forwarded, from, ourFamilies) : undefined;
    // Only a family we have a locator (and so a socket) of: another one could not be sent to. A
    // key we accept is answered at its own locator only (whoever reads the answer can derive it).
    const destination = keyLocator ?? request.itrRlocs.map((a) => ipOf(a)).find((r) => r && ourFamilies.has(r.family));
    if (!destination) {
      this.count('no-itr-rloc');
      return [];
    }
    const refusal = replyDestinationRefusal(destination.address, replyPort, destination.family, from.address);
    if (refusal) {
      this.count(refusal);
      return [];
    }
    this.remember(destination.address, now);
    const proven = keyLocator && offer.kind === 'key' ? this.offerAuthentication(request, offer) : undefined;
    const key = keyLocator && offer.kind === 'key' && proven !== 'refused' ? this.keyFor(offer, keyLocator.address, proven ?? UNAUTHENTICATED, now) : this.countOffer(offer);
    const proof = key && proven && proven !== 'refused' && offer.kind === 'key' ? this.answerProof(request.nonce, offer, key.publicKey, proven) : undefined;
    const probed = request.probe ? (probedRloc ?? this.options.rlocs.find((r) => (r.includes(':') ? 6 : 4) === destination.family)) : undefined;
    const locators: LocatorRecord[] = this.options.rlocs.map((r) => {
      const plain = ip(r);
      const suite = key?.suite;
      return {
        ...LOCATOR_DEFAULTS,
        priority: this.options.priority ?? LOCATOR_DEFAULTS.priority,
        weight: this.options.weight ?? LOCATOR_DEFAULTS.weight,
        local: true,
        reachable: true,
        probed: probed !== undefined && r === probed,
        locator: key && suite !== undefined ? keyedLocator(this.options.encryption?.form ?? 'afi-list', suite, key.keyId, key.publicKey, plain, proof) : plain,
      };
    });
    const eid: Address = ip(text(local));
    const reply: MapReply = {
      type: 'map-reply',
      probe: request.probe,
      echoNonceCapable: false,
      security: false,
      reservedFlags: 0,
      nonce: request.nonce,
      records: [
        {
          ...EID_RECORD_DEFAULTS,
          ttl: this.options.ttlMinutes ?? EID_RECORD_DEFAULTS.ttl,
          authoritative: true,
          eidMaskLength: local.length,
          eid: local.instanceId === 0 ? eid : withInstanceId(local.instanceId, eid),
          locators,
        },
      ],
    };
    this.count('map-reply-sent');
    if (request.probe) this.count('probe-answered');
    return [{ kind: 'send', what: 'map-reply', to: destination.address, port: replyPort, bytes: encodeControl(reply) }];
  }

  /**
   * The locator an offered key is for, when we may agree one with it: the probe's own source (a
   * stranger naming another locator gets no key), or for a forwarded request the LCAF's locator.
   */
  private keyLocator(first: Address, forwarded: boolean, from: RequestOrigin, ourFamilies: ReadonlySet<number>): { readonly family: 4 | 6; readonly address: string } | undefined {
    const named = ipOf(first);
    if (!named) return undefined;
    if (!forwarded && named.address !== from.address) {
      this.count('key-offer-not-from-locator');
      return undefined;
    }
    if (!ourFamilies.has(named.family)) {
      this.count('key-locator-unreachable');
      return undefined;
    }
    return named;
  }

  /**
   * How a key offer is authenticated: undefined when unsigned (or we do not sign), else the ITR's
   * crypto-EID, or 'refused' (counted) when its proof does not hold.
   */
  private offerAuthentication(request: MapRequest, offer: Extract<OfferedKey, { kind: 'key' }>): Extract<SessionAuthentication, { kind: 'crypto-eid' }> | 'refused' | undefined {
    const auth = this.options.authentication;
    const proof = auth && proofIn(request.sourceEid);
    if (!auth || proof === undefined) return undefined;
    const target = request.records[0] && ipOf(request.records[0].eid);
    const etrEid = target && transcriptEid(target.address);
    if (!etrEid) {
      this.count('key-proof-malformed');
      return 'refused';
    }
    const facts = { nonce: request.nonce, instanceId: auth.identity.instanceId, etrEid, suite: offer.suite, keyId: offer.keyId, itrKey: offer.publicKey };
    const checked = checkProof(proof, auth.identity.instanceId, (itrEid) => offerTranscript(facts, itrEid), auth.scope);
    if (checked.kind === 'refused') {
      this.count(checked.reason);
      return 'refused';
    }
    if (checked.kind === 'unsigned') return undefined;
    this.count('key-offer-authenticated');
    return checked.authentication;
  }

  /** Our proof for the answer to an authenticated offer (a JSON LCAF for the keyed locator). */
  private answerProof(nonce: bigint, offer: Extract<OfferedKey, { kind: 'key' }>, etrKey: Uint8Array, itr: Extract<SessionAuthentication, { kind: 'crypto-eid' }>): Address | undefined {
    const auth = this.options.authentication;
    if (!auth) return undefined;
    const facts = { nonce, instanceId: auth.identity.instanceId, itrEid: itr.eid, suite: offer.suite, keyId: offer.keyId, itrKey: offer.publicKey, etrKey };
    return jsonAddress({ [PROOF_FIELD]: makeProof(auth.identity, answerTranscript(facts, auth.identity.eid)) });
  }

  /** Counts an offer we answer without a key; always undefined. */
  private countOffer(offer: OfferedKey): undefined {
    if (offer.kind === 'refused') this.count('key-refused-suite');
    if (offer.kind === 'malformed') this.count('key-malformed');
    return undefined;
  }

  /** The key exchange with the ITR at `itrAddress`; our key to put in the reply, if any. */
  private keyFor(offer: Extract<OfferedKey, { kind: 'key' }>, itrAddress: string, authentication: SessionAuthentication, now: number): { readonly suite: CipherSuite; readonly keyId: KeyId; readonly publicKey: Uint8Array } | undefined {
    const enc = this.options.encryption;
    if (!enc || !(enc.suites ?? [5, 2]).includes(offer.suite)) {
      this.count('key-suite-not-enabled');
      return undefined;
    }
    let opening = this.openings.get(itrAddress);
    if (!opening) {
      opening = new LocatorOpening(itrAddress, enc.backend, { acceptClear: this.options.acceptClear, ...(enc.limits && { limits: enc.limits }) });
      this.openings.set(itrAddress, opening);
      this.index(itrAddress, opening);
    }
    let answer: ReturnType<LocatorOpening['answer']>;
    try {
      answer = opening.answer(offer, authentication, this.options.random, now);
    } catch {
      this.count('key-derivation-failed');
      if (opening.opening.empty) this.forget(itrAddress);
      return undefined;
    }
    this.count(answer.outcome === 'candidate' ? 'key-candidate' : 'key-unchanged');
    if (answer.evicted > 0) this.count('key-candidate-evicted', answer.evicted);
    if (!opening.opening.proven) {
      this.unproven.delete(itrAddress);
      this.unproven.add(itrAddress);
    }
    this.bound(itrAddress);
    return { suite: offer.suite, keyId: offer.keyId, publicKey: answer.publicKey };
  }

  /** Keeps the per-ITR state within its limits; `keep` (the locator just answered) stays. */
  private bound(keep: string): void {
    while (this.unproven.size > this.limits.maxUnproven || this.openings.size > this.limits.maxPeers) {
      const unproven = this.oldestUnproven(keep);
      const victim = unproven ?? (this.openings.size > this.limits.maxPeers ? this.idlest(keep) : undefined);
      if (victim === undefined) break;
      this.forget(victim);
      this.count(unproven !== undefined ? 'key-candidate-evicted' : 'peer-evicted');
    }
  }

  /** The oldest locator other than `keep` still holding only candidates (proven ones leave the set on the way). */
  private oldestUnproven(keep: string): string | undefined {
    for (const address of this.unproven) {
      if (this.openings.get(address)?.opening.proven) this.unproven.delete(address);
      else if (address !== keep) return address;
    }
    return undefined;
  }

  /** The proven locator that has gone longest without a packet. */
  private idlest(keep: string): string | undefined {
    let best: { readonly address: string; readonly at: number } | undefined;
    for (const [address, o] of this.openings) {
      if (address === keep) continue;
      const at = o.opening.lastOpenedAt;
      if (!best || at < best.at) best = { address, at };
    }
    return best?.address;
  }

  private index(address: string, opening: LocatorOpening | undefined): void {
    const a = ip(address);
    if (a.afi === 'ipv4') {
      const key = u32(parseIpv4(a.address) ?? new Uint8Array(4), 0);
      if (opening) this.v4.set(key, opening);
      else this.v4.delete(key);
    } else if (a.afi === 'ipv6') {
      const key = Buffer.from(ipv6Bytes(a.address)).toString('hex');
      if (opening) this.v6.set(key, opening);
      else this.v6.delete(key);
    }
  }

  private remember(address: string, now: number): void {
    this.requesters.delete(address);
    this.requesters.set(address, now);
    // Bounded: the oldest requester is forgotten first (Map iterates in insertion order).
    if (this.requesters.size > MAX_REMEMBERED_REQUESTERS) this.requesters.delete(this.requesters.keys().next().value ?? '');
  }

  /**
   * Our mappings changed (RFC 9301 §6.1): a Solicit-Map-Request (S) to every ITR that asked us
   * within the record TTL, naming each of our EID-prefixes, so they re-resolve through the mapping
   * system. The daemon calls this after a configuration change of its local EIDs or RLOCs.
   */
  solicitMapRequests(now: number): ResponderAction[] {
    const ttlMs = (this.options.ttlMinutes ?? EID_RECORD_DEFAULTS.ttl) * 60_000;
    const out: ResponderAction[] = [];
    for (const [address, at] of this.requesters) {
      if (now - at >= ttlMs) {
        this.requesters.delete(address);
        continue;
      }
      const family = address.includes(':') ? 6 : 4;
      const rloc = this.options.rlocs.find((r) => (r.includes(':') ? 6 : 4) === family);
      if (!rloc) continue;
      for (const p of this.options.localEids) {
        const eid: Address = ip(text(p));
        const nonce = Buffer.from(this.options.random(8)).readBigUInt64BE(0);
        const smr: MapRequest = {
          ...MAP_REQUEST_DEFAULTS,
          smr: true,
          nonce,
          sourceEid: p.instanceId === 0 ? eid : withInstanceId(p.instanceId, eid),
          itrRlocs: [ip(rloc)],
          records: [{ reserved: 0, eidMaskLength: p.length, eid: p.instanceId === 0 ? eid : withInstanceId(p.instanceId, eid) }],
        };
        out.push({ kind: 'send', what: 'smr', to: address, port: LISP_CONTROL_PORT, bytes: encodeControl(smr) });
        this.count('smr-sent');
      }
    }
    return out;
  }

  private count(c: ResponderCounter, n = 1): void {
    this.counters.set(c, (this.counters.get(c) ?? 0) + n);
  }
}


function text(p: EidPrefix): string {
  return p.family === 4 ? formatIpv4(p.address) : formatIpv6(p.address);
}

function ipv6Bytes(address: string): Uint8Array {
  const b = parseIpv6(address);
  if (!b) throw new RangeError(`not an IPv6 address: ${address}`);
  return b;
}

function u32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}
