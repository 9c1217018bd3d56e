// EID-records and Locator-records (RFC 9301 §5.4), shared by Map-Reply, Map-Register,
// Map-Notify and the map data of a Map-Request.
import { readAddress, writeAddress, addressBits, type Address } from './address.js';
import { checkBits, type ByteReader, type ByteWriter } from './bytes.js';
import { DecodeError, type Quirk } from './errors.js';

/** Map-Reply actions (IANA "LISP Map-Reply Action"); 6 and 7 are lispers.net's. */
export const ACTION = {
  noAction: 0,
  nativelyForward: 1,
  sendMapRequest: 2,
  drop: 3,
  dropPolicyDenied: 4,
  dropAuthFailure: 5,
  sendPubSub: 6,
  notRegisteredYet: 7,
} as const;
export type Action = (typeof ACTION)[keyof typeof ACTION];

export const ACTION_NAMES: Readonly<Record<Action, string>> = {
  0: 'no-action',
  1: 'natively-forward',
  2: 'send-map-request',
  3: 'drop',
  4: 'drop-policy-denied',
  5: 'drop-auth-failure',
  6: 'send-pubsub',
  7: 'not-registered-yet',
};

export interface LocatorRecord {
  readonly priority: number;
  readonly weight: number;
  readonly multicastPriority: number;
  readonly multicastWeight: number;
  /** L: the sender's own locator. */
  readonly local: boolean;
  /** p: the locator this RLOC-probe reply answers for. */
  readonly probed: boolean;
  /** R: reachable. */
  readonly reachable: boolean;
  /** The 13 unassigned flag bits, kept so unknown extensions round-trip. */
  readonly unusedFlags: number;
  readonly locator: Address;
}

export interface EidRecord {
  /** Minutes; 0 deletes, 0xffffffff lets the receiver decide; lispers.net: bit 31 set = seconds. */
  readonly ttl: number;
  readonly action: Action;
  /** A: authoritative (sent by the owning site's ETR). */
  readonly authoritative: boolean;
  /** Reserved bits of the flags halfword (lispers.net: 0x0800 DDT incomplete). */
  readonly reserved: number;
  /** Top 4 bits of the Map-Version halfword (reserved; lispers.net: signature count). */
  readonly reservedHigh: number;
  readonly mapVersion: number;
  readonly eidMaskLength: number;
  readonly eid: Address;
  readonly locators: readonly LocatorRecord[];
}

/** A Map-Request target: mask-length and prefix (RFC 9301 §5.2 "EID-Record"). */
export interface RequestRecord {
  /** Byte before the mask-length (lispers.net: 0x80 = pub/sub notify). */
  readonly reserved: number;
  readonly eidMaskLength: number;
  readonly eid: Address;
}

export const LOCATOR_DEFAULTS = {
  priority: 1,
  weight: 100,
  multicastPriority: 255,
  multicastWeight: 0,
  local: false,
  probed: false,
  reachable: true,
  unusedFlags: 0,
} as const;

export const EID_RECORD_DEFAULTS = {
  ttl: 1440,
  action: ACTION.noAction,
  authoritative: false,
  reserved: 0,
  reservedHigh: 0,
  mapVersion: 0,
} as const;

export function readLocatorRecord(r: ByteReader, quirks: Quirk[]): LocatorRecord {
  const priority = r.u8('Priority');
  const weight = r.u8('Weight');
  const multicastPriority = r.u8('M Priority');
  const multicastWeight = r.u8('M Weight');
  const flags = r.u16('Locator flags');
  return {
    priority,
    weight,
    multicastPriority,
    multicastWeight,
    local: (flags & 0x0004) !== 0,
    probed: (flags & 0x0002) !== 0,
    reachable: (flags & 0x0001) !== 0,
    unusedFlags: flags >>> 3,
    locator: readAddress(r, quirks),
  };
}

export function writeLocatorRecord(w: ByteWriter, l: LocatorRecord): void {
  w.u8(l.priority).u8(l.weight).u8(l.multicastPriority).u8(l.multicastWeight);
  w.u16((checkBits(l.unusedFlags, 13, 'unusedFlags') << 3) | (l.local ? 4 : 0) | (l.probed ? 2 : 0) | (l.reachable ? 1 : 0));
  writeAddress(w, l.locator);
}

export function readEidRecord(r: ByteReader, quirks: Quirk[]): EidRecord {
  const ttl = r.u32('Record TTL');
  const locatorCount = r.u8('Locator Count');
  const maskAt = r.offset;
  const eidMaskLength = r.u8('EID mask-len');
  const flags = r.u16('record flags');
  const versionWord = r.u16('Map-Version');
  const eid = readAddress(r, quirks);
  checkMaskLength(eid, eidMaskLength, maskAt);
  const locators: LocatorRecord[] = [];
  for (let i = 0; i < locatorCount; i++) locators.push(readLocatorRecord(r, quirks));
  return {
    ttl,
    action: (flags >>> 13) as Action,
    authoritative: (flags & 0x1000) !== 0,
    reserved: flags & 0x0fff,
    reservedHigh: versionWord >>> 12,
    mapVersion: versionWord & 0x0fff,
    eidMaskLength,
    eid,
    locators,
  };
}

export function writeEidRecord(w: ByteWriter, e: EidRecord): void {
  if (e.locators.length > 255) throw new RangeError('an EID-record holds at most 255 locators');
  w.u32(e.ttl).u8(e.locators.length).u8(e.eidMaskLength);
  w.u16((checkBits(e.action, 3, 'action') << 13) | (e.authoritative ? 0x1000 : 0) | checkBits(e.reserved, 12, 'reserved'));
  w.u16((checkBits(e.reservedHigh, 4, 'reservedHigh') << 12) | checkBits(e.mapVersion, 12, 'mapVersion'));
  writeAddress(w, e.eid);
  for (const l of e.locators) writeLocatorRecord(w, l);
}

export function readRequestRecord(r: ByteReader, quirks: Quirk[]): RequestRecord {
  const reserved = r.u8('record Reserved');
  const maskAt = r.offset;
  const eidMaskLength = r.u8('EID mask-len');
  const eid = readAddress(r, quirks);
  checkMaskLength(eid, eidMaskLength, maskAt);
  return { reserved, eidMaskLength, eid };
}

export function writeRequestRecord(w: ByteWriter, q: RequestRecord): void {
  w.u8(q.reserved).u8(q.eidMaskLength);
  writeAddress(w, q.eid);
}

function checkMaskLength(eid: Address, maskLength: number, at: number): void {
  const bits = addressBits(eid);
  if (bits !== undefined && maskLength > bits) {
    throw new DecodeError('bad-value', at, `mask-length ${maskLength} exceeds the ${bits}-bit address`);
  }
}
