// The real captures of OOR and lispers.net (pcap/): every LISP packet decodes, every standard
// message re-encodes to the same bytes (the quirky ones differ exactly where the quirk says),
// every authenticated message verifies with its site key, and tshark agrees on type and nonce.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { verifyAuthentication, type AuthKey } from '../src/lisp/auth.js';
import { toHex } from '../src/lisp/bytes.js';
import { encodeControl } from '../src/lisp/control.js';
import { encodeDataHeader } from '../src/lisp/data-header.js';
import { hex64 } from '../src/lisp/describe.js';
import type { Quirk } from '../src/lisp/errors.js';
import { MESSAGE_TYPE } from '../src/lisp/message-type.js';
import { bundledCaptures } from '../src/node/bundled-captures.js';
import { lispPackets, type LispPacket } from '../src/node/lisp-capture.js';
import { readCapture } from '../src/node/pcap-file.js';

// Frame counts as `tshark -r FILE | wc -l` reports them; every frame in these files is LISP.
const FRAMES: Readonly<Record<string, number>> = {
  'oor-hub.pcap': 68,
  'oor-lispersxtr.pcap': 61,
  'lispers-data.pcap': 8,
  'lispers-sha256-register.pcap': 2,
  'lispers-crypto-eid-register.pcap': 4,
};

function packetsOf(path: URL): LispPacket[] {
  const capture = readCapture(readFileSync(path));
  assert.ok(capture.ok, 'capture readable');
  return lispPackets(capture.packets);
}

/**
 * Our standard re-encoding of a message that carried tolerated quirks, rebuilt from the original
 * bytes: each quirk names the exact bytes that differ and why.
 */
function expectedStandardForm(original: Uint8Array, quirks: readonly Quirk[]): Uint8Array {
  const out = original.slice();
  for (const q of quirks) {
    switch (q.quirk) {
      case 'json-lcaf-length': {
        // lispers.net counts the JSON LCAF 2 bytes short (it leaves out the trailing AFI 0);
        // we write the RFC 8060 Length = 2 + JSON length + 2 + address.
        const at = q.offset + 4;
        const declared = ((out[at] ?? 0) << 8) | (out[at + 1] ?? 0);
        out[at] = (declared + 2) >> 8;
        out[at + 1] = (declared + 2) & 0xff;
        break;
      }
      case 'map-notify-trailer':
      case 'trailing-bytes':
        // Kept verbatim in `trailer`, so the bytes are reproduced.
        break;
      case 'nat-lcaf-length':
      case 'ignored-bits':
        assert.fail(`no capture is expected to show ${q.quirk}`);
    }
  }
  return out;
}

for (const capture of bundledCaptures()) {
  test(`${capture.file}: every LISP packet decodes and re-encodes`, () => {
    const packets = packetsOf(capture.path);
    assert.equal(packets.length, FRAMES[capture.file]);
    for (const p of packets) {
      const where = `${capture.file} frame ${p.frame}`;
      if (p.kind === 'control') {
        assert.ok(p.message.ok, `${where}: ${p.message.ok ? '' : p.message.error.message}`);
        const reencoded = encodeControl(p.message.value);
        assert.equal(toHex(reencoded), toHex(expectedStandardForm(p.payload, p.message.quirks)), where);
      } else {
        assert.ok(p.header.ok, `${where}: data header`);
        assert.deepEqual(p.header.quirks, [], where);
        assert.equal(toHex(encodeDataHeader(p.header.value)), toHex(p.payload.subarray(0, 8)), where);
        assert.notEqual(p.inner.kind, 'none', `${where}: data packet without payload`);
        if (p.inner.kind === 'control') assert.ok(p.inner.message.ok, where);
      }
    }
  });

  const siteKey = capture.siteKey;
  if (siteKey) {
    test(`${capture.file}: Map-Registers and Map-Notifies verify with the site key`, () => {
      const byKeyId = (key: AuthKey) => (id: number) => (id === key.keyId ? key : undefined);
      const wrongKey: AuthKey = { ...siteKey, secret: new TextEncoder().encode('not-the-site-key') };
      let checked = 0;
      for (const p of packetsOf(capture.path)) {
        if (p.kind !== 'control' || !p.message.ok) continue;
        const type = p.message.value.type;
        if (type !== 'map-register' && type !== 'map-notify') continue;
        assert.deepEqual(verifyAuthentication(p.payload, byKeyId(siteKey)), { ok: true, keyId: siteKey.keyId }, `frame ${p.frame}`);
        assert.deepEqual(verifyAuthentication(p.payload, byKeyId(wrongKey)), { ok: false, reason: 'mac-mismatch' });
        checked++;
      }
      assert.ok(checked > 0, 'the capture holds authenticated messages');
    });
  }

  test(`${capture.file}: tshark reports the same message types and nonces`, () => {
    const path = fileURLToPath(capture.path);
    const rows = execFileSync('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.number', '-e', 'lisp.type', '-e', 'lisp.nonce'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .split('\n')
      .map((line) => line.split('\t'));
    const ours = new Map(packetsOf(capture.path).map((p) => [p.frame, p]));
    for (const [frame, types, nonce] of rows) {
      const p = ours.get(Number(frame));
      assert.ok(p, `frame ${frame} found`);
      if (!types) {
        assert.equal(p.kind, 'data', `frame ${frame}: tshark sees no control message`);
        continue;
      }
      assert.equal(p.kind, 'control');
      assert.ok(p.message.ok);
      const m = p.message.value;
      const inner = m.type === 'ecm' ? m.message : m;
      const expectedTypes = m.type === 'ecm' ? [MESSAGE_TYPE.ecm, typeCode(inner.type)] : [typeCode(m.type)];
      assert.deepEqual(types.split(',').map(Number), expectedTypes, `frame ${frame} types`);
      assert.equal(nonce, hex64(inner.nonce), `frame ${frame} nonce`);
    }
  });
}

function typeCode(type: string): number {
  switch (type) {
    case 'map-request':
      return MESSAGE_TYPE.mapRequest;
    case 'map-reply':
      return MESSAGE_TYPE.mapReply;
    case 'map-register':
      return MESSAGE_TYPE.mapRegister;
    case 'map-notify':
      return MESSAGE_TYPE.mapNotify;
    case 'map-notify-ack':
      return MESSAGE_TYPE.mapNotifyAck;
    default:
      return MESSAGE_TYPE.info;
  }
}
