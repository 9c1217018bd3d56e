// The peers of an xTR: one per remote locator, holding what the ITR needs to send to it (address
// slot, port, sealing keys) and what the ETR needs to accept from it (opening keys, clear policy).
// Static keys: both ends derive the same keys from their X25519 pair (lispers.net's KDF is
// symmetric), so the two directions would share a key; the top salt bit, set by which public key
// is larger, keeps their IV spaces apart.
import { randomBytes } from 'node:crypto';
import type { CipherBackend } from '../../crypto/cipher-backend.js';
import type { CipherSuite } from '../../crypto/cipher-suite.js';
import { OpeningSession, SealingSession } from '../../crypto/session.js';
import { deriveDataPlaneKeys, type X25519KeyPair } from '../../crypto/x25519-kdf.js';
import type { EtrPeer } from '../../lisp/etr.js';
import type { ItrPeer } from '../../lisp/itr.js';
import { writeAddressSlot } from '../../tun/udp-socket.js';

export interface Peer {
  readonly address: string;
  readonly itr: ItrPeer;
  readonly etr: EtrPeer;
  /** When its static keys were installed (the caller's clock), for the key age in status output. */
  readonly keyedAt: number;
}

export interface PeerKeys {
  readonly suite: CipherSuite;
  readonly backend: CipherBackend;
  readonly own: X25519KeyPair;
  readonly peerPublic: Uint8Array;
  readonly acceptClear: boolean;
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

export function createPeer(address: string, family: 4 | 6, port: number, keys: PeerKeys | undefined, now: number): Peer {
  const slot = new Uint8Array(16);
  writeAddressSlot(slot, 0, address);
  if (!keys) {
    return { address, itr: { family, address: slot, port, sealing: undefined }, etr: { opening: undefined, acceptClear: true }, keyedAt: now };
  }
  const derived = deriveDataPlaneKeys(keys.own, keys.peerPublic);
  const salt = randomBytes(8);
  salt[0] = ((salt[0] ?? 0) & 0x7f) | (compare(keys.own.publicKey, keys.peerPublic) > 0 ? 0x80 : 0);
  const sealing = new SealingSession(keys.backend);
  sealing.install({ keyId: 1, suite: keys.suite, keys: derived, salt, now });
  const opening = new OpeningSession(keys.backend);
  opening.install({ keyId: 1, suite: keys.suite, keys: derived, salt, now });
  return { address, itr: { family, address: slot, port, sealing }, etr: { opening, acceptClear: keys.acceptClear }, keyedAt: now };
}

/** Finds the peer of a source locator without building a string for IPv4. */
export class PeerTable {
  private readonly v4 = new Map<number, Peer>();
  private readonly v6 = new Map<string, Peer>();

  add(peer: Peer): void {
    if (peer.itr.family === 4) this.v4.set(u32(peer.itr.address, 12), peer);
    else this.v6.set(Buffer.from(peer.itr.address).toString('hex'), peer);
  }

  /** Removes the peer of `address` and closes its sessions. */
  remove(address: string): Peer | undefined {
    const peer = this.get(address);
    if (!peer) return undefined;
    if (peer.itr.family === 4) this.v4.delete(u32(peer.itr.address, 12));
    else this.v6.delete(Buffer.from(peer.itr.address).toString('hex'));
    peer.itr.sealing?.close();
    peer.etr.opening?.close();
    return peer;
  }

  get(address: string): Peer | undefined {
    for (const p of this.all()) if (p.address === address) return p;
    return undefined;
  }

  /** `bytes` holds 4 (IPv4) or 16 (IPv6) address bytes at `offset`. */
  find(family: 4 | 6, bytes: Uint8Array, offset: number): Peer | undefined {
    if (family === 4) return this.v4.get(u32(bytes, offset));
    return this.v6.get(Buffer.from(bytes.buffer, bytes.byteOffset + offset, 16).toString('hex'));
  }

  *all(): IterableIterator<Peer> {
    yield* this.v4.values();
    yield* this.v6.values();
  }
}

function u32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}
