// N-API face of a Linux TUN interface (IFF_TUN | IFF_NO_PI: every read or write is one bare IP
// packet):
//   new TunDevice(name, mtu)                       opens it, sets the MTU, brings the link up
//   dev.name, dev.mtu                              the kernel's name for it, the MTU set
//   dev.readBatch(bufs, sizes, offset)             -> packets read (0 when none is ready)
//   dev.writeBatch(bufs, offsets, lengths, count)  -> packets done
//   dev.startReading(onReadable) / dev.stopReading()
//   dev.stats()
//   dev.close()
// One readv()/write() per packet: the TUN character device moves exactly one packet per call,
// which is what keeps packets from merging (a stream reader over the fd, such as net.Socket,
// concatenates them). Batching saves the JS <-> C++ crossings, not the syscalls.
// Every argument is checked before any packet moves, so a call that throws has changed nothing.
// A packet the kernel refuses is a counter, never an exception.
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "fd_poll.h"
#include "napi_util.h"
#include "native_class.h"

namespace lispnode {

namespace {

constexpr const char* kTunPath = "/dev/net/tun";
// The tun driver's limits (drivers/net/tun.c MIN_MTU, MAX_MTU).
constexpr uint32_t kMinMtu = 68;
constexpr uint32_t kMaxMtu = 65535;

struct Counters {
  double read_packets = 0;
  double read_bytes = 0;
  double read_truncated = 0;
  double written_packets = 0;
  double written_bytes = 0;
  double write_errors = 0;
  double write_blocked = 0;
  int last_write_errno = 0;
};

struct Tun {
  static constexpr const char* kClassName = "TunDevice";
  static constexpr const char* kReceiverName = "a TunDevice";

  napi_env env = nullptr;
  int fd = -1;  // -1 once closed
  uint32_t mtu = 0;
  char name[IFNAMSIZ] = {};
  FdPoll poll;  // created by the first startReading
  napi_ref callback = nullptr;
  napi_async_context async_context = nullptr;
  bool cleanup_hook = false;
  // Scratch re-used by every batch.
  PacketArray packets{"bufs"};
  std::vector<Slot> slots;
  Counters counters;

  bool closed() const { return fd < 0; }
  void ThrowClosed(napi_env current_env, const char* method) const {
    ThrowError(current_env, "ERR_INVALID_STATE", "%s: TunDevice %s is closed", method, name);
  }

  // Idempotent. The poll handle leaves epoll (uv_close) before the fd is closed, as libuv asks.
  void Close() {
    poll.Close();
    DeleteRef(env, &callback);
    if (fd >= 0) {
      close(fd);
      fd = -1;
    }
    packets.Release();
    std::vector<Slot>().swap(slots);
  }

  // Close plus what lives as long as the JS object: the async context.
  void Destroy() {
    Close();
    if (async_context != nullptr) {
      napi_async_destroy(env, async_context);
      async_context = nullptr;
    }
  }
};

// Runs when the Node environment exits (process exit, worker termination) before the object was
// collected: the fd must not outlive the loop. The poll has a cleanup hook of its own (FdPoll),
// registered later and so run earlier, which has closed it already.
void CleanupHook(void* arg) {
  auto* tun = static_cast<Tun*>(arg);
  tun->cleanup_hook = false;
  tun->Destroy();
}

void Finalize(napi_env env, void* data, void* /*hint*/) {
  auto* tun = static_cast<Tun*>(data);
  if (tun->cleanup_hook) napi_remove_env_cleanup_hook(env, CleanupHook, tun);
  tun->Destroy();
  delete tun;
}

// errno names for the codes this module meets; libuv's table for the rest (it lacks EBADFD).
const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EBADFD: return "EBADFD";
    case EMSGSIZE: return "EMSGSIZE";
    case ENOBUFS: return "ENOBUFS";
    case ENETDOWN: return "ENETDOWN";
    default: return uv_err_name(-err);
  }
}

// Throws an Error shaped like Node's system errors (code = errno name, errno = -errno, syscall)
// and returns nullptr.
template <typename... Args>
napi_value ThrowSystemError(napi_env env, int err, const char* syscall, const char* format, Args... args) {
  char message[512];
  std::snprintf(message, sizeof message, format, args...);
  return ThrowSystemErrorObject(env, ErrnoName(err), message, -err, syscall);
}

