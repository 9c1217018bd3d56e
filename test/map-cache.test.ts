// The map-cache: longest-prefix match against a brute-force reference (random prefixes, removals,
// expiry), instance and family isolation, TTL encodings and the exact expiry boundary, negative
// entries, replace semantics, static entries, and locator choice (priority, 255, reachability,
// weights over 100k synthetic flows, flow stickiness, fragments).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ACTION,
  EID_RECORD_DEFAULTS,
  LOCATOR_DEFAULTS,
  formatIpv4,
  formatIpv6,
  ip,
  parseIpv4,
  parseIpv6,
  withInstanceId,
  type Action,
  type Address,
  type EidRecord,
  type LocatorRecord,
} from '../src/lisp/index.js';
import {
  DEFAULT_RECEIVER_DECIDES_TTL_MINUTES,
  MISS,
  MapCache,
  chooseLocator,
  describeEntry,
  flowHash,
  recordTtlMs,
  type LookupResult,
  type MapCacheEntry,
  type MapCacheLocator,
} from '../src/lisp/map-cache.js';
import { eidPrefix, formatPrefix, parsePrefix, prefix, prefixContains, prefixCovers, type EidPrefix } from '../src/lisp/prefix.js';
import { prng } from './support/prng.js';

// ---------------------------------------------------------------- helpers

function loc(address: string, fields: Partial<Omit<LocatorRecord, 'locator'>> = {}): LocatorRecord {
  return { ...LOCATOR_DEFAULTS, ...fields, locator: ip(address) };
}

function rec(eid: Address, eidMaskLength: number, locators: readonly LocatorRecord[], fields: Partial<Omit<EidRecord, 'eid' | 'eidMaskLength' | 'locators'>> = {}): EidRecord {
  return { ...EID_RECORD_DEFAULTS, ...fields, eidMaskLength, eid, locators };
}

/** A record for `text` (`address/length`), TTL in minutes unless `ttl` says otherwise. */
function recordFor(text: string, locators: readonly LocatorRecord[], fields: Partial<Omit<EidRecord, 'eid' | 'eidMaskLength' | 'locators'>> = {}): EidRecord {
  const [address = '', length = ''] = text.split('/');
  return rec(ip(address), Number(length), locators, fields);
}

function bytesOf(text: string): Uint8Array {
  const b = text.includes(':') ? parseIpv6(text) : parseIpv4(text);
  assert.ok(b, text);
  return b;
}

function entryOf<S>(r: LookupResult<S>): MapCacheEntry<S> {
  assert.notEqual(r.kind, 'miss');
  return r as MapCacheEntry<S>;
}

function lookupText<S>(cache: MapCache<S>, iid: number, address: string, now: number): string {
  const r = cache.lookupAddress(iid, address, now);
  return r.kind === 'miss' ? 'miss' : formatPrefix(r.prefix);
}

function secondsTtl(seconds: number): number {
  return (0x80000000 | seconds) >>> 0;
}

interface FlowSpec {
  readonly source: Uint8Array;
  readonly destination: Uint8Array;
  readonly protocol: number;
  readonly sourcePort?: number;
  readonly destinationPort?: number;
  /** IPv4: MF and fragment offset (8-byte units); IPv6: a fragment header with them. */
  readonly fragment?: { readonly more: boolean; readonly offset: number };
  /** Bytes that must not matter: TTL, identification, payload. */
  readonly noise?: number;
  /** IPv6: a hop-by-hop and a destination-options header before the transport header. */
  readonly extensionHeaders?: boolean;
}

/** An IPv4 or IPv6 packet (family from the address length) with a transport header. */
function packet(spec: FlowSpec): Uint8Array {
  const noise = spec.noise ?? 0;
  const ports = new Uint8Array(20);
  const pv = new DataView(ports.buffer);
  pv.setUint16(0, spec.sourcePort ?? 0);
  pv.setUint16(2, spec.destinationPort ?? 0);
  pv.setUint32(4, noise * 7919);
  pv.setUint32(8, noise);
  if (spec.source.length === 4) {
    const p = new Uint8Array(20 + ports.length);
    const v = new DataView(p.buffer);
    p[0] = 0x45;
    v.setUint16(2, p.length);
    v.setUint16(4, noise & 0xffff);
    const frag = spec.fragment;
    v.setUint16(6, frag ? (frag.more ? 0x2000 : 0) | frag.offset : 0x4000);
    p[8] = 1 + (noise % 250);
    p[9] = spec.protocol;
    v.setUint16(10, noise & 0xffff);
    p.set(spec.source, 12);
    p.set(spec.destination, 16);
    p.set(ports, 20);
    return p;
  }
  const ext: number[] = [];
  let next = spec.protocol;
  if (spec.fragment) {
    ext.unshift(next, 0, (spec.fragment.offset << 3) >> 8, ((spec.fragment.offset << 3) & 0xf8) | (spec.fragment.more ? 1 : 0), 0, 0, noise >> 8, noise & 0xff);
    next = 44;
  }
  if (spec.extensionHeaders) {
    // Destination options then hop-by-hop in front: 8 and 16 bytes.
    ext.unshift(next, 0, 1, 4, 0, 0, 0, 0);
    next = 60;
    ext.unshift(next, 1, 1, 12, ...new Array<number>(12).fill(0));
    next = 0;
  }
  const p = new Uint8Array(40 + ext.length + ports.length);
  const v = new DataView(p.buffer);
  v.setUint32(0, 0x60000000 | (noise & 0xfffff));
  v.setUint16(4, ext.length + ports.length);
  p[6] = next;
  p[7] = 1 + (noise % 250);
  p.set(spec.source, 8);
  p.set(spec.destination, 24);
  p.set(ext, 40);
  p.set(ports, 40 + ext.length);
  return p;
}

const TCP = 6;
const UDP = 17;
const ICMP = 1;

// ---------------------------------------------------------------- prefixes

test('prefix text: [iid]address/length, host bits cleared, bad text refused', () => {
  const p = prefix('[1000]fd00::1/8');
  assert.equal(formatPrefix(p), '[1000]fd00::/8');
  assert.equal(formatPrefix(prefix('192.0.2.77/25')), '[0]192.0.2.0/25');
  assert.equal(formatPrefix(prefix('2001:db8::1', 7)), '[7]2001:db8::1/128');
  assert.equal(formatPrefix(prefix('[4294967295]198.18.0.0/15')), '[4294967295]198.18.0.0/15');
  assert.equal(formatPrefix(eidPrefix(3, 4, new Uint8Array(4), 0)), '[3]0.0.0.0/0');
  for (const bad of ['192.0.2.0/33', '2001:db8::/129', '[4294967296]192.0.2.0/24', '192.0.2/24', 'fd00::/-1', '192.0.2.0/024', '[1]', '']) {
    assert.equal(parsePrefix(bad), undefined, bad);
  }
  assert.throws(() => prefix('192.0.2.0/40'), RangeError);
  assert.throws(() => eidPrefix(0, 4, new Uint8Array(16), 8), RangeError);
  assert.throws(() => eidPrefix(-1, 4, new Uint8Array(4), 8), RangeError);
  assert.ok(prefixContains(prefix('198.18.0.0/15'), bytesOf('198.19.255.255')));
  assert.ok(!prefixContains(prefix('198.18.0.0/15'), bytesOf('198.20.0.0')));
  assert.ok(prefixCovers(prefix('fd00::/8'), prefix('fd12:3456::/32')));
  assert.ok(!prefixCovers(prefix('[1]fd00::/8'), prefix('[2]fd12:3456::/32')));
  assert.ok(!prefixCovers(prefix('fd12:3456::/32'), prefix('fd00::/8')));
});

