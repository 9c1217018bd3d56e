// Small N-API helpers shared by the addon's modules: errors with Node-style codes, call arguments
// (numbers, typed arrays), references, callbacks into JavaScript and class definition.
// Everything here runs no JavaScript unless it says so.
#ifndef LISPNODE_NAPI_UTIL_H_
#define LISPNODE_NAPI_UTIL_H_

#include <node_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <initializer_list>

namespace lispnode {

// ---- errors ----

namespace detail {

using ThrowFunction = napi_status (*)(napi_env env, const char* code, const char* message);

template <typename... Args>
napi_value ThrowFormatted(ThrowFunction thrower, napi_env env, const char* code, const char* format, Args... args) {
  char message[256];
  std::snprintf(message, sizeof message, format, args...);
  thrower(env, code, message);
  return nullptr;
}

}  // namespace detail

// Throws a TypeError / RangeError / Error with a printf-style message and returns nullptr, so a
// callback can `return ThrowTypeError(env, ...)`.
template <typename... Args>
napi_value ThrowTypeError(napi_env env, const char* format, Args... args) {
  return detail::ThrowFormatted(napi_throw_type_error, env, "ERR_INVALID_ARG_TYPE", format, args...);
}

template <typename... Args>
napi_value ThrowRangeError(napi_env env, const char* format, Args... args) {
  return detail::ThrowFormatted(napi_throw_range_error, env, "ERR_OUT_OF_RANGE", format, args...);
}

template <typename... Args>
napi_value ThrowError(napi_env env, const char* code, const char* format, Args... args) {
  return detail::ThrowFormatted(napi_throw_error, env, code, format, args...);
}

// A failed napi_* call: rethrows what N-API recorded (or a generic Error when nothing is pending).
napi_value ThrowNapiFailure(napi_env env);

#define LISPNODE_NAPI_CALL(env, call)                                 \
  do {                                                                \
    if ((call) != napi_ok) return ::lispnode::ThrowNapiFailure(env);  \
  } while (0)

// Throws an Error shaped like Node's system errors: `code` (an errno name) and `message`, with
// the properties errno (negative, as Node's), syscall and, when `address` is given, address and
// port. Returns nullptr.
napi_value ThrowSystemErrorObject(napi_env env, const char* code, const char* message, int errno_value, const char* syscall,
                                  const char* address = nullptr, int port = -1);

// ---- call arguments ----

// `this` and the first N arguments of a call (missing ones are undefined); `count` is how many
// the caller passed.
template <size_t N>
struct CallArgs {
  size_t count = N;
  napi_value values[N == 0 ? 1 : N] = {};
  napi_value self = nullptr;

  napi_value operator[](size_t i) const { return values[i]; }
};

// False with an exception pending when N-API fails.
template <size_t N>
bool GetCallArgs(napi_env env, napi_callback_info info, CallArgs<N>* args) {
  args->count = N;
  if (napi_get_cb_info(env, info, &args->count, args->values, &args->self, nullptr) != napi_ok) {
    ThrowNapiFailure(env);
    return false;
  }
  return true;
}

// A constructor's arguments; false with an exception pending, a TypeError "<class_name> must be
// called with new" when it was called without.
template <size_t N>
bool GetConstructorArgs(napi_env env, napi_callback_info info, const char* class_name, CallArgs<N>* args) {
  if (!GetCallArgs(env, info, args)) return false;
  napi_value new_target;
  if (napi_get_new_target(env, info, &new_target) != napi_ok) {
    ThrowNapiFailure(env);
    return false;
  }
  if (new_target == nullptr) {
    ThrowTypeError(env, "%s must be called with new", class_name);
    return false;
  }
  return true;
}

// A number; false with a TypeError "<method>: <name> must be a number" pending otherwise.
bool GetNumber(napi_env env, napi_value value, const char* method, const char* name, double* out);

// Whether `number` is an integer in [min, max] (NaN is not).
inline bool IsIntegerIn(double number, double min, double max) {
  return number >= min && number <= max && std::floor(number) == number;
}

// An integer number in [min, max]; false with a TypeError or a RangeError "<method>: <name> must
// be an integer in [<min>, <max>], got <number>" pending otherwise.
bool GetInteger(napi_env env, napi_value value, const char* method, const char* name, double min, double max, double* out);
bool GetUint32(napi_env env, napi_value value, const char* method, const char* name, uint32_t min, uint32_t max,
               uint32_t* out);

// ---- typed arrays ----

// The bytes of `value` when it is a typed array of `type` (a Buffer is a Uint8Array); false
// otherwise. `length` counts elements.
inline bool GetTypedArray(napi_env env, napi_value value, napi_typedarray_type type, void** data, size_t* length) {
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || !is_typed_array) return false;
  napi_typedarray_type actual;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &actual, length, data, &buffer, &offset) != napi_ok) return false;
  return actual == type;
}

