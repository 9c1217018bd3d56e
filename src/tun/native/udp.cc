// N-API face of a batched, non-blocking UDP socket (Linux):
//   new UdpSocket(family, address, port, flags, receiveBuffer, sendBuffer, tos, pmtud)
//   socket.port                                  the bound port (an ephemeral one when 0 was asked)
//   socket.recvBatch(packets, offset, lengths, addresses, ports, count)                  -> received
//   socket.sendBatch(packets, offsets, lengths, addresses, ports, count, result, errnos) -> consumed
//   socket.startReading(onReadable) / socket.stopReading() / socket.waitWritable(onWritable)
//   socket.stats() / socket.close()
// Why not dgram: it makes one syscall per datagram and cannot set UDP_NO_CHECK6_RX (Linux drops
// UDPv6 datagrams with a zero checksum, which lispers.net sends), nor the TOS or PMTU options.
//
// Endpoints travel in caller-owned typed arrays, never as strings: slot i of `addresses` is bytes
// [16i, 16i + 16), an IPv6 address in network order, IPv4 as IPv4-mapped (::ffff:a.b.c.d); slot i of
// `ports` (a Uint16Array) is the port in host order. IPv6 scope ids are not carried (a link-local
// source arrives without its interface; sends to link-local destinations fail with EINVAL).
//
// Every argument is checked before the first syscall, so a call that throws has sent or received
// nothing. A per-datagram send failure (EMSGSIZE, ENETUNREACH, ...) is data: counted, its errno
// recorded, the packet skipped.
#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "fd_poll.h"
#include "napi_util.h"
#include "native_class.h"

#ifndef UDP_NO_CHECK6_TX
#define UDP_NO_CHECK6_TX 101
#endif
#ifndef UDP_NO_CHECK6_RX
#define UDP_NO_CHECK6_RX 102
#endif

namespace lispnode {

namespace {

constexpr size_t kSlotBytes = 16;
// The kernel caps one recvmmsg/sendmmsg at UIO_MAXIOV messages.
constexpr uint32_t kMaxMessagesPerCall = 1024;

// Constructor flags (src/tun/udp-socket.ts keeps the same numbers).
constexpr uint32_t kFlagDualStack = 1;       // AF_INET6: IPV6_V6ONLY = 0
constexpr uint32_t kFlagZeroChecksumTx = 2;  // UDP_NO_CHECK6_TX (and SO_NO_CHECK for IPv4)
constexpr uint32_t kFlagReuseAddress = 4;    // SO_REUSEADDR
constexpr uint32_t kFlagTransparent = 8;     // IP_TRANSPARENT / IPV6_TRANSPARENT (needs CAP_NET_ADMIN)
constexpr uint32_t kKnownFlags = kFlagDualStack | kFlagZeroChecksumTx | kFlagReuseAddress | kFlagTransparent;

struct Counters {
  uint64_t received = 0;
  uint64_t received_bytes = 0;
  uint64_t recv_calls = 0;
  uint64_t truncated = 0;
  uint64_t sent = 0;
  uint64_t sent_bytes = 0;
  uint64_t send_calls = 0;
  uint64_t send_errors = 0;
  uint64_t would_block = 0;
  int last_send_errno = 0;
};

struct Socket {
  static constexpr const char* kClassName = "UdpSocket";
  static constexpr const char* kReceiverName = "a UdpSocket";

  napi_env env = nullptr;
  int fd = -1;  // -1 once closed
  int family = AF_INET;
  FdPoll poll;  // created by the first start, closed by Close or the environment's teardown
  napi_ref self = nullptr;    // weak, strong while a poll callback is wanted
  bool self_strong = false;
  napi_ref on_readable = nullptr;  // set while reading
  napi_ref on_writable = nullptr;  // set while a waitWritable is pending
  napi_async_context async_context = nullptr;
  Counters counters;
  // Snapshotted by Close so that stats() still answers afterwards.
  int receive_buffer = 0;
  int send_buffer = 0;
  uint32_t kernel_drops = 0;
  // Scratch re-used by every batch.
  PacketArray packets{"packets"};
  std::vector<mmsghdr> messages;
  std::vector<iovec> iovecs;
  std::vector<sockaddr_in6> names;  // large enough for sockaddr_in too
  std::vector<int> pre_errnos;