// ---------------------------------------------------------------- longest-prefix match

interface RefEntry {
  readonly prefix: EidPrefix;
  readonly entry: MapCacheEntry<unknown>;
}

function referenceLookup(ref: readonly RefEntry[], iid: number, family: 4 | 6, address: Uint8Array, now: number): MapCacheEntry<unknown> | undefined {
  let best: RefEntry | undefined;
  for (const r of ref) {
    const p = r.prefix;
    if (p.instanceId !== iid || p.family !== family || !(now < r.entry.expiresAt) || !prefixContains(p, address)) continue;
    if (best === undefined || p.length > best.prefix.length) best = r;
  }
  return best?.entry;
}

function sameKey(a: EidPrefix, b: EidPrefix): boolean {
  return a.instanceId === b.instanceId && a.family === b.family && a.length === b.length && a.address.every((x, i) => x === b.address[i]);
}

/** An address near one of a few bases, so that random prefixes nest and share long stems. */
function derived(bases: readonly Uint8Array[], family: 4 | 6, base: number, flips: readonly number[]): Uint8Array {
  const bits = family === 4 ? 32 : 128;
  const out = Uint8Array.from((bases[base % bases.length] ?? new Uint8Array(16)).subarray(0, bits / 8));
  for (const f of flips) {
    const bit = bits - 1 - (f % bits);
    out[bit >>> 3] = (out[bit >>> 3] ?? 0) ^ (0x80 >>> (bit & 7));
  }
  return out;
}

const flipArb = fc.array(fc.oneof(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 127 })), { maxLength: 3 });
const opArb = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      iid: fc.constantFrom(0, 1, 0xffffffff),
      family: fc.constantFrom(4 as const, 6 as const),
      base: fc.nat(3),
      flips: flipArb,
      length: fc.oneof(fc.nat(128), fc.constantFrom(0, 8, 24, 32, 64, 120, 128)),
      lifetime: fc.oneof(fc.constant('static' as const), fc.integer({ min: 1, max: 90 })),
      negative: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('expire' as const) }) },
  // Whole seconds land exactly on expiry boundaries (lifetimes are whole seconds); odd ms between.
  { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 40 }).map((s) => s * 1000), fc.integer({ min: 0, max: 1500 })) }) },
);

test('lookup agrees with a brute-force longest-prefix match over random prefixes, removals and expiry', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ minLength: 16, maxLength: 16 }), { minLength: 1, maxLength: 4 }),
      // size 'max': fast-check's default size would keep these arrays to about ten elements.
      fc.array(opArb, { maxLength: 150, size: 'max' }),
      fc.array(fc.record({ iid: fc.constantFrom(0, 1, 2, 0xffffffff), family: fc.constantFrom(4 as const, 6 as const), base: fc.nat(3), flips: flipArb }), { minLength: 1, maxLength: 24, size: 'max' }),
      (bases, ops, probes) => {
        const cache = new MapCache();
        let ref: RefEntry[] = [];
        let now = 1_000_000;
        const check = (): void => {
          for (const q of probes) {
            const address = derived(bases, q.family, q.base, q.flips);
            const buffer = new Uint8Array(address.length + 7);
            buffer.set(address, 5);
            const got = cache.lookup(q.iid, q.family, buffer, 5, now);
            const want = referenceLookup(ref, q.iid, q.family, address, now);
            assert.equal(got, want ?? MISS, `[${q.iid}] ${q.family === 4 ? formatIpv4(address) : formatIpv6(address)} at ${now}`);
          }
          assert.equal(cache.size, ref.length);
        };
        for (const op of ops) {
          switch (op.op) {
            case 'insert': {
              const bits = op.family === 4 ? 32 : 128;
              const p = eidPrefix(op.iid, op.family, derived(bases, op.family, op.base, op.flips), op.length % (bits + 1));
              const existing = ref.find((r) => sameKey(r.prefix, p));
              const text = op.family === 4 ? formatIpv4(p.address) : formatIpv6(p.address);
              const locators = op.negative ? [] : [loc('192.0.2.1')];
              const outcome =
                op.lifetime === 'static'
                  ? cache.insertStatic(p, op.negative ? { action: ACTION.drop } : { locators: [{ address: '192.0.2.1' }] }, now)
                  : cache.insertRecord(op.iid, rec(withInstanceId(op.iid, ip(text)), p.length, locators, { ttl: secondsTtl(op.lifetime), action: ACTION.nativelyForward }), now);
              if (op.lifetime !== 'static' && existing?.entry.origin === 'static') {
                assert.deepEqual(outcome, { outcome: 'ignored', reason: 'static-entry' });
                break;
              }
              assert.ok(outcome.outcome === 'inserted' || outcome.outcome === 'replaced');
              assert.equal(outcome.outcome, existing ? 'replaced' : 'inserted');
              assert.equal(outcome.previous, existing?.entry);
              ref = ref.filter((r) => r !== existing);
              ref.push({ prefix: p, entry: outcome.entry });
              assert.equal(cache.get(p), outcome.entry);
              break;
            }
            case 'remove': {
              const victim = ref[op.pick % Math.max(1, ref.length)];
              if (!victim) break;
              assert.equal(cache.remove(victim.prefix), victim.entry);
              assert.equal(cache.remove(victim.prefix), undefined);
              ref = ref.filter((r) => r !== victim);
              break;
            }
            case 'expire': {
              const dead = new Set(ref.filter((r) => now >= r.entry.expiresAt).map((r) => r.entry));
              assert.deepEqual(new Set(cache.expire(now)), dead);
              ref = ref.filter((r) => !dead.has(r.entry));
              break;
            }
            case 'advance':
              now += op.ms;
              break;
          }
          check();
        }
        // Every stored prefix's first and last address, and the addresses just outside it.
        for (const r of ref) {
          const p = r.prefix;
          const first = Uint8Array.from(p.address);
          const last = Uint8Array.from(p.address);
          for (let bit = p.length; bit < first.length * 8; bit++) last[bit >>> 3] = (last[bit >>> 3] ?? 0) | (0x80 >>> (bit & 7));
          const outside = (a: Uint8Array, step: 1 | -1): Uint8Array => {
            const out = Uint8Array.from(a);
            for (let i = out.length - 1; i >= 0; i--) {
              const v = (out[i] ?? 0) + step;
              out[i] = v & 0xff;
              if (v >= 0 && v <= 0xff) break;
            }
            return out;
          };
          for (const address of [first, last, outside(first, -1), outside(last, 1)]) {
            const want = referenceLookup(ref, p.instanceId, p.family, address, now);
            assert.equal(cache.lookupAddress(p.instanceId, address, now), want ?? MISS);
          }
        }
        // Iteration yields exactly the stored entries, by instance, IPv4 first, in address order.
        const listed = [...cache];
        assert.deepEqual(new Set(listed), new Set(ref.map((r) => r.entry)));
        assert.equal(listed.length, ref.length);
        const sortKey = (e: MapCacheEntry<unknown>): string =>
          `${e.prefix.instanceId.toString(16).padStart(8, '0')}${e.prefix.family}${Array.from(e.prefix.address, (b) => b.toString(2).padStart(8, '0')).join('').slice(0, e.prefix.length)}`;
        const keys = listed.map(sortKey);
        assert.deepEqual(keys, [...keys].sort());
        const learned = ref.filter((r) => r.entry.origin === 'learned');
        assert.equal(cache.nextExpiry(), learned.length === 0 ? undefined : Math.min(...learned.map((r) => r.entry.expiresAt)));
        // Removing everything leaves an empty cache that still answers.
        for (const r of ref) assert.equal(cache.remove(r.prefix), r.entry);
        assert.equal(cache.size, 0);
        assert.equal(cache.learnedCount, 0);
        assert.deepEqual([...cache], []);
        assert.equal(cache.lookupAddress(0, new Uint8Array(16), now), MISS);
      },
    ),
    { numRuns: 300 },
  );
});

