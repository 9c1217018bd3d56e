// Wire codec speed: data header, a real Map-Register, and its authentication check.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { verifyAuthentication } from '../src/lisp/auth.js';
import { decodeControl, encodeControl } from '../src/lisp/control.js';
import { decodeDataHeader, writeDataHeader, type DataHeader } from '../src/lisp/data-header.js';
import { jsonReplacer } from '../src/lisp/describe.js';
import { bundledCaptures } from '../src/node/bundled-captures.js';
import { lispPackets } from '../src/node/lisp-capture.js';
import { readCapture } from '../src/node/pcap-file.js';
import { compare } from './measure.js';

export function codecBenchmarks(print: (line: string) => void): void {
  const capture = bundledCaptures().find((c) => c.file === 'oor-hub.pcap');
  const read = capture && readCapture(readFileSync(capture.path));
  if (!capture?.siteKey || !read?.ok) throw new Error('pcap/oor-hub.pcap is needed for the codec benchmarks');
  const register = lispPackets(read.packets).find((p) => p.kind === 'control' && p.message.ok && p.message.value.type === 'map-register');
  if (!register) throw new Error('no Map-Register in oor-hub.pcap');
  const registerBytes = register.payload.slice();
  const decoded = decodeControl(registerBytes);
  if (!decoded.ok) throw new Error('the Map-Register does not decode');
  const asJson = JSON.stringify(decoded.value, jsonReplacer);
  const key = capture.siteKey;

  const header: DataHeader = { nonceField: { kind: 'nonce', nonce: 0x123456, echoRequest: false }, instanceId: 1000, reservedBit: false, keyId: 1 };
  const packet = new Uint8Array(1400);
  writeDataHeader(packet, 0, header);
  const view = new DataView(packet.buffer);
  let sink = 0;

  compare(
    'LISP data header, decode',
    { name: 'two DataView.getUint32 reads', run: (n) => { for (let i = 0; i < n; i++) sink += view.getUint32(0) ^ view.getUint32(4); } },
    { name: 'decodeDataHeader (typed result)', run: (n) => { for (let i = 0; i < n; i++) sink += decodeDataHeader(packet).ok ? 1 : 0; } },
    2_000_000,
    print,
  );
  compare(
    'LISP data header, write into headroom',
    { name: 'two DataView.setUint32 writes', run: (n) => { for (let i = 0; i < n; i++) { view.setUint32(0, 0x89123456); view.setUint32(4, i); } } },
    { name: 'writeDataHeader', run: (n) => { for (let i = 0; i < n; i++) sink += writeDataHeader(packet, 0, header); } },
    2_000_000,
    print,
  );
  compare(
    `Map-Register (${registerBytes.length} bytes, OOR capture), decode`,
    { name: 'JSON.parse of the same message as JSON', run: (n) => { for (let i = 0; i < n; i++) sink += (JSON.parse(asJson) as object) ? 1 : 0; } },
    { name: 'decodeControl', run: (n) => { for (let i = 0; i < n; i++) sink += decodeControl(registerBytes).ok ? 1 : 0; } },
    100_000,
    print,
  );
  compare(
    'Map-Register, encode',
    { name: 'JSON.stringify of the same message', run: (n) => { for (let i = 0; i < n; i++) sink += JSON.stringify(decoded.value, jsonReplacer).length; } },
    { name: 'encodeControl', run: (n) => { for (let i = 0; i < n; i++) sink += encodeControl(decoded.value).length; } },
    100_000,
    print,
  );
  compare(
    'Map-Register authentication (HMAC-SHA-1)',
    { name: 'bare createHmac over the message', run: (n) => { for (let i = 0; i < n; i++) sink += createHmac('sha1', key.secret).update(registerBytes).digest()[0] ?? 0; } },
    { name: 'verifyAuthentication (zeroed field, constant-time)', run: (n) => { for (let i = 0; i < n; i++) sink += verifyAuthentication(registerBytes, () => key).ok ? 1 : 0; } },
    100_000,
    print,
  );
  if (sink === 42) print('');
}