// Opens and configures the device; returns the fd, or -1 with an exception pending. `name` in:
// the requested name; out: the kernel's (a name with %d is a pattern the kernel fills in).
int OpenDevice(napi_env env, char (&name)[IFNAMSIZ], uint32_t mtu) {
  char requested[IFNAMSIZ];
  std::memcpy(requested, name, IFNAMSIZ);
  int fd = open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      ThrowSystemError(env, err, "open",
                       "openTun(%s): %s is missing (load the tun module / run in a container with the device)", requested,
                       kTunPath);
    } else if (err == ENODEV || err == ENXIO) {
      ThrowSystemError(env, err, "open", "openTun(%s): %s has no driver behind it (load the tun module): %s", requested,
                       kTunPath, std::strerror(err));
    } else if (err == EACCES || err == EPERM) {
      ThrowSystemError(env, err, "open",
                       "openTun(%s): cannot open %s (%s): it needs root, or access to the device and CAP_NET_ADMIN",
                       requested, kTunPath, std::strerror(err));
    } else {
      ThrowSystemError(env, err, "open", "openTun(%s): cannot open %s: %s", requested, kTunPath, std::strerror(err));
    }
    return -1;
  }

  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, requested, IFNAMSIZ);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    if (err == EPERM || err == EACCES) {
      ThrowSystemError(env, err, "ioctl",
                       "openTun(%s): creating a TUN interface (TUNSETIFF) needs CAP_NET_ADMIN (run as root or grant the "
                       "capability)",
                       requested);
    } else if (err == EBUSY) {
      ThrowSystemError(env, err, "ioctl", "openTun(%s): the name is in use: another process has TUN device %s open",
                       requested, requested);
    } else if (err == EINVAL) {
      ThrowSystemError(env, err, "ioctl",
                       "openTun(%s): the kernel refused the name (EINVAL): it is not a valid interface name, or a "
                       "non-TUN interface already has it",
                       requested);
    } else {
      ThrowSystemError(env, err, "ioctl", "openTun(%s): TUNSETIFF failed: %s", requested, std::strerror(err));
    }
    return -1;
  }
  std::memcpy(name, ifr.ifr_name, IFNAMSIZ);
  name[IFNAMSIZ - 1] = '\0';

  // Interface ioctls need a socket of any family; the device lives in this process's netns.
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    int err = errno;
    close(fd);
    ThrowSystemError(env, err, "socket", "openTun(%s): cannot create a socket to configure it: %s", name,
                     std::strerror(err));
    return -1;
  }
  struct ifreq req;
  std::memset(&req, 0, sizeof req);
  std::memcpy(req.ifr_name, name, IFNAMSIZ);
  req.ifr_mtu = static_cast<int>(mtu);
  const char* step = "SIOCSIFMTU";
  bool ok = ioctl(sock, SIOCSIFMTU, &req) == 0;
  if (ok) {
    step = "SIOCGIFFLAGS";
    ok = ioctl(sock, SIOCGIFFLAGS, &req) == 0;
  }
  if (ok) {
    step = "SIOCSIFFLAGS";
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
    ok = ioctl(sock, SIOCSIFFLAGS, &req) == 0;
  }
  int err = errno;
  close(sock);
  if (!ok) {
    close(fd);
    if (err == EPERM || err == EACCES) {
      ThrowSystemError(env, err, "ioctl", "openTun(%s): %s needs CAP_NET_ADMIN (run as root or grant the capability)",
                       name, step);
    } else {
      ThrowSystemError(env, err, "ioctl", "openTun(%s): %s (MTU %u) failed: %s", name, step, mtu, std::strerror(err));
    }
    return -1;
  }
  return fd;
}

