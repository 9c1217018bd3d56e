// AFI-encoded addresses (RFC 9301 §4) and the LCAF types this overlay needs (RFC 8060).
// Unknown LCAF types are kept as opaque bytes so that decode -> encode reproduces them.
import { ByteReader, type ByteWriter } from './bytes.js';
import { DecodeError, type Quirk } from './errors.js';
import { formatIpv4, formatIpv6, formatMac, parseIpv4, parseIpv6, parseMac } from './ip-text.js';

export const AFI = {
  none: 0,
  ipv4: 1,
  ipv6: 2,
  mac: 6,
  distinguishedName: 17,
  lcaf: 16387,
} as const;

export const LCAF_TYPE = {
  afiList: 1,
  instanceId: 2,
  natTraversal: 7,
  securityKey: 11,
  json: 14,
} as const;

const KNOWN_LCAF_TYPES: ReadonlySet<number> = new Set(Object.values(LCAF_TYPE));

export type Address =
  | { readonly afi: 'none' }
  | { readonly afi: 'ipv4'; readonly address: string }
  | { readonly afi: 'ipv6'; readonly address: string }
  | { readonly afi: 'mac'; readonly address: string }
  | { readonly afi: 'distinguished-name'; readonly name: string }
  | { readonly afi: 'lcaf'; readonly lcaf: Lcaf };

export type Lcaf =
  | { readonly type: 'afi-list'; readonly items: readonly Address[] }
  | {
      readonly type: 'instance-id';
      readonly instanceId: number;
      /** lispers.net sends 0, OOR 32; only meaningful with AFI none (an IID range). */
      readonly maskLength: number;
      readonly address: Address;
    }
  | {
      readonly type: 'nat-traversal';
      readonly msPort: number;
      readonly etrPort: number;
      readonly globalEtrRloc: Address;
      readonly msRloc: Address;
      readonly privateEtrRloc: Address;
      readonly rtrRlocs: readonly Address[];
    }
  | {
      readonly type: 'security-key';
      readonly cipherSuite: number;
      /** The R bit: the sender revokes or replaces this key. */
      readonly rekey: boolean;
      readonly keys: readonly Uint8Array[];
      readonly locator: Address;
    }
  | {
      readonly type: 'json';
      readonly json: string;
      /** Rsvd2: bit 0x01 = binary JSON (RFC 8060); lispers.net puts an encryption key-id above it. */
      readonly jsonFlags: number;
      readonly address: Address;
    }
  | {
      readonly type: 'opaque';
      readonly lcafType: number;
      readonly rsvd1: number;
      readonly flags: number;
      readonly rsvd2: number;
      readonly payload: Uint8Array;
    };

export const NO_ADDRESS: Address = { afi: 'none' };

export function ipv4(address: string): Address {
  if (!parseIpv4(address)) throw new RangeError(`not an IPv4 address: ${address}`);
  return { afi: 'ipv4', address };
}

export function ipv6(address: string): Address {
  const bytes = parseIpv6(address);
  if (!bytes) throw new RangeError(`not an IPv6 address: ${address}`);
  return { afi: 'ipv6', address: formatIpv6(bytes) };
}

/** An IP address from text of either family. */
export function ip(address: string): Address {
  return address.includes(':') ? ipv6(address) : ipv4(address);
}

export function withInstanceId(instanceId: number, address: Address): Address {
  return { afi: 'lcaf', lcaf: { type: 'instance-id', instanceId, maskLength: 0, address } };
}

/** Bit length of an address family, for mask-length checks (names and LCAFs have none). */
export function addressBits(a: Address): number | undefined {
  switch (a.afi) {
    case 'ipv4':
      return 32;
    case 'ipv6':
      return 128;
    case 'mac':
      return 48;
    case 'lcaf':
      return a.lcaf.type === 'instance-id' ? addressBits(a.lcaf.address) : undefined;
    case 'none':
    case 'distinguished-name':
      return undefined;
  }
}

// ---------------------------------------------------------------- decode

/** Nested LCAFs (AFI-List inside Instance-ID inside ...) are legal, but not without bound. */
const MAX_DEPTH = 8;

