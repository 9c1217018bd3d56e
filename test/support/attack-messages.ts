// The datagrams of the attack suite, built with the project's own encoders: the key offers, SMRs
// and port-0 requests of issue 12's attacks, and the valid messages of every type that the
// mutation flood starts from. Pure: the tests and the hostile host's scripts share them.
import type { KeyId } from '../../src/crypto/session.js';
import { ip, NO_ADDRESS, type Address } from '../../src/lisp/address.js';
import { authFields, passwordKey, sealAuthentication } from '../../src/lisp/auth.js';
import { encodeControl } from '../../src/lisp/control.js';
import { encodeDataHeader, type KeyId as DataKeyId } from '../../src/lisp/data-header.js';
import { ECM_DEFAULTS, type Ecm } from '../../src/lisp/ecm.js';
import type { InfoMessage } from '../../src/lisp/info.js';
import type { MapNotify, MapRegister } from '../../src/lisp/map-register.js';
import type { MapReply } from '../../src/lisp/map-reply.js';
import { MAP_REQUEST_DEFAULTS, type MapRequest } from '../../src/lisp/map-request.js';
import { EID_RECORD_DEFAULTS, LOCATOR_DEFAULTS, type EidRecord } from '../../src/lisp/records.js';
import { securityKeyAddress } from '../../src/lisp/xtr-control/key-exchange.js';
import { encodeEcmMapRequest } from '../../src/lisp/xtr-control/resolver.js';

export interface KeyOfferSpec {
  readonly nonce: bigint;
  /** The EID asked for (a host: /32 or /128). */
  readonly eid: string;
  /** The locator the Security Key LCAF names: whose receive key the ETR is to replace. */
  readonly locator: string;
  readonly publicKey: Uint8Array;
  readonly keyId: KeyId;
  /** P: an RLOC probe. Default false. */
  readonly probe?: boolean;
}

/** The first ITR-RLOC of a key offer: a suite-5 Security Key LCAF around `locator`. */
export function offeredRloc(s: Pick<KeyOfferSpec, 'locator' | 'publicKey' | 'keyId'>): Address {
  return securityKeyAddress(5, s.keyId, s.publicKey, ip(s.locator));
}

const hostRecord = (eid: string): MapRequest['records'][number] => ({ reserved: 0, eidMaskLength: eid.includes(':') ? 128 : 32, eid: ip(eid) });

/** A plain Map-Request with a key offer, as an ITR sends straight to an ETR (RLOC probes are these with P). */
export function keyOfferRequest(s: KeyOfferSpec): Uint8Array {
  const m: MapRequest = { ...MAP_REQUEST_DEFAULTS, probe: s.probe ?? false, nonce: s.nonce, sourceEid: NO_ADDRESS, itrRlocs: [offeredRloc(s)], records: [hostRecord(s.eid)] };
  return encodeControl(m);
}

/** An ECM'd Map-Request with a key offer, as an ITR sends to its map-resolver (which forwards it to the ETR). */
export function keyOfferEcm(s: KeyOfferSpec & { readonly innerSource: string; readonly innerSourcePort: number }): Uint8Array {
  return encodeEcmMapRequest({ nonce: s.nonce, iid: 0, eid: s.eid, sourceEid: NO_ADDRESS, itrRlocs: [offeredRloc(s)], innerSource: s.innerSource, sourcePort: s.innerSourcePort });
}

/**
 * An ECM'd Map-Request without a key: with `toEtr` it is what a map-server forwards to an ETR.
 * `innerSourcePort` is where the answer is to go (0 in the port-0 attack).
 */
export function plainEcm(s: { readonly nonce: bigint; readonly eid: string; readonly itrRloc: string; readonly innerSource: string; readonly innerSourcePort: number; readonly toEtr: boolean }): Uint8Array {
  return ecmRequest({ ...s, itrRloc: ip(s.itrRloc) });
}

/**
 * A key offer as a map-server forwards it (ECM with E): sent straight to an ETR by anyone, it
 * names any locator, so it is how a stranger makes an ETR agree keys for fake locators.
 */
export function forwardedKeyOffer(s: KeyOfferSpec & { readonly innerSource: string }): Uint8Array {
  return ecmRequest({ nonce: s.nonce, eid: s.eid, itrRloc: offeredRloc(s), innerSource: s.innerSource, innerSourcePort: 4342, toEtr: true });
}

function ecmRequest(s: { readonly nonce: bigint; readonly eid: string; readonly itrRloc: Address; readonly innerSource: string; readonly innerSourcePort: number; readonly toEtr: boolean }): Uint8Array {
  const request: MapRequest = { ...MAP_REQUEST_DEFAULTS, nonce: s.nonce, sourceEid: NO_ADDRESS, itrRlocs: [s.itrRloc], records: [hostRecord(s.eid)] };
  const ecm: Ecm<MapRequest> = {
    ...ECM_DEFAULTS,
    toEtr: s.toEtr,
    ip: s.eid.includes(':')
      ? { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, source: s.innerSource, destination: s.eid }
      : { version: 4, tos: 0, identification: 0, dontFragment: false, ttl: 64, source: s.innerSource, destination: s.eid },
    udp: { sourcePort: s.innerSourcePort, destinationPort: 4342, checksum: 'computed' },
    message: request,
  };
  return encodeControl(ecm);
}

