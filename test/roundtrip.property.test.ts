// Property-based round trips over the whole LISP wire codec: for every address and LCAF kind,
// every record type, every control message kind and the data header, what our encoder writes
// decodes back to the same value, re-encodes to the same bytes, and raises no quirk the value did
// not ask for. Also: truncated input is always a DecodeError (never an exception), and HMAC
// sealing survives the round trip while any single flipped bit breaks it with the right reason.
//
// The regression tests at the end pin codec defects these properties found (now fixed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ECM_DEFAULTS,
  AUTH_DATA_OFFSET,
  DecodeError,
  authFields,
  decodeControl,
  decodeDataHeader,
  decodeSafely,
  encodeControl,
  encodeDataHeader,
  readAddress,
  readEidRecord,
  readLocatorRecord,
  readRequestRecord,
  sealAuthentication,
  verifyAuthentication,
  writeAddress,
  writeEidRecord,
  writeLocatorRecord,
  writeRequestRecord,
  writeIpUdp,
  type Address,
  type AuthAlgorithmId,
  type AuthFailure,
  type AuthKey,
  type ControlMessage,
  type DecodeResult,
  type EidRecord,
  type InfoMessage,
  type Lcaf,
  type LocatorRecord,
  type MapNotify,
  type MapRegister,
  type Quirk,
  type QuirkName,
  type RequestRecord,
} from '../src/lisp/index.js';
import { ByteReader, ByteWriter } from '../src/lisp/bytes.js';
import {
  PROPERTY_RUNS,
  addressArb,
  controlMessageArb,
  controlMessageArbs,
  dataHeaderArb,
  eidRecordArb,
  ipv4Arb,
  ipv6Arb,
  lcafArb,
  lcafKindArbs,
  locatorRecordArb,
  macArb,
  nameArb,
  requestRecordArb,
  type ControlMessageKind,
} from './support/arbitraries.js';

const runs = { numRuns: PROPERTY_RUNS };

// ---------------------------------------------------------------- helpers

/** A field codec at the ByteReader/ByteWriter level (addresses, records). */
interface FieldCodec<T> {
  readonly write: (w: ByteWriter, value: T) => void;
  readonly read: (r: ByteReader, quirks: Quirk[]) => T;
}

const addressCodec: FieldCodec<Address> = { write: writeAddress, read: (r, q) => readAddress(r, q) };
const locatorCodec: FieldCodec<LocatorRecord> = { write: writeLocatorRecord, read: readLocatorRecord };
const eidRecordCodec: FieldCodec<EidRecord> = { write: writeEidRecord, read: readEidRecord };
const requestRecordCodec: FieldCodec<RequestRecord> = { write: writeRequestRecord, read: readRequestRecord };

function encodeField<T>(codec: FieldCodec<T>, value: T): Uint8Array {
  const w = new ByteWriter();
  codec.write(w, value);
  return w.finish();
}

/** Decodes one whole field; leftover bytes are an error (the field must know its own end). */
function decodeField<T>(codec: FieldCodec<T>, bytes: Uint8Array): DecodeResult<T> {
  return decodeSafely((quirks) => {
    const r = new ByteReader(bytes);
    const value = codec.read(r, quirks);
    if (r.remaining !== 0) throw new DecodeError('trailing-bytes', r.offset, `${r.remaining} bytes after the field`);
    return value;
  });
}

function assertFieldRoundTrip<T>(codec: FieldCodec<T>, value: T): void {
  const bytes = encodeField(codec, value);
  const result = decodeField(codec, bytes);
  if (!result.ok) assert.fail(result.error.message);
  assert.deepEqual(result.value, value);
  assert.deepEqual(result.quirks, []);
  assert.deepEqual(encodeField(codec, result.value), bytes);
}

/**
 * The quirks a message of ours may raise: only 'trailing-bytes', once per trailer it carries
 * (the decoders keep unannounced bytes and report them), the ECM's inner message first.
 */
function expectedQuirks(m: ControlMessage): QuirkName[] {
  return [...(m.type === 'ecm' ? expectedQuirks(m.message) : []), ...(m.trailer ? ['trailing-bytes' as const] : [])];
}

function assertMessageRoundTrip(m: ControlMessage): void {
  const bytes = encodeControl(m);
  const result = decodeControl(bytes);
  if (!result.ok) assert.fail(result.error.message);
  assert.deepEqual(result.value, m);
  assert.deepEqual(
    result.quirks.map((q) => q.quirk),
    expectedQuirks(m),
  );
  assert.deepEqual(encodeControl(result.value), bytes);
}