  bool closed() const { return fd < 0; }
  void ThrowClosed(napi_env current_env, const char* method) const {
    ThrowError(current_env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "%s: UdpSocket is closed", method);
  }
  void Close();
};

void SnapshotSocketState(Socket* socket) {
  socklen_t length = sizeof(int);
  int value = 0;
  if (getsockopt(socket->fd, SOL_SOCKET, SO_RCVBUF, &value, &length) == 0) socket->receive_buffer = value;
  length = sizeof(int);
  if (getsockopt(socket->fd, SOL_SOCKET, SO_SNDBUF, &value, &length) == 0) socket->send_buffer = value;
  uint32_t meminfo[SK_MEMINFO_VARS] = {};
  length = sizeof meminfo;
  if (getsockopt(socket->fd, SOL_SOCKET, SO_MEMINFO, meminfo, &length) == 0 && length > SK_MEMINFO_DROPS * sizeof(uint32_t)) {
    socket->kernel_drops = meminfo[SK_MEMINFO_DROPS];
  }
}

void Socket::Close() {
  poll.Close();
  DeleteRef(env, &on_readable);
  DeleteRef(env, &on_writable);
  if (self_strong) {
    uint32_t count = 0;
    napi_reference_unref(env, self, &count);
    self_strong = false;
  }
  if (async_context != nullptr) {
    napi_async_destroy(env, async_context);
    async_context = nullptr;
  }
  if (fd >= 0) {
    SnapshotSocketState(this);
    close(fd);
    fd = -1;
  }
  packets.Release();
  std::vector<mmsghdr>().swap(messages);
  std::vector<iovec>().swap(iovecs);
  std::vector<sockaddr_in6>().swap(names);
  std::vector<int>().swap(pre_errnos);
}

void OnPoll(napi_env env, void* owner, int status, int events);

// Starts, changes or stops the poll for the callbacks wanted; keeps the JS object alive while any
// is. Returns a libuv error code (0 on success).
int StartPoll(Socket* socket) {
  int events = (socket->on_readable != nullptr ? UV_READABLE : 0) | (socket->on_writable != nullptr ? UV_WRITABLE : 0);
  int result = 0;
  if (events != 0) {
    result = socket->poll.Init(socket->env, socket->fd, OnPoll, socket);
    if (result != 0) return result;
    result = socket->poll.Start(events);
  } else {
    socket->poll.Stop();
  }
  bool want_strong = events != 0 && result == 0;
  if (want_strong != socket->self_strong) {
    uint32_t count = 0;
    if (want_strong) {
      napi_reference_ref(socket->env, socket->self, &count);
    } else {
      napi_reference_unref(socket->env, socket->self, &count);
    }
    socket->self_strong = want_strong;
  }
  return result;
}

void OnPoll(napi_env env, void* owner, int status, int events) {
  auto* socket = static_cast<Socket*>(owner);
  // An error on the descriptor: let both callbacks run, so that their syscalls report it.
  if (status < 0) events = UV_READABLE | UV_WRITABLE;
  napi_value receiver = nullptr;
  napi_get_reference_value(env, socket->self, &receiver);
  if (receiver == nullptr) napi_get_undefined(env, &receiver);
  if ((events & UV_WRITABLE) != 0 && socket->on_writable != nullptr) {
    // One-shot: forget it before calling, so the callback may wait again.
    napi_ref callback_ref = socket->on_writable;
    socket->on_writable = nullptr;
    StartPoll(socket);
    MakeCallback(env, socket->async_context, receiver, callback_ref);
    napi_delete_reference(env, callback_ref);
  }
  // The writable callback may have closed the socket or stopped reading.
  if ((events & UV_READABLE) != 0 && socket->fd >= 0 && socket->on_readable != nullptr) {
    MakeCallback(env, socket->async_context, receiver, socket->on_readable);
  }
}

void Finalize(napi_env env, void* data, void* /*hint*/) {
  auto* socket = static_cast<Socket*>(data);
  socket->Close();
  DeleteRef(env, &socket->self);
  delete socket;
}

// A Node-style system error: message "<syscall> <CODE> <endpoint>: <text>" (endpoint optional),
// with code, errno (negative, as Node's), syscall and, when given, address and port.
napi_value ThrowSystemError(napi_env env, int sys_errno, const char* syscall, const char* address = nullptr, int port = -1) {
  int uv_code = uv_translate_sys_error(sys_errno);
  char code[32];
  char text[128];
  uv_err_name_r(uv_code, code, sizeof code);
  uv_strerror_r(uv_code, text, sizeof text);
  char message[256];
  if (address != nullptr) {
    bool v6 = std::strchr(address, ':') != nullptr;
    std::snprintf(message, sizeof message, "%s %s %s%s%s:%d: %s", syscall, code, v6 ? "[" : "", address, v6 ? "]" : "", port, text);
  } else {
    std::snprintf(message, sizeof message, "%s %s: %s", syscall, code, text);
  }
  return ThrowSystemErrorObject(env, code, message, uv_code, syscall, address, port);
}

// The endpoint arrays of a batch, checked against count. False with an exception pending.
struct Endpoints {
  uint8_t* addresses;
  uint16_t* ports;
};

bool GetEndpoints(napi_env env, napi_value addresses, napi_value ports, uint32_t count, const char* method, Endpoints* out) {
  size_t addresses_length;
  size_t ports_length;
  if (!GetArray(env, addresses, method, "addresses", &out->addresses, &addresses_length)) return false;
  if (!GetArray(env, ports, method, "ports", &out->ports, &ports_length)) return false;
  if (static_cast<uint64_t>(count) * kSlotBytes > addresses_length) {
    ThrowRangeError(env, "%s: addresses has %zu bytes; %u slots need %llu", method, addresses_length, count,
                    static_cast<unsigned long long>(count) * kSlotBytes);
    return false;
  }
  if (count > ports_length) {
    ThrowRangeError(env, "%s: count (%u) exceeds ports.length (%zu)", method, count, ports_length);
    return false;
  }
  return true;
}

bool IsV4Mapped(const uint8_t* address) {
  static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(address, kPrefix, sizeof kPrefix) == 0;
}

// Writes the sockaddr received into slot `address` / `*port`.
void StoreEndpoint(const sockaddr_in6& name, socklen_t name_length, uint8_t* address, uint16_t* port) {
  const auto* generic = reinterpret_cast<const sockaddr*>(&name);
  if (name_length >= sizeof(sockaddr_in) && generic->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&name);
    std::memset(address, 0, 10);
    address[10] = 0xff;
    address[11] = 0xff;
    std::memcpy(address + 12, &v4->sin_addr, 4);
    *port = ntohs(v4->sin_port);
  } else if (name_length >= sizeof(sockaddr_in6) && generic->sa_family == AF_INET6) {
    std::memcpy(address, &name.sin6_addr, 16);
    *port = ntohs(name.sin6_port);
  } else {
    std::memset(address, 0, kSlotBytes);
    *port = 0;
  }
}

// Fills `name` with the destination of a slot; returns its length, or 0 with `*error` set when the
// socket's family cannot reach it.
socklen_t LoadEndpoint(int family, const uint8_t* address, uint16_t port, sockaddr_in6* name, int* error) {
  if (family == AF_INET) {
    if (!IsV4Mapped(address)) {
      *error = EAFNOSUPPORT;
      return 0;
    }
    auto* v4 = reinterpret_cast<sockaddr_in*>(name);
    std::memset(v4, 0, sizeof *v4);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    std::memcpy(&v4->sin_addr, address + 12, 4);
    return sizeof(sockaddr_in);
  }
  std::memset(name, 0, sizeof *name);
  name->sin6_family = AF_INET6;
  name->sin6_port = htons(port);
  std::memcpy(&name->sin6_addr, address, 16);
  return sizeof(sockaddr_in6);
}

bool SetIntOption(int fd, int level, int option, int value) { return setsockopt(fd, level, option, &value, sizeof value) == 0; }

// SO_RCVBUFFORCE / SO_SNDBUFFORCE go past net.core.rmem_max / wmem_max but need CAP_NET_ADMIN;
// without it, the plain option (capped by the sysctl).
bool SetBufferSize(int fd, int force_option, int option, int size) {
  if (SetIntOption(fd, SOL_SOCKET, force_option, size)) return true;
  if (errno != EPERM) return false;
  return SetIntOption(fd, SOL_SOCKET, option, size);
}

napi_value Construct(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "UdpSocket";
  CallArgs<8> args;
  if (!GetConstructorArgs(env, info, kMethod, &args)) return nullptr;
  if (args.count < 8) return ThrowTypeError(env, "UdpSocket: expected (family, address, port, flags, receiveBuffer, sendBuffer, tos, pmtud)");

  double family_number;
  double port_number;
  double flags_number;
  double receive_buffer;
  double send_buffer;
  double tos;
  double pmtud;
  if (!GetInteger(env, args[0], kMethod, "family", 4, 6, &family_number)) return nullptr;
  if (family_number != 4 && family_number != 6) return ThrowRangeError(env, "UdpSocket: family must be 4 or 6, got %g", family_number);
  uint8_t* address;
  size_t address_length;
  if (!GetArray(env, args[1], kMethod, "address", &address, &address_length)) return nullptr;
  if (address_length != kSlotBytes) return ThrowRangeError(env, "UdpSocket: address must be 16 bytes, got %zu", address_length);
  if (!GetInteger(env, args[2], kMethod, "port", 0, 65535, &port_number)) return nullptr;
  if (!GetInteger(env, args[3], kMethod, "flags", 0, kKnownFlags, &flags_number)) return nullptr;
  if (!GetInteger(env, args[4], kMethod, "receiveBuffer", 0, 1 << 30, &receive_buffer)) return nullptr;
  if (!GetInteger(env, args[5], kMethod, "sendBuffer", 0, 1 << 30, &send_buffer)) return nullptr;
  if (!GetInteger(env, args[6], kMethod, "tos", -1, 255, &tos)) return nullptr;
  if (!GetInteger(env, args[7], kMethod, "pmtud", -1, IP_PMTUDISC_PROBE, &pmtud)) return nullptr;
  auto flags = static_cast<uint32_t>(flags_number);
  int family = family_number == 4 ? AF_INET : AF_INET6;
  int port = static_cast<int>(port_number);
  if (family == AF_INET && !IsV4Mapped(address)) {
    return ThrowRangeError(env, "UdpSocket: an IPv4 socket's address must be IPv4-mapped");
  }
  if (family == AF_INET && (flags & kFlagDualStack) != 0) return ThrowRangeError(env, "UdpSocket: dualStack needs family 6");

  char address_text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family, family == AF_INET ? address + 12 : address, address_text, sizeof address_text);

  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return ThrowSystemError(env, errno, "socket");
  // Closes fd and throws for the option that failed.
  auto fail = [&](const char* what) {
    int saved = errno;
    close(fd);
    return ThrowSystemError(env, saved, what, address_text, port);
  };
  bool dual_stack = (flags & kFlagDualStack) != 0;
  bool zero_checksum_tx = (flags & kFlagZeroChecksumTx) != 0;
  // Set explicitly either way, so the socket does not depend on net.ipv6.bindv6only.
  if (family == AF_INET6 && !SetIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? 0 : 1)) return fail("setsockopt IPV6_V6ONLY");
  if ((flags & kFlagReuseAddress) != 0 && !SetIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)) return fail("setsockopt SO_REUSEADDR");
  if (receive_buffer > 0 && !SetBufferSize(fd, SO_RCVBUFFORCE, SO_RCVBUF, static_cast<int>(receive_buffer))) return fail("setsockopt SO_RCVBUF");
  if (send_buffer > 0 && !SetBufferSize(fd, SO_SNDBUFFORCE, SO_SNDBUF, static_cast<int>(send_buffer))) return fail("setsockopt SO_SNDBUF");
  // Linux drops UDPv6 datagrams whose checksum is zero unless told otherwise; RFC 6935/6936 allow
  // it for tunnels and lispers.net sends it. IPv4 accepts a zero checksum anyway.
  if (family == AF_INET6 && !SetIntOption(fd, IPPROTO_UDP, UDP_NO_CHECK6_RX, 1)) return fail("setsockopt UDP_NO_CHECK6_RX");
  if (zero_checksum_tx) {
    if (family == AF_INET6 && !SetIntOption(fd, IPPROTO_UDP, UDP_NO_CHECK6_TX, 1)) return fail("setsockopt UDP_NO_CHECK6_TX");
    if ((family == AF_INET || dual_stack) && !SetIntOption(fd, SOL_SOCKET, SO_NO_CHECK, 1)) return fail("setsockopt SO_NO_CHECK");
  }
  // A dual-stack socket sends IPv4 under the IPv4 options, so it gets both.
  bool v4_options = family == AF_INET || dual_stack;
  // Transparent: bind to an address this host does not have and send from it (lispnode replay
  // keeps a capture's outer source addresses this way; the kernel still writes the headers).
  if ((flags & kFlagTransparent) != 0) {
    if (v4_options && !SetIntOption(fd, IPPROTO_IP, IP_TRANSPARENT, 1)) return fail("setsockopt IP_TRANSPARENT");
    if (family == AF_INET6 && !SetIntOption(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, 1)) return fail("setsockopt IPV6_TRANSPARENT");
  }
  if (tos >= 0) {
    if (v4_options && !SetIntOption(fd, IPPROTO_IP, IP_TOS, static_cast<int>(tos))) return fail("setsockopt IP_TOS");
    if (family == AF_INET6 && !SetIntOption(fd, IPPROTO_IPV6, IPV6_TCLASS, static_cast<int>(tos))) return fail("setsockopt IPV6_TCLASS");
  }
  if (pmtud >= 0) {
    // IP_PMTUDISC_* and IPV6_PMTUDISC_* share their values (DONT 0, WANT 1, DO 2, PROBE 3).
    if (v4_options && !SetIntOption(fd, IPPROTO_IP, IP_MTU_DISCOVER, static_cast<int>(pmtud))) return fail("setsockopt IP_MTU_DISCOVER");
    if (family == AF_INET6 && !SetIntOption(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, static_cast<int>(pmtud))) {
      return fail("setsockopt IPV6_MTU_DISCOVER");
    }
  }

  sockaddr_in6 name;
  int unused_error = 0;
  socklen_t name_length = LoadEndpoint(family, address, static_cast<uint16_t>(port), &name, &unused_error);
  if (bind(fd, reinterpret_cast<sockaddr*>(&name), name_length) != 0) return fail("bind");
  name_length = sizeof name;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&name), &name_length) != 0) return fail("getsockname");
  int bound_port = ntohs(name.sin6_port);  // sin_port and sin6_port share their offset

  auto* socket = new (std::nothrow) Socket();
  if (socket == nullptr) {
    close(fd);
    return ThrowError(env, "ERR_MEMORY_ALLOCATION_FAILED", "UdpSocket: out of memory");
  }
  socket->env = env;
  socket->fd = fd;
  socket->family = family;
  if (napi_wrap(env, args.self, socket, Finalize, nullptr, nullptr) != napi_ok) {
    socket->Close();
    delete socket;
    return ThrowNapiFailure(env);
  }
  // From here on the finalizer owns the socket.
  LISPNODE_NAPI_CALL(env, napi_create_reference(env, args.self, 0, &socket->self));
  napi_value resource_name;
  LISPNODE_NAPI_CALL(env, napi_create_string_utf8(env, "lispnode.UdpSocket", NAPI_AUTO_LENGTH, &resource_name));
  LISPNODE_NAPI_CALL(env, napi_async_init(env, nullptr, resource_name, &socket->async_context));
  napi_value port_value;
  LISPNODE_NAPI_CALL(env, napi_create_uint32(env, static_cast<uint32_t>(bound_port), &port_value));
  napi_property_descriptor port_property = {"port", nullptr, nullptr, nullptr, nullptr, port_value, napi_enumerable, nullptr};
  LISPNODE_NAPI_CALL(env, napi_define_properties(env, args.self, 1, &port_property));
  return args.self;
}

