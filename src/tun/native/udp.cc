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
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "napi_util.h"

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
constexpr uint32_t kKnownFlags = kFlagDualStack | kFlagZeroChecksumTx | kFlagReuseAddress;

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

struct Socket;

// The libuv poll of a socket, apart from it: its close callback runs after the socket may be gone.
// An async cleanup hook keeps the environment (and so this addon's code, which a worker's
// teardown unloads) alive until that callback has run.
struct Poll {
  uv_poll_t handle;
  Socket* socket;  // null once closing
  napi_async_cleanup_hook_handle cleanup_hook = nullptr;
};

struct Socket {
  napi_env env = nullptr;
  int fd = -1;  // -1 once closed
  int family = AF_INET;
  Poll* poll = nullptr;  // created by the first start, closed by Close or the environment's teardown
  napi_ref self = nullptr;    // weak, strong while a poll callback is wanted
  bool self_strong = false;
  napi_ref on_readable = nullptr;  // set while reading
  napi_ref on_writable = nullptr;  // set while a waitWritable is pending
  napi_async_context async_context = nullptr;
  // Set while a batch reads the packets array, whose element getters could call back into this
  // socket (close it, or start another batch over the same scratch vectors).
  bool busy = false;
  Counters counters;
  // Snapshotted by Close so that stats() still answers afterwards.
  int receive_buffer = 0;
  int send_buffer = 0;
  uint32_t kernel_drops = 0;
  // Scratch re-used by every batch.
  std::vector<napi_value> values;
  std::vector<mmsghdr> messages;
  std::vector<iovec> iovecs;
  std::vector<sockaddr_in6> names;  // large enough for sockaddr_in too
  std::vector<int> pre_errnos;

  void Close();
  void UpdatePoll();
};

void DeleteRef(napi_env env, napi_ref* ref) {
  if (*ref != nullptr) {
    napi_delete_reference(env, *ref);
    *ref = nullptr;
  }
}

void OnPollClosed(uv_handle_t* handle) {
  auto* poll = reinterpret_cast<Poll*>(handle);  // handle is Poll's first member
  if (poll->cleanup_hook != nullptr) napi_remove_async_cleanup_hook(poll->cleanup_hook);
  delete poll;
}

// uv_close stops the watcher at once (and forgets events already polled for its fd), so the
// descriptor may be closed right after; the memory goes in the close callback.
void ClosePoll(Socket* socket) {
  Poll* poll = socket->poll;
  if (poll == nullptr) return;
  socket->poll = nullptr;
  poll->socket = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll->handle), OnPollClosed);
}

// The environment is going away (a worker ends, the process exits) with the poll still open.
void OnEnvironmentTeardown(napi_async_cleanup_hook_handle /*hook*/, void* data) {
  auto* poll = static_cast<Poll*>(data);
  if (poll->socket != nullptr) ClosePoll(poll->socket);
  // Otherwise it is closing already, and its close callback removes the hook.
}

void OnPoll(uv_poll_t* handle, int status, int events);

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
  ClosePoll(this);
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
  std::vector<napi_value>().swap(values);
  std::vector<mmsghdr>().swap(messages);
  std::vector<iovec>().swap(iovecs);
  std::vector<sockaddr_in6>().swap(names);
  std::vector<int>().swap(pre_errnos);
}

