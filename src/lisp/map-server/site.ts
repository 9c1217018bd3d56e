// Map-server configuration as typed values (lisp-protocol.md §2.5, §5.4): the sites that may
// register, their keys and EID-prefixes, the crypto-EID prefixes, and the registration timers.
// Loading it from a file is src/node's job; this module only checks it and answers the questions
// the register handler and the snapshot restore both ask (is this prefix allowed? must it be
// signed?), so that a live registration and a restored one are judged by the same rules.
import { checkEidPrefix, type EidDerivation, type EidPrefix as CryptoPrefix } from '../../crypto/index.js';
import { isAuthAlgorithm, type AuthKey } from '../auth.js';
import { formatPrefix, prefixCovers, type EidPrefix } from '../prefix.js';
import type { TicketCheck } from './attestation-ticket.js';
import type { LookupPolicy } from './lookup-policy.js';

export interface AllowedPrefix {
  readonly prefix: EidPrefix;
  /** lispers.net's accept-more-specifics: without it a record must name exactly `prefix`. */
  readonly acceptMoreSpecifics: boolean;
  /** Who may look up EIDs inside this prefix; overrides the site's (lookup-policy.ts). */
  readonly lookupPolicy?: LookupPolicy;
}

export interface SiteConfig {
  readonly name: string;
  readonly allowedPrefixes: readonly AllowedPrefix[];
  /** One key per key-id; several ids let a site rotate keys without a flag day. */
  readonly keys: readonly AuthKey[];
  /**
   * lispers.net's `require-signature`: every record of the site, crypto-EID or not, carries an EID
   * signature by a registered crypto-EID key (a non-crypto record names that EID in `signature-eid`).
   */
  readonly requireSignature: boolean;
  /**
   * Every signed record (crypto-EID records, and all records with `requireSignature`) must also
   * carry lispnode's replay-proof registration signature (docs/registration-signature.md).
   * Without it the signature is still verified when a record carries one.
   */
  readonly requireRegistrationSignature: boolean;
  /**
   * Attestation-gated membership (attestation-ticket.ts): every IP EID-record the site registers
   * carries a controller-signed attestation ticket that admits its EID, checked by the server's
   * `ticketCheck`; the registration then lives no longer than the ticket. Hash-EID (public key)
   * records and deregistrations need none. Default false.
   */
  readonly requireAttestationTicket?: boolean;
  /**
   * Who may look up the site's EIDs (lookup-policy.ts); default ALLOW_ALL. Applies to proxy
   * replies and to Map-Requests forwarded to the site's ETRs alike (lispers.net checks its
   * policies only when it proxy-replies).
   */
  readonly lookupPolicy?: LookupPolicy;
}

/** A prefix whose EIDs are crypto-EIDs: IPv6, a multiple of 8 bits long, with its instance-id. */
export interface CryptoEidPrefix {
  readonly prefix: EidPrefix;
  /** 'eve' (binary, the default elsewhere) or 'lispers' (lispers.net's text derivation). */
  readonly derivation: EidDerivation;
}

export interface RegistrationTimers {
  /** Lifetime of a registration without T (RFC 9301: three missed 60 s refreshes). */
  readonly registrationTimeoutMs: number;
  /**
   * Upper bound on a T-bit lifetime. lispers.net honours any record TTL; a day-long TTL from a
   * dead xTR would keep a stale mapping alive, so we cap it (default: one day).
   */
  readonly maxRecordTtlMs: number;
  /** Freshness window of registration signatures (default: three refresh periods). */
  readonly signatureMaxAgeSeconds: number;
  readonly signatureMaxSkewSeconds: number;
  /** Bound on the per-site memory of accepted signed Map-Registers (oldest evicted first). */
  readonly rememberedRegistersPerSite: number;
}

export const DEFAULT_TIMERS: RegistrationTimers = {
  registrationTimeoutMs: 180_000,
  maxRecordTtlMs: 86_400_000,
  signatureMaxAgeSeconds: 180,
  signatureMaxSkewSeconds: 30,
  rememberedRegistersPerSite: 65_536,
};

export interface MapServerConfig {
  readonly sites: readonly SiteConfig[];
  /**
   * Map-server-wide, not per site (lispers.net's `lisp eid-crypto-hash` is global too): a
   * crypto-EID prefix is a property of the address space, so no site whose allowed prefixes
   * happen to cover it can register inside it without signatures.
   */
  readonly cryptoEidPrefixes: readonly CryptoEidPrefix[];
  readonly timers?: Partial<RegistrationTimers>;
  /**
   * Judges attestation tickets for sites with `requireAttestationTicket` (the daemon passes
   * src/control/ticket.ts ticketChecker over the controller's signing certificates).
   */
  readonly ticketCheck?: TicketCheck;
}

