// Attack d of issue 12 and its verdict, shared by test/attack.e2e.test.ts and `npm run attack`
// (1,000,000): key offers naming distinct fake locators sent to x2 as forwarded requests (ECM, E),
// which x2 answers with a candidate key each, while x1 pings x2, with x2's resident memory sampled
// throughout. Every offer costs the ETR an X25519 agreement and a candidate session, of which it
// keeps a bounded number (responder.ts ResponderLimits). The checks: x2 survives, its resident
// memory never exceeds `peakBoundKb` (an absolute bound: where the daemon starts depends on what
// ran before, where it levels off does not), x1 -> x2 loses at most 1 % meanwhile and nothing
// afterwards.

/** The documented bound (docs/performance.md): an ETR's RSS under any number of key offers. */
export const KEY_OFFER_PEAK_BOUND_KB = 256 * 1024;
import { formatPing, lossOf, X2, type AttackLab, type PingResult } from './attack-lab.js';
import type { HostilePlan, HostileReport } from './hostile-host.js';

export interface KeyStateOutcome {
  readonly offers: number;
  readonly elapsedMs: number;
  readonly rssKb: { readonly start: number; readonly peak: number; readonly end: number };
  /** UDP receive drops in x2's namespace: offers x2 could not even read. */
  readonly kernelDrops: number;
  readonly keyInstalled: number;
  readonly sessionRows: number;
  readonly ping: { readonly during: PingResult; readonly after: PingResult };
  readonly failures: readonly string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function fakeLocatorOffers(l: AttackLab, o: { readonly offers: number; readonly perSecond: number; readonly peakBoundKb?: number }): Promise<KeyStateOutcome> {
  const start = l.rss('x2');
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, l.rss('x2'))), 250);
  const installedBefore = (await l.xtr('x2')).control.responder['key-candidate'] ?? 0;
  const snmpBefore = await l.udpSnmp(l.namespace('x2'));
  const plan: HostilePlan = { kind: 'fake-locators', target: X2.locator, eid: X2.eid, count: o.offers, perSecond: o.perSecond };
  const { result, ping } = await l.pingDuring(() => l.hostile<HostileReport>('hostile-host', plan, (o.offers / o.perSecond) * 1000 + 120_000)).finally(() => clearInterval(sampler));
  await sleep(1000);
  const failures: string[] = [];
  const alive = await l.alive('x2');
  if (!alive) failures.push(`x2 died under the key offers (${l.lastWords('x2')})`);
  const end = l.rss('x2');
  const snmp = await l.udpSnmp(l.namespace('x2'));
  const status = alive ? await l.xtr('x2') : undefined;
  const after = alive ? await l.ping('x1', X2.eid, { count: 30, intervalMs: 50 }) : { sent: 0, received: 0 };
  const bound = o.peakBoundKb ?? KEY_OFFER_PEAK_BOUND_KB;
  if (alive && Math.max(peak, end) > bound) failures.push(`unbounded per-ITR key state: x2 reached ${Math.round(Math.max(peak, end) / 1024)} MB RSS (from ${Math.round(start / 1024)} MB) for ${o.offers} offers from fake locators (bound ${Math.round(bound / 1024)} MB)`);
  if (lossOf(ping) > 0.01) failures.push(`key offers from fake locators cut x1 -> x2: ${formatPing(ping)} during`);
  if (after.received !== after.sent || after.sent === 0) failures.push(`x1 -> x2 after the key offers from fake locators: ${formatPing(after)}`);
  return {
    offers: result.sent.sent ?? 0,
    elapsedMs: result.elapsedMs,
    rssKb: { start, peak, end },
    kernelDrops: (snmp.InErrors ?? 0) - (snmpBefore.InErrors ?? 0),
    keyInstalled: (status?.control.responder['key-candidate'] ?? 0) - installedBefore,
    sessionRows: status?.sessions.length ?? 0,
    ping: { during: ping, after },
    failures,
  };
}

export function describeKeyState(o: KeyStateOutcome): string {
  return (
    `${o.offers} key offers from fake locators in ${o.elapsedMs} ms: x2 RSS ${o.rssKb.start} -> peak ${o.rssKb.peak} -> ${o.rssKb.end} kB (+${o.rssKb.end - o.rssKb.start} kB, bound ${KEY_OFFER_PEAK_BOUND_KB} kB); ` +
    `x2 agreed ${o.keyInstalled} candidate keys, ${o.sessionRows} session rows in status; x2's kernel dropped ${o.kernelDrops} offers; ping x1 -> x2 during ${formatPing(o.ping.during)}, after ${formatPing(o.ping.after)}`
  );
}