// Starts, changes or stops the poll for the callbacks wanted; keeps the JS object alive while any
// is. Returns a libuv error code (0 on success).
int StartPoll(Socket* socket) {
  int events = (socket->on_readable != nullptr ? UV_READABLE : 0) | (socket->on_writable != nullptr ? UV_WRITABLE : 0);
  int result = 0;
  if (events != 0) {
    if (socket->poll == nullptr) {
      uv_loop_t* loop = nullptr;
      if (napi_get_uv_event_loop(socket->env, &loop) != napi_ok || loop == nullptr) return UV_EINVAL;
      auto* poll = new (std::nothrow) Poll();
      if (poll == nullptr) return UV_ENOMEM;
      result = uv_poll_init(loop, &poll->handle, socket->fd);
      if (result != 0) {
        delete poll;
        return result;
      }
      poll->handle.data = socket;
      poll->socket = socket;
      socket->poll = poll;
      if (napi_add_async_cleanup_hook(socket->env, OnEnvironmentTeardown, poll, &poll->cleanup_hook) != napi_ok) {
        poll->cleanup_hook = nullptr;
        ClosePoll(socket);
        return UV_ENOMEM;
      }
    }
    result = uv_poll_start(&socket->poll->handle, events, OnPoll);
  } else if (socket->poll != nullptr) {
    uv_poll_stop(&socket->poll->handle);
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

void Socket::UpdatePoll() { StartPoll(this); }

// An exception thrown by a callback has no JavaScript caller to return to: make it the process's
// 'uncaughtException', as an EventEmitter listener's would be.
void RaisePending(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  napi_value error;
  if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
}

void CallRef(Socket* socket, napi_value receiver, napi_ref callback_ref) {
  napi_env env = socket->env;
  napi_value callback;
  if (napi_get_reference_value(env, callback_ref, &callback) != napi_ok || callback == nullptr) return;
  napi_value result;
  if (napi_make_callback(env, socket->async_context, receiver, callback, 0, nullptr, &result) != napi_ok) RaisePending(env);
}

void OnPoll(uv_poll_t* handle, int status, int events) {
  auto* socket = static_cast<Socket*>(handle->data);
  napi_env env = socket->env;
  // An error on the descriptor: let both callbacks run, so that their syscalls report it.
  if (status < 0) events = UV_READABLE | UV_WRITABLE;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value receiver = nullptr;
  napi_get_reference_value(env, socket->self, &receiver);
  if (receiver == nullptr) napi_get_undefined(env, &receiver);
  if ((events & UV_WRITABLE) != 0 && socket->on_writable != nullptr) {
    // One-shot: forget it before calling, so the callback may wait again.
    napi_ref callback_ref = socket->on_writable;
    socket->on_writable = nullptr;
    socket->UpdatePoll();
    CallRef(socket, receiver, callback_ref);
    napi_delete_reference(env, callback_ref);
  }
  // The writable callback may have closed the socket or stopped reading.
  if ((events & UV_READABLE) != 0 && socket->fd >= 0 && socket->on_readable != nullptr) {
    CallRef(socket, receiver, socket->on_readable);
  }
  napi_close_handle_scope(env, scope);
}

void Finalize(napi_env env, void* data, void* /*hint*/) {
  auto* socket = static_cast<Socket*>(data);
  socket->Close();
  DeleteRef(env, &socket->self);
  delete socket;
}

class BusyScope {
 public:
  explicit BusyScope(Socket* socket) : socket_(socket) { socket_->busy = true; }
  BusyScope(const BusyScope&) = delete;
  BusyScope& operator=(const BusyScope&) = delete;
  ~BusyScope() { socket_->busy = false; }

 private:
  Socket* socket_;
};

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
  napi_value code_value;
  napi_value message_value;
  napi_value error;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_error(env, code_value, message_value, &error) != napi_ok) {
    return ThrowNapiFailure(env);
  }
  napi_value value;
  napi_create_int32(env, uv_code, &value);
  napi_set_named_property(env, error, "errno", value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &value);
  napi_set_named_property(env, error, "syscall", value);
  if (address != nullptr) {
    napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &value);
    napi_set_named_property(env, error, "address", value);
    napi_create_int32(env, port, &value);
    napi_set_named_property(env, error, "port", value);
  }
  napi_throw(env, error);
  return nullptr;
}

