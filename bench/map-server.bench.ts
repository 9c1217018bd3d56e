// Map-server speed and memory (issue 5) with 10,000 and 100,000 registered EIDs, through the
// sans-IO handlers (src/lisp/map-server): Map-Registers authenticated by the site key alone and
// signed crypto-EID registrations (hash-EID public key + static EID signature + replay-proof
// registration signature, all verified); ECM'd Map-Requests answered by proxy reply, unsigned and
// signed (lispers.net SHA-1 format) against a site whose lookup policy makes the signature count;
// and the heap each registration holds.
//
// Every input is built before anything is timed. Each crypto-EID derives from its own key, so the
// signed store holds one distinct P-256 key per EID (createECDH, imported as KeyObjects: not
// generateKeyPairSync, whose KeyGenJob can deadlock a later JWK export when GC frees it in Node
// 20); the inputs are signed with node:crypto, in the raw r||s form the handler verifies.
import { createECDH, createHmac, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { deriveCryptoEid, eidSignatureInput, mapRequestSignatureInput, registrationSigningInput, type EidText } from '../src/crypto/index.js';
import {
  ECM_DEFAULTS,
  authFields,
  EID_RECORD_DEFAULTS,
  encodeControl,
  formatIpv4,
  formatIpv6,
  ip,
  ipv4,
  LOCATOR_DEFAULTS,
  MAP_REQUEST_DEFAULTS,
  NO_ADDRESS,
  passwordKey,
  prefix,
  sealAuthentication,
  withInstanceId,
  type Address,
  type AuthKey,
  type Ecm,
  type EidRecord,
  type IpHeader,
  type LocatorRecord,
  type MapRegister,
  type MapRequest,
} from '../src/lisp/index.js';
import { RegisterHandler, RequestHandler, type MapServerConfig, type SiteConfig } from '../src/lisp/map-server/index.js';
import { addAttestationTicket, jsonLocator, registrationRecordDigest } from '../src/lisp/registration-record.js';
import { create, toBinary } from '@bufbuild/protobuf';
import { controllerCertHash } from '../src/control/cert-hash.js';
import { sealEnvelope } from '../src/control/envelope.js';
import { AttestationTicketSchema, HashAlgorithm } from '../src/control/proto/index.js';
import { ticketChecker } from '../src/control/ticket.js';
import { createControllerPki } from '../src/control/x509/controller-pki.js';
import { softwareSigner } from '../src/control/x509/software-signer.js';
import { importP256PrivateKey } from '../src/crypto/p256.js';
import { compare } from './measure.js';

type Print = (line: string) => void;

const IID = 1000;
/** The handlers' clock: registration signatures carry T0S, every message is handled at T0 or a few seconds later. */
const T0 = 1_795_000_000_000;
const T0S = T0 / 1000;
const SOURCE = { address: '198.18.0.11', port: 4342 };
const ITR = '198.18.0.21';
const PLAIN_KEY = passwordKey(1, 2, 'plain-site-secret');
const CRYPTO_KEY = passwordKey(2, 2, 'crypto-site-secret');
/** Signed refreshes per timed run (each run needs its own nonces, so its own signatures). */
const SIGNED_BATCH = 2_000;
/** Distinct Map-Requests per case, used round-robin. */
const REQUESTS = 4_096;
const SIGNED_REQUESTS = 1_024;
/** The signed Map-Requests come from this many registered crypto-EIDs. */
const REQUESTERS = 16;

const PLAIN: SiteConfig = {
  name: 'plain',
  keys: [PLAIN_KEY],
  allowedPrefixes: [{ prefix: prefix('10.0.0.0/8'), acceptMoreSpecifics: true }],
  requireSignature: false,
  requireRegistrationSignature: false,
};
// Crypto-EIDs only; looking them up takes a requester whose signature holds (a policy other than
// allow-all, and crypto-EID targets, both make the handler verify it).
const CRYPTO: SiteConfig = {
  name: 'crypto',
  keys: [CRYPTO_KEY],
  allowedPrefixes: [{ prefix: prefix(`[${IID}]fd00::/8`), acceptMoreSpecifics: true }],
  requireSignature: false,
  requireRegistrationSignature: true,
  lookupPolicy: { allow: [prefix(`[${IID}]fd00::/8`)], deny: [] },
};
const CONFIG: MapServerConfig = { sites: [PLAIN, CRYPTO], cryptoEidPrefixes: [{ prefix: prefix(`[${IID}]fd00::/8`), derivation: 'eve' }] };

// DER SubjectPublicKeyInfo of a P-256 key, up to the uncompressed point.
const SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

const gc = (globalThis as { gc?: () => void }).gc;

// ---------------------------------------------------------------- inputs

const rloc = (address: string): LocatorRecord => ({ ...LOCATOR_DEFAULTS, local: true, locator: ipv4(address) });

function plainAddress(i: number): string {
  return formatIpv4(Uint8Array.of(10, (i >>> 16) & 255, (i >>> 8) & 255, i & 255));
}

function mapRegister(records: readonly EidRecord[], key: AuthKey, nonce: bigint): Uint8Array {
  const m: MapRegister = {
    type: 'map-register',
    proxyReply: true,
    securityCapable: false,
    wantMapNotify: true,
    useTtlForTimeout: true,
    reservedFlags: 0,
    nonce,
    ...authFields(key),
    records,
  };
  return sealAuthentication(encodeControl(m), key);
}

/** EID i (1-based) of 10.0.0.0/8 as a /32 with one RLOC, P and M set, like an OOR xTR's. */
function plainRegister(i: number): Uint8Array {
  const record: EidRecord = { ...EID_RECORD_DEFAULTS, ttl: 3, authoritative: true, eidMaskLength: 32, eid: ipv4(plainAddress(i)), locators: [rloc(`198.18.${(i >>> 8) & 255}.${i & 255}`)] };
  return mapRegister([record], PLAIN_KEY, BigInt(i));
}

interface CryptoEid {
  readonly publicKey: KeyObject;
  /** Kept only for the keys that sign again (refreshes, Map-Requests). */
  privateKey: KeyObject | undefined;
  readonly eid: EidText;
  /** The crypto-EID record with its static EID signature, before the registration signature. */
  readonly base: EidRecord;
  readonly hashEidRecord: EidRecord;
  /** The EID signature's input and raw bytes, for the bare-verify baseline. */
  readonly eidSignature: { readonly input: Buffer; readonly raw: Buffer };
  /** The same for the last registration signature made. */
  registrationSignature: { readonly input: Uint8Array; readonly raw: Buffer } | undefined;
}

const signRaw = (hash: 'sha256' | 'sha1', key: KeyObject, input: Uint8Array): Buffer => sign(hash, input, { key, dsaEncoding: 'ieee-p1363' });
const verifyP256 = (key: KeyObject, input: Uint8Array, raw: Uint8Array): boolean => verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, raw);