/** A decoder may fail on bad input, but only with a DecodeError pointing into that input. */
function assertCleanFailure(result: DecodeResult<unknown>, input: Uint8Array): void {
  if (result.ok) return;
  assert.ok(result.error instanceof DecodeError);
  assert.ok(result.error.offset >= 0 && result.error.offset <= input.length, `offset ${result.error.offset} outside 0..${input.length}`);
}

/** Every strict prefix, shortest first (a decoder that throws rather than returning fails the test). */
function* strictPrefixes(bytes: Uint8Array): Generator<Uint8Array> {
  // slice, not subarray: each prefix gets its own buffer, so no read past its end can succeed.
  for (let n = 0; n < bytes.length; n++) yield bytes.slice(0, n);
}

// ---------------------------------------------------------------- addresses and LCAFs

const addressKinds: readonly (readonly [string, fc.Arbitrary<Address>])[] = [
  ['none', fc.constant<Address>({ afi: 'none' })],
  ['ipv4', ipv4Arb],
  ['ipv6', ipv6Arb],
  ['mac', macArb],
  ['distinguished-name', nameArb],
  ...(Object.entries(lcafKindArbs) as [string, fc.Arbitrary<Lcaf>][]).map(
    ([kind, arb]) => [`lcaf ${kind}`, arb.map((lcaf): Address => ({ afi: 'lcaf', lcaf }))] as const,
  ),
  ['any lcaf', lcafArb.map((lcaf): Address => ({ afi: 'lcaf', lcaf }))],
  ['any address', addressArb],
];

for (const [kind, arb] of addressKinds) {
  test(`address round-trip: ${kind}`, () => {
    fc.assert(
      fc.property(arb, (a) => assertFieldRoundTrip(addressCodec, a)),
      runs,
    );
  });
}

test('IPv6 text is RFC 5952 canonical (the WHATWG URL serializer agrees)', () => {
  // An independent oracle: URL host serialization compresses the first longest zero run, like
  // RFC 5952 §4.2.3, and prints lowercase hex without leading zeros.
  fc.assert(
    fc.property(ipv6Arb, (a) => {
      const text = a.afi === 'ipv6' ? a.address : assert.fail('not IPv6');
      assert.equal(new URL(`http://[${text}]/`).hostname, `[${text}]`);
    }),
    runs,
  );
});

// ---------------------------------------------------------------- records

test('locator-record round-trip', () => {
  fc.assert(
    fc.property(locatorRecordArb, (l) => assertFieldRoundTrip(locatorCodec, l)),
    runs,
  );
});

test('EID-record round-trip', () => {
  fc.assert(
    fc.property(eidRecordArb, (e) => assertFieldRoundTrip(eidRecordCodec, e)),
    runs,
  );
});

test('request-record round-trip', () => {
  fc.assert(
    fc.property(requestRecordArb, (q) => assertFieldRoundTrip(requestRecordCodec, q)),
    runs,
  );
});

// ---------------------------------------------------------------- control messages

for (const [kind, arb] of Object.entries(controlMessageArbs) as [ControlMessageKind, fc.Arbitrary<ControlMessage>][]) {
  test(`message round-trip: ${kind}`, () => {
    fc.assert(fc.property(arb, assertMessageRoundTrip), runs);
  });
}

test('a Map-Notify with exactly 24 unannounced bytes round-trips as the map-notify-trailer quirk', () => {
  const arb = fc
    .tuple(fc.oneof(controlMessageArbs['map-notify'], controlMessageArbs['map-notify-ack']), fc.uint8Array({ minLength: 24, maxLength: 24 }))
    .filter(([m]) => m.xtrIdentity === undefined)
    .map(([m, trailer]): MapNotify => ({ ...m, trailer }));
  fc.assert(
    fc.property(arb, (m) => {
      const bytes = encodeControl(m);
      const result = decodeControl(bytes);
      if (!result.ok) assert.fail(result.error.message);
      assert.deepEqual(result.value, m);
      assert.deepEqual(
        result.quirks.map((q) => q.quirk),
        ['map-notify-trailer'],
      );
      assert.deepEqual(encodeControl(result.value), bytes);
    }),
    runs,
  );
});

