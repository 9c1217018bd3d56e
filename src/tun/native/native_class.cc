// See native_class.h.
#include "native_class.h"

namespace lispnode {

bool PacketArray::Collect(napi_env env, napi_value array, const char* method, uint32_t* count, bool all) {
  BusyGuard busy(&busy_);
  bool is_array = false;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array) {
    ThrowTypeError(env, "%s: %s must be an array of Uint8Array", method, name_);
    return false;
  }
  uint32_t length = 0;
  napi_get_array_length(env, array, &length);
  if (all) {
    *count = length;
  } else if (*count > length) {
    ThrowRangeError(env, "%s: count (%u) exceeds %s.length (%u)", method, *count, name_, length);
    return false;
  }
  values_.resize(*count);
  for (uint32_t i = 0; i < *count; i++) {
    if (napi_get_element(env, array, i, &values_[i]) != napi_ok) {
      ThrowNapiFailure(env);
      return false;
    }
  }
  return true;
}

bool PacketArray::Bytes(napi_env env, uint32_t i, const char* method, uint8_t** data, size_t* length) const {
  if (GetBytes(env, values_[i], data, length)) return true;
  ThrowTypeError(env, "%s: %s[%u] must be a Uint8Array", method, name_, i);
  return false;
}

}  // namespace lispnode
