// The UdpSocket class of the addon: a batched UDP socket for the LISP data plane (recvmmsg and
// sendmmsg into caller-owned buffers with headroom, readiness through libuv). See udp.cc.
#ifndef LISPNODE_UDP_H_
#define LISPNODE_UDP_H_

#include <node_api.h>

namespace lispnode {

// Defines exports.UdpSocket; returns nullptr with an exception pending on failure.
napi_value RegisterUdp(napi_env env, napi_value exports);

}  // namespace lispnode

#endif  // LISPNODE_UDP_H_
