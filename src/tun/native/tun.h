// The TunDevice class of the addon: a Linux TUN interface (IFF_TUN | IFF_NO_PI) with batched
// read/write into caller-owned buffers and libuv readability polling.
#ifndef LISPNODE_TUN_H_
#define LISPNODE_TUN_H_

#include <node_api.h>

namespace lispnode {

// Defines exports.TunDevice; returns nullptr with an exception pending on failure.
napi_value RegisterTun(napi_env env, napi_value exports);

}  // namespace lispnode

#endif  // LISPNODE_TUN_H_
