// See napi_util.h.
#include "napi_util.h"

#include <vector>

namespace lispnode {

napi_value ThrowNapiFailure(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return nullptr;
  const napi_extended_error_info* info = nullptr;
  napi_get_last_error_info(env, &info);
  const char* message = info != nullptr && info->error_message != nullptr ? info->error_message : "N-API call failed";
  napi_throw_error(env, "ERR_NAPI", message);
  return nullptr;
}

namespace {

bool SetString(napi_env env, napi_value object, const char* name, const char* text) {
  napi_value value;
  return napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &value) == napi_ok &&
         napi_set_named_property(env, object, name, value) == napi_ok;
}

bool SetInt32(napi_env env, napi_value object, const char* name, int32_t number) {
  napi_value value;
  return napi_create_int32(env, number, &value) == napi_ok && napi_set_named_property(env, object, name, value) == napi_ok;
}

}  // namespace

napi_value ThrowSystemErrorObject(napi_env env, const char* code, const char* message, int errno_value, const char* syscall,
                                  const char* address, int port) {
  napi_value code_value;
  napi_value message_value;
  napi_value error;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_error(env, code_value, message_value, &error) != napi_ok || !SetInt32(env, error, "errno", errno_value) ||
      !SetString(env, error, "syscall", syscall) ||
      (address != nullptr && (!SetString(env, error, "address", address) || !SetInt32(env, error, "port", port)))) {
    return ThrowNapiFailure(env);
  }
  napi_throw(env, error);
  return nullptr;
}

bool GetNumber(napi_env env, napi_value value, const char* method, const char* name, double* out) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_number) {
    ThrowTypeError(env, "%s: %s must be a number", method, name);
    return false;
  }
  *out = 0;
  napi_get_value_double(env, value, out);
  return true;
}

bool GetInteger(napi_env env, napi_value value, const char* method, const char* name, double min, double max, double* out) {
  double number = 0;
  if (!GetNumber(env, value, method, name, &number)) return false;
  if (!IsIntegerIn(number, min, max)) {
    ThrowRangeError(env, "%s: %s must be an integer in [%.0f, %.0f], got %g", method, name, min, max, number);
    return false;
  }
  *out = number;
  return true;
}

bool GetUint32(napi_env env, napi_value value, const char* method, const char* name, uint32_t min, uint32_t max,
               uint32_t* out) {
  double number = 0;
  if (!GetInteger(env, value, method, name, min, max, &number)) return false;
  *out = static_cast<uint32_t>(number);
  return true;
}

napi_value CreateUint32(napi_env env, uint32_t value) {
  napi_value result;
  LISPNODE_NAPI_CALL(env, napi_create_uint32(env, value, &result));
  return result;
}

bool SetNumber(napi_env env, napi_value object, const char* name, double number) {
  napi_value value;
  return napi_create_double(env, number, &value) == napi_ok && napi_set_named_property(env, object, name, value) == napi_ok;
}

void DeleteRef(napi_env env, napi_ref* ref) {
  if (*ref != nullptr) {
    napi_delete_reference(env, *ref);
    *ref = nullptr;
  }
}

bool ReplaceRef(napi_env env, napi_value value, napi_ref* ref) {
  napi_ref created;
  if (napi_create_reference(env, value, 1, &created) != napi_ok) {
    ThrowNapiFailure(env);
    return false;
  }
  DeleteRef(env, ref);
  *ref = created;
  return true;
}

void MakeCallback(napi_env env, napi_async_context context, napi_value receiver, napi_ref callback) {
  napi_value function;
  if (callback == nullptr || napi_get_reference_value(env, callback, &function) != napi_ok || function == nullptr) return;
  napi_value result;
  if (napi_make_callback(env, context, receiver, function, 0, nullptr, &result) == napi_ok) return;
  bool pending = false;
  napi_value error;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending && napi_get_and_clear_last_exception(env, &error) == napi_ok) {
    napi_fatal_exception(env, error);
  }
}

napi_value DefineClass(napi_env env, napi_value exports, const char* name, napi_callback constructor,
                       std::initializer_list<Method> methods) {
  std::vector<napi_property_descriptor> properties;
  properties.reserve(methods.size());
  for (const Method& method : methods) {
    properties.push_back({method.name, nullptr, method.callback, nullptr, nullptr, nullptr, napi_default_method, nullptr});
  }
  napi_value constructor_value;
  LISPNODE_NAPI_CALL(env, napi_define_class(env, name, NAPI_AUTO_LENGTH, constructor, nullptr, properties.size(),
                                            properties.data(), &constructor_value));
  LISPNODE_NAPI_CALL(env, napi_set_named_property(env, exports, name, constructor_value));
  return exports;
}

}  // namespace lispnode