export function readAddress(r: ByteReader, quirks: Quirk[], depth = 0): Address {
  const at = r.offset;
  const afi = r.u16('AFI');
  switch (afi) {
    case AFI.none:
      return NO_ADDRESS;
    case AFI.ipv4:
      return { afi: 'ipv4', address: formatIpv4(r.take(4, 'IPv4 address')) };
    case AFI.ipv6:
      return { afi: 'ipv6', address: formatIpv6(r.take(16, 'IPv6 address')) };
    case AFI.mac:
      return { afi: 'mac', address: formatMac(r.take(6, 'MAC address')) };
    case AFI.distinguishedName:
      return { afi: 'distinguished-name', name: readName(r) };
    case AFI.lcaf:
      if (depth >= MAX_DEPTH) throw new DecodeError('too-deep', at, `LCAF nesting deeper than ${MAX_DEPTH}`);
      return { afi: 'lcaf', lcaf: readLcaf(r, quirks, depth + 1) };
    default:
      throw new DecodeError('bad-afi', at, `unsupported AFI ${afi}`);
  }
}

function readName(r: ByteReader): string {
  const start = r.offset;
  const bytes = r.bytes;
  let end = start;
  while (end < r.limit && bytes[end] !== 0) end++;
  if (end >= r.limit) throw new DecodeError('bad-name', start, 'distinguished name without NUL terminator');
  // latin1 keeps every byte value, so an odd name still re-encodes to the same bytes.
  const name = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
  r.skip(end - start + 1, 'distinguished name');
  return name;
}

function readLcaf(r: ByteReader, quirks: Quirk[], depth: number): Lcaf {
  const headerAt = r.offset;
  const rsvd1 = r.u8('LCAF Rsvd1');
  const flags = r.u8('LCAF Flags');
  const type = r.u8('LCAF Type');
  const rsvd2 = r.u8('LCAF Rsvd2');
  const length = r.u16('LCAF Length');
  // Known types define no Rsvd1/Flags bits, and Rsvd2 only for Instance-ID and JSON; a decoder
  // that drops set bits says so.
  const keepsRsvd2 = type === LCAF_TYPE.instanceId || type === LCAF_TYPE.json;
  if (KNOWN_LCAF_TYPES.has(type) && (rsvd1 !== 0 || flags !== 0 || (!keepsRsvd2 && rsvd2 !== 0))) {
    quirks.push({ quirk: 'ignored-bits', offset: headerAt });
  }
  switch (type) {
    case LCAF_TYPE.json: {
      const body = r.sub(length, 'JSON LCAF');
      const jsonLength = body.u16('JSON length');
      const json = Buffer.from(body.take(jsonLength, 'JSON text')).toString('latin1');
      // lispers.net counts its RLOC-record JSON LCAF 2 bytes short: the trailing AFI 0 sits just
      // past Length. Anything else without an AFI inside Length is malformed.
      if (body.remaining === 0) {
        if (r.remaining < 2 || r.peekU16('JSON AFI') !== AFI.none) {
          throw new DecodeError('bad-lcaf-length', headerAt, 'JSON LCAF has no room for its AFI');
        }
        r.skip(2, 'JSON AFI');
        quirks.push({ quirk: 'json-lcaf-length', offset: headerAt });
        return { type: 'json', json, jsonFlags: rsvd2, address: NO_ADDRESS };
      }
      const address = readAddress(body, quirks, depth);
      if (body.remaining !== 0) throw lengthMismatch(headerAt, 'JSON', length, length - body.remaining);
      return { type: 'json', json, jsonFlags: rsvd2, address };
    }
    case LCAF_TYPE.natTraversal:
      return readNatLcaf(r, length, headerAt, quirks, depth);
    default:
      break;
  }
  const body = r.sub(length, 'LCAF body');
  let value: Lcaf;
  switch (type) {
    case LCAF_TYPE.afiList: {
      const items: Address[] = [];
      while (body.remaining > 0) items.push(readAddress(body, quirks, depth));
      value = { type: 'afi-list', items };
      break;
    }
    case LCAF_TYPE.instanceId:
      value = {
        type: 'instance-id',
        instanceId: body.u32('Instance ID'),
        maskLength: rsvd2,
        address: readAddress(body, quirks, depth),
      };
      break;
    case LCAF_TYPE.securityKey:
      value = readSecurityKeyBody(body, quirks, depth);
      break;
    default:
      return { type: 'opaque', lcafType: type, rsvd1, flags, rsvd2, payload: body.take(body.remaining, 'LCAF payload') };
  }
  if (body.remaining !== 0) throw lengthMismatch(headerAt, `type ${type}`, length, length - body.remaining);
  return value;
}