test('lookup reads the destination in place at any offset, and refuses offsets outside the packet', () => {
  const cache = new MapCache();
  cache.insertStatic(prefix('198.18.0.0/15'), { locators: [{ address: '192.0.2.1' }] }, 0);
  cache.insertStatic(prefix('fd00::/8'), { locators: [{ address: '2001:db8::1' }] }, 0);
  const v4 = packet({ source: bytesOf('192.0.2.9'), destination: bytesOf('198.19.7.7'), protocol: UDP });
  assert.equal(formatPrefix(entryOf(cache.lookup(0, 4, v4, 16, 0)).prefix), '[0]198.18.0.0/15');
  assert.equal(cache.lookup(0, 4, v4, 12, 0), MISS);
  const v6 = packet({ source: bytesOf('2001:db8::9'), destination: bytesOf('fd12::1'), protocol: UDP });
  assert.equal(formatPrefix(entryOf(cache.lookup(0, 6, v6, 24, 0)).prefix), '[0]fd00::/8');
  assert.equal(cache.lookup(0, 6, v6, 8, 0), MISS);
  assert.throws(() => cache.lookup(0, 4, v4, v4.length - 3, 0), RangeError);
  assert.throws(() => cache.lookup(0, 6, v6, v6.length - 15, 0), RangeError);
  assert.throws(() => cache.lookup(0, 4, v4, -1, 0), RangeError);
  assert.throws(() => cache.lookupAddress(0, 'not-an-address', 0), RangeError);
});

test('instances are isolated, and so are the two families', () => {
  const cache = new MapCache();
  cache.insertStatic(prefix('[1]fd00::/8'), { locators: [{ address: '192.0.2.1' }] }, 0);
  cache.insertStatic(prefix('[2]fd00::/16'), { locators: [{ address: '192.0.2.2' }] }, 0);
  cache.insertStatic(prefix('[4294967295]2001:db8::/32'), { action: ACTION.drop }, 0);
  cache.insertStatic(prefix('[1]198.18.0.0/15'), { action: ACTION.nativelyForward }, 0);
  assert.equal(lookupText(cache, 1, 'fd00::5', 0), '[1]fd00::/8');
  assert.equal(lookupText(cache, 2, 'fd00::5', 0), '[2]fd00::/16');
  assert.equal(lookupText(cache, 2, 'fd01::5', 0), 'miss');
  assert.equal(lookupText(cache, 3, 'fd00::5', 0), 'miss');
  assert.equal(lookupText(cache, 0, 'fd00::5', 0), 'miss');
  assert.equal(lookupText(cache, 0xffffffff, '2001:db8::1', 0), '[4294967295]2001:db8::/32');
  assert.equal(lookupText(cache, 0xffffff, '2001:db8::1', 0), 'miss');
  // An IPv4 destination with the same leading bits as an IPv6 prefix (and the reverse) misses.
  assert.equal(cache.lookupAddress(0xffffffff, bytesOf('2001:db8::').subarray(0, 4), 0), MISS);
  const v6WithV4Bits = new Uint8Array(16);
  v6WithV4Bits.set(bytesOf('198.18.3.4'));
  assert.equal(cache.lookupAddress(1, v6WithV4Bits, 0), MISS);
  assert.equal(lookupText(cache, 1, '198.18.3.4', 0), '[1]198.18.0.0/15');
  // A default route covers its own instance and family only.
  cache.insertStatic(eidPrefix(1, 4, new Uint8Array(4), 0), { action: ACTION.sendMapRequest }, 0);
  assert.equal(lookupText(cache, 1, '192.0.2.200', 0), '[1]0.0.0.0/0');
  assert.equal(lookupText(cache, 1, '2001:db8::1', 0), 'miss');
  assert.equal(lookupText(cache, 2, '192.0.2.200', 0), 'miss');
});

test('a record whose Instance-ID LCAF names another instance is refused; one naming this instance is taken', () => {
  const cache = new MapCache();
  const other = cache.insertRecord(5, rec(withInstanceId(6, ip('fd00::')), 8, [loc('192.0.2.1')]), 0);
  assert.deepEqual(other, { outcome: 'ignored', reason: 'instance-id-mismatch' });
  assert.equal(cache.size, 0);
  const same = cache.insertRecord(5, rec(withInstanceId(5, ip('fd00::')), 8, [loc('192.0.2.1')]), 0);
  assert.equal(same.outcome, 'inserted');
  assert.equal(lookupText(cache, 5, 'fd00::1', 0), '[5]fd00::/8');
  assert.deepEqual(cache.insertRecord(5, rec({ afi: 'distinguished-name', name: 'host' }, 0, [loc('192.0.2.1')]), 0), {
    outcome: 'ignored',
    reason: 'not-an-ip-prefix',
  });
  assert.deepEqual(cache.insertRecord(5, rec({ afi: 'mac', address: '00:00:5e:00:53:01' }, 48, []), 0), { outcome: 'ignored', reason: 'not-an-ip-prefix' });
  assert.throws(() => cache.insertRecord(-1, recordFor('fd00::/8', []), 0), RangeError);
});

