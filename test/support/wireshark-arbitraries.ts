// Generators for the Wireshark oracle (test/wireshark-oracle.test.ts): LISP messages that
// tshark 4.0 decodes completely, so that every field it shows can be compared with ours.
//
// The general arbitraries (test/support/arbitraries.ts) produce everything our codec accepts;
// these are deliberately narrower. Each restriction below names the tshark 4.0.17 behaviour
// that forces it (checked against packet-lisp.c / packet-lisp-data.c and by running tshark):
//
//  1. Map-Request Source-EID: tshark decodes AFI 0, 1, 2, 6 and LCAF; a Distinguished Name
//     (AFI 17) gives the error "Unexpected Source EID AFI (17), cannot decode" and the rest of
//     the message is shown as undissected data. Source EIDs here are never names (names are
//     still generated as record EIDs and inside Instance-ID LCAFs, where tshark decodes them).
//  2. Map-Request ITR-RLOCs: only AFI 1 and 2 are decoded; an LCAF (RFC 8061 Security Key, as
//     lispers.net sends) raises "Unexpected ITR-RLOC-AFI (16387), cannot decode" (protocol
//     digest §9.15). ITR-RLOCs here are IPv4/IPv6 only.
//  3. Map-Request I bit (0x00100000, RFC 9437 xTR-ID/site-ID trailer): tshark 4.0 does not know
//     it, counts it among the reserved bits and shows the 24-byte trailer as undissected data.
//     No xtrIdentity on Map-Requests here (the bit itself is still compared via lisp.mreq.res
//     being computed from our model, which never sets it).
//  4. Map-Notify R bit (0x04000000, NAT traversal): tshark then reads MS-RTR authentication
//     (key id, length, data) after the records *and after* the xTR-ID/site-ID. Our codec keeps R
//     in reservedFlags and those bytes as an opaque `trailer`, which it writes *before* the xTR
//     identity. So R is generated only together with an MS-RTR trailer and without the I bit.
//  5. Info-Request: tshark insists on AFI 0 after the EID prefix ("Expecting NULL AFI (0)",
//     an error) — lispers.net's hostname (AFI 17) there is not accepted. Info-Replies carry
//     the NAT-Traversal LCAF (see 10 for its RTR-RLOCs).
//  6. ECM inner IPv6 header: a zero inner UDP checksum is flagged "Illegal checksum value (0)"
//     (an error; RFC 8200 §8.1). Our codec allows zero (lispers.net sends it with IPv4); the
//     generator uses zero only with an inner IPv4 header.
//  7. Locators are IPv4/IPv6 (tshark shows their text as lisp.loc.locator); LCAF types other
//     than Instance-ID / NAT-Traversal (Security Key, JSON, opaque) are not generated: tshark
//     4.0 marks Security Key and JSON "Not dissected yet" and cannot decode opaque types.
//  8. Distinguished names are printable ASCII: tshark decodes AFI 17 as ASCII and replaces
//     bytes >= 0x80 with U+FFFD, while our codec keeps them as latin1.
//  9. (A choice, not a tshark limitation.) Inner packets of data messages are UDP datagrams with
//     an empty payload on ports >= 49152, so no other dissector runs on them: the oracle is
//     about the LISP header. KK != 0 would mean an RFC 8061 ciphertext follows; tshark does not
//     know that and dissects whatever follows, so a plain inner packet is used for every KK.
// 10. NAT-Traversal LCAF: dissect_lcaf_natt() starts from `remaining = Length - 4` and then
//     also subtracts the two ports, so it believes the body is 4 bytes shorter than Length says
//     (the draft's Length is "4 + n", ports included). RTR-RLOC entries that start in the last 4
//     bytes are left as undissected data — in practice a final RTR-RLOC with AFI 0 (2 bytes).
//     The Global-ETR, MS and Private-ETR RLOCs are always dissected and may be AFI 0 here; the
//     RTR-RLOC list holds IPv4/IPv6 addresses only.
import fc from 'fast-check';
import {
  ACTION,
  formatIpv4,
  formatIpv6,
  formatMac,
  type Action,
  type Address,
  type DataHeader,
  type Ecm,
  type EidRecord,
  type InfoMessage,
  type InnerMessage,
  type IpHeader,
  type KeyId,
  type LocatorRecord,
  type MapNotify,
  type MapRegister,
  type MapReply,
  type MapRequest,
  type NonceField,
  type RequestRecord,
  type UdpHeader,
  type XtrIdentity,
} from '../../src/lisp/index.js';
import type { UdpPacketSpec } from './ip-packet.js';