test('a message decodes the same from inside a larger buffer (no byteOffset assumptions)', () => {
  fc.assert(
    fc.property(controlMessageArb, fc.uint8Array({ minLength: 1, maxLength: 9 }), fc.uint8Array({ maxLength: 9 }), (m, before, after) => {
      const bytes = encodeControl(m);
      const framed = new Uint8Array(before.length + bytes.length + after.length);
      framed.set(before);
      framed.set(bytes, before.length);
      framed.set(after, before.length + bytes.length);
      const result = decodeControl(framed.subarray(before.length, before.length + bytes.length));
      if (!result.ok) assert.fail(result.error.message);
      assert.deepEqual(result.value, m);
    }),
    runs,
  );
});

// ---------------------------------------------------------------- data header

test('data header round-trip', () => {
  fc.assert(
    fc.property(dataHeaderArb, fc.nat(16), (h, offset) => {
      const bytes = encodeDataHeader(h);
      const result = decodeDataHeader(bytes);
      if (!result.ok) assert.fail(result.error.message);
      assert.deepEqual(result.value, h);
      assert.deepEqual(result.quirks, []);
      assert.deepEqual(encodeDataHeader(result.value), bytes);
      // The hot path reads the header in place, behind other headers.
      const framed = new Uint8Array(offset + bytes.length);
      framed.set(bytes, offset);
      assert.deepEqual(decodeDataHeader(framed, offset), result);
    }),
    runs,
  );
});

// ---------------------------------------------------------------- truncation

test('truncated messages: never an exception; a prefix decodes only as the bytes it holds', () => {
  fc.assert(
    fc.property(controlMessageArb, (m) => {
      for (const prefix of strictPrefixes(encodeControl(m))) {
        const result = decodeControl(prefix);
        assertCleanFailure(result, prefix);
        // Cuts inside a trailer (or an xTR-ID, which then borrows trailer bytes) still decode;
        // such a value must describe exactly the shorter input.
        if (result.ok) assert.deepEqual(encodeControl(result.value), prefix);
      }
    }),
    runs,
  );
});

/** Fields are self-delimiting and carry no trailer, so no strict prefix of one may decode. */
function fieldTruncationTest<T>(kind: string, arb: fc.Arbitrary<T>, codec: FieldCodec<T>): void {
  test(`truncated ${kind}: always a DecodeError inside the input`, () => {
    fc.assert(
      fc.property(arb, (value) => {
        for (const prefix of strictPrefixes(encodeField(codec, value))) {
          const result = decodeField(codec, prefix);
          assert.equal(result.ok, false, 'a strict prefix decoded');
          assertCleanFailure(result, prefix);
        }
      }),
      runs,
    );
  });
}

fieldTruncationTest('address', addressArb, addressCodec);
fieldTruncationTest('locator-record', locatorRecordArb, locatorCodec);
fieldTruncationTest('EID-record', eidRecordArb, eidRecordCodec);
fieldTruncationTest('request-record', requestRecordArb, requestRecordCodec);

test('truncated data header: truncated at its start', () => {
  fc.assert(
    fc.property(dataHeaderArb, (h) => {
      for (const prefix of strictPrefixes(encodeDataHeader(h))) {
        const result = decodeDataHeader(prefix);
        if (result.ok) assert.fail('a strict prefix decoded');
        assert.equal(result.error.reason, 'truncated');
        assert.equal(result.error.offset, 0);
      }
    }),
    runs,
  );
});

// ---------------------------------------------------------------- authentication

const authKeyArb: fc.Arbitrary<AuthKey> = fc
  .tuple(fc.nat(255), fc.constantFrom<AuthAlgorithmId>(1, 2), fc.uint8Array({ maxLength: 64 }))
  .map(([keyId, algorithmId, secret]) => ({ keyId, algorithmId, secret }));

type Authenticated = MapRegister | MapNotify | InfoMessage;
const authenticatedKinds = ['map-register', 'map-notify', 'map-notify-ack', 'info-request', 'info-reply'] as const;
/** Message types (high nibble of byte 0) that carry the authentication block. */
const AUTHENTICATED_TYPES: readonly number[] = [3, 4, 5, 7];