// ---------------------------------------------------------------- TTL and expiry

test('record TTLs: minutes, lispers.net seconds with bit 31, 0xffffffff = receiver decides, 0 = delete', () => {
  assert.equal(recordTtlMs(1), 60_000);
  assert.equal(recordTtlMs(1440), 86_400_000);
  assert.equal(recordTtlMs(0x7fffffff), 0x7fffffff * 60_000);
  assert.equal(recordTtlMs(secondsTtl(30)), 30_000);
  assert.equal(recordTtlMs(secondsTtl(0x7ffffffe)), 0x7ffffffe * 1000);
  assert.equal(recordTtlMs(secondsTtl(0)), 0);
  assert.equal(recordTtlMs(0xffffffff), DEFAULT_RECEIVER_DECIDES_TTL_MINUTES * 60_000);
  assert.equal(recordTtlMs(0xffffffff, 5), 300_000);
  assert.equal(recordTtlMs(0), 0);
  assert.throws(() => recordTtlMs(-1), RangeError);
  assert.throws(() => recordTtlMs(2 ** 32), RangeError);
});

test('an entry is live until exactly now + TTL, then lookups fall back to the covering prefix', () => {
  const cache = new MapCache();
  const t0 = 5_000;
  cache.insertStatic(prefix('2001:db8::/32'), { action: ACTION.sendMapRequest }, t0);
  const minute = cache.insertRecord(0, recordFor('2001:db8:1::/48', [loc('192.0.2.1')], { ttl: 1 }), t0);
  assert.equal(minute.outcome, 'inserted');
  const seconds = cache.insertRecord(0, recordFor('198.18.0.0/16', [loc('192.0.2.2')], { ttl: secondsTtl(90) }), t0);
  assert.ok(seconds.outcome === 'inserted');
  assert.equal(seconds.entry.expiresAt, t0 + 90_000);
  assert.equal(lookupText(cache, 0, '2001:db8:1::7', t0 + 60_000 - 1), '[0]2001:db8:1::/48');
  assert.equal(lookupText(cache, 0, '2001:db8:1::7', t0 + 60_000), '[0]2001:db8::/32');
  assert.equal(lookupText(cache, 0, '198.18.9.9', t0 + 90_000 - 1), '[0]198.18.0.0/16');
  assert.equal(lookupText(cache, 0, '198.18.9.9', t0 + 90_000), 'miss');
  assert.equal(cache.nextExpiry(), t0 + 60_000);
  assert.deepEqual(cache.expire(t0 + 60_000 - 1), []);
  assert.equal(cache.size, 3);
  const dead = cache.expire(t0 + 60_000);
  assert.deepEqual(dead.map((e) => formatPrefix(e.prefix)), ['[0]2001:db8:1::/48']);
  assert.equal(cache.size, 2);
  assert.equal(cache.nextExpiry(), t0 + 90_000);
  assert.deepEqual(cache.expire(t0 + 10 ** 9).map((e) => formatPrefix(e.prefix)), ['[0]198.18.0.0/16']);
  assert.equal(cache.nextExpiry(), undefined);
  // The receiver decides for 0xffffffff: one day by default, or what the caller says.
  const forever = cache.insertRecord(0, recordFor('fd00::/8', [loc('192.0.2.3')], { ttl: 0xffffffff }), t0);
  assert.ok(forever.outcome === 'inserted');
  assert.equal(forever.entry.expiresAt, t0 + 1440 * 60_000);
  const short = cache.insertRecord(0, recordFor('fd00::/8', [loc('192.0.2.3')], { ttl: 0xffffffff }), t0, { receiverDecidesTtlMinutes: 2 });
  assert.ok(short.outcome === 'replaced');
  assert.equal(short.entry.expiresAt, t0 + 120_000);
});

test('maxTtlMinutes bounds a learned lifetime whatever the TTL says; shorter TTLs and TTL 0 are untouched', () => {
  const cache = new MapCache();
  const t0 = 7_000;
  const hour = { maxTtlMinutes: 60 };
  const expiry = (text: string, fields: Partial<EidRecord>, locators = [loc('198.18.0.1')]): number => {
    const out = cache.insertRecord(0, recordFor(text, locators, fields), t0, hour);
    assert.ok(out.outcome === 'inserted' || out.outcome === 'replaced', JSON.stringify(out));
    return out.entry.expiresAt - t0;
  };
  assert.equal(expiry('192.0.2.0/28', { ttl: 1440 }), 3_600_000, 'a day asked, an hour kept');
  assert.equal(expiry('192.0.2.16/28', { ttl: 0xffffffff }), 3_600_000, '"receiver decides" is a day, then bounded');
  assert.equal(expiry('192.0.2.32/28', { ttl: secondsTtl(0x7ffffffe) }), 3_600_000, "lispers.net's 68 years");
  assert.equal(expiry('192.0.2.48/28', { ttl: 0x7fffffff }), 3_600_000);
  assert.equal(expiry('192.0.2.64/28', { ttl: 5 }), 300_000, 'a shorter TTL is kept as it is');
  assert.equal(expiry('192.0.2.80/28', { ttl: secondsTtl(90) }), 90_000);
  assert.equal(expiry('192.0.2.96/28', { ttl: 60 }), 3_600_000, 'exactly the bound');
  assert.equal(expiry('2001:db8::/32', { ttl: 1440, action: ACTION.drop }, []), 3_600_000, 'negative entries are bounded too');
  // TTL 0 is still a deletion, not "at most 0 minutes" of something.
  assert.equal(cache.insertRecord(0, recordFor('192.0.2.0/28', [], { ttl: 0 }), t0, hour).outcome, 'removed');
  // Without the option the record decides, as before.
  const unbounded = cache.insertRecord(0, recordFor('198.18.0.0/15', [loc('198.18.0.1')], { ttl: 1440 }), t0);
  assert.ok(unbounded.outcome === 'inserted');
  assert.equal(unbounded.entry.expiresAt, t0 + 86_400_000);
  // A bound of 0 (or less, or NaN) would turn every record into a deletion: refused.
  for (const bad of [0, -1, Number.NaN]) {
    assert.throws(() => cache.insertRecord(0, recordFor('192.0.2.128/25', [loc('198.18.0.1')]), t0, { maxTtlMinutes: bad }), RangeError);
  }
});

