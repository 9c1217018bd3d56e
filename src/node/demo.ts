// `lispnode demo`: first the overlay — two xTRs in network namespaces, encrypted with suite 5,
// pinged across over IPv4 and IPv6 EIDs, a short iperf3, the nodes' counters, and a teardown that
// leaves nothing behind — then the whole node story (demo-nodes.ts: controller, onboarding,
// attestation, vault, tickets), then the codec on the bundled captures of OOR and lispers.net:
// one line per capture with its decode errors and site-key checks; and where to look next.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { verifyAuthentication } from '../lisp/auth.js';
import { bundledCaptures } from './bundled-captures.js';
import { nodesDemo } from './demo-nodes.js';
import { hasDecodeError, packetLine } from './decode-listing.js';
import type { NetnsLab } from './lab/netns-lab.js';
import { formatBits, formatBytes, hasCommand, iperf3, LabGuard, ping, startIperf3Server, tunMtu, type Iperf3Server } from './lab/measure.js';
import { lispPackets } from './lisp-capture.js';
import type { MapServerStats } from './map-server/map-server-node.js';
import { readCapture } from './pcap-file.js';
import type { XtrStats } from './xtr/xtr-node.js';

type Print = (line: string) => void;

const NODES = [
  { name: 'a', locator: '198.18.0.1', eids: [{ prefix: '192.0.2.0/28', address: '192.0.2.1' }, { prefix: '2001:db8:1::/64', address: '2001:db8:1::1' }] },
  { name: 'b', locator: '198.18.0.2', eids: [{ prefix: '192.0.2.16/28', address: '192.0.2.17' }, { prefix: '2001:db8:2::/64', address: '2001:db8:2::1' }] },
] as const;
const IPERF_SECONDS = 3;

/** Runs both parts; false when something that ran did not work (a skipped overlay is not a failure). */
export async function runDemo(print: Print): Promise<boolean> {
  const overlay = await overlayDemo(print);
  print('');
  const nodes = await nodesDemo(print);
  print('');
  const captures = captureDemo(print);
  print('');
  WHERE_NEXT.forEach((line) => print(line));
  return overlay && nodes && captures;
}

const WHERE_NEXT = [
  '== Where to look next',
  '   docs/node.md            run a node: identity, controller trust, onboarding, attestation, vault (lispnode run)',
  '   docs/controller.md      the reference controller: devices, mesh definitions, attestation, bundles',
  '   docs/configuration.md   every key of the xTR and map-server configs; docs/examples/ has commented ones',
  '   docs/operations.md      status, metrics, logs, reload, capture and replay, systemd',
  '   docs/security-model.md  who can do what to a node, and what is not defended yet',
  '   npm test                the full suite (real TUN devices, namespaces, swtpm, tshark); npm run bench for figures',
];

const count = (n: number): string => n.toLocaleString('en-US');

/** One direction of the overlay from both nodes' counters. */
function direction(from: string, to: string, sender: XtrStats, receiver: XtrStats): string {
  return (
    `  ${from} -> ${to}: ${from} read ${count(sender.tun.in)} packets / ${formatBytes(sender.tun.inBytes)} from its TUN and sent ${count(sender.underlay.out)} / ${formatBytes(sender.underlay.outBytes)}; ` +
    `${to} received ${count(receiver.underlay.in)} / ${formatBytes(receiver.underlay.inBytes)} and delivered ${count(receiver.tun.out)} / ${formatBytes(receiver.tun.outBytes)} into its TUN`
  );
}

function drops(name: string, stats: XtrStats): string {
  const entries = Object.entries(stats.drops).filter(([, n]) => n > 0);
  return `${name}: ${entries.length === 0 ? 'none' : entries.map(([reason, n]) => `${reason} ${count(n)}`).join(', ')}`;
}