napi_value RecvBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "recvBatch";
  CallArgs<6> args;
  Socket* socket = UnwrapCall<Socket>(env, info, kMethod, &args, 6, "(packets, offset, lengths, addresses, ports, count)");
  if (socket == nullptr) return nullptr;
  double offset_number;
  double count_number;
  if (!GetInteger(env, args[1], kMethod, "offset", 0, 4294967295.0, &offset_number)) return nullptr;
  if (!CheckArray<uint32_t>(env, args[2], kMethod, "lengths")) return nullptr;
  if (!CheckArray<uint8_t>(env, args[3], kMethod, "addresses")) return nullptr;
  if (!CheckArray<uint16_t>(env, args[4], kMethod, "ports")) return nullptr;
  if (!GetInteger(env, args[5], kMethod, "count", 0, 4294967295.0, &count_number)) return nullptr;
  auto offset = static_cast<size_t>(offset_number);
  auto count = static_cast<uint32_t>(count_number);
  if (!socket->packets.Collect(env, args[0], kMethod, &count)) return nullptr;
  // No JavaScript runs from here on, so the pointers below stay valid.
  uint32_t* lengths;
  if (!GetArray(env, args[2], kMethod, "lengths", count, &lengths)) return nullptr;
  Endpoints endpoints;
  if (!GetEndpoints(env, args[3], args[4], count, kMethod, &endpoints)) return nullptr;

  socket->messages.resize(count);
  socket->iovecs.resize(count);
  socket->names.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t* data;
    size_t capacity;
    if (!socket->packets.Bytes(env, i, kMethod, &data, &capacity)) return nullptr;
    if (offset > capacity) {
      return ThrowRangeError(env, "recvBatch: packets[%u] has %zu bytes, fewer than offset (%zu)", i, capacity, offset);
    }
    socket->iovecs[i] = {data + offset, capacity - offset};
    msghdr& header = socket->messages[i].msg_hdr;
    header = {};
    header.msg_name = &socket->names[i];
    header.msg_namelen = sizeof(sockaddr_in6);
    header.msg_iov = &socket->iovecs[i];
    header.msg_iovlen = 1;
    socket->messages[i].msg_len = 0;
  }

  uint32_t received = 0;
  while (received < count) {
    uint32_t asked = std::min(count - received, kMaxMessagesPerCall);
    int result = recvmmsg(socket->fd, &socket->messages[received], asked, MSG_DONTWAIT, nullptr);
    if (result < 0) {
      int error = errno;
      if (error == EINTR) continue;
      if (error == EAGAIN || error == EWOULDBLOCK) break;
      // Report what already arrived; the error will come back on the next call.
      if (received > 0) break;
      return ThrowSystemError(env, error, "recvmmsg");
    }
    socket->counters.recv_calls++;
    for (uint32_t i = received; i < received + static_cast<uint32_t>(result); i++) {
      const mmsghdr& message = socket->messages[i];
      lengths[i] = message.msg_len;
      socket->counters.received_bytes += message.msg_len;
      if ((message.msg_hdr.msg_flags & MSG_TRUNC) != 0) socket->counters.truncated++;
      StoreEndpoint(socket->names[i], message.msg_hdr.msg_namelen, endpoints.addresses + kSlotBytes * i, endpoints.ports + i);
    }
    received += static_cast<uint32_t>(result);
    if (static_cast<uint32_t>(result) < asked) break;
  }
  socket->counters.received += received;
  return CreateUint32(env, received);
}