test('TTL 0 removes the learned entry for the prefix and never a static one', () => {
  const cache = new MapCache();
  const first = cache.insertRecord(0, recordFor('192.0.2.0/24', [loc('198.18.0.1')]), 0);
  assert.ok(first.outcome === 'inserted');
  assert.deepEqual(cache.insertRecord(0, recordFor('192.0.2.0/24', [], { ttl: 0 }), 10), { outcome: 'removed', previous: first.entry });
  assert.equal(cache.size, 0);
  assert.deepEqual(cache.insertRecord(0, recordFor('192.0.2.0/24', [], { ttl: secondsTtl(0) }), 10), { outcome: 'removed', previous: undefined });
  cache.insertStatic(prefix('192.0.2.0/24'), { locators: [{ address: '198.18.0.1' }] }, 0);
  assert.deepEqual(cache.insertRecord(0, recordFor('192.0.2.0/24', [], { ttl: 0 }), 10), { outcome: 'ignored', reason: 'static-entry' });
  assert.equal(cache.size, 1);
});

test('static entries never expire and Map-Replies cannot replace them; configuration can replace anything', () => {
  const cache = new MapCache();
  const s = cache.insertStatic(prefix('[9]fd00::/8'), { locators: [{ address: '2001:db8::1', port: 4342, priority: 3, weight: 7 }] }, 100);
  assert.ok(s.outcome === 'inserted');
  assert.equal(s.entry.origin, 'static');
  assert.equal(s.entry.expiresAt, Infinity);
  assert.equal(s.entry.insertedAt, 100);
  assert.equal(s.entry.record, undefined);
  const l = s.entry.locators[0];
  assert.ok(l);
  assert.deepEqual([l.address, l.port, l.priority, l.weight, l.reachable, l.family], ['2001:db8::1', 4342, 3, 7, true, 6]);
  assert.deepEqual(cache.insertRecord(9, recordFor('fd00::/8', [loc('192.0.2.1')]), 200), { outcome: 'ignored', reason: 'static-entry' });
  assert.deepEqual(cache.expire(Number.MAX_SAFE_INTEGER), []);
  assert.equal(lookupText(cache, 9, 'fd00::1', Number.MAX_SAFE_INTEGER), '[9]fd00::/8');
  assert.equal(cache.nextExpiry(), undefined);
  // A learned entry for the same prefix is replaced by configuration.
  const learned = cache.insertRecord(9, recordFor('fd00::/16', [loc('192.0.2.1')]), 200);
  assert.ok(learned.outcome === 'inserted');
  assert.equal(cache.learnedCount, 1);
  const configured = cache.insertStatic(prefix('[9]fd00::/16'), { action: ACTION.drop }, 300);
  assert.ok(configured.outcome === 'replaced');
  assert.equal(configured.previous, learned.entry);
  assert.equal(cache.learnedCount, 0);
  assert.equal(cache.size, 2);
  assert.throws(() => cache.insertStatic(prefix('fd00::/8'), { locators: [{ address: 'nowhere' }] }, 0), RangeError);
  assert.throws(() => cache.insertStatic(prefix('fd00::/8'), { locators: [{ address: '192.0.2.1', priority: 256 }] }, 0), RangeError);
  assert.throws(() => cache.insertStatic(prefix('fd00::/8'), { locators: [{ address: '192.0.2.1', port: 0 }] }, 0), RangeError);
  // Removing a static entry is the configuration's right.
  assert.equal(cache.remove(prefix('[9]fd00::/8')), s.entry);
  assert.equal(lookupText(cache, 9, 'fd00::1', 0), '[9]fd00::/16');
});

// ---------------------------------------------------------------- negative entries

test('negative entries carry their action, for every action, and shadow positive covering prefixes', () => {
  const cache = new MapCache();
  cache.insertRecord(0, recordFor('fd00::/8', [loc('192.0.2.1')]), 0);
  const actions: Action[] = [
    ACTION.noAction,
    ACTION.nativelyForward,
    ACTION.sendMapRequest,
    ACTION.drop,
    ACTION.dropPolicyDenied,
    ACTION.dropAuthFailure,
    ACTION.sendPubSub,
    ACTION.notRegisteredYet,
  ];
  for (const action of actions) {
    const eid = `fd00:${action + 1}::/32`;
    const outcome = cache.insertRecord(0, recordFor(eid, [], { action, ttl: 15 }), 0);
    assert.ok(outcome.outcome === 'inserted');
    const r = cache.lookupAddress(0, `fd00:${action + 1}::42`, 1);
    assert.equal(r.kind, 'negative');
    assert.ok(r.kind === 'negative');
    assert.equal(r.action, action);
    assert.equal(r.locators.length, 0);
    assert.equal(r.expiresAt, 15 * 60_000);
    assert.equal(chooseLocator(r, 12345), undefined);
  }
  assert.equal(cache.lookupAddress(0, 'fd00:100::1', 1).kind, 'positive');
  // A negative entry learned over a positive one for the same prefix turns it negative, and back.
  const neg = cache.insertRecord(0, recordFor('fd00::/8', [], { action: ACTION.dropPolicyDenied }), 2);
  assert.ok(neg.outcome === 'replaced');
  const r = cache.lookupAddress(0, 'fd00:100::1', 3);
  assert.ok(r.kind === 'negative' && r.action === ACTION.dropPolicyDenied);
  cache.insertRecord(0, recordFor('fd00::/8', [loc('192.0.2.1')]), 4);
  assert.equal(cache.lookupAddress(0, 'fd00:100::1', 5).kind, 'positive');
  // Static negative entries.
  cache.insertStatic(prefix('198.18.0.0/15'), { action: ACTION.nativelyForward }, 0);
  const nf = cache.lookupAddress(0, '198.18.1.1', 0);
  assert.ok(nf.kind === 'negative' && nf.action === ACTION.nativelyForward && nf.origin === 'static');
});

// ---------------------------------------------------------------- replacing