// ---------------------------------------------------------------- numbers

/** fc.record, but with ordinary objects: our decoder's output must deep-equal the model. */
function record<T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}


const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));
const nonceArb = fc.oneof(
  fc.constantFrom(0n, 0xffffffffffffffffn, 0x8000000000000000n),
  fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }),
);

/** Mostly zero, otherwise any value under `mask` (reserved bits are rarely set in practice). */
function bitsUnder(mask: number): fc.Arbitrary<number> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }).map((x) => (x & mask) >>> 0) },
  );
}

/** Mostly zero, otherwise any value up to `max`. */
function mostlyZero(max: number): fc.Arbitrary<number> {
  return fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max }) });
}

// ---------------------------------------------------------------- addresses

export const wsIpv4Arb: fc.Arbitrary<string> = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('0.0.0.0', '255.255.255.255', '10.0.0.0') },
  { weight: 8, arbitrary: fc.uint8Array({ minLength: 4, maxLength: 4 }).map(formatIpv4) },
);

// Zero-biased groups so that "::" compression is exercised at every position and length.
const groupArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constant(0xffff) },
  { weight: 4, arbitrary: u16 },
);

function ipv6FromGroups(groups: readonly number[]): string {
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >>> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return formatIpv6(bytes);
}

/**
 * Canonical (RFC 5952, as our formatIpv6 writes it) IPv6 text. IPv4-mapped (::ffff:0:0/96) and
 * IPv4-compatible (::/96) addresses are generated on purpose: tshark prints them in mixed
 * notation (see tsharkIpv6Text in the oracle), which the oracle checks explicitly.
 */
export const wsIpv6Arb: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.array(groupArb, { minLength: 8, maxLength: 8 }).map(ipv6FromGroups) },
  { weight: 1, arbitrary: fc.tuple(u16, u16).map(([a, b]) => ipv6FromGroups([0, 0, 0, 0, 0, 0xffff, a, b])) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 0xffff }), u16).map(([a, b]) => ipv6FromGroups([0, 0, 0, 0, 0, 0, a, b])) },
);

export const wsMacArb: fc.Arbitrary<string> = fc.uint8Array({ minLength: 6, maxLength: 6 }).map(formatMac);

/** Printable ASCII (fast-check's default string unit), 1 to 32 characters. */
export const wsNameArb: fc.Arbitrary<string> = fc.string({ minLength: 1, maxLength: 32 });

const ipv4AddressArb: fc.Arbitrary<Address> = wsIpv4Arb.map((address) => ({ afi: 'ipv4', address }));
const ipv6AddressArb: fc.Arbitrary<Address> = wsIpv6Arb.map((address) => ({ afi: 'ipv6', address }));
const macAddressArb: fc.Arbitrary<Address> = wsMacArb.map((address) => ({ afi: 'mac', address }));
const nameAddressArb: fc.Arbitrary<Address> = wsNameArb.map((name) => ({ afi: 'distinguished-name', name }));
const noAddressArb: fc.Arbitrary<Address> = fc.constant({ afi: 'none' });

/** An RLOC: IPv4 or IPv6. */
export const wsRlocArb: fc.Arbitrary<Address> = fc.oneof(ipv4AddressArb, ipv6AddressArb);

/** An EID prefix: an address and a mask-length that fits it. */
export interface Prefix {
  readonly eid: Address;
  readonly maskLength: number;
}

const plainPrefixArb: fc.Arbitrary<Prefix> = fc.oneof(
  { weight: 3, arbitrary: record({ eid: ipv4AddressArb, maskLength: fc.integer({ min: 0, max: 32 }) }) },
  { weight: 3, arbitrary: record({ eid: ipv6AddressArb, maskLength: fc.integer({ min: 0, max: 128 }) }) },
  { weight: 1, arbitrary: record({ eid: macAddressArb, maskLength: fc.integer({ min: 0, max: 48 }) }) },
  // Names have no bit length; lispers.net sends mask-length 0, but the field is a plain byte.
  { weight: 1, arbitrary: record({ eid: nameAddressArb, maskLength: fc.oneof(fc.constant(0), u8) }) },
);

