// Small N-API helpers shared by the addon's modules: error throwing with Node-style codes and
// typed-array access. Header-only; every function is inline.
#ifndef LISPNODE_NAPI_UTIL_H_
#define LISPNODE_NAPI_UTIL_H_

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>

namespace lispnode {

// Throws a TypeError / RangeError / Error with a printf-style message and returns nullptr, so a
// callback can `return ThrowTypeError(env, ...)`.
template <typename... Args>
napi_value ThrowTypeError(napi_env env, const char* format, Args... args) {
  char message[256];
  std::snprintf(message, sizeof message, format, args...);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return nullptr;
}

template <typename... Args>
napi_value ThrowRangeError(napi_env env, const char* format, Args... args) {
  char message[256];
  std::snprintf(message, sizeof message, format, args...);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return nullptr;
}

template <typename... Args>
napi_value ThrowError(napi_env env, const char* code, const char* format, Args... args) {
  char message[256];
  std::snprintf(message, sizeof message, format, args...);
  napi_throw_error(env, code, message);
  return nullptr;
}

// A failed napi_* call: rethrows what N-API recorded (or a generic Error when nothing is pending).
inline napi_value ThrowNapiFailure(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return nullptr;
  const napi_extended_error_info* info = nullptr;
  napi_get_last_error_info(env, &info);
  const char* message = info != nullptr && info->error_message != nullptr ? info->error_message : "N-API call failed";
  napi_throw_error(env, "ERR_NAPI", message);
  return nullptr;
}

#define LISPNODE_NAPI_CALL(env, call)                                 \
  do {                                                                \
    if ((call) != napi_ok) return ::lispnode::ThrowNapiFailure(env);  \
  } while (0)

// The bytes of `value` when it is a typed array of `type` (a Buffer is a Uint8Array); false
// otherwise. `length` counts elements. Runs no JavaScript.
inline bool GetTypedArray(napi_env env, napi_value value, napi_typedarray_type type, void** data, size_t* length) {
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || !is_typed_array) return false;
  napi_typedarray_type actual;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &actual, length, data, &buffer, &offset) != napi_ok) return false;
  return actual == type;
}

inline bool GetBytes(napi_env env, napi_value value, uint8_t** data, size_t* length) {
  void* raw = nullptr;
  if (!GetTypedArray(env, value, napi_uint8_array, &raw, length)) return false;
  *data = static_cast<uint8_t*>(raw);
  return true;
}

}  // namespace lispnode

#endif  // LISPNODE_NAPI_UTIL_H_