test('a refresh replaces the entry and keeps per-locator state for locators that stay', () => {
  const cache = new MapCache<{ readonly session: string }>();
  const first = cache.insertRecord(0, recordFor('fd00::/8', [loc('192.0.2.1'), loc('192.0.2.2'), loc('2001:db8::3')]), 0);
  assert.ok(first.outcome === 'inserted');
  assert.deepEqual(first.dropped, []);
  const [a, b, c] = first.entry.locators;
  assert.ok(a && b && c);
  a.state = { session: 'a' };
  b.state = { session: 'b' };
  c.state = { session: 'c' };
  const second = cache.insertRecord(0, recordFor('fd00::/8', [loc('2001:db8::3', { priority: 2 }), loc('192.0.2.1'), loc('192.0.2.9')], { ttl: 5 }), 1_000);
  assert.ok(second.outcome === 'replaced');
  assert.equal(second.previous, first.entry);
  assert.notEqual(second.entry, first.entry);
  assert.deepEqual(
    second.entry.locators.map((l) => [l.address, l.state?.session, l.priority]),
    [
      ['2001:db8::3', 'c', 2],
      ['192.0.2.1', 'a', 1],
      ['192.0.2.9', undefined, 1],
    ],
  );
  assert.deepEqual(second.dropped, [b]);
  assert.equal(b.state?.session, 'b');
  assert.equal(a.state, undefined, 'moved, not shared');
  assert.equal(second.entry.expiresAt, 1_000 + 5 * 60_000);
  assert.equal(second.entry.insertedAt, 1_000);
  assert.equal(cache.size, 1);
  assert.equal(cache.lookupAddress(0, 'fd00::1', 1_001), second.entry);
  // Another port is another locator: its state is not carried.
  const third = cache.insertRecord(0, recordFor('fd00::/8', [loc('192.0.2.1')]), 2_000, { port: 10_000 });
  assert.ok(third.outcome === 'replaced');
  assert.equal(third.entry.locators[0]?.port, 10_000);
  assert.equal(third.entry.locators[0]?.state, undefined);
  assert.equal(third.dropped.length, 3);
});

test('locators are read out of the LCAFs peers wrap them in; unusable ones are left out', () => {
  const cache = new MapCache();
  const key = new Uint8Array(32).fill(7);
  const locators: LocatorRecord[] = [
    { ...LOCATOR_DEFAULTS, locator: { afi: 'lcaf', lcaf: { type: 'afi-list', items: [{ afi: 'distinguished-name', name: 'rtr' }, ip('192.0.2.10')] } } },
    { ...LOCATOR_DEFAULTS, locator: { afi: 'lcaf', lcaf: { type: 'security-key', cipherSuite: 5, rekey: false, keys: [key], locator: ip('2001:db8::10') } } },
    {
      ...LOCATOR_DEFAULTS,
      locator: {
        afi: 'lcaf',
        lcaf: { type: 'nat-traversal', msPort: 4342, etrPort: 61000, globalEtrRloc: ip('198.18.0.10'), msRloc: ip('198.18.0.1'), privateEtrRloc: ip('192.0.2.77'), rtrRlocs: [] },
      },
    },
    { ...LOCATOR_DEFAULTS, locator: { afi: 'lcaf', lcaf: { type: 'json', json: '{}', jsonFlags: 0, address: ip('192.0.2.11') } } },
    { ...LOCATOR_DEFAULTS, locator: { afi: 'distinguished-name', name: 'just-a-name' } },
    { ...LOCATOR_DEFAULTS, locator: { afi: 'none' } },
  ];
  const out = cache.insertRecord(0, recordFor('fd00::/8', locators), 0);
  assert.ok(out.outcome === 'inserted');
  assert.deepEqual(
    out.entry.locators.map((l) => `${l.address}:${l.port}`),
    ['192.0.2.10:4341', '2001:db8::10:4341', '198.18.0.10:61000', '192.0.2.11:4341'],
  );
  assert.equal(out.entry.locators[1]?.record, locators[1]);
  assert.deepEqual(out.entry.locators[1]?.bytes, bytesOf('2001:db8::10'));
  // A record whose locators are all unusable is still a positive mapping, with nowhere to send.
  const none = cache.insertRecord(0, recordFor('2001:db8::/32', [locators[4] as LocatorRecord]), 0);
  assert.ok(none.outcome === 'inserted');
  assert.equal(none.entry.kind, 'positive');
  assert.equal(chooseLocator(none.entry, 1), undefined);
});

test('maxLearnedEntries bounds learned entries; refreshes and static entries still go in', () => {
  const cache = new MapCache({ maxLearnedEntries: 2 });
  assert.equal(cache.insertRecord(0, recordFor('192.0.2.0/25', [loc('198.18.0.1')]), 0).outcome, 'inserted');
  assert.equal(cache.insertRecord(0, recordFor('192.0.2.128/25', [loc('198.18.0.1')]), 0).outcome, 'inserted');
  assert.deepEqual(cache.insertRecord(0, recordFor('198.18.0.0/15', [loc('198.18.0.1')]), 0), { outcome: 'ignored', reason: 'cache-full' });
  assert.equal(cache.insertRecord(0, recordFor('192.0.2.0/25', [loc('198.18.0.2')]), 0).outcome, 'replaced');
  assert.equal(cache.insertStatic(prefix('198.18.0.0/15'), { action: ACTION.drop }, 0).outcome, 'inserted');
  assert.equal(cache.size, 3);
  cache.remove(prefix('192.0.2.0/25'));
  assert.equal(cache.insertRecord(0, recordFor('2001:db8::/32', [loc('198.18.0.1')]), 0).outcome, 'inserted');
});

test('status: entries in order and one line each; clear hands everything back', () => {
  const cache = new MapCache();
  cache.insertStatic(prefix('[2]fd00::/8'), { locators: [{ address: '2001:db8::1' }, { address: '192.0.2.1', priority: 2, weight: 50, reachable: false }] }, 0);
  cache.insertRecord(2, recordFor('192.0.2.0/24', [], { action: ACTION.drop, ttl: 1 }), 0);
  cache.insertRecord(1, recordFor('fd00::/16', [loc('198.18.0.1')], { ttl: 1 }), 0);
  cache.insertStatic(prefix('[1]fd00::/8'), { action: ACTION.nativelyForward }, 0);
  assert.deepEqual(
    [...cache].map((e) => describeEntry(e, 30_000)),
    [
      '[1]fd00::/8 static negative natively-forward',
      '[1]fd00::/16 30s 198.18.0.1:4341 p1/w100',
      '[2]192.0.2.0/24 30s negative drop',
      '[2]fd00::/8 static [2001:db8::1]:4341 p1/w100, 192.0.2.1:4341 p2/w50 down',
    ],
  );
  assert.equal(describeEntry(entryOf(cache.lookupAddress(1, 'fd00::1', 0)), 60_000), '[1]fd00::/16 expired 198.18.0.1:4341 p1/w100');
  assert.equal(cache.clear().length, 4);
  assert.equal(cache.size, 0);
  assert.equal(cache.lookupAddress(1, 'fd00::1', 0), MISS);
});

// ---------------------------------------------------------------- locator choice

function entryWith(locators: readonly { address: string; priority?: number; weight?: number; reachable?: boolean }[]): MapCacheEntry<unknown> {
  const cache = new MapCache();
  const out = cache.insertStatic(prefix('fd00::/8'), { locators }, 0);
  assert.ok(out.outcome !== 'ignored' && out.outcome !== 'removed');
  return out.entry;
}