/** An Instance-ID LCAF around a plain prefix; Rsvd2 (our maskLength) takes any byte value. */
const iidPrefixArb: fc.Arbitrary<Prefix> = record({ instanceId: u32, lcafMaskLength: fc.oneof(fc.constantFrom(0, 32), u8), inner: plainPrefixArb })
  .map(({ instanceId, lcafMaskLength, inner }) => ({
    eid: { afi: 'lcaf', lcaf: { type: 'instance-id', instanceId, maskLength: lcafMaskLength, address: inner.eid } },
    maskLength: inner.maskLength,
  }));

/** IPv4, IPv6, MAC, distinguished-name and Instance-ID-LCAF EID prefixes. */
export const wsPrefixArb: fc.Arbitrary<Prefix> = fc.oneof({ weight: 2, arbitrary: plainPrefixArb }, { weight: 1, arbitrary: iidPrefixArb });

/** Map-Request Source-EID: none, IPv4, IPv6, MAC or an Instance-ID LCAF (limitation 1: no names). */
export const wsSourceEidArb: fc.Arbitrary<Address> = fc.oneof(
  noAddressArb,
  ipv4AddressArb,
  ipv6AddressArb,
  macAddressArb,
  iidPrefixArb.map((p) => p.eid),
);

// ---------------------------------------------------------------- records

export const wsLocatorArb: fc.Arbitrary<LocatorRecord> = record({
  priority: u8,
  weight: u8,
  multicastPriority: u8,
  multicastWeight: u8,
  local: fc.boolean(),
  probed: fc.boolean(),
  reachable: fc.boolean(),
  unusedFlags: mostlyZero(0x1fff),
  locator: wsRlocArb,
});

const actionArb: fc.Arbitrary<Action> = fc.constantFrom(...Object.values(ACTION));
const ttlArb = fc.oneof(fc.constantFrom(0, 1440, 0xffffffff, (0x80000000 | 300) >>> 0), u32);

/** Positive (1-3 locators) and negative (no locator; any action) EID-records. */
export const wsEidRecordArb: fc.Arbitrary<EidRecord> = record({
    ttl: ttlArb,
    action: actionArb,
    authoritative: fc.boolean(),
    reserved: mostlyZero(0xfff),
    reservedHigh: mostlyZero(0xf),
    mapVersion: mostlyZero(0xfff),
    prefix: wsPrefixArb,
    locators: fc.oneof(
      { weight: 1, arbitrary: fc.constant([]) },
      { weight: 3, arbitrary: fc.array(wsLocatorArb, { minLength: 1, maxLength: 3 }) },
    ),
  })
  .map(({ prefix, ...r }) => ({ ...r, eid: prefix.eid, eidMaskLength: prefix.maskLength }));

export const wsRequestRecordArb: fc.Arbitrary<RequestRecord> = record({ reserved: fc.oneof(fc.constantFrom(0, 0x80), u8), prefix: wsPrefixArb })
  .map(({ reserved, prefix }) => ({ reserved, eidMaskLength: prefix.maskLength, eid: prefix.eid }));

const recordsArb = fc.array(wsEidRecordArb, { minLength: 1, maxLength: 4 });

// ---------------------------------------------------------------- control messages

// Reserved-bit masks of our codec (the encoders reject anything else).
const MAP_REQUEST_RESERVED = 0x00200000 | 0x000f8000;
const MAP_REPLY_RESERVED = 0x01ffff00;
const MAP_REGISTER_RESERVED = 0x01fff600;
const MAP_NOTIFY_RESERVED = 0x03ffff00; // without R 0x04000000, see limitation 4
export const MAP_NOTIFY_RTR = 0x04000000;
const INFO_RESERVED = 0x07ffffff;
const ECM_RESERVED = 0x00ffffff & ~(0x00400000 | 0x00200000);

const authArb = record({
  keyId: fc.oneof(fc.constantFrom(0, 1), u8),
  algorithmId: fc.oneof(fc.constantFrom(0, 1, 2, 3), u8),
  authData: fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.uint8Array({ minLength: 20, maxLength: 20 }),
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
    fc.uint8Array({ maxLength: 48 }),
  ),
});