/** A checked configuration: what the handler keeps. */
export interface ResolvedConfig {
  readonly sites: readonly SiteConfig[];
  readonly siteByName: ReadonlyMap<string, SiteConfig>;
  readonly cryptoEidPrefixes: readonly CryptoEidPrefix[];
  readonly timers: RegistrationTimers;
  readonly ticketCheck: TicketCheck | undefined;
  /** How long accepted signed registrations are remembered against replays, in ms. */
  readonly replayWindowMs: number;
}

/** Validates a configuration; throws RangeError naming the site and the field at fault. */
export function resolveConfig(config: MapServerConfig): ResolvedConfig {
  const siteByName = new Map<string, SiteConfig>();
  for (const site of config.sites) {
    const where = `site '${site.name}'`;
    if (site.name.length === 0) throw new RangeError('a site needs a name');
    if (siteByName.has(site.name)) throw new RangeError(`${where} is configured twice`);
    if (site.keys.length === 0) throw new RangeError(`${where} has no authentication key`);
    const keyIds = new Set<number>();
    for (const key of site.keys) {
      if (!Number.isInteger(key.keyId) || key.keyId < 0 || key.keyId > 255) throw new RangeError(`${where}: key-id ${key.keyId} is not 0-255`);
      if (keyIds.has(key.keyId)) throw new RangeError(`${where}: key-id ${key.keyId} is configured twice`);
      if (!isAuthAlgorithm(key.algorithmId)) throw new RangeError(`${where}: key-id ${key.keyId} has algorithm ${String(key.algorithmId)}, not 1 or 2`);
      if (key.secret.length === 0) throw new RangeError(`${where}: key-id ${key.keyId} has an empty secret`);
      keyIds.add(key.keyId);
    }
    if (site.allowedPrefixes.length === 0) throw new RangeError(`${where} allows no EID-prefix`);
    if (site.requireAttestationTicket && !config.ticketCheck) {
      throw new RangeError(`${where} requires attestation tickets, but no ticket checker (the controller's signing certificate) is configured`);
    }
    siteByName.set(site.name, site);
  }
  const crypto = config.cryptoEidPrefixes;
  crypto.forEach((c, i) => {
    const text = formatPrefix(c.prefix);
    if (c.prefix.family !== 6) throw new RangeError(`crypto-EID prefix ${text} is not IPv6`);
    try {
      checkEidPrefix(cryptoPrefixOf(c), c.derivation);
    } catch (error) {
      throw new RangeError(`crypto-EID prefix ${text}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    // Overlapping crypto prefixes would make the derivation of an EID ambiguous.
    for (const other of crypto.slice(0, i)) {
      if (overlaps(c.prefix, other.prefix)) throw new RangeError(`crypto-EID prefixes ${text} and ${formatPrefix(other.prefix)} overlap`);
    }
  });
  const timers: RegistrationTimers = { ...DEFAULT_TIMERS, ...config.timers };
  for (const [name, value] of Object.entries(timers)) {
    // Zero would disable expiry, freshness or the replay memory without saying so.
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new RangeError(`timer ${name} must be a positive number`);
  }
  return {
    sites: config.sites,
    siteByName,
    cryptoEidPrefixes: crypto,
    timers,
    ticketCheck: config.ticketCheck,
    replayWindowMs: (timers.signatureMaxAgeSeconds + timers.signatureMaxSkewSeconds) * 1000,
  };
}

export function overlaps(a: EidPrefix, b: EidPrefix): boolean {
  return prefixCovers(a, b) || prefixCovers(b, a);
}

/** The crypto module's view of a prefix (16 bytes and a length; the instance-id travels apart). */
export function cryptoPrefixOf(c: CryptoEidPrefix): CryptoPrefix {
  return { address: c.prefix.address, length: c.prefix.length };
}

/** Whether the site may register `prefix`: inside an allowed prefix, exactly unless more specifics are accepted. */
export function siteAllows(site: SiteConfig, prefix: EidPrefix): boolean {
  return site.allowedPrefixes.some((a) => prefixCovers(a.prefix, prefix) && (a.acceptMoreSpecifics || a.prefix.length === prefix.length));
}

/** The crypto-EID prefix `prefix` overlaps, if any (at most one: they may not overlap each other). */
export function cryptoPrefixOverlapping(config: ResolvedConfig, prefix: EidPrefix): CryptoEidPrefix | undefined {
  return config.cryptoEidPrefixes.find((c) => overlaps(c.prefix, prefix));
}

/**
 * The proof a registration of a record needs. 'site-key': the HMAC alone; 'eid-signature': a
 * static EID signature by a registered crypto-EID key whose EID derives from it;
 * 'registration-signature': that plus lispnode's replay-proof signature.
 */
export type ProofLevel = 'site-key' | 'eid-signature' | 'registration-signature';

export function requiredProof(site: SiteConfig, inCryptoPrefix: boolean): ProofLevel {
  if (!inCryptoPrefix && !site.requireSignature) return 'site-key';
  return site.requireRegistrationSignature ? 'registration-signature' : 'eid-signature';
}

export function proofRank(level: ProofLevel): number {
  return level === 'site-key' ? 0 : level === 'eid-signature' ? 1 : 2;
}