/** Random flows between test-range hosts: a tenth of them IPv6, the rest IPv4, TCP and UDP. */
function syntheticFlows(count: number, seed: number): Uint8Array[] {
  const random = prng(seed);
  const byte = (): number => Math.floor(random() * 256);
  const flows: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const v6 = i % 10 === 0;
    const source = v6 ? Uint8Array.of(0xfd, ...Array.from({ length: 15 }, byte)) : Uint8Array.of(198, 18 + (byte() & 1), byte(), byte());
    const destination = v6 ? Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...Array.from({ length: 12 }, byte)) : Uint8Array.of(192, 0, 2, byte());
    flows.push(packet({ source, destination, protocol: i % 3 === 0 ? UDP : TCP, sourcePort: 1024 + Math.floor(random() * 64_000), destinationPort: [80, 443, 53, 4341][i % 4] ?? 80 }));
  }
  return flows;
}

function shares(entry: MapCacheEntry<unknown>, flows: readonly Uint8Array[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const f of flows) {
    const l = chooseLocator(entry, flowHash(f, 0));
    const key = l?.address ?? 'none';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  for (const [k, v] of counts) counts.set(k, v / flows.length);
  return counts;
}

test('chooseLocator: the best reachable priority below 255 wins; 255 and unreachable locators never', () => {
  const flows = syntheticFlows(2_000, 1);
  const pick = (e: MapCacheEntry<unknown>): Set<string> => new Set(flows.map((f) => chooseLocator(e, flowHash(f, 0))?.address ?? 'none'));
  assert.deepEqual(pick(entryWith([{ address: '192.0.2.1', priority: 2 }, { address: '192.0.2.2', priority: 1 }, { address: '192.0.2.3', priority: 3 }])), new Set(['192.0.2.2']));
  assert.deepEqual(pick(entryWith([{ address: '192.0.2.1', priority: 255 }, { address: '192.0.2.2', priority: 254 }])), new Set(['192.0.2.2']));
  assert.deepEqual(pick(entryWith([{ address: '192.0.2.1', priority: 255 }])), new Set(['none']));
  assert.deepEqual(pick(entryWith([{ address: '192.0.2.1', priority: 0, reachable: false }, { address: '192.0.2.2', priority: 9 }])), new Set(['192.0.2.2']));
  assert.deepEqual(pick(entryWith([{ address: '192.0.2.1', reachable: false }, { address: '192.0.2.2', priority: 255 }])), new Set(['none']));
  assert.deepEqual(pick(entryWith([])), new Set(['none']));
  // Reachability is read live: probing that marks the best locator down moves its flows over.
  const e = entryWith([{ address: '192.0.2.1', priority: 1 }, { address: '2001:db8::2', priority: 2 }]);
  assert.deepEqual(pick(e), new Set(['192.0.2.1']));
  const best = e.locators[0] as MapCacheLocator<unknown>;
  best.reachable = false;
  assert.deepEqual(pick(e), new Set(['2001:db8::2']));
  best.reachable = true;
  assert.deepEqual(pick(e), new Set(['192.0.2.1']));
  // Any integer is a valid hash, from 0 to beyond 31 bits.
  const two = entryWith([{ address: '192.0.2.1' }, { address: '192.0.2.2' }]);
  for (const h of [0, 1, 0x3fffffff, 0x40000000, 0x7fffffff, 0x80000000, 0xffffffff, -1]) assert.ok(chooseLocator(two, h));
  assert.equal(chooseLocator(two, 0)?.address, '192.0.2.1');
  assert.equal(chooseLocator(two, 0x7fffffff)?.address, '192.0.2.2');
});

test('chooseLocator splits 100k flows by weight within 1%, equally when all weights are 0', () => {
  const flows = syntheticFlows(100_000, 2);
  const near = (got: Map<string, number>, want: Record<string, number>): void => {
    for (const [address, share] of Object.entries(want)) {
      const actual = got.get(address) ?? 0;
      assert.ok(Math.abs(actual - share) < 0.01, `${address}: ${actual.toFixed(4)} of the flows, expected ${share}`);
    }
    assert.equal([...got.keys()].filter((k) => !(k in want)).length, 0, `unexpected locators ${[...got.keys()].join(' ')}`);
  };
  near(shares(entryWith([{ address: '192.0.2.1', weight: 10 }, { address: '192.0.2.2', weight: 30 }, { address: '2001:db8::3', weight: 60 }]), flows), {
    '192.0.2.1': 0.1,
    '192.0.2.2': 0.3,
    '2001:db8::3': 0.6,
  });
  near(shares(entryWith([{ address: '192.0.2.1', weight: 0 }, { address: '192.0.2.2', weight: 0 }, { address: '192.0.2.3', weight: 0 }, { address: '192.0.2.4', weight: 0 }]), flows), {
    '192.0.2.1': 0.25,
    '192.0.2.2': 0.25,
    '192.0.2.3': 0.25,
    '192.0.2.4': 0.25,
  });
  // Weight 0 next to non-zero weights gets nothing; lower priorities' weights do not count.
  near(
    shares(
      entryWith([
        { address: '192.0.2.1', weight: 0 },
        { address: '192.0.2.2', weight: 1 },
        { address: '192.0.2.3', weight: 3 },
        { address: '192.0.2.4', weight: 100, priority: 2 },
        { address: '192.0.2.5', weight: 100, reachable: false },
      ]),
      flows,
    ),
    { '192.0.2.2': 0.25, '192.0.2.3': 0.75 },
  );
});

test('chooseLocator is a deterministic function of the hash and proportional over the hash range', () => {
  const e = entryWith([{ address: '192.0.2.1', weight: 1 }, { address: '192.0.2.2', weight: 2 }]);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (h) => {
      const l = chooseLocator(e, h);
      assert.equal(chooseLocator(e, h), l);
      // The first third of the hash range goes to weight 1, the rest to weight 2.
      assert.equal(l?.address, h < 0x80000000 / 3 ? '192.0.2.1' : '192.0.2.2');
    }),
    { numRuns: 2_000 },
  );
});

// ---------------------------------------------------------------- flow hash

test('flowHash: the same 5-tuple always hashes the same, whatever else the packet holds', () => {
  const tuple = fc.record({
    v6: fc.boolean(),
    source: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    destination: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    protocol: fc.constantFrom(TCP, UDP, 132, 33, 136),
    sourcePort: fc.integer({ min: 0, max: 0xffff }),
    destinationPort: fc.integer({ min: 0, max: 0xffff }),
  });
  fc.assert(
    fc.property(tuple, fc.nat(), fc.nat(), fc.boolean(), (t, n1, n2, ext) => {
      const spec = { ...t, source: t.v6 ? t.source : t.source.subarray(0, 4), destination: t.v6 ? t.destination : t.destination.subarray(0, 4) };
      const a = packet({ ...spec, noise: n1, extensionHeaders: ext });
      const b = packet({ ...spec, noise: n2 });
      const h = flowHash(a, 0);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 31, String(h));
      assert.equal(flowHash(b, 0), h);
      // At an offset inside a larger buffer (the ITR reads the inner header in place).
      const framed = new Uint8Array(a.length + 50);
      framed.set(a, 36);
      assert.equal(flowHash(framed, 36), h);
    }),
    { numRuns: 500 },
  );
});