/** What verifyAuthentication must say about `sealed` with bit `bit` (0 = MSB of byte 0) flipped. */
function flipVerdict(sealed: Uint8Array, bit: number): AuthFailure {
  const byte = bit >>> 3;
  const flipped = (sealed[byte] ?? 0) ^ (0x80 >>> (bit & 7));
  switch (byte) {
    case 0:
      // The type nibble: another authenticated type is just a changed message.
      return bit < 4 && !AUTHENTICATED_TYPES.includes(flipped >>> 4) ? 'not-authenticated-type' : 'mac-mismatch';
    case 12:
      return 'unknown-key-id';
    case 13:
      return 'algorithm-mismatch';
    case 14:
    case 15: {
      const length = byte === 14 ? (flipped << 8) | (sealed[15] ?? 0) : ((sealed[14] ?? 0) << 8) | flipped;
      return sealed.length < AUTH_DATA_OFFSET + length ? 'truncated' : 'bad-auth-length';
    }
    default:
      return 'mac-mismatch';
  }
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >>> 3] = (out[bit >>> 3] ?? 0) ^ (0x80 >>> (bit & 7));
  return out;
}

for (const kind of authenticatedKinds) {
  test(`authentication: ${kind} sealed with a random key verifies; any flipped bit fails for its reason`, () => {
    const arb = controlMessageArbs[kind] as fc.Arbitrary<Authenticated>;
    fc.assert(
      fc.property(arb, authKeyArb, fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), (m, key, seeds) => {
        const sealed = sealAuthentication(encodeControl({ ...m, ...authFields(key) }), key);
        const keyFor = (id: number): AuthKey | undefined => (id === key.keyId ? key : undefined);
        assert.deepEqual(verifyAuthentication(sealed, keyFor), { ok: true, keyId: key.keyId });
        // The sealed bytes are still an ordinary message of ours.
        const decoded = decodeControl(sealed);
        if (!decoded.ok) assert.fail(decoded.error.message);
        assert.deepEqual(encodeControl(decoded.value), sealed);
        // Every bit of the type nibble and of Key ID .. Auth Data Length, plus a few anywhere.
        const anywhere = seeds.map((seed) => seed % (sealed.length * 8));
        const bits = [0, 1, 2, 3, ...Array.from({ length: 32 }, (_, i) => 12 * 8 + i), ...anywhere];
        for (const bit of bits) {
          assert.deepEqual(verifyAuthentication(flipBit(sealed, bit), keyFor), { ok: false, reason: flipVerdict(sealed, bit) }, `bit ${bit}`);
        }
      }),
      runs,
    );
  });
}

// ---------------------------------------------------------------- regressions

const NONE: Address = { afi: 'none' };

test('regression: a NAT-Traversal LCAF whose body is exactly 16 bytes does not swallow what follows it', () => {
  // Length 16 is also lispers.net's fixed, wrong Length; a decoder that always read such a body to
  // the end of the enclosing field would take a genuine 16-byte body (ports 4 + 192.0.2.1 6 + none 2 + none 2 +
  // one RTR none 2) followed by another address and absorb that address as an extra RTR-RLOC.
  const nat: Address = {
    afi: 'lcaf',
    lcaf: { type: 'nat-traversal', msPort: 0, etrPort: 0, globalEtrRloc: { afi: 'ipv4', address: '192.0.2.1' }, msRloc: NONE, privateEtrRloc: NONE, rtrRlocs: [NONE] },
  };
  const list: Address = { afi: 'lcaf', lcaf: { type: 'afi-list', items: [nat, NONE] } };
  assertFieldRoundTrip(addressCodec, list);
});

test('regression: an LCAF body over 65535 bytes is a RangeError, not a wrapped Length', () => {
  const opaque: Address = { afi: 'lcaf', lcaf: { type: 'opaque', lcafType: 200, rsvd1: 0, flags: 0, rsvd2: 0, payload: new Uint8Array(65530) } };
  const list: Address = { afi: 'lcaf', lcaf: { type: 'afi-list', items: [opaque] } };
  // Unchecked, this wrote Length 2 (65538 mod 65536) and the bytes no longer decoded.
  assert.throws(() => encodeField(addressCodec, list), RangeError);
});