function cryptoEid(i: number): CryptoEid {
  const ecdh = createECDH('prime256v1');
  const point = ecdh.generateKeys(); // 04 || X || Y
  const d = Buffer.alloc(32);
  const scalar = ecdh.getPrivateKey();
  scalar.copy(d, 32 - scalar.length);
  const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
  const privateKey = createPrivateKey({ key: { kty: 'EC', crv: 'P-256', d: b64url(d), x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33, 65)) }, format: 'jwk' });
  const spki = Buffer.concat([SPKI_PREFIX, point]);
  const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const body = spki.toString('base64');
  const pem = `-----BEGIN PUBLIC KEY-----\n${body.slice(0, 64)}\n${body.slice(64)}\n-----END PUBLIC KEY-----\n`;
  const derived = deriveCryptoEid({ iid: IID, spki });
  const eid: EidText = { iid: IID, text: formatIpv6(derived.eid) };
  const eidInput = Buffer.from(eidSignatureInput(eid), 'latin1');
  const eidRaw = signRaw('sha256', privateKey, eidInput);
  const signature = eidRaw.toString('base64');
  const base: EidRecord = {
    ...EID_RECORD_DEFAULTS,
    ttl: 3,
    authoritative: true,
    eidMaskLength: 128,
    eid: withInstanceId(IID, ip(eid.text)),
    locators: [rloc(`198.18.${(i >>> 8) & 255}.${i & 255}`), jsonLocator({ 'signature-eid': eidSignatureInput(eid), signature })],
  };
  const hashEidRecord: EidRecord = {
    ...EID_RECORD_DEFAULTS,
    ttl: 3,
    authoritative: true,
    eidMaskLength: 0,
    eid: withInstanceId(IID, { afi: 'distinguished-name', name: derived.hashEidName }),
    // lispers.net's hash-EID value: base64 of the PEM text (p256.ts publicKeyJsonValue).
    locators: [jsonLocator({ 'public-key': Buffer.from(pem).toString('base64') })],
  };
  return { publicKey, privateKey, eid, base, hashEidRecord, eidSignature: { input: eidInput, raw: eidRaw }, registrationSignature: undefined };
}

