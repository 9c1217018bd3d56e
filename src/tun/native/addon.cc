// lispnode_native: the project's N-API addon. Each module registers its exports here.
// OpenSSL comes from the node process itself (it exports its EVP_*/HMAC symbols); the addon does
// not link a libcrypto of its own.
#include <node_api.h>

#include "aead.h"
#include "tun.h"
#include "udp.h"

NAPI_MODULE_INIT() {
  if (lispnode::RegisterAead(env, exports) == nullptr) return nullptr;
  if (lispnode::RegisterTun(env, exports) == nullptr) return nullptr;
  if (lispnode::RegisterUdp(env, exports) == nullptr) return nullptr;
  return exports;
}