// The typed array of each element type, and its name as error messages spell it.
struct TypedArrayKind {
  napi_typedarray_type type;
  const char* name;
};
template <typename Element>
inline constexpr TypedArrayKind kTypedArrayKind = {napi_int8_array, nullptr};  // none: see GetElements
template <>
inline constexpr TypedArrayKind kTypedArrayKind<uint8_t> = {napi_uint8_array, "a Uint8Array"};
template <>
inline constexpr TypedArrayKind kTypedArrayKind<uint16_t> = {napi_uint16_array, "a Uint16Array"};
template <>
inline constexpr TypedArrayKind kTypedArrayKind<uint32_t> = {napi_uint32_array, "a Uint32Array"};
template <>
inline constexpr TypedArrayKind kTypedArrayKind<int32_t> = {napi_int32_array, "an Int32Array"};

// The elements of `value` when it is a typed array of Element; false otherwise.
template <typename Element>
bool GetElements(napi_env env, napi_value value, Element** data, size_t* length) {
  static_assert(kTypedArrayKind<Element>.name != nullptr, "no typed array has this element type");
  void* raw = nullptr;
  if (!GetTypedArray(env, value, kTypedArrayKind<Element>.type, &raw, length)) return false;
  *data = static_cast<Element*>(raw);
  return true;
}

inline bool GetBytes(napi_env env, napi_value value, uint8_t** data, size_t* length) {
  return GetElements(env, value, data, length);
}

// Argument `name` of `method` (or of a constructor: then `method` is the class): false with a
// TypeError "<method>: <name> must be a Uint32Array" (and so on) pending unless it is a typed
// array of Element. CheckArray only checks, before element getters may run; the pointer is
// taken afterwards.
template <typename Element>
bool GetArray(napi_env env, napi_value value, const char* method, const char* name, Element** data, size_t* length) {
  if (GetElements(env, value, data, length)) return true;
  ThrowTypeError(env, "%s: %s must be %s", method, name, kTypedArrayKind<Element>.name);
  return false;
}

template <typename Element>
bool CheckArray(napi_env env, napi_value value, const char* method, const char* name) {
  Element* data;
  size_t length;
  return GetArray(env, value, method, name, &data, &length);
}

// GetArray, and a RangeError "<method>: count (<count>) exceeds <name>.length (<length>)" unless
// it has `count` elements.
template <typename Element>
bool GetArray(napi_env env, napi_value value, const char* method, const char* name, uint32_t count, Element** data) {
  size_t length;
  if (!GetArray(env, value, method, name, data, &length)) return false;
  if (count > length) {
    ThrowRangeError(env, "%s: count (%u) exceeds %s.length (%zu)", method, count, name, length);
    return false;
  }
  return true;
}

// ---- objects, references, callbacks ----

// A method's number result; nullptr with an exception pending when N-API fails.
napi_value CreateUint32(napi_env env, uint32_t value);

bool SetNumber(napi_env env, napi_value object, const char* name, double number);

// Deletes *ref (when set) and clears it.
void DeleteRef(napi_env env, napi_ref* ref);

// *ref becomes a strong reference to `value`, replacing the one it held. False with an exception
// pending.
bool ReplaceRef(napi_env env, napi_value value, napi_ref* ref);

// Calls the function behind `callback` (when it is still set) with no arguments, through
// napi_make_callback: it runs the microtask queue afterwards and keeps async_hooks' context. An
// exception thrown by the function has no JavaScript caller to return to: it becomes the
// process's 'uncaughtException', as an EventEmitter listener's would. Runs JavaScript.
void MakeCallback(napi_env env, napi_async_context context, napi_value receiver, napi_ref callback);

// A method of a class: its name and callback.
struct Method {
  const char* name;
  napi_callback callback;
};

// Defines exports[name], a class with `constructor` and `methods`. Returns exports, or nullptr with
// an exception pending.
napi_value DefineClass(napi_env env, napi_value exports, const char* name, napi_callback constructor,
                       std::initializer_list<Method> methods);

}  // namespace lispnode

#endif  // LISPNODE_NAPI_UTIL_H_