napi_value SendBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "sendBatch";
  CallArgs<8> args;
  Socket* socket = UnwrapCall<Socket>(env, info, kMethod, &args, 7, "(packets, offsets, lengths, addresses, ports, count, result[, errnos])");
  if (socket == nullptr) return nullptr;
  if (!CheckArray<uint32_t>(env, args[1], kMethod, "offsets")) return nullptr;
  if (!CheckArray<uint32_t>(env, args[2], kMethod, "lengths")) return nullptr;
  if (!CheckArray<uint8_t>(env, args[3], kMethod, "addresses")) return nullptr;
  if (!CheckArray<uint16_t>(env, args[4], kMethod, "ports")) return nullptr;
  double count_number;
  if (!GetInteger(env, args[5], kMethod, "count", 0, 4294967295.0, &count_number)) return nullptr;
  if (!CheckArray<int32_t>(env, args[6], kMethod, "result")) return nullptr;
  bool has_errnos = false;
  if (args.count >= 8) {
    napi_valuetype type;
    LISPNODE_NAPI_CALL(env, napi_typeof(env, args[7], &type));
    if (type != napi_undefined && type != napi_null) {
      if (!CheckArray<int32_t>(env, args[7], kMethod, "errnos")) return nullptr;
      has_errnos = true;
    }
  }
  auto count = static_cast<uint32_t>(count_number);
  if (!socket->packets.Collect(env, args[0], kMethod, &count)) return nullptr;
  // No JavaScript runs from here on, so the pointers below stay valid.
  uint32_t* offsets;
  uint32_t* lengths;
  int32_t* result;
  size_t result_length;
  int32_t* errnos = nullptr;
  if (!GetArray(env, args[1], kMethod, "offsets", count, &offsets)) return nullptr;
  if (!GetArray(env, args[2], kMethod, "lengths", count, &lengths)) return nullptr;
  if (!GetArray(env, args[6], kMethod, "result", &result, &result_length)) return nullptr;
  if (result_length < 3) return ThrowRangeError(env, "sendBatch: result must have 3 elements, got %zu", result_length);
  if (has_errnos && !GetArray(env, args[7], kMethod, "errnos", count, &errnos)) return nullptr;
  Endpoints endpoints;
  if (!GetEndpoints(env, args[3], args[4], count, kMethod, &endpoints)) return nullptr;

  socket->messages.resize(count);
  socket->iovecs.resize(count);
  socket->names.resize(count);
  socket->pre_errnos.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t* data;
    size_t capacity;
    if (!socket->packets.Bytes(env, i, kMethod, &data, &capacity)) return nullptr;
    if (static_cast<uint64_t>(offsets[i]) + lengths[i] > capacity) {
      return ThrowRangeError(env, "sendBatch: offsets[%u] + lengths[%u] (%u + %u) exceeds packets[%u].length (%zu)", i, i, offsets[i],
                             lengths[i], i, capacity);
    }
    socket->iovecs[i] = {data + offsets[i], lengths[i]};
    int error = 0;
    socklen_t name_length = LoadEndpoint(socket->family, endpoints.addresses + kSlotBytes * i, endpoints.ports[i], &socket->names[i], &error);
    socket->pre_errnos[i] = error;
    msghdr& header = socket->messages[i].msg_hdr;
    header = {};
    header.msg_name = &socket->names[i];
    header.msg_namelen = name_length;
    header.msg_iov = &socket->iovecs[i];
    header.msg_iovlen = 1;
    socket->messages[i].msg_len = 0;
  }

  Counters& counters = socket->counters;
  uint32_t sent = 0;
  uint32_t errors = 0;
  int first_errno = 0;
  auto fail = [&](uint32_t i, int error) {
    if (errors++ == 0) first_errno = error;
    counters.send_errors++;
    counters.last_send_errno = error;
    if (errnos != nullptr) errnos[i] = error;
  };
  uint32_t i = 0;
  while (i < count) {
    if (socket->pre_errnos[i] != 0) {
      fail(i, socket->pre_errnos[i]);
      i++;
      continue;
    }
    uint32_t end = i;
    while (end < count && socket->pre_errnos[end] == 0 && end - i < kMaxMessagesPerCall) end++;
    int done = sendmmsg(socket->fd, &socket->messages[i], end - i, MSG_DONTWAIT);
    counters.send_calls++;
    if (done > 0) {
      for (uint32_t k = i; k < i + static_cast<uint32_t>(done); k++) {
        counters.sent_bytes += socket->messages[k].msg_len;
        if (errnos != nullptr) errnos[k] = 0;
      }
      sent += static_cast<uint32_t>(done);
      i += static_cast<uint32_t>(done);
      continue;
    }
    // sendmmsg fails only when its first message does (later failures end the call early and
    // come back on the next one), so the errno belongs to packets[i].
    int error = done == 0 ? EAGAIN : errno;
    if (error == EINTR) continue;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      counters.would_block++;
      break;
    }
    if (error == EBADF || error == ENOTSOCK || error == EFAULT) {
      counters.sent += sent;
      return ThrowSystemError(env, error, "sendmmsg");
    }
    fail(i, error);
    i++;
  }
  counters.sent += sent;
  result[0] = static_cast<int32_t>(sent);
  result[1] = static_cast<int32_t>(errors);
  result[2] = first_errno;
  return CreateUint32(env, i);
}