async function overlayDemo(print: Print): Promise<boolean> {
  print('== Overlay: two lispnode xTRs and a map-server in network namespaces; no static mappings; data encrypted with suite 5 (AES-128-GCM + HMAC-SHA-256 ICV, addon backend)');
  if (process.getuid?.() !== 0) {
    print('   skipped: this part builds network namespaces, veth pairs and TUN devices, which needs root (CAP_NET_ADMIN);');
    print('   run `sudo lispnode demo` (or `npm run demo` as root) to see it');
    return true;
  }
  for (const [tool, pkg] of [['ip', 'iproute2'], ['ping', 'iputils-ping']] as const) {
    if (!(await hasCommand(tool))) {
      print(`   skipped: \`${tool}\` is not installed (Debian package ${pkg}; \`npm run demo\` installs it)`);
      return true;
    }
  }
  const guard = new LabGuard();
  const untrap = guard.trapSignals(print);
  let healthy = true;
  let lab: NetnsLab | undefined;
  let server: Iperf3Server | undefined;
  try {
    const started = Date.now();
    lab = await guard.create({
      nodes: NODES,
      encryption: 'required',
      suite: 5,
      backend: 'native',
      id: `d${String(process.pid % 100000).padStart(5, '0')}`,
      mapServer: { name: 'ms', locator: '198.18.0.10', password: randomBytes(12).toString('base64') },
    });
    for (const n of lab.nodes) {
      print(n.role === 'xtr' ? `   node ${n.name}: netns ${n.namespace}, locator ${n.locator}, EIDs ${n.eids.map((e) => e.address).join(', ')}` : `   map-server ${n.name}: netns ${n.namespace}, locator ${n.locator}`);
    }
    print(`   built in ${((Date.now() - started) / 1000).toFixed(1)} s; TUN MTU ${tunMtu(lab, 'a') ?? '?'}; underlay: veth pairs on a bridge in netns ln${lab.id}-u`);
    const a = lab.node('a').namespace;
    const b = lab.node('b').namespace;
    const ms = await lab.stats<MapServerStats>('ms');
    print(`map-server ms (198.18.0.10): ${ms.registrations} registrations (each xTR's IPv4 and IPv6 EID-prefix, HMAC-SHA-256 site key)`);
    // The first packet of each flow makes the ITR ask the map-server (the ETR answers with its key);
    // the ETR drops packets from senders it has not resolved yet (etr-unknown-source) and resolves them.
    const resolving = Date.now();
    for (const [ns, to] of [[a, '192.0.2.17'], [b, '192.0.2.1'], [a, '2001:db8:2::1'], [b, '2001:db8:1::1']] as const) await ping(ns, to, 1, 0.2).catch(() => undefined);
    print(`resolution: both xTRs resolved each other through the map-server and agreed keys in ${((Date.now() - resolving) / 1000).toFixed(1)} s`);
    for (const [family, from, to] of [['IPv4', '192.0.2.1', '192.0.2.17'], ['IPv6', '2001:db8:1::1', '2001:db8:2::1']] as const) {
      const result = await ping(a, to, 5, 0.2);
      const rtt = result.rtt ? `, rtt min/avg/max ${result.rtt.min.toFixed(2)}/${result.rtt.avg.toFixed(2)}/${result.rtt.max.toFixed(2)} ms` : '';
      print(`ping ${from} -> ${to} (${family}): ${result.received}/${result.transmitted} replies, ${result.lossPercent}% loss${rtt}`);
      if (result.lossPercent > 0) healthy = false;
    }
    if (await hasCommand('iperf3')) {
      server = await startIperf3Server(lab.node('b').namespace);
      const tcp = await iperf3(a, '192.0.2.17', { protocol: 'tcp', seconds: IPERF_SECONDS });
      print(`iperf3 TCP 192.0.2.1 -> 192.0.2.17, ${IPERF_SECONDS} s: ${formatBits(tcp.receivedBitsPerSecond)} received${tcp.retransmits !== undefined ? `, ${count(tcp.retransmits)} retransmissions` : ''} (\`npm run bench -- overlay\` measures properly)`);
      await server.stop();
      server = undefined;
    } else {
      print('iperf3: not installed, throughput skipped (Debian package iperf3; `npm run demo` installs it)');
    }
    const sa = await lab.stats('a');
    const sb = await lab.stats('b');
    print('counters (packets / bytes):');
    print(direction('a', 'b', sa, sb));
    print(direction('b', 'a', sb, sa));
    print(`  drops by reason: ${drops('a', sa)}; ${drops('b', sb)}`);
    print('  (expected: itr-map-cache-miss for the first packets of each flow and for IPv6 router solicitations,');
    print('   etr-unknown-source for packets from a sender the ETR had not resolved yet)');
    const keyed = (s: typeof sa): number => (s.control?.resolver?.['key-installed'] ?? 0) + (s.control?.responder['key-candidate'] ?? 0);
    const encrypted = keyed(sa) > 0 && keyed(sb) > 0;
    print(`  every peer encrypted: ${encrypted ? 'yes' : 'NO'} (keys agreed in the Map-Request/Map-Reply exchange: a ${keyed(sa)}, b ${keyed(sb)})`);
    if (!encrypted) healthy = false;
  } catch (error) {
    if (!guard.interrupted) print(`overlay failed: ${(error as Error).message}`);
    healthy = false;
  } finally {
    await server?.stop();
    const left = await guard.destroyAll();
    untrap();
    if (lab) {
      if (left.length === 0) print(`torn down: xTRs and map-server stopped, namespaces ln${lab.id}-{a,b,ms,u} and their interfaces removed`);
      else {
        print(`teardown incomplete, left: ${left.join(', ')}`);
        healthy = false;
      }
    }
  }
  return healthy;
}

function captureDemo(print: Print): boolean {
  print('== Captures: the bundled OOR and lispers.net captures decoded, registrations checked against their site keys');
  print('   (`lispnode decode pcap/FILE` lists every packet)');
  let healthy = true;
  for (const capture of bundledCaptures()) {
    const read = readCapture(readFileSync(capture.path));
    if (!read.ok) {
      print(`${capture.file}: cannot read capture: ${read.error.message}`);
      healthy = false;
      continue;
    }
    const packets = lispPackets(read.packets);
    const failed: string[] = [];
    const verdicts = new Map<string, number>();
    for (const p of packets) {
      if (hasDecodeError(p)) failed.push(packetLine(p));
      const type = p.kind === 'control' && p.message.ok ? p.message.value.type : undefined;
      if (capture.siteKey && (type === 'map-register' || type === 'map-notify')) {
        const key = capture.siteKey;
        const verdict = verifyAuthentication(p.payload, (id) => (id === key.keyId ? key : undefined));
        const label = `${type} ${verdict.ok ? 'authentic' : verdict.reason}`;
        verdicts.set(label, (verdicts.get(label) ?? 0) + 1);
      }
    }
    const auth = [...verdicts].map(([label, n]) => `${n} ${label}`).join(', ');
    print(`${capture.file}: ${read.packets.length} frames, ${packets.length} LISP packets, ${failed.length} decode errors${auth ? `; site key check: ${auth}` : ''}`);
    for (const line of failed) print(`  ${line}`);
    if (failed.length > 0 || [...verdicts.keys()].some((k) => !k.endsWith('authentic'))) healthy = false;
  }
  return healthy;
}
