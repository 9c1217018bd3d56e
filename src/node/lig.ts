// `lispnode lig`: the LISP Internet Groper (as lispers.net's and Cisco's `lig`). Sends an ECM'd
// Map-Request for one EID to a map-resolver's UDP 4342 from an ephemeral port, waits for the
// Map-Reply with one of its nonces (a fresh nonce per attempt; a late answer to an earlier attempt
// still counts), and reports the mapping: EID-prefix, TTL, action, A bit, locators and the RTT.
// parseLig checks the arguments (CommandError: exit 2); runLig does the I/O and says what to print.
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { deriveCryptoEid, importP256PrivateKey, type P256KeyPair } from '../crypto/index.js';
import { formatAddress, ip, NO_ADDRESS, type Address } from '../lisp/address.js';
import { decodeControl } from '../lisp/control.js';
import { hex64, jsonReplacer } from '../lisp/describe.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../lisp/ip-text.js';
import { TTL_SECONDS_FLAG } from '../lisp/map-cache.js';
import type { MapReply } from '../lisp/map-reply.js';
import { ACTION_NAMES, type EidRecord, type LocatorRecord } from '../lisp/records.js';
import { ipOf, offeredKey } from '../lisp/xtr-control/key-exchange.js';
import { encodeEcmMapRequest, LISP_CONTROL_PORT, signedSourceEid } from '../lisp/xtr-control/resolver.js';
import { CommandError } from './eid-command.js';

export interface LigOptions {
  readonly mapResolver: string;
  readonly source?: string;
  readonly iid: string;
  readonly count: string;
  readonly timeout: string;
  readonly key?: string;
  readonly json?: boolean;
}

export interface LigRequest {
  readonly eid: string;
  readonly family: 4 | 6;
  readonly iid: number;
  readonly mapResolver: string;
  readonly resolverFamily: 4 | 6;
  readonly source: string | undefined;
  readonly count: number;
  readonly timeoutMs: number;
  readonly signer: { readonly eid: string; readonly scalar: Uint8Array } | undefined;
  readonly json: boolean;
}

export interface LigResult {
  readonly lines: readonly string[];
  /** 0: a positive reply; 1: a negative reply or no reply. */
  readonly exitCode: 0 | 1;
}

/** An IPv4/IPv6 address in canonical text, or undefined. */
function address(text: string): { readonly text: string; readonly family: 4 | 6 } | undefined {
  const v4 = parseIpv4(text);
  if (v4) return { text: formatIpv4(v4), family: 4 };
  const v6 = parseIpv6(text);
  if (v6) return { text: formatIpv6(v6), family: 6 };
  return undefined;
}

function integer(option: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) throw new CommandError(`${option}: expected an integer ${min}..${max}, got '${text}'`);
  return n;
}

