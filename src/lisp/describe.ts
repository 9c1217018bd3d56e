// Human-readable one-line descriptions and JSON-safe forms of decoded LISP messages, for
// `lispnode decode`, logs and status output.
import { formatAddress, type Address } from './address.js';
import { toHex } from './bytes.js';
import type { ControlMessage, InnerMessage } from './control.js';
import type { DataHeader } from './data-header.js';
import { ACTION_NAMES, type EidRecord, type LocatorRecord, type RequestRecord } from './records.js';

export function describeControl(m: ControlMessage): string {
  if (m.type === 'ecm') {
    const flags = flagList({ S: m.security, D: m.ddt, E: m.toEtr, M: m.toMapServer, R: m.rtrProcess, N: m.relayedByRtr });
    return `ECM${flags} inner ${m.ip.source}:${m.udp.sourcePort} -> ${m.ip.destination}:${m.udp.destinationPort} | ${describeInner(m.message)}`;
  }
  return describeInner(m);
}

function describeInner(m: InnerMessage): string {
  switch (m.type) {
    case 'map-request': {
      const flags = flagList({ A: m.authoritative, M: m.mapReply !== undefined, P: m.probe, S: m.smr, p: m.pitr, s: m.smrInvoked, L: m.localXtr, D: m.dontMapReply });
      const mapData = m.mapReply ? ` map-data ${describeRecord(m.mapReply)}` : '';
      return `Map-Request${flags} nonce ${hex64(m.nonce)} source-eid ${formatAddress(m.sourceEid)} itr-rlocs ${m.itrRlocs.map(formatAddress).join(' ')} eids ${m.records.map(describeRequestRecord).join(' ')}${mapData}`;
    }
    case 'map-reply': {
      const flags = flagList({ P: m.probe, E: m.echoNonceCapable, S: m.security });
      return `Map-Reply${flags} nonce ${hex64(m.nonce)} ${describeRecords(m.records)}`;
    }
    case 'map-register': {
      const flags = flagList({ P: m.proxyReply, S: m.securityCapable, I: m.xtrIdentity !== undefined, T: m.useTtlForTimeout, M: m.wantMapNotify });
      return `Map-Register${flags} nonce ${hex64(m.nonce)} key-id ${m.keyId} alg ${m.algorithmId} auth-len ${m.authData.length}${xtr(m)} ${describeRecords(m.records)}`;
    }
    case 'map-notify':
    case 'map-notify-ack': {
      const name = m.type === 'map-notify' ? 'Map-Notify' : 'Map-Notify-Ack';
      return `${name}${flagList({ I: m.xtrIdentity !== undefined })} nonce ${hex64(m.nonce)} key-id ${m.keyId} alg ${m.algorithmId} auth-len ${m.authData.length}${xtr(m)} ${describeRecords(m.records)}`;
    }
    case 'info-request':
    case 'info-reply': {
      const name = m.type === 'info-request' ? 'Info-Request' : 'Info-Reply';
      const eid = m.eid.afi === 'none' ? '' : ` eid ${formatAddress(m.eid)}/${m.eidMaskLength}`;
      return `${name} nonce ${hex64(m.nonce)} key-id ${m.keyId} auth-len ${m.authData.length} ttl ${m.ttl}${eid} ${formatAddress(m.trailingAddress)}`;
    }
  }
}

export function describeDataHeader(h: DataHeader): string {
  const parts: string[] = [];
  switch (h.nonceField.kind) {
    case 'nonce':
      parts.push(`nonce 0x${h.nonceField.nonce.toString(16).padStart(6, '0')}${h.nonceField.echoRequest ? ' echo-request' : ''}`);
      break;
    case 'map-version':
      parts.push(`map-version ${h.nonceField.source}/${h.nonceField.destination}`);
      break;
    case 'none':
      break;
  }
  if (h.instanceId !== undefined) parts.push(`iid ${h.instanceId}`);
  if (h.locatorStatusBits !== undefined) parts.push(`lsb 0x${h.locatorStatusBits.toString(16)}`);
  parts.push(h.keyId === 0 ? 'clear' : `key-id ${h.keyId}`);
  return parts.join(' ');
}

function describeRecords(records: readonly EidRecord[]): string {
  return `records ${records.length}${records.length ? ': ' : ''}${records.map(describeRecord).join('; ')}`;
}

export function describeRecord(e: EidRecord): string {
  const action = e.locators.length === 0 || e.action !== 0 ? ` ${ACTION_NAMES[e.action]}` : '';
  const locators = e.locators.length ? ` -> ${e.locators.map(describeLocator).join(', ')}` : '';
  return `${prefix(e.eid, e.eidMaskLength)} ttl ${e.ttl}${e.authoritative ? ' A' : ''}${action}${locators}`;
}

function describeLocator(l: LocatorRecord): string {
  const flags = [l.local && 'L', l.probed && 'p', l.reachable && 'R'].filter(Boolean).join('');
  return `${formatAddress(l.locator)} (p${l.priority} w${l.weight}${flags ? ` ${flags}` : ''})`;
}

function describeRequestRecord(q: RequestRecord): string {
  return prefix(q.eid, q.eidMaskLength);
}

function prefix(eid: Address, maskLength: number): string {
  const text = formatAddress(eid);
  return eid.afi === 'distinguished-name' || (eid.afi === 'lcaf' && eid.lcaf.type === 'instance-id' && eid.lcaf.address.afi === 'distinguished-name')
    ? text
    : `${text}/${maskLength}`;
}

function xtr(m: { readonly xtrIdentity?: { readonly xtrId: Uint8Array; readonly siteId: bigint } }): string {
  return m.xtrIdentity ? ` xtr-id ${toHex(m.xtrIdentity.xtrId)} site-id ${m.xtrIdentity.siteId}` : '';
}

function flagList(flags: Readonly<Record<string, boolean>>): string {
  const set = Object.entries(flags)
    .filter(([, on]) => on)
    .map(([name]) => name);
  return set.length ? ` [${set.join(',')}]` : '';
}

export function hex64(v: bigint): string {
  return `0x${v.toString(16).padStart(16, '0')}`;
}

/** JSON.stringify replacer: 64-bit values as 0x-hex strings, byte arrays as hex. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return hex64(value);
  if (value instanceof Uint8Array) return toHex(value);
  return value;
}
