// EID-prefixes: an instance-id, an address family, the network bytes and a length. The text form
// is lispers.net's `[iid]address/length` (`[1000]fd00::/8`), which its logs and configs use.
// Host bits are cleared on the way in (lispers.net masks received EID-prefixes the same way), so
// `192.0.2.1/24` and `192.0.2.0/24` are one prefix.
import type { Address } from './address.js';
import type { IpFamily } from './inner-ip.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from './ip-text.js';

export interface EidPrefix {
  /** 32 bits on the control plane; the data header carries only the low 24. */
  readonly instanceId: number;
  readonly family: IpFamily;
  /** 4 or 16 bytes, host bits zero. */
  readonly address: Uint8Array;
  readonly length: number;
}

export function familyBits(family: IpFamily): 32 | 128 {
  return family === 4 ? 32 : 128;
}

/** A prefix from parts; copies and masks `address`. Throws RangeError on impossible values. */
export function eidPrefix(instanceId: number, family: IpFamily, address: Uint8Array, length: number): EidPrefix {
  checkInstanceId(instanceId);
  const bytes = family === 4 ? 4 : 16;
  if (address.length !== bytes) throw new RangeError(`an IPv${family} prefix needs ${bytes} address bytes, got ${address.length}`);
  if (!Number.isInteger(length) || length < 0 || length > bytes * 8) throw new RangeError(`prefix length ${length} does not fit IPv${family}`);
  return { instanceId, family, address: masked(address, length), length };
}

export function checkInstanceId(instanceId: number): void {
  if (!Number.isInteger(instanceId) || instanceId < 0 || instanceId > 0xffffffff) {
    throw new RangeError(`instance-id ${instanceId} is not a 32-bit unsigned integer`);
  }
}

/**
 * `[iid]address/length`, `address/length` or a bare address (a host prefix); `instanceId` is used
 * when the text has no `[iid]`. Undefined when the text is not a prefix.
 */
export function parsePrefix(text: string, instanceId = 0): EidPrefix | undefined {
  let rest = text.trim();
  let iid = instanceId;
  const bracket = /^\[(\d{1,10})\]/.exec(rest);
  if (bracket) {
    iid = Number(bracket[1]);
    rest = rest.slice(bracket[0].length);
  }
  if (iid > 0xffffffff || !Number.isInteger(iid) || iid < 0) return undefined;
  const slash = rest.indexOf('/');
  const addressText = slash < 0 ? rest : rest.slice(0, slash);
  const lengthText = slash < 0 ? undefined : rest.slice(slash + 1);
  const family: IpFamily = addressText.includes(':') ? 6 : 4;
  const bytes = family === 4 ? parseIpv4(addressText) : parseIpv6(addressText);
  if (!bytes) return undefined;
  const bits = familyBits(family);
  let length: number = bits;
  if (lengthText !== undefined) {
    if (!/^(0|[1-9]\d{0,2})$/.test(lengthText)) return undefined;
    length = Number(lengthText);
    if (length > bits) return undefined;
  }
  return { instanceId: iid, family, address: masked(bytes, length), length };
}

/** `parsePrefix` that throws RangeError: for configuration and tests. */
export function prefix(text: string, instanceId = 0): EidPrefix {
  const p = parsePrefix(text, instanceId);
  if (!p) throw new RangeError(`not an EID-prefix: ${text}`);
  return p;
}

export function formatPrefix(p: EidPrefix): string {
  const address = p.family === 4 ? formatIpv4(p.address) : formatIpv6(p.address);
  return `[${p.instanceId}]${address}/${p.length}`;
}

/**
 * The prefix an EID-record names: an IPv4/IPv6 address, optionally inside an Instance-ID LCAF
 * (whose IID then wins over `instanceId`), with the record's mask-length. Undefined for other
 * address kinds (names, MACs, AFI 0) and for a mask-length longer than the address.
 */
export function prefixOfEid(eid: Address, maskLength: number, instanceId: number): EidPrefix | undefined {
  let iid = instanceId;
  let a = eid;
  if (a.afi === 'lcaf' && a.lcaf.type === 'instance-id') {
    iid = a.lcaf.instanceId;
    a = a.lcaf.address;
  }
  if (a.afi !== 'ipv4' && a.afi !== 'ipv6') return undefined;
  const family: IpFamily = a.afi === 'ipv4' ? 4 : 6;
  const bytes = family === 4 ? parseIpv4(a.address) : parseIpv6(a.address);
  if (!bytes || !Number.isInteger(maskLength) || maskLength < 0 || maskLength > familyBits(family)) return undefined;
  if (!Number.isInteger(iid) || iid < 0 || iid > 0xffffffff) return undefined;
  return { instanceId: iid, family, address: masked(bytes, maskLength), length: maskLength };
}

export function samePrefix(a: EidPrefix, b: EidPrefix): boolean {
  if (a.instanceId !== b.instanceId || a.family !== b.family || a.length !== b.length) return false;
  for (let i = 0; i < a.address.length; i++) if (a.address[i] !== b.address[i]) return false;
  return true;
}

/** Whether `address` (4 or 16 bytes of `p`'s family, at `offset`) lies inside `p`. Not for hot paths. */
export function prefixContains(p: EidPrefix, address: Uint8Array, offset = 0): boolean {
  const full = p.length >>> 3;
  for (let i = 0; i < full; i++) if (address[offset + i] !== p.address[i]) return false;
  const rest = p.length & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >>> rest) & 0xff;
  return (((address[offset + full] ?? 0) ^ (p.address[full] ?? 0)) & mask) === 0;
}

/** Whether `outer` contains every address of `inner` (same IID and family, no longer, same leading bits). */
export function prefixCovers(outer: EidPrefix, inner: EidPrefix): boolean {
  return outer.instanceId === inner.instanceId && outer.family === inner.family && outer.length <= inner.length && prefixContains(outer, inner.address);
}

function masked(address: Uint8Array, length: number): Uint8Array {
  const out = Uint8Array.from(address);
  const full = length >>> 3;
  const rest = length & 7;
  if (full < out.length) {
    out[full] = (out[full] ?? 0) & ((0xff00 >>> rest) & 0xff);
    out.fill(0, full + 1);
  }
  return out;
}