export function parseLig(eidText: string, o: LigOptions): LigRequest {
  const eid = address(eidText);
  if (!eid) throw new CommandError(`<eid>: expected an IPv4 or IPv6 address, got '${eidText}'`);
  const resolver = address(o.mapResolver);
  if (!resolver) throw new CommandError(`--map-resolver: expected an IPv4 or IPv6 address, got '${o.mapResolver}'`);
  let source: string | undefined;
  if (o.source !== undefined) {
    const s = address(o.source);
    if (!s) throw new CommandError(`--source: expected an IPv4 or IPv6 address, got '${o.source}'`);
    if (s.family !== resolver.family) throw new CommandError(`--source ${s.text}: not of the map-resolver's address family (IPv${resolver.family})`);
    source = s.text;
  }
  const iid = integer('--iid', o.iid, 0, 0xffffffff);
  const count = integer('--count', o.count, 1, 100);
  const timeoutMs = integer('--timeout', o.timeout, 1, 600_000);
  let signer: LigRequest['signer'];
  if (o.key !== undefined) {
    let key: P256KeyPair;
    try {
      key = importP256PrivateKey(readFileSync(o.key, 'utf8'));
    } catch (error) {
      throw new CommandError(`--key ${o.key}: expected a P-256 private key in PEM (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    signer = { eid: formatIpv6(deriveCryptoEid({ iid, spki: key.spki }).eid), scalar: key.scalar };
  }
  return { eid: eid.text, family: eid.family, iid, mapResolver: resolver.text, resolverFamily: resolver.family, source, count, timeoutMs, signer, json: o.json === true };
}

/** Our address towards the map-resolver: what the kernel would pick (a connected socket sends nothing). */
async function routeSource(family: 4 | 6, to: string): Promise<string> {
  const socket = createSocket(family === 4 ? 'udp4' : 'udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(LISP_CONTROL_PORT, to, () => resolve());
    });
    return socket.address().address;
  } catch (error) {
    throw new CommandError(`--map-resolver ${to}: no route (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  } finally {
    socket.close();
  }
}

async function bind(family: 4 | 6, source: string): Promise<Socket> {
  const socket = createSocket(family === 4 ? 'udp4' : 'udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, source, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    socket.close();
    throw new CommandError(`--source ${source}: cannot bind (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return socket;
}

function randomNonce(): bigint {
  return randomBytes(8).readBigUInt64BE(0);
}

interface Answer {
  readonly reply: MapReply;
  readonly from: string;
  readonly port: number;
  readonly rttMs: number;
  /** The attempt (1-based) whose nonce the reply carries. */
  readonly attempt: number;
}

export async function runLig(r: LigRequest): Promise<LigResult> {
  const source = r.source ?? (await routeSource(r.resolverFamily, r.mapResolver));
  const socket = await bind(r.resolverFamily, source);
  const port = socket.address().port;
  // The inner IP header is of the EID's family: our RLOC, the signer's EID, or unspecified.
  const innerSource = r.signer && r.family === 6 ? r.signer.eid : r.family === r.resolverFamily ? source : r.family === 4 ? '0.0.0.0' : '::';
  const sent = new Map<bigint, { readonly at: number; readonly attempt: number }>();
  const errors: string[] = [];
  let ignored = 0;
  let attempts = 0;
  try {
    const answer = await new Promise<Answer | undefined>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (a: Answer | undefined): void => {
        if (timer) clearTimeout(timer);
        resolve(a);
      };
      socket.on('error', (error) => errors.push(error.message));
      socket.on('message', (bytes, rinfo) => {
        const decoded = decodeControl(bytes);
        const m = decoded.ok ? decoded.value : undefined;
        const request = m?.type === 'map-reply' && !m.probe ? sent.get(m.nonce) : undefined;
        if (m?.type !== 'map-reply' || !request) {
          ignored++;
          return;
        }
        finish({ reply: m, from: rinfo.address, port: rinfo.port, rttMs: performance.now() - request.at, attempt: request.attempt });
      });
      const attempt = (): void => {
        if (attempts >= r.count) return finish(undefined);
        attempts++;
        const nonce = randomNonce();
        const sourceEid: Address = r.signer ? signedSourceEid({ instanceId: r.iid, eid: r.signer.eid, scalar: r.signer.scalar }, nonce, r.iid, ip(r.eid)) : NO_ADDRESS;
        const bytes = encodeEcmMapRequest({ nonce, iid: r.iid, eid: r.eid, sourceEid, itrRlocs: [ip(source)], innerSource, sourcePort: port });
        sent.set(nonce, { at: performance.now(), attempt: attempts });
        socket.send(bytes, LISP_CONTROL_PORT, r.mapResolver, (error) => {
          if (error) errors.push(error.message);
        });
        timer = setTimeout(attempt, r.timeoutMs);
      };
      attempt();
    });
    const context = { request: r, source, port, attempts, ignored, errors };
    return answer ? answerResult(context, answer) : timeoutResult(context);
  } finally {
    socket.close();
  }
}

interface Context {
  readonly request: LigRequest;
  readonly source: string;
  readonly port: number;
  readonly attempts: number;
  readonly ignored: number;
  readonly errors: readonly string[];
}

function ttlText(ttl: number): string {
  if (ttl === 0xffffffff) return 'unspecified';
  return ttl >= TTL_SECONDS_FLAG ? `${ttl - TTL_SECONDS_FLAG} s` : `${ttl} min`;
}

function prefixText(record: EidRecord): { readonly iid: number | undefined; readonly text: string } {
  const e = record.eid;
  const inner = e.afi === 'lcaf' && e.lcaf.type === 'instance-id' ? e.lcaf.address : e;
  const iid = e.afi === 'lcaf' && e.lcaf.type === 'instance-id' ? e.lcaf.instanceId : undefined;
  return { iid, text: `${formatAddress(inner)}/${record.eidMaskLength}` };
}

function securityKey(l: LocatorRecord): { readonly kind: string; readonly suite?: number; readonly keyId?: number } | null {
  const offer = offeredKey(l.locator);
  switch (offer.kind) {
    case 'none':
      return null;
    case 'key':
      return { kind: 'key', suite: offer.suite, keyId: offer.keyId };
    case 'refused':
      return { kind: 'refused', suite: offer.suite };
    case 'malformed':
      return { kind: 'malformed' };
  }
}

function locatorJson(l: LocatorRecord): object {
  return {
    address: ipOf(l.locator)?.address ?? formatAddress(l.locator),
    priority: l.priority,
    weight: l.weight,
    multicastPriority: l.multicastPriority,
    multicastWeight: l.multicastWeight,
    local: l.local,
    probed: l.probed,
    reachable: l.reachable,
    securityKey: securityKey(l),
  };
}

function recordJson(record: EidRecord, defaultIid: number): object {
  const p = prefixText(record);
  return {
    eidPrefix: p.text,
    iid: p.iid ?? defaultIid,
    ttl: record.ttl >= TTL_SECONDS_FLAG && record.ttl !== 0xffffffff ? { seconds: record.ttl - TTL_SECONDS_FLAG } : { minutes: record.ttl },
    authoritative: record.authoritative,
    negative: record.locators.length === 0,
    action: ACTION_NAMES[record.action],
    locators: record.locators.map(locatorJson),
  };
}

function recordLines(record: EidRecord): string[] {
  const p = prefixText(record);
  const negative = record.locators.length === 0;
  const head = [
    `EID-prefix ${p.iid !== undefined && p.iid !== 0 ? `[${p.iid}]` : ''}${p.text}`,
    `ttl ${ttlText(record.ttl)}`,
    ...(negative ? ['negative', `action ${ACTION_NAMES[record.action]}`] : record.action !== 0 ? [`action ${ACTION_NAMES[record.action]}`] : []),
    ...(record.authoritative ? ['A'] : []),
  ].join(', ');
  const locators = record.locators.map((l) => {
    const flags = [l.local && 'L', l.probed && 'p', l.reachable && 'R'].filter(Boolean).join('') || '-';
    const key = securityKey(l);
    const keyText = key === null ? 'no' : key.kind === 'key' ? `yes (suite ${key.suite}, key-id ${key.keyId})` : key.kind === 'refused' ? `refused (suite ${key.suite})` : 'malformed';
    return `  locator ${ipOf(l.locator)?.address ?? formatAddress(l.locator)}, priority ${l.priority}, weight ${l.weight}, flags ${flags}, security-key ${keyText}`;
  });
  return [head, ...locators];
}

function header(c: Context): string {
  const r = c.request;
  return `lig ${r.iid !== 0 ? `[${r.iid}]` : ''}${r.eid} via map-resolver ${r.mapResolver}, from ${c.source}:${c.port}${r.signer ? `, signed by ${r.signer.eid}` : ''}`;
}

function answerResult(c: Context, a: Answer): LigResult {
  const positive = a.reply.records.some((record) => record.locators.length > 0);
  const rtt = Math.round(a.rttMs * 1000) / 1000;
  if (c.request.json) {
    const object = {
      eid: c.request.eid,
      iid: c.request.iid,
      mapResolver: c.request.mapResolver,
      source: c.source,
      port: c.port,
      signedBy: c.request.signer?.eid ?? null,
      result: positive ? 'positive' : 'negative',
      attempts: c.attempts,
      attempt: a.attempt,
      nonce: hex64(a.reply.nonce),
      from: a.from,
      rttMs: rtt,
      records: a.reply.records.map((record) => recordJson(record, c.request.iid)),
      mapReply: a.reply,
    };
    return { lines: [JSON.stringify(object, jsonReplacer)], exitCode: positive ? 0 : 1 };
  }
  return {
    lines: [
      header(c),
      `Map-Reply from ${a.from}:${a.port}, nonce ${hex64(a.reply.nonce)}, rtt ${rtt.toFixed(3)} ms (attempt ${a.attempt} of ${c.request.count}), ${positive ? 'positive' : 'negative'}, ${a.reply.records.length} record${a.reply.records.length === 1 ? '' : 's'}`,
      ...a.reply.records.flatMap(recordLines),
    ],
    exitCode: positive ? 0 : 1,
  };
}

function timeoutResult(c: Context): LigResult {
  const r = c.request;
  const why = c.errors.length > 0 ? `; errors: ${[...new Set(c.errors)].join('; ')}` : '';
  const ignored = c.ignored > 0 ? `; ${c.ignored} other datagram${c.ignored === 1 ? '' : 's'} ignored` : '';
  if (r.json) {
    const object = { eid: r.eid, iid: r.iid, mapResolver: r.mapResolver, source: c.source, port: c.port, signedBy: r.signer?.eid ?? null, result: 'timeout', attempts: c.attempts, timeoutMs: r.timeoutMs, ignored: c.ignored, errors: [...new Set(c.errors)] };
    return { lines: [JSON.stringify(object, jsonReplacer)], exitCode: 1 };
  }
  return { lines: [header(c), `no Map-Reply after ${c.attempts} attempt${c.attempts === 1 ? '' : 's'} of ${r.timeoutMs} ms${ignored}${why}`], exitCode: 1 };
}