/**
 * The hash-EID record and the crypto-EID record (`base`, by default the EID's own), registration-
 * signed under `nonce` and `timestamp` (registration-record.ts addRegistrationSignature, signed by
 * node:crypto).
 */
function signedRegister(c: CryptoEid, nonce: bigint, timestamp: number, base: EidRecord = c.base): Uint8Array {
  if (!c.privateKey) throw new Error('the key no longer signs');
  const input = registrationSigningInput({ eid: c.eid, nonce, timestamp, recordDigest: registrationRecordDigest(base) });
  const raw = signRaw('sha256', c.privateKey, input);
  c.registrationSignature = { input, raw };
  const signature = raw.toString('base64');
  const record: EidRecord = {
    ...base,
    locators: [...base.locators, jsonLocator({ 'registration-signature': signature, 'signed-eid': eidSignatureInput(c.eid), timestamp })],
  };
  return mapRegister([c.hashEidRecord, record], CRYPTO_KEY, nonce);
}

function ecm(message: MapRequest, ipHeader: IpHeader): Uint8Array {
  const m: Ecm<MapRequest> = {
    ...ECM_DEFAULTS,
    ip: ipHeader,
    udp: { sourcePort: 61_000, destinationPort: 4342, checksum: 'computed' },
    message,
  };
  return encodeControl(m);
}

function mapRequest(nonce: bigint, eid: Address, eidMaskLength: number, sourceEid: Address): MapRequest {
  return { ...MAP_REQUEST_DEFAULTS, nonce, sourceEid, itrRlocs: [ipv4(ITR)], records: [{ reserved: 0, eidMaskLength, eid }] };
}

const nonceBytes = (nonce: bigint): Uint8Array => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, nonce);
  return b;
};

/** A deterministic spread of indices in [0, n). */
function* spread(count: number, n: number): Generator<number> {
  let x = 0x2545f491;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield (x >>> 0) % n;
  }
}

