// The AeadContext class of the addon: batched seal/open of LISP data packets (aead_suite.h).
#ifndef LISPNODE_AEAD_H_
#define LISPNODE_AEAD_H_

#include <node_api.h>

namespace lispnode {

// Defines exports.AeadContext; returns nullptr with an exception pending on failure.
napi_value RegisterAead(napi_env env, napi_value exports);

}  // namespace lispnode

#endif  // LISPNODE_AEAD_H_
