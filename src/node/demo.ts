// `lispnode demo`: until the overlay runs, show the codec on the bundled captures of OOR and
// lispers.net — every packet decoded, every Map-Register/Map-Notify checked against its site key.
import { readFileSync } from 'node:fs';
import { verifyAuthentication } from '../lisp/auth.js';
import { bundledCaptures } from './bundled-captures.js';
import { hasDecodeError, packetLine } from './decode-listing.js';
import { lispPackets } from './lisp-capture.js';
import { readCapture } from './pcap-file.js';

export function runDemo(print: (line: string) => void): boolean {
  let healthy = true;
  for (const capture of bundledCaptures()) {
    const read = readCapture(readFileSync(capture.path));
    if (!read.ok) {
      print(`${capture.file}: cannot read capture: ${read.error.message}`);
      healthy = false;
      continue;
    }
    const packets = lispPackets(read.packets);
    print(`\n== ${capture.file}: ${read.packets.length} frames, ${packets.length} LISP packets`);
    let errors = 0;
    const verdicts = new Map<string, number>();
    for (const p of packets) {
      print(packetLine(p));
      if (hasDecodeError(p)) errors++;
      const type = p.kind === 'control' && p.message.ok ? p.message.value.type : undefined;
      if (capture.siteKey && (type === 'map-register' || type === 'map-notify')) {
        const key = capture.siteKey;
        const verdict = verifyAuthentication(p.payload, (id) => (id === key.keyId ? key : undefined));
        const label = `${type} ${verdict.ok ? 'authentic' : verdict.reason}`;
        verdicts.set(label, (verdicts.get(label) ?? 0) + 1);
      }
    }
    const auth = [...verdicts].map(([label, n]) => `${n} ${label}`).join(', ');
    print(`-- ${errors} decode errors${auth ? `; site key check: ${auth}` : ''}`);
    if (errors > 0 || [...verdicts.keys()].some((k) => !k.endsWith('authentic'))) healthy = false;
  }
  return healthy;
}