// The socket behind `this`, idle and (unless `allow_closed`) open; or nullptr with an exception
// pending.
Socket* Unwrap(napi_env env, napi_value self, const char* method, bool allow_closed = false) {
  void* data = nullptr;
  if (napi_unwrap(env, self, &data) != napi_ok || data == nullptr) {
    ThrowTypeError(env, "%s: receiver is not a UdpSocket", method);
    return nullptr;
  }
  auto* socket = static_cast<Socket*>(data);
  if (socket->busy) {
    ThrowError(env, "ERR_INVALID_STATE", "%s: UdpSocket is busy with a batch (called from an element getter)", method);
    return nullptr;
  }
  if (socket->fd < 0 && !allow_closed) {
    ThrowError(env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "%s: UdpSocket is closed", method);
    return nullptr;
  }
  return socket;
}

// An integer number in [min, max]. False with an exception pending otherwise.
bool GetInteger(napi_env env, napi_value value, const char* method, const char* name, double min, double max, double* out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) {
    ThrowTypeError(env, "%s: %s must be a number", method, name);
    return false;
  }
  double number = 0;
  napi_get_value_double(env, value, &number);
  if (!(number >= min && number <= max) || std::floor(number) != number) {
    ThrowRangeError(env, "%s: %s must be an integer in [%.0f, %.0f], got %g", method, name, min, max, number);
    return false;
  }
  *out = number;
  return true;
}

bool IsTypedArrayOf(napi_env env, napi_value value, napi_typedarray_type type) {
  void* data;
  size_t length;
  return GetTypedArray(env, value, type, &data, &length);
}

// packets[0, count) into socket->values. Element getters may run JavaScript, so this runs before
// any typed-array pointer is taken. False with an exception pending otherwise.
bool CollectPackets(napi_env env, Socket* socket, napi_value packets, uint32_t count, const char* method) {
  bool is_array = false;
  if (napi_is_array(env, packets, &is_array) != napi_ok || !is_array) {
    ThrowTypeError(env, "%s: packets must be an array of Uint8Array", method);
    return false;
  }
  uint32_t length = 0;
  napi_get_array_length(env, packets, &length);
  if (count > length) {
    ThrowRangeError(env, "%s: count (%u) exceeds packets.length (%u)", method, count, length);
    return false;
  }
  socket->values.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, packets, i, &socket->values[i]) != napi_ok) {
      ThrowNapiFailure(env);
      return false;
    }
  }
  return true;
}

// The endpoint arrays of a batch, checked against count. False with an exception pending.
struct Endpoints {
  uint8_t* addresses;
  uint16_t* ports;
};

