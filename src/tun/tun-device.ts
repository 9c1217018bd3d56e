// A Linux TUN interface with wireguard-go's batch shape (tun.Device): one call moves many packets
// between the kernel and caller-owned buffers, each packet at `offset` so that headroom in front of
// it takes the outer headers in place. The device is the addon's TunDevice (src/tun/native/tun.cc):
// IFF_TUN | IFF_NO_PI, non-blocking, one read()/write() per packet. Never put a net.Socket (or any
// stream) on a TUN fd: it merges packets.
import { nativeClass } from './native-addon.js';

export interface TunDevice {
  readonly name: string;
  readonly mtu: number;
  /** Reads up to bufs.length packets; packet i lands in bufs[i] at `offset` (headroom in front), sizes[i] = its length. Returns how many were read (0 when none is ready). */
  readBatch(bufs: readonly Uint8Array[], sizes: Uint32Array, offset: number): number;
  /** Writes bufs[i].subarray(offsets[i], offsets[i] + lengths[i]) for i < count. Returns how many were accepted by the kernel. */
  writeBatch(bufs: readonly Uint8Array[], offsets: Uint32Array, lengths: Uint32Array, count: number): number;
  /** Calls `onReadable` whenever the device has packets (level-triggered). */
  startReading(onReadable: () => void): void;
  stopReading(): void;
  close(): void;
}

/** Counters since open. */
export interface TunStats {
  readonly readPackets: number;
  readonly readBytes: number;
  /** Packets longer than the room after `offset` (the MTU was raised underneath): dropped. */
  readonly readTruncated: number;
  readonly writtenPackets: number;
  readonly writtenBytes: number;
  /** Packets the kernel refused (EINVAL: not IPv4/IPv6; EIO: link down), dropped, not thrown. */
  readonly writeErrors: number;
  /** writeBatch calls cut short by EAGAIN. */
  readonly writeBlocked: number;
  /** errno name of the latest refused packet, e.g. 'EIO'. */
  readonly lastWriteError: string | undefined;
}

/**
 * The addon's device, which implements TunDevice directly (no JS layer on the hot path):
 *
 * - `readBatch` throws a RangeError when a buffer has less than `offset + mtu` bytes, and a
 *   system error (code 'EBADFD' once the interface was deleted underneath) only when it read
 *   nothing. It never writes the headroom; the bytes behind a packet are unspecified. A packet
 *   longer than the room (the MTU raised by someone else) is dropped and counted
 *   (stats().readTruncated), never handed over cut short.
 * - `writeBatch` returns n such that bufs[0, n) are done: written, or refused by the kernel (then
 *   counted in stats().writeErrors and stats().lastWriteError, never thrown); n < count only when
 *   the kernel pushed back with EAGAIN, and the caller resumes from n. It throws on bad arguments
 *   (having written nothing) and 'EBADFD' when the interface was deleted.
 * - `startReading` polls the fd through libuv (level-triggered: the callback runs again on the
 *   next loop turn while packets are queued) and keeps the event loop alive until `stopReading` or
 *   `close`. A callback that throws raises an uncaught exception. On a poll error (the interface
 *   was deleted) polling stops after one last call, whose readBatch then throws. The kernel wakes
 *   pollers just before it detaches a deleted device, so that last call can be missed (3 in 400
 *   deletions here); calling startReading again re-polls the fd, which then reports the error.
 * - `close` (idempotent) stops polling and closes the fd, which deletes the interface unless it
 *   is a persistent one (`ip tuntap add`) that this device attached to. Other methods then throw
 *   ERR_INVALID_STATE; `stopReading` and `stats` keep working. A device that becomes unreachable
 *   is closed when collected (polling keeps only the callback alive, and what its closure holds).
 */
export interface NativeTunDevice extends TunDevice {
  stats(): TunStats;
}


/**
 * Creates (or attaches to a persistent) TUN interface `name` (1 to 15 bytes), sets its MTU (68 to
 * 65535) and brings it up. The returned device's `name` is the kernel's: it differs from
 * `options.name` only for a pattern such as `lisp%d`, which the kernel numbers. Throws TypeError/RangeError (codes ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE) on bad
 * options, and system errors with the errno name as code: ENOENT (/dev/net/tun is missing), EPERM
 * (no CAP_NET_ADMIN), EBUSY (another open device has the name), EINVAL (a non-TUN interface has it).
 */
export function openTun(options: { readonly name: string; readonly mtu: number }): NativeTunDevice {
  const TunDevice = nativeClass<new (name: string, mtu: number) => NativeTunDevice>('TunDevice');
  return new TunDevice(options.name, options.mtu);
}