napi_value Construct(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "openTun";
  CallArgs<2> args;
  if (!GetConstructorArgs(env, info, "TunDevice", &args)) return nullptr;
  if (args.count < 2) return ThrowTypeError(env, "openTun: expected (name, mtu)");

  napi_valuetype type;
  LISPNODE_NAPI_CALL(env, napi_typeof(env, args[0], &type));
  if (type != napi_string) return ThrowTypeError(env, "openTun: name must be a string");
  size_t name_length = 0;
  LISPNODE_NAPI_CALL(env, napi_get_value_string_utf8(env, args[0], nullptr, 0, &name_length));
  if (name_length == 0 || name_length >= IFNAMSIZ) {
    return ThrowRangeError(env, "openTun: name must be 1 to %d bytes (IFNAMSIZ - 1), got %zu", IFNAMSIZ - 1, name_length);
  }
  char name[IFNAMSIZ] = {};
  size_t copied = 0;
  LISPNODE_NAPI_CALL(env, napi_get_value_string_utf8(env, args[0], name, sizeof name, &copied));
  if (std::strlen(name) != name_length) return ThrowRangeError(env, "openTun: name must not contain NUL characters");
  uint32_t mtu = 0;
  if (!GetUint32(env, args[1], kMethod, "mtu", kMinMtu, kMaxMtu, &mtu)) return nullptr;

  int fd = OpenDevice(env, name, mtu);
  if (fd < 0) return nullptr;

  auto* tun = new (std::nothrow) Tun();
  if (tun == nullptr) {
    close(fd);
    return ThrowError(env, "ERR_MEMORY_ALLOCATION_FAILED", "openTun: out of memory");
  }
  tun->env = env;
  tun->fd = fd;
  tun->mtu = mtu;
  std::memcpy(tun->name, name, IFNAMSIZ);

  napi_value resource_name;
  napi_value name_value;
  napi_value mtu_value;
  if (napi_create_string_utf8(env, "lispnode.TunDevice", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, nullptr, resource_name, &tun->async_context) != napi_ok ||
      napi_create_string_utf8(env, tun->name, NAPI_AUTO_LENGTH, &name_value) != napi_ok ||
      napi_create_uint32(env, mtu, &mtu_value) != napi_ok) {
    tun->Destroy();
    delete tun;
    return ThrowNapiFailure(env);
  }
  napi_property_descriptor properties[] = {
      {"name", nullptr, nullptr, nullptr, nullptr, name_value, napi_enumerable, nullptr},
      {"mtu", nullptr, nullptr, nullptr, nullptr, mtu_value, napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, args.self, 2, properties) != napi_ok ||
      napi_wrap(env, args.self, tun, Finalize, nullptr, nullptr) != napi_ok) {
    tun->Destroy();
    delete tun;
    return ThrowNapiFailure(env);
  }
  if (napi_add_env_cleanup_hook(env, CleanupHook, tun) == napi_ok) tun->cleanup_hook = true;
  return args.self;
}

napi_value ReadBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "readBatch";
  CallArgs<3> args;
  Tun* tun = UnwrapCall<Tun>(env, info, kMethod, &args, 3, "(bufs, sizes, offset)");
  if (tun == nullptr) return nullptr;
  if (!CheckArray<uint32_t>(env, args[1], kMethod, "sizes")) return nullptr;
  uint32_t offset = 0;
  if (!GetUint32(env, args[2], kMethod, "offset", 0, UINT32_MAX, &offset)) return nullptr;
  uint32_t count = 0;
  if (!tun->packets.Collect(env, args[0], kMethod, &count, true)) return nullptr;
  // No JavaScript runs from here on, so the pointers below stay valid.
  uint32_t* sizes;
  size_t sizes_length;
  if (!GetArray(env, args[1], kMethod, "sizes", &sizes, &sizes_length)) return nullptr;
  if (sizes_length < count) {
    return ThrowRangeError(env, "readBatch: sizes.length (%zu) is less than bufs.length (%u)", sizes_length, count);
  }
  tun->slots.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Slot& slot = tun->slots[i];
    size_t length;
    if (!tun->packets.Bytes(env, i, kMethod, &slot.data, &length)) return nullptr;
    if (length < static_cast<size_t>(offset) + tun->mtu) {
      return ThrowRangeError(env, "readBatch: bufs[%u] has %zu bytes; offset %u + MTU %u needs %zu", i, length, offset,
                             tun->mtu, static_cast<size_t>(offset) + tun->mtu);
    }
    slot.data += offset;
    slot.length = length - offset;
  }

  uint32_t got = 0;
  // The kernel copies what fits and returns that much, so a packet longer than the room after
  // `offset` (the MTU was raised underneath) would come back cut short. A one-byte spill segment
  // behind the buffer shows it: a read that reaches the spill was truncated, and is dropped.
  uint8_t spill = 0;
  struct iovec iov[2] = {{nullptr, 0}, {&spill, 1}};
  // At most one read per slot: a flood of oversized packets cannot keep the loop going.
  for (uint32_t attempt = 0; attempt < count && got < count;) {
    Slot& slot = tun->slots[got];
    iov[0].iov_base = slot.data;
    iov[0].iov_len = slot.length;
    ssize_t n = readv(tun->fd, iov, 2);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (got > 0) break;  // hand over what was read; the error repeats on the next call
      const char* hint = err == EBADFD ? " (the interface was deleted)" : "";
      return ThrowSystemError(env, err, "read", "readBatch(%s): read failed: %s%s", tun->name, std::strerror(err), hint);
    }
    attempt++;
    if (n == 0) break;
    if (static_cast<size_t>(n) > slot.length) {
      tun->counters.read_truncated++;
      continue;
    }
    sizes[got] = static_cast<uint32_t>(n);
    tun->counters.read_bytes += static_cast<double>(n);
    got++;
  }
  tun->counters.read_packets += got;
  return CreateUint32(env, got);
}