// ---------------------------------------------------------------- measurements

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function heapNow(): { readonly heap: number; readonly buffers: number } {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

function rate(n: number, s: number): string {
  const r = n / s;
  return r >= 1e6 ? `${(r / 1e6).toFixed(2)} M/s` : `${(r / 1e3).toFixed(1)} k/s`;
}

/** Registers every message (new EIDs) into `handler`; prints the rate (one run) and the memory they hold. */
function fill(title: string, handler: RegisterHandler, messages: readonly Uint8Array[], expectedSize: number, print: Print): void {
  const before = heapNow();
  const start = process.hrtime.bigint();
  for (const bytes of messages) handler.handle({ bytes, source: SOURCE }, T0);
  const elapsed = seconds(start);
  const after = heapNow();
  if (handler.counters.total() !== 0 || handler.store.size !== expectedSize) {
    throw new Error(`${title}: ${handler.store.size} registrations, refusals ${JSON.stringify(handler.counters.snapshot())}`);
  }
  const per = (bytes: number): string => `${Math.round(bytes / messages.length)} B`;
  print(`${title}: ${count(messages.length)} new EIDs registered in ${elapsed.toFixed(2)} s (${rate(messages.length, elapsed)}, one run)`);
  print(
    `  memory per EID: heap ${per(after.heap - before.heap)} + array buffers ${per(after.buffers - before.buffers)}` +
      ` (${((after.heap - before.heap) / 2 ** 20).toFixed(1)} MiB heap in all${gc ? '' : '; approximate, run node with --expose-gc'})`,
  );
}

function atSize(n: number, print: Print): void {
  const started = process.hrtime.bigint();
  const half = n / 2;
  print(`Map-server with ${count(n)} registered EIDs: ${count(half)} HMAC-only /32s, then ${count(half)} signed crypto-EIDs`);
  const server = new RegisterHandler(CONFIG);
  let sink = 0;

  // -------------------------------------------------------------- filling the store
  let start = process.hrtime.bigint();
  const plain = Array.from({ length: half }, (_, i) => plainRegister(i + 1));
  print(`  (${count(half)} HMAC-only Map-Registers built in ${seconds(start).toFixed(1)} s)`);
  fill('HMAC-only Map-Registers (one /32 each)', server, plain, half, print);

  start = process.hrtime.bigint();
  const keys = Array.from({ length: half }, (_, i) => cryptoEid(i + 1));
  const signed = keys.map((c, i) => signedRegister(c, BigInt(i + 1), T0S));
  // Six batches of refreshes (warm-up + five runs) of the first SIGNED_BATCH EIDs, each under
  // fresh nonces and a later timestamp, as an xTR's refreshes are.
  const batches = Array.from({ length: 6 }, (_, b) => keys.slice(0, SIGNED_BATCH).map((c, i) => signedRegister(c, BigInt(n + b * SIGNED_BATCH + i + 1), T0S + 1 + b)));
  const requesters = keys.slice(0, REQUESTERS);
  for (const c of keys.slice(REQUESTERS)) c.privateKey = undefined;
  print(`  (${count(half)} P-256 keys, crypto-EIDs and signed Map-Registers built in ${seconds(start).toFixed(1)} s)`);
  fill('Signed crypto-EID Map-Registers (hash-EID key + EID, two registrations each)', server, signed, half + 2 * half, print);

  // -------------------------------------------------------------- registrations
  compare(
    `Map-Register refresh, HMAC-SHA-256 only, store of ${count(n)}`,
    { name: 'bare createHmac over the message', run: (k) => { for (let i = 0; i < k; i++) sink += createHmac('sha256', PLAIN_KEY.secret).update(plain[i % half] ?? new Uint8Array()).digest()[0] ?? 0; } },
    { name: 'RegisterHandler.handle (+ Map-Notify)', run: (k) => { for (let i = 0; i < k; i++) sink += server.handle({ bytes: plain[i % half] ?? new Uint8Array(), source: SOURCE }, T0 + 1000).actions.length; } },
    Math.min(half, 50_000),
    print,
  );
  let batch = 0;
  compare(
    `Map-Register refresh, signed crypto-EID (HMAC, key import, 2 ECDSA verifies), store of ${count(n)}`,
    {
      name: 'two bare ECDSA P-256 verifies (EID, registration)',
      run: (k) => {
        for (let i = 0; i < k; i++) {
          const c = keys[i % SIGNED_BATCH];
          const r = c?.registrationSignature;
          if (!c || !r) continue;
          sink += verifyP256(c.publicKey, c.eidSignature.input, c.eidSignature.raw) ? 1 : 0;
          sink += verifyP256(c.publicKey, r.input, r.raw) ? 1 : 0;
        }
      },
    },
    {
      name: 'RegisterHandler.handle (+ Map-Notify)',
      run: (k) => {
        const messages = batches[batch++] ?? [];
        for (let i = 0; i < k; i++) sink += server.handle({ bytes: messages[i] ?? new Uint8Array(), source: SOURCE }, T0 + 2000).actions.length;
      },
    },
    SIGNED_BATCH,
    print,
  );
  if (server.counters.total() !== 0 || server.store.size !== 3 * half) throw new Error(`refreshes refused: ${JSON.stringify(server.counters.snapshot())}`);

  // -------------------------------------------------------------- lookups
  const requests = new RequestHandler(server);
  // Unsigned, of registered /32s.
  const lookups = [...spread(REQUESTS, half)].map((i, r) => {
    const target = plainAddress(i + 1);
    const header: IpHeader = { version: 4, tos: 0, identification: 0, dontFragment: false, ttl: 64, source: '192.0.2.200', destination: target };
    return { bytes: ecm(mapRequest(BigInt(r + 1), ipv4(target), 32, NO_ADDRESS), header), address: Uint8Array.from(target.split('.').map(Number)) };
  });
  // Signed: a registered crypto-EID asks for another, with lispers.net's SHA-1 signature.
  const signedLookups = [...spread(SIGNED_REQUESTS, half)].map((t, r) => {
    const requester = requesters[r % REQUESTERS];
    const target = keys[t];
    if (!requester?.privateKey || !target) throw new Error('unreachable');
    const nonce = BigInt(0x5000_0000 + r);
    const input = Buffer.from(mapRequestSignatureInput(nonceBytes(nonce), requester.eid, target.eid), 'latin1');
    const raw = signRaw('sha1', requester.privateKey, input);
    const host = eidSignatureInput(requester.eid);
    const json = JSON.stringify({ 'source-eid': host, 'signature-eid': host, signature: `${raw.toString('base64')}\n` });
    const sourceEid: Address = { afi: 'lcaf', lcaf: { type: 'json', json, jsonFlags: 0, address: NO_ADDRESS } };
    const header: IpHeader = { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, source: requester.eid.text, destination: target.eid.text };
    return { bytes: ecm(mapRequest(nonce, withInstanceId(IID, ip(target.eid.text)), 128, sourceEid), header), input, raw, publicKey: requester.publicKey };
  });
  const now = T0 + 3000;
  const check = requests.handle({ bytes: lookups[0]?.bytes ?? new Uint8Array(), source: SOURCE }, now).outcome;
  const checkSigned = requests.handle({ bytes: signedLookups[0]?.bytes ?? new Uint8Array(), source: SOURCE }, now).outcome;
  if (check.kind !== 'proxy-reply' || checkSigned.kind !== 'proxy-reply' || checkSigned.requester?.kind !== 'authenticated') {
    throw new Error(`Map-Requests not answered: ${JSON.stringify(requests.counters.snapshot())}`);
  }
  compare(
    `Map-Request (ECM), unsigned, proxy reply, store of ${count(n)}`,
    { name: 'bare RegistrationStore.lookup of the target', run: (k) => { for (let i = 0; i < k; i++) sink += server.store.lookup(0, lookups[i % REQUESTS]?.address ?? new Uint8Array(), now) ? 1 : 0; } },
    { name: 'RequestHandler.handle', run: (k) => { for (let i = 0; i < k; i++) sink += requests.handle({ bytes: lookups[i % REQUESTS]?.bytes ?? new Uint8Array(), source: SOURCE }, now).actions.length; } },
    50_000,
    print,
  );
  compare(
    `Map-Request (ECM), signed (SHA-1), lookup policy, proxy reply, store of ${count(n)}`,
    {
      name: 'bare ECDSA P-256/SHA-1 verify of the signature',
      run: (k) => {
        for (let i = 0; i < k; i++) {
          const l = signedLookups[i % SIGNED_REQUESTS];
          if (l) sink += verify('sha1', l.input, { key: l.publicKey, dsaEncoding: 'ieee-p1363' }, l.raw) ? 1 : 0;
        }
      },
    },
    { name: 'RequestHandler.handle', run: (k) => { for (let i = 0; i < k; i++) sink += requests.handle({ bytes: signedLookups[i % SIGNED_REQUESTS]?.bytes ?? new Uint8Array(), source: SOURCE }, now).actions.length; } },
    5_000,
    print,
  );
  const c = requests.counters.snapshot();
  if (Object.keys(c).some((name) => name !== 'reply-proxy' && name !== 'signature-valid')) throw new Error(`Map-Requests not answered: ${JSON.stringify(c)}`);
  if (sink === 42) print('');
  print(`  (${count(n)} EIDs: ${seconds(started).toFixed(0)} s in all)`);
}

/**
 * What requiring attestation tickets costs a signed refresh: the same Map-Registers (records that
 * carry a controller-signed ticket) to a site that ignores tickets (baseline) and to one that
 * requires them (subject: decode, one more ECDSA verify, the admission check).
 */
async function ticketOverhead(print: Print): Promise<void> {
  const pki = await createControllerPki({ dnsName: 'controller.bench', ipAddresses: [], now: new Date(T0 - 86_400_000), random: (n) => randomBytes(n) });
  const signer = softwareSigner(importP256PrivateKey(pki.signing.keyPem));
  const keys = Array.from({ length: SIGNED_BATCH }, (_, i) => cryptoEid(i + 1));
  const ticketed = await Promise.all(
    keys.map(async (c) => {
      const ticket = create(AttestationTicketSchema, { deviceUuid: 'bench', instanceIds: [IID], eidPrefixes: [`[${IID}]${c.eid.text}/128`], notBeforeUnixMs: BigInt(T0 - 60_000), notAfterUnixMs: BigInt(T0 + 600_000) });
      const envelope = await sealEnvelope(toBinary(AttestationTicketSchema, ticket), signer, { certHash: controllerCertHash(pki.signing.certPem), algo: HashAlgorithm.SHA256_32BYTES });
      return addAttestationTicket(c.base, envelope);
    }),
  );
  const ticketSite: SiteConfig = { ...CRYPTO, requireAttestationTicket: true };
  const handlers = {
    ignoring: new RegisterHandler(CONFIG),
    requiring: new RegisterHandler({ ...CONFIG, sites: [PLAIN, ticketSite], ticketCheck: ticketChecker([pki.signing.certPem]) }),
  };
  // Fresh nonces and timestamps per run: a warm-up and five runs, for each handler.
  const batches = (offset: number) =>
    Array.from({ length: 7 }, (_, b) => keys.map((c, i) => signedRegister(c, BigInt(offset + b * SIGNED_BATCH + i + 1), T0S + b, ticketed[i])));
  const inputs = { ignoring: batches(1_000_000), requiring: batches(2_000_000) };
  let sink = 0;
  const runner = (name: 'ignoring' | 'requiring') => {
    let batch = 0;
    return (k: number): void => {
      const messages = inputs[name][batch++] ?? [];
      for (let i = 0; i < k; i++) sink += handlers[name].handle({ bytes: messages[i] ?? new Uint8Array(), source: SOURCE }, T0 + 2000).actions.length;
    };
  };
  compare(
    'Map-Register, signed crypto-EID carrying an attestation ticket',
    { name: 'site that ignores tickets', run: runner('ignoring') },
    { name: 'site that requires them (ticket verified)', run: runner('requiring') },
    SIGNED_BATCH,
    print,
  );
  for (const [name, handler] of Object.entries(handlers)) {
    if (handler.counters.total() !== 0) throw new Error(`${name}: refusals ${JSON.stringify(handler.counters.snapshot())}`);
  }
  if (sink === 0) throw new Error('nothing was handled');
}

export async function mapServerBenchmarks(print: Print, sizes: readonly number[] = [10_000, 100_000]): Promise<void> {
  print(`map-server: heap figures ${gc ? 'after global.gc()' : 'without global.gc (approximate: run node with --expose-gc)'}`);
  for (const n of sizes) {
    atSize(n, print);
    print('');
  }
  await ticketOverhead(print);
}