// Stores `callback` (a function) in *ref, replacing what was there. False with an exception pending.
bool SetCallback(napi_env env, napi_value callback, const char* method, napi_ref* ref) {
  napi_valuetype type;
  if (napi_typeof(env, callback, &type) != napi_ok || type != napi_function) {
    ThrowTypeError(env, "%s: callback must be a function", method);
    return false;
  }
  return ReplaceRef(env, callback, ref);
}

napi_value StartWatch(napi_env env, napi_callback_info info, const char* method, bool writable) {
  CallArgs<1> args;
  Socket* socket = UnwrapCall<Socket>(env, info, method, &args, 1, "(callback)");
  if (socket == nullptr) return nullptr;
  if (!SetCallback(env, args[0], method, writable ? &socket->on_writable : &socket->on_readable)) return nullptr;
  int error = StartPoll(socket);
  if (error != 0) {
    DeleteRef(env, writable ? &socket->on_writable : &socket->on_readable);
    StartPoll(socket);
    return ThrowSystemError(env, -error, "uv_poll_start");
  }
  return nullptr;
}

napi_value StartReading(napi_env env, napi_callback_info info) { return StartWatch(env, info, "startReading", false); }

napi_value WaitWritable(napi_env env, napi_callback_info info) { return StartWatch(env, info, "waitWritable", true); }