napi_value WriteBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "writeBatch";
  CallArgs<4> args;
  Tun* tun = UnwrapCall<Tun>(env, info, kMethod, &args, 4, "(bufs, offsets, lengths, count)");
  if (tun == nullptr) return nullptr;
  if (!CheckArray<uint32_t>(env, args[1], kMethod, "offsets")) return nullptr;
  if (!CheckArray<uint32_t>(env, args[2], kMethod, "lengths")) return nullptr;
  uint32_t count = 0;
  if (!GetUint32(env, args[3], kMethod, "count", 0, UINT32_MAX, &count)) return nullptr;
  if (!tun->packets.Collect(env, args[0], kMethod, &count)) return nullptr;
  // No JavaScript runs from here on, so the pointers below stay valid.
  uint32_t* offsets;
  uint32_t* lengths;
  if (!GetArray(env, args[1], kMethod, "offsets", count, &offsets)) return nullptr;
  if (!GetArray(env, args[2], kMethod, "lengths", count, &lengths)) return nullptr;
  tun->slots.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Slot& slot = tun->slots[i];
    size_t length;
    if (!tun->packets.Bytes(env, i, kMethod, &slot.data, &length)) return nullptr;
    uint64_t end = static_cast<uint64_t>(offsets[i]) + lengths[i];
    if (end > length) {
      return ThrowRangeError(env, "writeBatch: offsets[%u] (%u) + lengths[%u] (%u) exceeds bufs[%u].length (%zu)", i,
                             offsets[i], i, lengths[i], i, length);
    }
    slot.data += offsets[i];
    slot.length = lengths[i];
  }

  uint32_t done = 0;
  while (done < count) {
    const Slot& slot = tun->slots[done];
    ssize_t n = write(tun->fd, slot.data, slot.length);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        tun->counters.write_blocked++;
        break;
      }
      if (err == EBADFD || err == EBADF) {
        if (done > 0) break;  // report what went out; the error repeats on the next call
        return ThrowSystemError(env, err, "write", "writeBatch(%s): write failed: %s (the interface was deleted)",
                                tun->name, std::strerror(err));
      }
      // This packet is refused (EINVAL: not IPv4/IPv6; EIO: the link is down; ...): drop it.
      tun->counters.write_errors++;
      tun->counters.last_write_errno = err;
    } else {
      tun->counters.written_packets++;
      tun->counters.written_bytes += static_cast<double>(n);
    }
    done++;
  }
  return CreateUint32(env, done);
}

