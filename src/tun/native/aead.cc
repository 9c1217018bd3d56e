// N-API face of AeadSuite:
//   new AeadContext(suite, encryptKey, icvKey)
//   ctx.sealBatch(packets, lengths, count)
//   ctx.openBatch(packets, lengths, statuses, count)
//   ctx.close()
// Every argument is checked before any packet is touched, so a call that throws has changed
// nothing. A malformed packet in openBatch is a status, never an exception.
#include "aead.h"

#include <cmath>
#include <cstdint>
#include <new>
#include <vector>

#include "aead_suite.h"
#include "napi_util.h"

namespace lispnode {

namespace {

struct Slot {
  uint8_t* data;
  size_t length;
};

struct Context {
  AeadSuite* suite = nullptr;  // null once closed
  // Set while a batch reads the packets array, whose element getters could call back into this
  // context (close it, or start another batch over the same scratch vectors).
  bool busy = false;
  // Scratch re-used by every batch.
  std::vector<napi_value> values;
  std::vector<Slot> slots;

  void Close() {
    delete suite;
    suite = nullptr;
    std::vector<napi_value>().swap(values);
    std::vector<Slot>().swap(slots);
  }
};

void Finalize(napi_env /*env*/, void* data, void* /*hint*/) {
  auto* context = static_cast<Context*>(data);
  context->Close();
  delete context;
}

class BusyScope {
 public:
  explicit BusyScope(Context* context) : context_(context) { context_->busy = true; }
  BusyScope(const BusyScope&) = delete;
  BusyScope& operator=(const BusyScope&) = delete;
  ~BusyScope() { context_->busy = false; }

 private:
  Context* context_;
};

// The context behind `this`, idle and (unless `allow_closed`) not closed; or nullptr with an
// exception pending.
Context* Unwrap(napi_env env, napi_value self, const char* method, bool allow_closed = false) {
  void* data = nullptr;
  if (napi_unwrap(env, self, &data) != napi_ok || data == nullptr) {
    ThrowTypeError(env, "%s: receiver is not an AeadContext", method);
    return nullptr;
  }
  auto* context = static_cast<Context*>(data);
  if (context->busy) {
    ThrowError(env, "ERR_INVALID_STATE", "%s: AeadContext is busy with a batch (called from an element getter)", method);
    return nullptr;
  }
  if (context->suite == nullptr && !allow_closed) {
    ThrowError(env, "ERR_INVALID_STATE", "%s: AeadContext is closed", method);
    return nullptr;
  }
  return context;
}

// count: an integer in [0, 2^32). False with an exception pending otherwise.
bool GetCount(napi_env env, napi_value value, const char* method, uint32_t* count) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) {
    ThrowTypeError(env, "%s: count must be a number", method);
    return false;
  }
  double number = 0;
  napi_get_value_double(env, value, &number);
  if (!(number >= 0 && number <= 4294967295.0) || std::floor(number) != number) {
    ThrowRangeError(env, "%s: count must be a non-negative integer, got %g", method, number);
    return false;
  }
  *count = static_cast<uint32_t>(number);
  return true;
}

// packets[0, count) into context->values. Element getters may run JavaScript, so this runs before
// any typed-array pointer is taken. False with an exception pending otherwise.
bool CollectPackets(napi_env env, Context* context, napi_value packets, uint32_t count, const char* method) {
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
  context->values.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    if (napi_get_element(env, packets, i, &context->values[i]) != napi_ok) {
      ThrowNapiFailure(env);
      return false;
    }
  }
  return true;
}

bool IsTypedArrayOf(napi_env env, napi_value value, napi_typedarray_type type) {
  void* data;
  size_t length;
  return GetTypedArray(env, value, type, &data, &length);
}

napi_value Construct(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_value self;
  napi_value new_target;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  LISPNODE_NAPI_CALL(env, napi_get_new_target(env, info, &new_target));
  if (new_target == nullptr) return ThrowTypeError(env, "AeadContext must be called with new");
  if (argc < 3) return ThrowTypeError(env, "AeadContext: expected (suite, encryptKey, icvKey)");

  napi_valuetype type;
  LISPNODE_NAPI_CALL(env, napi_typeof(env, argv[0], &type));
  if (type != napi_number) return ThrowTypeError(env, "AeadContext: suite must be a number (2 or 5)");
  double suite = 0;
  LISPNODE_NAPI_CALL(env, napi_get_value_double(env, argv[0], &suite));
  if (suite != kSuiteAes128Cbc && suite != kSuiteAes128Gcm) {
    return ThrowRangeError(env, "AeadContext: suite must be 2 (AES-128-CBC) or 5 (AES-128-GCM), got %g", suite);
  }
  uint8_t* encrypt_key;
  size_t encrypt_key_length;
  if (!GetBytes(env, argv[1], &encrypt_key, &encrypt_key_length)) {
    return ThrowTypeError(env, "AeadContext: encryptKey must be a Uint8Array");
  }
  if (encrypt_key_length != kEncryptKeyLength) {
    return ThrowRangeError(env, "AeadContext: encryptKey must be %zu bytes, got %zu", kEncryptKeyLength, encrypt_key_length);
  }
  uint8_t* icv_key;
  size_t icv_key_length;
  if (!GetBytes(env, argv[2], &icv_key, &icv_key_length)) {
    return ThrowTypeError(env, "AeadContext: icvKey must be a Uint8Array");
  }
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
  if (napi_wrap(env, self, context, Finalize, nullptr, nullptr) != napi_ok) {
    context->Close();
    delete context;
    return ThrowNapiFailure(env);
  }
  return self;
}