test('flowHash: ports, protocol, addresses and the seed all move the hash', () => {
  const flows = (v6: boolean): Uint8Array[] => {
    const source = v6 ? bytesOf('fd00::1') : bytesOf('198.18.0.1');
    const destination = v6 ? bytesOf('2001:db8::1') : bytesOf('192.0.2.1');
    return [
      packet({ source, destination, protocol: TCP, sourcePort: 40000, destinationPort: 443 }),
      packet({ source, destination, protocol: TCP, sourcePort: 40001, destinationPort: 443 }),
      packet({ source, destination, protocol: TCP, sourcePort: 40000, destinationPort: 80 }),
      packet({ source, destination, protocol: UDP, sourcePort: 40000, destinationPort: 443 }),
      packet({ source: destination, destination: source, protocol: TCP, sourcePort: 40000, destinationPort: 443 }),
      packet({ source, destination, protocol: ICMP }),
      packet({ source, destination, protocol: TCP, sourcePort: 40000, destinationPort: 443, extensionHeaders: true }),
    ];
  };
  for (const v6 of [false, true]) {
    const f = flows(v6);
    const hashes = f.slice(0, 6).map((p) => flowHash(p, 0));
    assert.equal(new Set(hashes).size, hashes.length, `IPv${v6 ? 6 : 4}: ${hashes.join(' ')}`);
    const first = f[0] as Uint8Array;
    assert.notEqual(flowHash(first, 0, 1), flowHash(first, 0));
    if (v6) assert.equal(flowHash(f[6] as Uint8Array, 0), hashes[0], 'extension headers are walked to the ports');
  }
  // Protocols without ports hash on the addresses alone.
  const icmpA = packet({ source: bytesOf('198.18.0.1'), destination: bytesOf('192.0.2.1'), protocol: ICMP, sourcePort: 1, destinationPort: 2 });
  const icmpB = packet({ source: bytesOf('198.18.0.1'), destination: bytesOf('192.0.2.1'), protocol: 47, sourcePort: 3, destinationPort: 4 });
  assert.equal(flowHash(icmpA, 0), flowHash(icmpB, 0));
});

test('flowHash ignores ports for every fragment, the first included, in IPv4 and IPv6', () => {
  for (const v6 of [false, true]) {
    const source = v6 ? bytesOf('fd00::7') : bytesOf('198.19.0.7');
    const destination = v6 ? bytesOf('2001:db8::7') : bytesOf('192.0.2.7');
    const whole = packet({ source, destination, protocol: UDP, sourcePort: 5000, destinationPort: 53 });
    const firstFragment = packet({ source, destination, protocol: UDP, sourcePort: 5000, destinationPort: 53, fragment: { more: true, offset: 0 } });
    const otherPorts = packet({ source, destination, protocol: UDP, sourcePort: 6000, destinationPort: 54, fragment: { more: true, offset: 0 } });
    // A later fragment's payload sits where ports would be: arbitrary bytes.
    const middle = packet({ source, destination, protocol: UDP, sourcePort: 0x1234, destinationPort: 0x5678, fragment: { more: true, offset: 185 } });
    const last = packet({ source, destination, protocol: UDP, sourcePort: 0xabcd, destinationPort: 0xef01, fragment: { more: false, offset: 370 } });
    const hashes = [firstFragment, otherPorts, middle, last].map((p) => flowHash(p, 0));
    assert.equal(new Set(hashes).size, 1, `IPv${v6 ? 6 : 4} fragments: ${hashes.join(' ')}`);
    assert.notEqual(flowHash(whole, 0), hashes[0]);
    // Fragments of different datagrams of the same host pair go the same way (2-tuple).
    const icmp = packet({ source, destination, protocol: ICMP });
    assert.equal(flowHash(icmp, 0), hashes[0]);
  }
  // An IPv6 atomic fragment (offset 0, M clear) is a whole datagram: its ports count.
  const atomic = packet({ source: bytesOf('fd00::7'), destination: bytesOf('2001:db8::7'), protocol: UDP, sourcePort: 5000, destinationPort: 53, fragment: { more: false, offset: 0 } });
  const plain = packet({ source: bytesOf('fd00::7'), destination: bytesOf('2001:db8::7'), protocol: UDP, sourcePort: 5000, destinationPort: 53 });
  assert.equal(flowHash(atomic, 0), flowHash(plain, 0));
  // IPv4 with DF only is not a fragment.
  const df = packet({ source: bytesOf('198.19.0.7'), destination: bytesOf('192.0.2.7'), protocol: UDP, sourcePort: 5000, destinationPort: 53 });
  const df2 = packet({ source: bytesOf('198.19.0.7'), destination: bytesOf('192.0.2.7'), protocol: UDP, sourcePort: 5001, destinationPort: 53 });
  assert.notEqual(flowHash(df, 0), flowHash(df2, 0));
});

test('flowHash never throws on truncated or random bytes and stays in range', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat(130), fc.integer(), (bytes, offset, seed) => {
      const h = flowHash(bytes, offset, seed);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 31);
    }),
    { numRuns: 2_000 },
  );
  const full = packet({ source: bytesOf('198.18.0.1'), destination: bytesOf('192.0.2.1'), protocol: TCP, sourcePort: 1, destinationPort: 2 });
  for (let n = 0; n <= full.length; n++) flowHash(full.subarray(0, n), 0);
  // Cut before the ports: the 2-tuple, the same as a fragment of that host pair.
  const cut = full.subarray(0, 22);
  const icmp = packet({ source: bytesOf('198.18.0.1'), destination: bytesOf('192.0.2.1'), protocol: ICMP });
  assert.equal(flowHash(cut, 0), flowHash(icmp, 0));
});

test('a flow sticks to its locator across packets; different flows spread', () => {
  const e = entryWith([{ address: '192.0.2.1' }, { address: '192.0.2.2' }, { address: '192.0.2.3' }]);
  const source = bytesOf('fd00::1');
  const destination = bytesOf('2001:db8::1');
  const seen = new Set<string>();
  for (let port = 30000; port < 30100; port++) {
    const chosen = new Set<string>();
    for (let n = 0; n < 20; n++) {
      const p = packet({ source, destination, protocol: TCP, sourcePort: port, destinationPort: 443, noise: n * 31 });
      chosen.add(chooseLocator(e, flowHash(p, 0))?.address ?? 'none');
    }
    assert.equal(chosen.size, 1, `flow from port ${port} used ${[...chosen].join(', ')}`);
    for (const c of chosen) seen.add(c);
  }
  assert.equal(seen.size, 3);
});