bool GetEndpoints(napi_env env, napi_value addresses, napi_value ports, uint32_t count, const char* method, Endpoints* out) {
  size_t addresses_length;
  size_t ports_length;
  void* raw_ports;
  if (!GetBytes(env, addresses, &out->addresses, &addresses_length)) {
    ThrowTypeError(env, "%s: addresses must be a Uint8Array", method);
    return false;
  }
  if (!GetTypedArray(env, ports, napi_uint16_array, &raw_ports, &ports_length)) {
    ThrowTypeError(env, "%s: ports must be a Uint16Array", method);
    return false;
  }
  if (static_cast<uint64_t>(count) * kSlotBytes > addresses_length) {
    ThrowRangeError(env, "%s: addresses has %zu bytes; %u slots need %llu", method, addresses_length, count,
                    static_cast<unsigned long long>(count) * kSlotBytes);
    return false;
  }
  if (count > ports_length) {
    ThrowRangeError(env, "%s: count (%u) exceeds ports.length (%zu)", method, count, ports_length);
    return false;
  }
  out->ports = static_cast<uint16_t*>(raw_ports);
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
  size_t argc = 8;
  napi_value argv[8];
  napi_value self;
  napi_value new_target;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  LISPNODE_NAPI_CALL(env, napi_get_new_target(env, info, &new_target));
  if (new_target == nullptr) return ThrowTypeError(env, "UdpSocket must be called with new");
  if (argc < 8) return ThrowTypeError(env, "UdpSocket: expected (family, address, port, flags, receiveBuffer, sendBuffer, tos, pmtud)");

  double family_number;
  double port_number;
  double flags_number;
  double receive_buffer;
  double send_buffer;
  double tos;
  double pmtud;
  if (!GetInteger(env, argv[0], kMethod, "family", 4, 6, &family_number)) return nullptr;
  if (family_number != 4 && family_number != 6) return ThrowRangeError(env, "UdpSocket: family must be 4 or 6, got %g", family_number);
  uint8_t* address;
  size_t address_length;
  if (!GetBytes(env, argv[1], &address, &address_length)) return ThrowTypeError(env, "UdpSocket: address must be a Uint8Array");
  if (address_length != kSlotBytes) return ThrowRangeError(env, "UdpSocket: address must be 16 bytes, got %zu", address_length);
  if (!GetInteger(env, argv[2], kMethod, "port", 0, 65535, &port_number)) return nullptr;
  if (!GetInteger(env, argv[3], kMethod, "flags", 0, kKnownFlags, &flags_number)) return nullptr;
  if (!GetInteger(env, argv[4], kMethod, "receiveBuffer", 0, 1 << 30, &receive_buffer)) return nullptr;
  if (!GetInteger(env, argv[5], kMethod, "sendBuffer", 0, 1 << 30, &send_buffer)) return nullptr;
  if (!GetInteger(env, argv[6], kMethod, "tos", -1, 255, &tos)) return nullptr;
  if (!GetInteger(env, argv[7], kMethod, "pmtud", -1, IP_PMTUDISC_PROBE, &pmtud)) return nullptr;
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
  if (napi_wrap(env, self, socket, Finalize, nullptr, nullptr) != napi_ok) {
    socket->Close();
    delete socket;
    return ThrowNapiFailure(env);
  }
  // From here on the finalizer owns the socket.
  LISPNODE_NAPI_CALL(env, napi_create_reference(env, self, 0, &socket->self));
  napi_value resource_name;
  LISPNODE_NAPI_CALL(env, napi_create_string_utf8(env, "lispnode.UdpSocket", NAPI_AUTO_LENGTH, &resource_name));
  LISPNODE_NAPI_CALL(env, napi_async_init(env, nullptr, resource_name, &socket->async_context));
  napi_value port_value;
  LISPNODE_NAPI_CALL(env, napi_create_uint32(env, static_cast<uint32_t>(bound_port), &port_value));
  napi_property_descriptor port_property = {"port", nullptr, nullptr, nullptr, nullptr, port_value, napi_enumerable, nullptr};
  LISPNODE_NAPI_CALL(env, napi_define_properties(env, self, 1, &port_property));
  return self;
}

napi_value RecvBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "recvBatch";
  size_t argc = 6;
  napi_value argv[6];
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  Socket* socket = Unwrap(env, self, kMethod);
  if (socket == nullptr) return nullptr;
  if (argc < 6) return ThrowTypeError(env, "recvBatch: expected (packets, offset, lengths, addresses, ports, count)");
  double offset_number;
  double count_number;
  if (!GetInteger(env, argv[1], kMethod, "offset", 0, 4294967295.0, &offset_number)) return nullptr;
  if (!IsTypedArrayOf(env, argv[2], napi_uint32_array)) return ThrowTypeError(env, "recvBatch: lengths must be a Uint32Array");
  if (!IsTypedArrayOf(env, argv[3], napi_uint8_array)) return ThrowTypeError(env, "recvBatch: addresses must be a Uint8Array");
  if (!IsTypedArrayOf(env, argv[4], napi_uint16_array)) return ThrowTypeError(env, "recvBatch: ports must be a Uint16Array");
  if (!GetInteger(env, argv[5], kMethod, "count", 0, 4294967295.0, &count_number)) return nullptr;
  auto offset = static_cast<size_t>(offset_number);
  auto count = static_cast<uint32_t>(count_number);
  {
    BusyScope busy(socket);
    if (!CollectPackets(env, socket, argv[0], count, kMethod)) return nullptr;
  }
  // No JavaScript runs from here on, so the pointers below stay valid.
  void* raw_lengths;
  size_t lengths_length;
  if (!GetTypedArray(env, argv[2], napi_uint32_array, &raw_lengths, &lengths_length)) {
    return ThrowTypeError(env, "recvBatch: lengths must be a Uint32Array");
  }
  if (count > lengths_length) return ThrowRangeError(env, "recvBatch: count (%u) exceeds lengths.length (%zu)", count, lengths_length);
  Endpoints endpoints;
  if (!GetEndpoints(env, argv[3], argv[4], count, kMethod, &endpoints)) return nullptr;
  auto* lengths = static_cast<uint32_t*>(raw_lengths);

  socket->messages.resize(count);
  socket->iovecs.resize(count);
  socket->names.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t* data;
    size_t capacity;
    if (!GetBytes(env, socket->values[i], &data, &capacity)) return ThrowTypeError(env, "recvBatch: packets[%u] must be a Uint8Array", i);
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
  napi_value out;
  LISPNODE_NAPI_CALL(env, napi_create_uint32(env, received, &out));
  return out;
}