const xtrIdentityArb: fc.Arbitrary<XtrIdentity> = record({
  xtrId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  siteId: nonceArb,
});

const itrRlocsArb = fc.oneof(
  { weight: 9, arbitrary: fc.array(wsRlocArb, { minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.array(wsRlocArb, { minLength: 1, maxLength: 32 }) },
);

export const wsMapRequestArb: fc.Arbitrary<MapRequest> = record({
    authoritative: fc.boolean(),
    probe: fc.boolean(),
    smr: fc.boolean(),
    pitr: fc.boolean(),
    smrInvoked: fc.boolean(),
    localXtr: fc.boolean(),
    dontMapReply: fc.boolean(),
    reservedFlags: bitsUnder(MAP_REQUEST_RESERVED),
    nonce: nonceArb,
    sourceEid: wsSourceEidArb,
    itrRlocs: itrRlocsArb,
    records: fc.array(wsRequestRecordArb, { minLength: 1, maxLength: 3 }),
    mapReply: fc.option(wsEidRecordArb, { nil: undefined }),
  })
  .map(({ mapReply, ...m }) => ({ type: 'map-request', ...m, ...(mapReply && { mapReply }) }));

export const wsMapReplyArb: fc.Arbitrary<MapReply> = record({
    probe: fc.boolean(),
    echoNonceCapable: fc.boolean(),
    security: fc.boolean(),
    reservedFlags: bitsUnder(MAP_REPLY_RESERVED),
    nonce: nonceArb,
    records: recordsArb,
  })
  .map((m) => ({ type: 'map-reply', ...m }));

export const wsMapRegisterArb: fc.Arbitrary<MapRegister> = record({
    proxyReply: fc.boolean(),
    securityCapable: fc.boolean(),
    wantMapNotify: fc.boolean(),
    useTtlForTimeout: fc.boolean(),
    reservedFlags: bitsUnder(MAP_REGISTER_RESERVED),
    nonce: nonceArb,
    auth: authArb,
    records: recordsArb,
    xtrIdentity: fc.option(xtrIdentityArb, { nil: undefined }),
  })
  .map(({ auth, xtrIdentity, ...m }) => ({ type: 'map-register', ...m, ...auth, ...(xtrIdentity && { xtrIdentity }) }));

/** MS-RTR authentication as the NAT-traversal draft puts it after a Map-Notify with R set. */
export interface MsRtrAuth {
  readonly keyId: number;
  readonly authData: Uint8Array;
}

export function msRtrTrailer(a: MsRtrAuth): Uint8Array {
  const out = new Uint8Array(4 + a.authData.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, a.keyId);
  view.setUint16(2, a.authData.length);
  out.set(a.authData, 4);
  return out;
}

const msRtrArb: fc.Arbitrary<MsRtrAuth> = record({
  keyId: u16,
  authData: fc.oneof(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.uint8Array({ maxLength: 32 })),
});

function mapNotifyArb(type: MapNotify['type']): fc.Arbitrary<MapNotify> {
  return fc
    .record({
      reservedFlags: bitsUnder(MAP_NOTIFY_RESERVED),
      nonce: nonceArb,
      auth: authArb,
      records: recordsArb,
      // Limitation 4: the xTR identity (I) or R with MS-RTR authentication, not both.
      tail: fc.oneof(
        fc.constant({ kind: 'none' as const }),
        xtrIdentityArb.map((xtrIdentity) => ({ kind: 'xtr-identity' as const, xtrIdentity })),
        msRtrArb.map((msRtr) => ({ kind: 'ms-rtr' as const, msRtr })),
      ),
    })
    .map(({ auth, tail, reservedFlags, ...m }): MapNotify => {
      switch (tail.kind) {
        case 'none':
          return { type, ...m, ...auth, reservedFlags };
        case 'xtr-identity':
          return { type, ...m, ...auth, reservedFlags, xtrIdentity: tail.xtrIdentity };
        case 'ms-rtr':
          return { type, ...m, ...auth, reservedFlags: (reservedFlags | MAP_NOTIFY_RTR) >>> 0, trailer: msRtrTrailer(tail.msRtr) };
      }
    });
}

export const wsMapNotifyArb: fc.Arbitrary<MapNotify> = mapNotifyArb('map-notify');
export const wsMapNotifyAckArb: fc.Arbitrary<MapNotify> = mapNotifyArb('map-notify-ack');

const natTraversalArb: fc.Arbitrary<Address> = record({
    msPort: fc.oneof(fc.constant(4342), u16),
    etrPort: fc.oneof(fc.constant(4341), u16),
    globalEtrRloc: fc.oneof(wsRlocArb, noAddressArb),
    msRloc: fc.oneof(wsRlocArb, noAddressArb),
    privateEtrRloc: fc.oneof(wsRlocArb, noAddressArb),
    // Limitation 10: RTR RLOCs are IPv4/IPv6, never AFI 0.
    rtrRlocs: fc.array(wsRlocArb, { maxLength: 3 }),
  })
  .map((nat) => ({ afi: 'lcaf', lcaf: { type: 'nat-traversal', ...nat } }));

function infoArb(type: InfoMessage['type']): fc.Arbitrary<InfoMessage> {
  return fc
    .record({
      reservedFlags: bitsUnder(INFO_RESERVED),
      nonce: nonceArb,
      auth: authArb,
      ttl: ttlArb,
      reserved: mostlyZero(0xff),
      prefix: wsPrefixArb,
      // Limitation 5: AFI 0 in a request, the NAT-Traversal LCAF in a reply.
      trailingAddress: type === 'info-request' ? noAddressArb : natTraversalArb,
    })
    .map(({ auth, prefix, ...m }) => ({ type, ...m, ...auth, eid: prefix.eid, eidMaskLength: prefix.maskLength }));
}

export const wsInfoRequestArb: fc.Arbitrary<InfoMessage> = infoArb('info-request');
export const wsInfoReplyArb: fc.Arbitrary<InfoMessage> = infoArb('info-reply');

// ---------------------------------------------------------------- ECM

/** Inner-header addresses: 198.18.0.0/15 and 2001:db8::/32 (documentation/benchmark space). */
const innerIpv4Arb = fc.tuple(fc.constantFrom(18, 19), u8, u8).map(([b, c, d]) => `198.${b}.${c}.${d}`);
const innerIpv6Arb = fc.array(groupArb, { minLength: 6, maxLength: 6 }).map((g) => ipv6FromGroups([0x2001, 0x0db8, ...g]));

const ephemeralPortArb = fc.integer({ min: 49152, max: 0xffff });

const ecmIpv4Arb: fc.Arbitrary<IpHeader> = record({
  version: fc.constant(4 as const),
  tos: u8,
  identification: u16,
  dontFragment: fc.boolean(),
  ttl: fc.integer({ min: 1, max: 255 }),
  source: innerIpv4Arb,
  destination: innerIpv4Arb,
});

const ecmIpv6Arb: fc.Arbitrary<IpHeader> = record({
  version: fc.constant(6 as const),
  trafficClass: u8,
  flowLabel: fc.integer({ min: 0, max: 0xfffff }),
  hopLimit: fc.integer({ min: 1, max: 255 }),
  source: innerIpv6Arb,
  destination: innerIpv6Arb,
});

/** What an ECM carries: mostly Map-Requests (to a map-resolver), also Map-Registers (NAT), ... */
export const wsEcmInnerArb: fc.Arbitrary<InnerMessage> = fc.oneof(
  { weight: 4, arbitrary: wsMapRequestArb },
  { weight: 2, arbitrary: wsMapRegisterArb },
  { weight: 1, arbitrary: wsMapReplyArb },
  { weight: 1, arbitrary: wsMapNotifyArb },
  { weight: 1, arbitrary: wsInfoRequestArb },
  { weight: 1, arbitrary: wsInfoReplyArb },
);

export const wsEcmArb: fc.Arbitrary<Ecm<InnerMessage>> = record({
    security: fc.boolean(),
    ddt: fc.boolean(),
    toEtr: fc.boolean(),
    toMapServer: fc.boolean(),
    rtrProcess: fc.boolean(),
    relayedByRtr: fc.boolean(),
    reservedFlags: bitsUnder(ECM_RESERVED),
    ip: fc.oneof(ecmIpv4Arb, ecmIpv6Arb),
    sourcePort: fc.oneof(fc.constant(4342), ephemeralPortArb),
    zeroChecksum: fc.boolean(),
    message: wsEcmInnerArb,
  })
  .map(({ sourcePort, zeroChecksum, ...m }) => {
    // Limitation 6: a zero inner UDP checksum only under IPv4.
    const udp: UdpHeader = { sourcePort, destinationPort: 4342, checksum: zeroChecksum && m.ip.version === 4 ? 'zero' : 'computed' };
    return { type: 'ecm', ...m, udp };
  });

// ---------------------------------------------------------------- data packets

const nonceFieldArb: fc.Arbitrary<NonceField> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  record({ kind: fc.constant('nonce' as const), nonce: fc.oneof(fc.constantFrom(0, 0xffffff), fc.integer({ min: 0, max: 0xffffff })), echoRequest: fc.boolean() }),
  record({ kind: fc.constant('map-version' as const), source: fc.integer({ min: 0, max: 0xfff }), destination: fc.integer({ min: 0, max: 0xfff }) }),
);

/** The 8-byte data header: every flag (N, L, E, V, I, R, KK), IIDs up to and including 0xFFFFFF. */
export const wsDataHeaderArb: fc.Arbitrary<DataHeader> = record({
    nonceField: nonceFieldArb,
    instanceId: fc.option(fc.oneof(fc.constantFrom(0, 1, 0xffffff), fc.integer({ min: 0, max: 0xffffff })), { nil: undefined }),
    locatorStatusBits: fc.option(u32, { nil: undefined }),
    reservedBit: fc.boolean(),
    keyId: fc.constantFrom<KeyId>(0, 1, 2, 3),
  })
  .map(({ instanceId, locatorStatusBits, ...h }) => ({
    ...h,
    ...(instanceId !== undefined && { instanceId }),
    ...(locatorStatusBits !== undefined && { locatorStatusBits: instanceId !== undefined ? locatorStatusBits & 0xff : locatorStatusBits }),
  }));

/** A data packet: the header, the outer UDP source port and the inner packet it encapsulates. */
export interface WsDataPacket {
  readonly header: DataHeader;
  /** 4341 (OOR) or 0xF000 | flow hash (lispers.net). */
  readonly sourcePort: number;
  /** Limitation 9: an empty UDP datagram on high ports. */
  readonly inner: UdpPacketSpec;
}

const innerSpecArb: fc.Arbitrary<UdpPacketSpec> = record({
    v6: fc.boolean(),
    v4: fc.tuple(innerIpv4Arb, innerIpv4Arb),
    v6addrs: fc.tuple(innerIpv6Arb, innerIpv6Arb),
    sourcePort: ephemeralPortArb,
    destinationPort: ephemeralPortArb,
    ttl: fc.integer({ min: 1, max: 255 }),
  })
  .map(({ v6, v4, v6addrs, sourcePort, destinationPort, ttl }) => {
    const [source, destination] = v6 ? v6addrs : v4;
    return { source, destination, sourcePort, destinationPort, ttl, payload: new Uint8Array(0) };
  });

export const wsDataPacketArb: fc.Arbitrary<WsDataPacket> = record({
  header: wsDataHeaderArb,
  sourcePort: fc.oneof(fc.constant(4341), fc.integer({ min: 0, max: 0xfff }).map((h) => 0xf000 | h)),
  inner: innerSpecArb,
});

// ---------------------------------------------------------------- by kind

export const WS_CONTROL_KINDS = [
  'map-request',
  'map-reply',
  'map-register',
  'map-notify',
  'map-notify-ack',
  'info-request',
  'info-reply',
  'ecm',
] as const;
export type WsControlKind = (typeof WS_CONTROL_KINDS)[number];

export const wsControlArbs: { readonly [K in WsControlKind]: fc.Arbitrary<InnerMessage | Ecm<InnerMessage>> } = {
  'map-request': wsMapRequestArb,
  'map-reply': wsMapReplyArb,
  'map-register': wsMapRegisterArb,
  'map-notify': wsMapNotifyArb,
  'map-notify-ack': wsMapNotifyAckArb,
  'info-request': wsInfoRequestArb,
  'info-reply': wsInfoReplyArb,
  ecm: wsEcmArb,
};