void OnReadable(napi_env env, void* owner, int status, int /*events*/) {
  auto* tun = static_cast<Tun*>(owner);
  if (tun->callback == nullptr) return;
  // libuv stops the handle itself on POLLERR (the interface was deleted); the callback still runs
  // once, so that its readBatch reports the error.
  if (status < 0) tun->poll.Stop();
  napi_value receiver;
  // make_callback wants an object receiver. `tun` may be closed by the callback (close()); it is
  // not freed before the finalizer.
  if (napi_get_global(env, &receiver) == napi_ok) MakeCallback(env, tun->async_context, receiver, tun->callback);
}

napi_value StartReading(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "startReading";
  CallArgs<1> args;
  Tun* tun = UnwrapCall<Tun>(env, info, kMethod, &args);
  if (tun == nullptr) return nullptr;
  napi_valuetype type = napi_undefined;
  if (args.count >= 1) LISPNODE_NAPI_CALL(env, napi_typeof(env, args[0], &type));
  if (type != napi_function) return ThrowTypeError(env, "startReading: onReadable must be a function");

  FdPoll::InitFailure failure;
  int rc = tun->poll.Init(env, tun->fd, OnReadable, tun, &failure);
  switch (failure) {
    case FdPoll::InitFailure::kNone:
      break;
    case FdPoll::InitFailure::kEventLoop:
      return ThrowNapiFailure(env);
    case FdPoll::InitFailure::kMemory:
      return ThrowError(env, "ERR_MEMORY_ALLOCATION_FAILED", "startReading: out of memory");
    case FdPoll::InitFailure::kPollInit:
      return ThrowSystemError(env, -rc, "uv_poll_init", "startReading(%s): uv_poll_init failed: %s", tun->name,
                              uv_strerror(rc));
  }
  if (!ReplaceRef(env, args[0], &tun->callback)) return nullptr;
  rc = tun->poll.Start(UV_READABLE);
  if (rc != 0) {
    return ThrowSystemError(env, -rc, "uv_poll_start", "startReading(%s): uv_poll_start failed: %s", tun->name,
                            uv_strerror(rc));
  }
  return nullptr;
}

napi_value StopReading(napi_env env, napi_callback_info info) {
  CallArgs<0> args;
  Tun* tun = UnwrapCall<Tun>(env, info, "stopReading", &args, true);
  if (tun == nullptr) return nullptr;
  tun->poll.Stop();
  // Release the callback (and whatever its closure holds) until the next startReading.
  DeleteRef(env, &tun->callback);
  return nullptr;
}

napi_value Stats(napi_env env, napi_callback_info info) {
  CallArgs<0> args;
  Tun* tun = UnwrapCall<Tun>(env, info, "stats", &args, true);
  if (tun == nullptr) return nullptr;
  const Counters& c = tun->counters;
  napi_value stats;
  LISPNODE_NAPI_CALL(env, napi_create_object(env, &stats));
  if (!SetNumber(env, stats, "readPackets", c.read_packets) || !SetNumber(env, stats, "readBytes", c.read_bytes) ||
      !SetNumber(env, stats, "readTruncated", c.read_truncated) ||
      !SetNumber(env, stats, "writtenPackets", c.written_packets) ||
      !SetNumber(env, stats, "writtenBytes", c.written_bytes) || !SetNumber(env, stats, "writeErrors", c.write_errors) ||
      !SetNumber(env, stats, "writeBlocked", c.write_blocked)) {
    return ThrowNapiFailure(env);
  }
  napi_value last_error;
  if (c.last_write_errno == 0) {
    LISPNODE_NAPI_CALL(env, napi_get_undefined(env, &last_error));
  } else {
    LISPNODE_NAPI_CALL(env, napi_create_string_utf8(env, ErrnoName(c.last_write_errno), NAPI_AUTO_LENGTH, &last_error));
  }
  LISPNODE_NAPI_CALL(env, napi_set_named_property(env, stats, "lastWriteError", last_error));
  return stats;
}

}  // namespace

napi_value RegisterTun(napi_env env, napi_value exports) {
  return DefineClass(env, exports, "TunDevice", Construct,
                     {{"readBatch", ReadBatch},
                      {"writeBatch", WriteBatch},
                      {"startReading", StartReading},
                      {"stopReading", StopReading},
                      {"stats", Stats},
                      {"close", CloseMethod<Tun>}});
}

}  // namespace lispnode