test('regression: an IPv4 ECM whose datagram exceeds 65535 bytes is a RangeError, not wrapped lengths', () => {
  const m: ControlMessage = {
    ...ECM_DEFAULTS,
    ip: { version: 4, tos: 0, identification: 0, dontFragment: false, ttl: 64, source: '192.0.2.1', destination: '192.0.2.2' },
    udp: { sourcePort: 4342, destinationPort: 4342, checksum: 'zero' },
    message: { type: 'map-reply', probe: false, echoNonceCapable: false, security: false, reservedFlags: 0, nonce: 1n, records: [], trailer: new Uint8Array(65520) },
  };
  // Unchecked, the IPv4 path wrote total length 24 (mod 65536).
  assert.throws(() => encodeControl(m), RangeError);
});

test('regression: an ECM whose UDP datagram is empty is truncated, whatever byte follows it', () => {
  // Peeking the inner type byte without a bounds check read the first byte after the datagram:
  // 0x8? gave 'too-deep', 0x0? 'bad-type', 0x1? 'truncated'.
  const reasons = [0x80, 0x00, 0x10].map((next) => {
    const w = new ByteWriter();
    w.u32(0x80000000);
    writeIpUdp(w, { version: 4, tos: 0, identification: 0, dontFragment: false, ttl: 64, source: '192.0.2.1', destination: '192.0.2.2' }, { sourcePort: 4342, destinationPort: 4342, checksum: 'zero' }, new Uint8Array(0));
    w.u8(next);
    const result = decodeControl(w.finish());
    return result.ok ? 'ok' : result.error.reason;
  });
  assert.deepEqual(reasons, ['truncated', 'truncated', 'truncated']);
});

test('regression: values wider than their sub-field are a RangeError, not folded into neighbouring bits', () => {
  // bytes.ts: "a number that does not fit its field is a caller's bug" (RangeError). These fields
  // are packed by hand; unchecked, an out-of-range value became a different message.
  const record: EidRecord = { ttl: 1, action: 0, authoritative: false, reserved: 0, reservedHigh: 0, mapVersion: 0, eidMaskLength: 0, eid: NONE, locators: [] };
  const locator: LocatorRecord = { priority: 1, weight: 1, multicastPriority: 1, multicastWeight: 1, local: false, probed: false, reachable: false, unusedFlags: 0, locator: NONE };
  const ecm = (ip: Record<string, number>, udp: Record<string, number> = {}): ControlMessage => ({
    ...ECM_DEFAULTS,
    ip:
      'trafficClass' in ip || 'flowLabel' in ip || 'hopLimit' in ip
        ? { version: 6, trafficClass: 0, flowLabel: 0, hopLimit: 64, source: '2001:db8::1', destination: '2001:db8::2', ...ip }
        : { version: 4, tos: 0, identification: 0, dontFragment: false, ttl: 64, source: '192.0.2.1', destination: '192.0.2.2', ...ip },
    udp: { sourcePort: 4342, destinationPort: 4342, checksum: 'zero', ...udp },
    message: { type: 'map-reply', probe: false, echoNonceCapable: false, security: false, reservedFlags: 0, nonce: 1n, records: [] },
  });
  const cases: readonly (readonly [string, () => unknown])[] = [
    ['EID-record reserved 0x1000 (becomes the A bit)', () => encodeField(eidRecordCodec, { ...record, reserved: 0x1000 })],
    ['EID-record mapVersion 0x1000 (becomes reservedHigh)', () => encodeField(eidRecordCodec, { ...record, mapVersion: 0x1000 })],
    ['locator unusedFlags 0x2000 (dropped)', () => encodeField(locatorCodec, { ...locator, unusedFlags: 0x2000 })],
    ['IPv4 tos 256', () => encodeControl(ecm({ tos: 256 }))],
    ['IPv4 identification 0x10000', () => encodeControl(ecm({ identification: 0x10000 }))],
    ['IPv4 ttl 256', () => encodeControl(ecm({ ttl: 256 }))],
    ['IPv6 trafficClass 256 (overwrites the version)', () => encodeControl(ecm({ trafficClass: 256 }))],
    ['IPv6 flowLabel 0x100000 (becomes traffic class)', () => encodeControl(ecm({ flowLabel: 0x100000 }))],
    ['UDP source port 0x10000', () => encodeControl(ecm({}, { sourcePort: 0x10000 }))],
  ];
  const accepted = cases.filter(([, encode]) => {
    try {
      encode();
      return true;
    } catch (error) {
      return !(error instanceof RangeError);
    }
  });
  assert.deepEqual(
    accepted.map(([name]) => name),
    [],
    'encoded without a RangeError',
  );
});