napi_value SendBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "sendBatch";
  size_t argc = 8;
  napi_value argv[8];
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  Socket* socket = Unwrap(env, self, kMethod);
  if (socket == nullptr) return nullptr;
  if (argc < 7) return ThrowTypeError(env, "sendBatch: expected (packets, offsets, lengths, addresses, ports, count, result[, errnos])");
  if (!IsTypedArrayOf(env, argv[1], napi_uint32_array)) return ThrowTypeError(env, "sendBatch: offsets must be a Uint32Array");
  if (!IsTypedArrayOf(env, argv[2], napi_uint32_array)) return ThrowTypeError(env, "sendBatch: lengths must be a Uint32Array");
  if (!IsTypedArrayOf(env, argv[3], napi_uint8_array)) return ThrowTypeError(env, "sendBatch: addresses must be a Uint8Array");
  if (!IsTypedArrayOf(env, argv[4], napi_uint16_array)) return ThrowTypeError(env, "sendBatch: ports must be a Uint16Array");
  double count_number;
  if (!GetInteger(env, argv[5], kMethod, "count", 0, 4294967295.0, &count_number)) return nullptr;
  if (!IsTypedArrayOf(env, argv[6], napi_int32_array)) return ThrowTypeError(env, "sendBatch: result must be an Int32Array");
  bool has_errnos = false;
  if (argc >= 8) {
    napi_valuetype type;
    LISPNODE_NAPI_CALL(env, napi_typeof(env, argv[7], &type));
    if (type != napi_undefined && type != napi_null) {
      if (!IsTypedArrayOf(env, argv[7], napi_int32_array)) return ThrowTypeError(env, "sendBatch: errnos must be an Int32Array");
      has_errnos = true;
    }
  }
  auto count = static_cast<uint32_t>(count_number);
  {
    BusyScope busy(socket);
    if (!CollectPackets(env, socket, argv[0], count, kMethod)) return nullptr;
  }
  // No JavaScript runs from here on, so the pointers below stay valid.
  void* raw_offsets;
  void* raw_lengths;
  void* raw_result;
  void* raw_errnos = nullptr;
  size_t offsets_length;
  size_t lengths_length;
  size_t result_length;
  size_t errnos_length = 0;
  GetTypedArray(env, argv[1], napi_uint32_array, &raw_offsets, &offsets_length);
  GetTypedArray(env, argv[2], napi_uint32_array, &raw_lengths, &lengths_length);
  GetTypedArray(env, argv[6], napi_int32_array, &raw_result, &result_length);
  if (has_errnos) GetTypedArray(env, argv[7], napi_int32_array, &raw_errnos, &errnos_length);
  if (count > offsets_length) return ThrowRangeError(env, "sendBatch: count (%u) exceeds offsets.length (%zu)", count, offsets_length);
  if (count > lengths_length) return ThrowRangeError(env, "sendBatch: count (%u) exceeds lengths.length (%zu)", count, lengths_length);
  if (result_length < 3) return ThrowRangeError(env, "sendBatch: result must have 3 elements, got %zu", result_length);
  if (has_errnos && count > errnos_length) return ThrowRangeError(env, "sendBatch: count (%u) exceeds errnos.length (%zu)", count, errnos_length);
  Endpoints endpoints;
  if (!GetEndpoints(env, argv[3], argv[4], count, kMethod, &endpoints)) return nullptr;
  auto* offsets = static_cast<uint32_t*>(raw_offsets);
  auto* lengths = static_cast<uint32_t*>(raw_lengths);
  auto* result = static_cast<int32_t*>(raw_result);
  auto* errnos = static_cast<int32_t*>(raw_errnos);

  socket->messages.resize(count);
  socket->iovecs.resize(count);
  socket->names.resize(count);
  socket->pre_errnos.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t* data;
    size_t capacity;
    if (!GetBytes(env, socket->values[i], &data, &capacity)) return ThrowTypeError(env, "sendBatch: packets[%u] must be a Uint8Array", i);
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
  napi_value out;
  LISPNODE_NAPI_CALL(env, napi_create_uint32(env, i, &out));
  return out;
}