napi_value SealBatch(napi_env env, napi_callback_info info) {
  constexpr const char* kMethod = "sealBatch";
  size_t argc = 3;
  napi_value argv[3];
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  Context* context = Unwrap(env, self, kMethod);
  if (context == nullptr) return nullptr;
  if (argc < 3) return ThrowTypeError(env, "sealBatch: expected (packets, lengths, count)");
  if (!IsTypedArrayOf(env, argv[1], napi_uint32_array)) return ThrowTypeError(env, "sealBatch: lengths must be a Uint32Array");
  uint32_t count = 0;
  if (!GetCount(env, argv[2], kMethod, &count)) return nullptr;
  {
    BusyScope busy(context);
    if (!CollectPackets(env, context, argv[0], count, kMethod)) return nullptr;
  }
  // No JavaScript runs from here on, so the pointers below stay valid.
  void* raw_lengths;
  size_t lengths_length;
  if (!GetTypedArray(env, argv[1], napi_uint32_array, &raw_lengths, &lengths_length)) {
    return ThrowTypeError(env, "sealBatch: lengths must be a Uint32Array");
  }
  if (count > lengths_length) {
    return ThrowRangeError(env, "sealBatch: count (%u) exceeds lengths.length (%zu)", count, lengths_length);
  }
  auto* lengths = static_cast<uint32_t*>(raw_lengths);

  AeadSuite* suite = context->suite;
  context->slots.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Slot& slot = context->slots[i];
    size_t capacity;
    if (!GetBytes(env, context->values[i], &slot.data, &capacity)) {
      return ThrowTypeError(env, "sealBatch: packets[%u] must be a Uint8Array", i);
    }
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
  size_t argc = 4;
  napi_value argv[4];
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  Context* context = Unwrap(env, self, kMethod);
  if (context == nullptr) return nullptr;
  if (argc < 4) return ThrowTypeError(env, "openBatch: expected (packets, lengths, statuses, count)");
  if (!IsTypedArrayOf(env, argv[1], napi_uint32_array)) return ThrowTypeError(env, "openBatch: lengths must be a Uint32Array");
  if (!IsTypedArrayOf(env, argv[2], napi_uint8_array)) return ThrowTypeError(env, "openBatch: statuses must be a Uint8Array");
  uint32_t count = 0;
  if (!GetCount(env, argv[3], kMethod, &count)) return nullptr;
  {
    BusyScope busy(context);
    if (!CollectPackets(env, context, argv[0], count, kMethod)) return nullptr;
  }
  // No JavaScript runs from here on, so the pointers below stay valid.
  void* raw_lengths;
  size_t lengths_length;
  uint8_t* statuses;
  size_t statuses_length;
  if (!GetTypedArray(env, argv[1], napi_uint32_array, &raw_lengths, &lengths_length)) {
    return ThrowTypeError(env, "openBatch: lengths must be a Uint32Array");
  }
  if (!GetBytes(env, argv[2], &statuses, &statuses_length)) return ThrowTypeError(env, "openBatch: statuses must be a Uint8Array");
  if (count > lengths_length) {
    return ThrowRangeError(env, "openBatch: count (%u) exceeds lengths.length (%zu)", count, lengths_length);
  }
  if (count > statuses_length) {
    return ThrowRangeError(env, "openBatch: count (%u) exceeds statuses.length (%zu)", count, statuses_length);
  }
  auto* lengths = static_cast<uint32_t*>(raw_lengths);

  context->slots.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Slot& slot = context->slots[i];
    size_t capacity;
    if (!GetBytes(env, context->values[i], &slot.data, &capacity)) {
      return ThrowTypeError(env, "openBatch: packets[%u] must be a Uint8Array", i);
    }
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

napi_value Close(napi_env env, napi_callback_info info) {
  napi_value self;
  LISPNODE_NAPI_CALL(env, napi_get_cb_info(env, info, nullptr, nullptr, &self, nullptr));
  Context* context = Unwrap(env, self, "close", true);
  if (context == nullptr) return nullptr;
  context->Close();  // idempotent; the finalizer frees the rest
  return nullptr;
}

}  // namespace

napi_value RegisterAead(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"sealBatch", nullptr, SealBatch, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"openBatch", nullptr, OpenBatch, nullptr, nullptr, nullptr, napi_default_method, nullptr},
      {"close", nullptr, Close, nullptr, nullptr, nullptr, napi_default_method, nullptr},
  };
  napi_value constructor;
  LISPNODE_NAPI_CALL(env, napi_define_class(env, "AeadContext", NAPI_AUTO_LENGTH, Construct, nullptr,
                                            sizeof methods / sizeof methods[0], methods, &constructor));
  LISPNODE_NAPI_CALL(env, napi_set_named_property(env, exports, "AeadContext", constructor));
  return exports;
}

}  // namespace lispnode