/**
 * lispers.net writes NAT-Traversal Length 16 whatever the content and reads to the end of the
 * message. Read by Length first; only a Length-16 LCAF whose fields do not fit falls back to
 * lispers.net's reading (it is always the last field of an Info-Reply).
 */
function readNatLcaf(r: ByteReader, length: number, headerAt: number, quirks: Quirk[], depth: number): Lcaf {
  let strictError: DecodeError | undefined;
  if (length <= r.remaining) {
    const strictQuirks: Quirk[] = [];
    try {
      const value = readNatBody(new ByteReader(r.bytes, r.offset, r.offset + length), strictQuirks, depth);
      quirks.push(...strictQuirks);
      r.skip(length, 'NAT-Traversal LCAF');
      return value;
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      strictError = error;
    }
  }
  // The fallback is for a body longer than the 16 bytes lispers.net declares, never for a
  // message cut short before them.
  if (length !== 16 || strictError === undefined) throw strictError ?? new DecodeError('truncated', r.offset, `NAT-Traversal LCAF needs ${length} bytes, ${r.remaining} left`);
  const body = r.until(r.limit);
  const value = readNatBody(body, quirks, depth);
  quirks.push({ quirk: 'nat-lcaf-length', offset: headerAt });
  r.seek(body.offset);
  return value;
}

function lengthMismatch(at: number, what: string, declared: number, used: number): DecodeError {
  return new DecodeError('bad-lcaf-length', at, `${what} LCAF declares ${declared} bytes, its fields use ${used}`);
}

function readNatBody(r: ByteReader, quirks: Quirk[], depth: number): Lcaf {
  const msPort = r.u16('MS UDP port');
  const etrPort = r.u16('ETR UDP port');
  const globalEtrRloc = readAddress(r, quirks, depth);
  const msRloc = readAddress(r, quirks, depth);
  const privateEtrRloc = readAddress(r, quirks, depth);
  const rtrRlocs: Address[] = [];
  while (r.remaining > 0) rtrRlocs.push(readAddress(r, quirks, depth));
  return { type: 'nat-traversal', msPort, etrPort, globalEtrRloc, msRloc, privateEtrRloc, rtrRlocs };
}

function readSecurityKeyBody(r: ByteReader, quirks: Quirk[], depth: number): Lcaf {
  const keyCount = r.u8('Key Count');
  const rsvdAt = r.offset;
  const rsvd3 = r.u8('Rsvd3');
  const cipherSuite = r.u8('Cipher Suite');
  const rsvd4 = r.u8('Rsvd4/R');
  if (rsvd3 !== 0 || (rsvd4 & 0xfe) !== 0) quirks.push({ quirk: 'ignored-bits', offset: rsvdAt });
  const rekey = (rsvd4 & 0x01) !== 0;
  const keys: Uint8Array[] = [];
  for (let i = 0; i < keyCount; i++) {
    const keyLength = r.u16('Key Length');
    keys.push(r.take(keyLength, 'Key Material'));
  }
  return { type: 'security-key', cipherSuite, rekey, keys, locator: readAddress(r, quirks, depth) };
}

// ---------------------------------------------------------------- encode