// Stores `callback` (a function) in *ref, replacing what was there. False with an exception pending.
bool SetCallback(napi_env env, napi_value callback, const char* method, napi_ref* ref) {
  napi_valuetype type;
  if (napi_typeof(env, callback, &type) != napi_ok || type != napi_function) {
    ThrowTypeError(env, "%s: callback must be a function", method);
    return false;
  }
  napi_ref created;
  if (napi_create_reference(env, callback, 1, &created) != napi_ok) {
    ThrowNapiFailure(env);
    return false;
  }
  DeleteRef(env, ref);
  *ref = created;
  return true;
}

napi_value StartWatch(napi_env env, napi_callback_info info, const char* method, bool writable) {
  size_t argc = 1;
  napi_value argv[1];
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  Socket* socket = Unwrap(env, self, method);
  if (socket == nullptr) return nullptr;
  if (argc < 1) return ThrowTypeError(env, "%s: expected (callback)", method);
  if (!SetCallback(env, argv[0], method, writable ? &socket->on_writable : &socket->on_readable)) return nullptr;
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
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, nullptr, nullptr, &self, nullptr));
  Socket* socket = Unwrap(env, self, "stopReading", true);
  if (socket == nullptr) return nullptr;
  if (socket->fd < 0) return nullptr;
  DeleteRef(env, &socket->on_readable);
  StartPoll(socket);
  return nullptr;
}

napi_value Close(napi_env env, napi_callback_info info) {
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, nullptr, nullptr, &self, nullptr));
  Socket* socket = Unwrap(env, self, "close", true);
  if (socket == nullptr) return nullptr;
  socket->Close();  // idempotent; the finalizer frees the rest
  return nullptr;
}

bool SetNumber(napi_env env, napi_value object, const char* name, double number) {
  napi_value value;
  return napi_create_double(env, number, &value) == napi_ok && napi_set_named_property(env, object, name, value) == napi_ok;
}

napi_value Stats(napi_env env, napi_callback_info info) {
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, nullptr, nullptr, &self, nullptr));
  Socket* socket = Unwrap(env, self, "stats", true);
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
  napi_property_descriptor methods[] = {
      {"recvBatch", nullptr, RecvBatch, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"sendBatch", nullptr, SendBatch, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"startReading", nullptr, StartReading, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"stopReading", nullptr, StopReading, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"waitWritable", nullptr, WaitWritable, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"stats", nullptr, Stats, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default_method, nullptr},
  };
  napi_value constructor;
  LISPNODE_NAPI_CALL(env, napi_define_class(env, "UdpSocket", NAPI_AUTO_LENGTH, Construct, nullptr, sizeof methods / sizeof methods[0],
                                            methods, &constructor));
  LISPNODE_NAPI_CALL(env, napi_set_named_property(env, exports, "UdpSocket", constructor));
  return exports;
}

}  // namespace lispnode
