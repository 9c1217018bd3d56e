// What the addon's classes (AeadContext, TunDevice, UdpSocket) share: the packet array every batch
// call reads, the guard that keeps JavaScript out while it is read, and the receiver checks and
// close() of a method call.
//
// Each class wraps (napi_wrap) a native object T that provides:
//   static constexpr const char* kClassName;     "TunDevice"
//   static constexpr const char* kReceiverName;  "a TunDevice", as in "receiver is not a TunDevice"
//   PacketArray packets;                         its batches' packet array (busy while one reads it)
//   bool closed() const;
//   void ThrowClosed(napi_env env, const char* method) const;  the error for a call after close()
//   void Close();                                idempotent; what close() does
#ifndef LISPNODE_NATIVE_CLASS_H_
#define LISPNODE_NATIVE_CLASS_H_

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "napi_util.h"

namespace lispnode {

// Sets *flag for as long as it lives.
class BusyGuard {
 public:
  explicit BusyGuard(bool* flag) : flag_(flag) { *flag_ = true; }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;
  ~BusyGuard() { *flag_ = false; }

 private:
  bool* flag_;
};

// A packet of a batch: where it is in its buffer, and how long.
struct Slot {
  uint8_t* data;
  size_t length;
};

// The caller-owned buffers of a batch: elements [0, count) of a JavaScript array of Uint8Array.
// Reading them may run JavaScript (element getters), which could call back into the object: close
// it, or start another batch over the same scratch. So Collect takes the element values first,
// while busy() turns such calls away, and the bytes are looked at afterwards, when no JavaScript
// runs any more and their pointers stay valid.
class PacketArray {
 public:
  // `name`: the argument's name in error messages ("packets", "bufs").
  explicit PacketArray(const char* name) : name_(name) {}
  PacketArray(const PacketArray&) = delete;
  PacketArray& operator=(const PacketArray&) = delete;

  bool busy() const { return busy_; }

  // The first *count elements of `array`, or all of them when `all` (*count becomes the array's
  // length). False with an exception pending: not an array, count beyond its length, or an
  // element getter threw.
  bool Collect(napi_env env, napi_value array, const char* method, uint32_t* count, bool all = false);

  // The bytes of element i; false with a TypeError "<method>: <name>[i] must be a Uint8Array"
  // pending otherwise.
  bool Bytes(napi_env env, uint32_t i, const char* method, uint8_t** data, size_t* length) const;

  // Frees the scratch (close()).
  void Release() { std::vector<napi_value>().swap(values_); }

 private:
  const char* name_;
  bool busy_ = false;
  std::vector<napi_value> values_;
};

// The object behind `this`, idle and (unless `allow_closed`) not closed; or nullptr with an
// exception pending.
template <typename T>
T* Unwrap(napi_env env, napi_value self, const char* method, bool allow_closed = false) {
  void* data = nullptr;
  if (napi_unwrap(env, self, &data) != napi_ok || data == nullptr) {
    ThrowTypeError(env, "%s: receiver is not %s", method, T::kReceiverName);
    return nullptr;
  }
  auto* object = static_cast<T*>(data);
  if (object->packets.busy()) {
    ThrowError(env, "ERR_INVALID_STATE", "%s: %s is busy with a batch (called from an element getter)", method, T::kClassName);
    return nullptr;
  }
  if (object->closed() && !allow_closed) {
    object->ThrowClosed(env, method);
    return nullptr;
  }
  return object;
}

// Unwrap for a method call, whose arguments land in *args.
template <typename T, size_t N>
T* UnwrapCall(napi_env env, napi_callback_info info, const char* method, CallArgs<N>* args, bool allow_closed = false) {
  if (!GetCallArgs(env, info, args)) return nullptr;
  return Unwrap<T>(env, args->self, method, allow_closed);
}

// UnwrapCall for a method that needs `required` arguments: after the receiver checks, a TypeError
// "<method>: expected <usage>" when fewer were passed.
template <typename T, size_t N>
T* UnwrapCall(napi_env env, napi_callback_info info, const char* method, CallArgs<N>* args, size_t required,
              const char* usage) {
  T* object = UnwrapCall<T>(env, info, method, args);
  if (object != nullptr && args->count < required) {
    ThrowTypeError(env, "%s: expected %s", method, usage);
    return nullptr;
  }
  return object;
}

// close(): idempotent; the finalizer frees the rest.
template <typename T>
napi_value CloseMethod(napi_env env, napi_callback_info info) {
  CallArgs<0> args;
  T* object = UnwrapCall<T>(env, info, "close", &args, true);
  if (object != nullptr) object->Close();
  return nullptr;
}

}  // namespace lispnode

#endif  // LISPNODE_NATIVE_CLASS_H_
