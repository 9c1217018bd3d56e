// The reference CipherBackend on node:crypto: straightforward and slow (a cipher object per
// packet costs ~110 kpps here). The addon backend must match it byte for byte.
import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import type { CipherBackend, CipherContext } from './cipher-backend.js';
import { ENCRYPT_KEY_LENGTH, ICV_KEY_LENGTH, ICV_LENGTH, suiteLayout, type CipherSuite } from './cipher-suite.js';

const HEADER = 8;
const SPACE = 0x20;

function icv(icvKey: Uint8Array, bytes: Uint8Array): Buffer {
  return createHmac('sha256', icvKey).update(bytes).digest().subarray(0, ICV_LENGTH);
}

function createContext(suite: CipherSuite, encryptKey: Uint8Array, icvKey: Uint8Array): CipherContext {
  if (encryptKey.length !== ENCRYPT_KEY_LENGTH) throw new RangeError('the encrypt key is 16 bytes');
  if (icvKey.length !== ICV_KEY_LENGTH) throw new RangeError('the ICV key is 20 bytes');
  const layout = suiteLayout(suite);
  const start = HEADER + layout.ivLength;
  let closed = false;

  function seal(p: Uint8Array, length: number): number {
    const n = length - start;
    if (n < 0) throw new RangeError('a packet shorter than header and IV cannot be sealed');
    const pad = (layout.blockLength - (n % layout.blockLength)) % layout.blockLength;
    const sealed = length + pad + layout.tagLength + ICV_LENGTH;
    if (sealed > p.length) throw new RangeError(`no room to seal: ${sealed} bytes needed, buffer holds ${p.length}`);
    p.fill(SPACE, length, length + pad);
    const iv = p.subarray(HEADER, start);
    const plaintext = p.subarray(start, length + pad);
    let at = start;
    if (suite === 5) {
      const cipher = createCipheriv('aes-128-gcm', encryptKey, iv);
      at += Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]).copy(p, at);
    } else {
      const cipher = createCipheriv('aes-128-cbc', encryptKey, iv).setAutoPadding(false);
      at += Buffer.concat([cipher.update(plaintext), cipher.final()]).copy(p, at);
    }
    icv(icvKey, p.subarray(0, at)).copy(p, at);
    return at + ICV_LENGTH;
  }

  function open(p: Uint8Array, length: number): { status: number; length: number } {
    if (length > p.length || length < start + layout.tagLength + ICV_LENGTH) return { status: 1, length };
    const body = length - ICV_LENGTH;
    const ctEnd = body - layout.tagLength;
    // A length check on public bytes first: it saves an HMAC and matches the addon's order.
    if ((ctEnd - start) % layout.blockLength !== 0) return { status: 4, length };
    if (!timingSafeEqual(icv(icvKey, p.subarray(0, body)), p.subarray(body, length))) return { status: 2, length };
    const iv = p.subarray(HEADER, start);
    const decipher =
      suite === 5
        ? createDecipheriv('aes-128-gcm', encryptKey, iv).setAuthTag(p.subarray(ctEnd, body))
        : createDecipheriv('aes-128-cbc', encryptKey, iv).setAutoPadding(false);
    const plaintext = decipher.update(p.subarray(start, ctEnd));
    try {
      decipher.final();
    } catch {
      return { status: 3, length };
    }
    plaintext.copy(p, start);
    return { status: 0, length: ctEnd };
  }

  return {
    sealBatch(packets, lengths, count) {
      if (closed) throw new Error('cipher context is closed');
      for (let i = 0; i < count; i++) lengths[i] = seal(packetAt(packets, i), lengths[i] ?? 0);
    },
    openBatch(packets, lengths, statuses, count) {
      if (closed) throw new Error('cipher context is closed');
      for (let i = 0; i < count; i++) {
        const r = open(packetAt(packets, i), lengths[i] ?? 0);
        statuses[i] = r.status;
        lengths[i] = r.length;
      }
    },
    close() {
      closed = true;
    },
  };
}

function packetAt(packets: readonly Uint8Array[], i: number): Uint8Array {
  const p = packets[i];
  if (!p) throw new RangeError(`count exceeds the packet array (${packets.length})`);
  return p;
}

export const nodeCipherBackend: CipherBackend = { name: 'node:crypto', createContext };