export function writeAddress(w: ByteWriter, a: Address): void {
  switch (a.afi) {
    case 'none':
      w.u16(AFI.none);
      return;
    case 'ipv4':
      w.u16(AFI.ipv4).bytes(parsed(parseIpv4(a.address), a.address));
      return;
    case 'ipv6':
      w.u16(AFI.ipv6).bytes(parsed(parseIpv6(a.address), a.address));
      return;
    case 'mac':
      w.u16(AFI.mac).bytes(parsed(parseMac(a.address), a.address));
      return;
    case 'distinguished-name':
      if (a.name.includes('\0')) throw new RangeError('a distinguished name cannot contain NUL');
      w.u16(AFI.distinguishedName).bytes(Buffer.from(a.name, 'latin1')).u8(0);
      return;
    case 'lcaf':
      w.u16(AFI.lcaf);
      writeLcaf(w, a.lcaf);
      return;
  }
}

function parsed(bytes: Uint8Array | undefined, text: string): Uint8Array {
  if (!bytes) throw new RangeError(`malformed address text: ${text}`);
  return bytes;
}

function writeLcaf(w: ByteWriter, l: Lcaf): void {
  if (l.type === 'opaque') {
    w.u8(l.rsvd1).u8(l.flags).u8(l.lcafType).u8(l.rsvd2).u16(l.payload.length).bytes(l.payload);
    return;
  }
  const typeCode = LCAF_TYPE[lcafKey[l.type]];
  const rsvd2 = l.type === 'instance-id' ? l.maskLength : l.type === 'json' ? l.jsonFlags : 0;
  w.u8(0).u8(0).u8(typeCode).u8(rsvd2);
  const lengthAt = w.length;
  w.u16(0);
  switch (l.type) {
    case 'afi-list':
      for (const item of l.items) writeAddress(w, item);
      break;
    case 'instance-id':
      w.u32(l.instanceId);
      writeAddress(w, l.address);
      break;
    case 'nat-traversal':
      w.u16(l.msPort).u16(l.etrPort);
      for (const a of [l.globalEtrRloc, l.msRloc, l.privateEtrRloc, ...l.rtrRlocs]) writeAddress(w, a);
      break;
    case 'security-key':
      w.u8(l.keys.length).u8(0).u8(l.cipherSuite).u8(l.rekey ? 1 : 0);
      for (const key of l.keys) w.u16(key.length).bytes(key);
      writeAddress(w, l.locator);
      break;
    case 'json': {
      const text = Buffer.from(l.json, 'latin1');
      w.u16(text.length).bytes(text);
      writeAddress(w, l.address);
      break;
    }
  }
  w.patchU16(lengthAt, w.length - lengthAt - 2);
}

const lcafKey = {
  'afi-list': 'afiList',
  'instance-id': 'instanceId',
  'nat-traversal': 'natTraversal',
  'security-key': 'securityKey',
  json: 'json',
} as const satisfies Record<Exclude<Lcaf['type'], 'opaque'>, keyof typeof LCAF_TYPE>;

/** A readable form: `192.0.2.1`, `[1000]fd00::1`, `'hash-…'`, `lcaf-13(…)`. */
export function formatAddress(a: Address): string {
  switch (a.afi) {
    case 'none':
      return '-';
    case 'ipv4':
    case 'ipv6':
    case 'mac':
      return a.address;
    case 'distinguished-name':
      return `'${a.name}'`;
    case 'lcaf':
      return formatLcaf(a.lcaf);
  }
}

function formatLcaf(l: Lcaf): string {
  switch (l.type) {
    case 'afi-list':
      return `{${l.items.map(formatAddress).join(', ')}}`;
    case 'instance-id':
      return `[${l.instanceId}]${formatAddress(l.address)}`;
    case 'nat-traversal':
      return `nat(global ${formatAddress(l.globalEtrRloc)}:${l.etrPort}, ms ${formatAddress(l.msRloc)}:${l.msPort}, private ${formatAddress(l.privateEtrRloc)}, rtrs ${l.rtrRlocs.map(formatAddress).join(' ') || '-'})`;
    case 'security-key':
      return `security-key(suite ${l.cipherSuite}${l.rekey ? ', rekey' : ''}, ${l.keys.length} key(s), ${formatAddress(l.locator)})`;
    case 'json':
      return `json(${l.json.length} chars${l.address.afi === 'none' ? '' : `, ${formatAddress(l.address)}`})`;
    case 'opaque':
      return `lcaf-${l.lcafType}(${l.payload.length} bytes)`;
  }
}
