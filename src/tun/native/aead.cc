// N-API face of AeadSuite:
//   new AeadContext(suite, encryptKey, icvKey)
//   ctx.sealBatch(packets, lengths, count)
//   ctx.openBatch(packets, lengths, statuses, count)
//   ctx.close()
// Every argument is checked before any packet is touched, so a call that throws has changed
// nothing. A malformed packet in openBatch is a status, never an exception.
#include "aead.h"

#include <cstdint>
#include <new>
#include <vector>

#include "aead_suite.h"
#include "napi_util.h"
#include "native_class.h"

namespace lispnode {

namespace {

struct Context {
  static constexpr const char* kClassName = "AeadContext";
  static constexpr const char* kReceiverName = "an AeadContext";

  AeadSuite* suite = nullptr;  // null once closed
  // Scratch re-used by every batch.
  PacketArray packets{"packets"};
  std::vector<Slot> slots;

  bool closed() const { return suite == nullptr; }
  void ThrowClosed(napi_env env, const char* method) const {
    ThrowError(env, "ERR_INVALID_STATE", "%s: AeadContext is closed", method);
  }
  void Close() {
    delete suite;
    suite = nullptr;
    packets.Release();
    std::vector<Slot>().swap(slots);
  }
};

void Finalize(napi_env /*env*/, void* data, void* /*hint*/) {
  auto* context = static_cast<Context*>(data);
  context->Close();
  delete context;
}

// count: an integer in [0, 2^32). False with an exception pending otherwise.
bool GetCount(napi_env env, napi_value value, const char* method, uint32_t* count) {
  double number = 0;
  if (!GetNumber(env, value, method, "count", &number)) return false;
  if (!IsIntegerIn(number, 0, 4294967295.0)) {
    ThrowRangeError(env, "%s: count must be a non-negative integer, got %g", method, number);
    return false;
  }
  *count = static_cast<uint32_t>(number);
  return true;
}

napi_value Construct(napi_env env, napi_callback_info info) {
  constexpr const char* kClass = "AeadContext";
  CallArgs<3> args;
  if (!GetConstructorArgs(env, info, kClass, &args)) return nullptr;
  if (args.count < 3) return ThrowTypeError(env, "AeadContext: expected (suite, encryptKey, icvKey)");

  napi_valuetype type;
  LISPNODE_NAPI_CALL(env, napi_typeof(env, args[0], &type));
  if (type != napi_number) return ThrowTypeError(env, "AeadContext: suite must be a number (2 or 5)");
  double suite = 0;
  LISPNODE_NAPI_CALL(env, napi_get_value_double(env, args[0], &suite));
  if (suite != kSuiteAes128Cbc && suite != kSuiteAes128Gcm) {
    return ThrowRangeError(env, "AeadContext: suite must be 2 (AES-128-CBC) or 5 (AES-128-GCM), got %g", suite);
  }
  uint8_t* encrypt_key;
  size_t encrypt_key_length;
  if (!GetArray(env, args[1], kClass, "encryptKey", &encrypt_key, &encrypt_key_length)) return nullptr;
  if (encrypt_key_length != kEncryptKeyLength) {
    return ThrowRangeError(env, "AeadContext: encryptKey must be %zu bytes, got %zu", kEncryptKeyLength, encrypt_key_length);
  }
  uint8_t* icv_key;
  size_t icv_key_length;
  if (!GetArray(env, args[2], kClass, "icvKey", &icv_key, &icv_key_length)) return nullptr;
  if (icv_key_length != kIcvKeyLength) {
    return ThrowRangeError(env, "AeadContext: icvKey must be %zu bytes, got %zu", kIcvKeyLength, icv_key_length);
  }

  auto* context = new (std::nothrow) Context();
  if (context == nullptr) return ThrowError(env, "ERR_MEMORY_ALLOCATION_FAILED", "AeadContext: out of memory");
  context->suite = new (std::nothrow) AeadSuite();
  if (context->suite == nullptr || !context->suite->Init(static_cast<SuiteId>(suite), encrypt_key, icv_key)) {
    context->Close();
    delete context;
    return ThrowError(env, "ERR_CRYPTO_OPERATION_FAILED", "AeadContext: OpenSSL could not set up the cipher contexts");
  }
  if (napi_wrap(env, args.self, context, Finalize, nullptr, nullptr) != napi_ok) {
    context->Close();
    delete context;
    return ThrowNapiFailure(env);
  }
  return args.self;
}

napi_value SealBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "sealBatch";
  CallArgs<3> args;
  Context* context = UnwrapCall<Context>(env, info, kMethod, &args, 3, "(packets, lengths, count)");
  if (context == nullptr) return nullptr;
  if (!CheckArray<uint32_t>(env, args[1], kMethod, "lengths")) return nullptr;
  uint32_t count = 0;
  if (!GetCount(env, args[2], kMethod, &count)) return nullptr;
  if (!context->packets.Collect(env, args[0], kMethod, &count)) return nullptr;
  // No JavaScript runs from here on, so the pointers below stay valid.
  uint32_t* lengths;
  if (!GetArray(env, args[1], kMethod, "lengths", count, &lengths)) return nullptr;