/** A plain Map-Request (an RLOC probe with `probe`) answered to `itrRloc`, without a key. */
export function plainRequest(s: { readonly nonce: bigint; readonly eid: string; readonly itrRloc: string; readonly probe: boolean }): Uint8Array {
  return encodeControl({ ...MAP_REQUEST_DEFAULTS, probe: s.probe, nonce: s.nonce, sourceEid: NO_ADDRESS, itrRlocs: [ip(s.itrRloc)], records: [hostRecord(s.eid)] } satisfies MapRequest);
}

/** A Solicit-Map-Request (S) naming `prefix`, as the ETR at `etrLocator` sends it when its mapping changed. */
export function solicitMapRequest(s: { readonly nonce: bigint; readonly eid: string; readonly prefixLength: number; readonly etrLocator: string }): Uint8Array {
  const m: MapRequest = {
    ...MAP_REQUEST_DEFAULTS,
    smr: true,
    nonce: s.nonce,
    sourceEid: ip(s.eid),
    itrRlocs: [ip(s.etrLocator)],
    records: [{ reserved: 0, eidMaskLength: s.prefixLength, eid: ip(s.eid) }],
  };
  return encodeControl(m);
}

/** An EID-record of `prefix`/`length` on one locator, as a Map-Reply or Map-Register carries it. */
export function eidRecord(eid: string, length: number, locator: string, ttlMinutes = 1440): EidRecord {
  return {
    ...EID_RECORD_DEFAULTS,
    ttl: ttlMinutes,
    authoritative: true,
    eidMaskLength: length,
    eid: ip(eid),
    locators: [{ ...LOCATOR_DEFAULTS, local: true, reachable: true, locator: ip(locator) }],
  };
}

export function mapReply(nonce: bigint, records: readonly EidRecord[], probe = false): Uint8Array {
  const m: MapReply = { type: 'map-reply', probe, echoNonceCapable: false, security: false, reservedFlags: 0, nonce, records: [...records] };
  return encodeControl(m);
}

const REGISTER_FLAGS = { type: 'map-register', proxyReply: false, securityCapable: false, wantMapNotify: true, useTtlForTimeout: true, reservedFlags: 0 } as const;

/**
 * Valid messages of every type, aimed at the lab (the EIDs and locators that make the daemons look
 * deeper than a decode): the mutation flood's seeds besides the reference captures.
 */
export function generatedSeeds(
  lab: { readonly eids: readonly string[]; readonly locators: readonly string[]; readonly own: string; readonly password: string },
  random: (n: number) => Uint8Array,
): { readonly control: Uint8Array[]; readonly data: Uint8Array[] } {
  const nonce = (): bigint => Buffer.from(random(8)).readBigUInt64BE(0);
  const key = passwordKey(0, 2, lab.password);
  const seeds: Uint8Array[] = [];
  const data: Uint8Array[] = [];
  for (const eid of lab.eids) {
    const publicKey = random(32);
    // The inner IP header of an ECM is of the EID's family.
    const innerSource = eid.includes(':') ? 'fd00::66' : lab.own;
    for (const locator of [lab.own, ...lab.locators]) {
      seeds.push(keyOfferRequest({ nonce: nonce(), eid, locator, publicKey, keyId: 1 }));
      seeds.push(keyOfferRequest({ nonce: nonce(), eid, locator, publicKey, keyId: 2, probe: true }));
      seeds.push(keyOfferEcm({ nonce: nonce(), eid, locator, publicKey, keyId: 1, innerSource, innerSourcePort: 4342 }));
      seeds.push(plainEcm({ nonce: nonce(), eid, itrRloc: locator, innerSource, innerSourcePort: 4342, toEtr: true }));
      seeds.push(plainRequest({ nonce: nonce(), eid, itrRloc: locator, probe: true }));
      seeds.push(solicitMapRequest({ nonce: nonce(), eid, prefixLength: eid.includes(':') ? 128 : 28, etrLocator: locator }));
      seeds.push(mapReply(nonce(), [eidRecord(eid, eid.includes(':') ? 128 : 28, locator)]));
      const records = [eidRecord(eid, eid.includes(':') ? 128 : 28, locator, 3)];
      const register: MapRegister = { ...REGISTER_FLAGS, nonce: nonce(), ...authFields(key), records };
      seeds.push(sealAuthentication(encodeControl(register), key));
      const notify: MapNotify = { type: 'map-notify', reservedFlags: 0, nonce: register.nonce, ...authFields(key), records: register.records };
      seeds.push(sealAuthentication(encodeControl(notify), key));
    }
  }
  const info: InfoMessage = {
    type: 'info-request',
    reservedFlags: 0,
    nonce: nonce(),
    ...authFields(key),
    ttl: 1440,
    reserved: 0,
    eidMaskLength: 32,
    eid: ip(lab.eids[0] ?? '192.0.2.1'),
    trailingAddress: NO_ADDRESS,
  };
  seeds.push(sealAuthentication(encodeControl(info), key));
  for (let k = 0; k < 16; k++) {
    const payload = random(20 + (k % 8) * 100);
    const header = encodeDataHeader({
      nonceField: k & 1 ? { kind: 'nonce', nonce: k, echoRequest: false } : { kind: 'none' },
      ...(k & 2 ? { instanceId: 0 } : {}),
      reservedBit: false,
      keyId: (k & 3) as DataKeyId,
    });
    const packet = new Uint8Array(header.length + payload.length);
    packet.set(header);
    packet.set(payload, header.length);
    data.push(packet);
  }
  return { control: seeds, data };
}