napi_value StopReading(napi_env env, napi_callback_info info) {
  CallArgs<0> args;
  Socket* socket = UnwrapCall<Socket>(env, info, "stopReading", &args, true);
  if (socket == nullptr) return nullptr;
  if (socket->fd < 0) return nullptr;
  DeleteRef(env, &socket->on_readable);
  StartPoll(socket);
  return nullptr;
}

napi_value Stats(napi_env env, napi_callback_info info) {
  CallArgs<0> args;
  Socket* socket = UnwrapCall<Socket>(env, info, "stats", &args, true);
  if (socket == nullptr) return nullptr;
  if (socket->fd >= 0) SnapshotSocketState(socket);
  const Counters& c = socket->counters;
  napi_value out;
  LISPNODE_NAPI_CALL(env, napi_create_object(env, &out));
  bool ok = SetNumber(env, out, "received", static_cast<double>(c.received)) &&
            SetNumber(env, out, "receivedBytes", static_cast<double>(c.received_bytes)) &&
            SetNumber(env, out, "recvCalls", static_cast<double>(c.recv_calls)) &&
            SetNumber(env, out, "truncated", static_cast<double>(c.truncated)) &&
            SetNumber(env, out, "kernelDrops", socket->kernel_drops) &&
            SetNumber(env, out, "sent", static_cast<double>(c.sent)) &&
            SetNumber(env, out, "sentBytes", static_cast<double>(c.sent_bytes)) &&
            SetNumber(env, out, "sendCalls", static_cast<double>(c.send_calls)) &&
            SetNumber(env, out, "sendErrors", static_cast<double>(c.send_errors)) &&
            SetNumber(env, out, "lastSendErrno", c.last_send_errno) &&
            SetNumber(env, out, "wouldBlock", static_cast<double>(c.would_block)) &&
            SetNumber(env, out, "receiveBuffer", socket->receive_buffer) &&
            SetNumber(env, out, "sendBuffer", socket->send_buffer);
  if (!ok) return ThrowNapiFailure(env);
  return out;
}

}  // namespace

napi_value RegisterUdp(napi_env env, napi_value exports) {
  return DefineClass(env, exports, "UdpSocket", Construct,
                     {{"recvBatch", RecvBatch},
                      {"sendBatch", SendBatch},
                      {"startReading", StartReading},
                      {"stopReading", StopReading},
                      {"waitWritable", WaitWritable},
                      {"stats", Stats},
                      {"close", CloseMethod<Socket>}});
}

}  // namespace lispnode