  AeadSuite* suite = context->suite;
  context->slots.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Slot& slot = context->slots[i];
    size_t capacity;
    if (!context->packets.Bytes(env, i, kMethod, &slot.data, &capacity)) return nullptr;
    slot.length = lengths[i];
    if (slot.length > kMaxPacketLength) {
      return ThrowRangeError(env, "sealBatch: lengths[%u] (%zu) exceeds %zu", i, slot.length, kMaxPacketLength);
    }
    if (slot.length < suite->PrefixLength()) {
      return ThrowRangeError(env, "sealBatch: lengths[%u] (%zu) is shorter than LISP header + IV (%zu)", i, slot.length,
                             suite->PrefixLength());
    }
    if (slot.length > capacity) {
      return ThrowRangeError(env, "sealBatch: lengths[%u] (%zu) exceeds packets[%u].length (%zu)", i, slot.length, i, capacity);
    }
    size_t sealed = suite->SealedLength(slot.length);
    if (sealed > capacity) {
      return ThrowRangeError(env, "sealBatch: packets[%u] has %zu bytes; sealing %zu bytes needs %zu (room for pad, tag and ICV)", i,
                             capacity, slot.length, sealed);
    }
  }
  for (uint32_t i = 0; i < count; i++) {
    size_t sealed = 0;
    if (!suite->Seal(context->slots[i].data, context->slots[i].length, &sealed)) {
      return ThrowError(env, "ERR_CRYPTO_OPERATION_FAILED", "sealBatch: OpenSSL failed on packets[%u]", i);
    }
    lengths[i] = static_cast<uint32_t>(sealed);
  }
  return nullptr;
}

napi_value OpenBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "openBatch";
  CallArgs<4> args;
  Context* context = UnwrapCall<Context>(env, info, kMethod, &args, 4, "(packets, lengths, statuses, count)");
  if (context == nullptr) return nullptr;
  if (!CheckArray<uint32_t>(env, args[1], kMethod, "lengths")) return nullptr;
  if (!CheckArray<uint8_t>(env, args[2], kMethod, "statuses")) return nullptr;
  uint32_t count = 0;
  if (!GetCount(env, args[3], kMethod, &count)) return nullptr;
  if (!context->packets.Collect(env, args[0], kMethod, &count)) return nullptr;
  // No JavaScript runs from here on, so the pointers below stay valid.
  uint32_t* lengths;
  uint8_t* statuses;
  if (!GetArray(env, args[1], kMethod, "lengths", count, &lengths)) return nullptr;
  if (!GetArray(env, args[2], kMethod, "statuses", count, &statuses)) return nullptr;

  context->slots.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Slot& slot = context->slots[i];
    size_t capacity;
    if (!context->packets.Bytes(env, i, kMethod, &slot.data, &capacity)) return nullptr;
    slot.length = lengths[i];
    if (slot.length > capacity) {
      return ThrowRangeError(env, "openBatch: lengths[%u] (%zu) exceeds packets[%u].length (%zu)", i, slot.length, i, capacity);
    }
    if (slot.length > kMaxPacketLength) {
      return ThrowRangeError(env, "openBatch: lengths[%u] (%zu) exceeds %zu", i, slot.length, kMaxPacketLength);
    }
  }
  AeadSuite* suite = context->suite;
  for (uint32_t i = 0; i < count; i++) {
    size_t opened = 0;
    OpenStatus status = suite->Open(context->slots[i].data, context->slots[i].length, &opened);
    if (status == kOpenInternalError) {
      return ThrowError(env, "ERR_CRYPTO_OPERATION_FAILED", "openBatch: OpenSSL failed on packets[%u]", i);
    }
    statuses[i] = status;
    if (status == kOpenOk) lengths[i] = static_cast<uint32_t>(opened);
  }
  return nullptr;
}

}  // namespace

napi_value RegisterAead(napi_env env, napi_value exports) {
  return DefineClass(env, exports, "AeadContext", Construct,
                     {{"sealBatch", SealBatch}, {"openBatch", OpenBatch}, {"close", CloseMethod<Context>}});
}

}  // namespace lispnode
