# lispnode_native: the project's N-API addon: batched AEAD, the TUN device, the batched UDP socket.
# node-gyp supplies Node's headers, OpenSSL's among them. The addon links no libcrypto: it
# resolves EVP_*, HMAC and CRYPTO_memcmp from the node process, which exports them.
{
  "targets": [
    {
      "target_name": "lispnode_native",
      "sources": [
        "src/tun/native/addon.cc",
        "src/tun/native/napi_util.cc",
        "src/tun/native/native_class.cc",
        "src/tun/native/fd_poll.cc",
        "src/tun/native/tun.cc",
        "src/tun/native/aead.cc",
        "src/tun/native/aead_suite.cc",
        "src/tun/native/icv.cc",
        "src/tun/native/udp.cc"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-fvisibility=hidden", "-Wall", "-Wextra"],
      "cflags_cc": ["-std=c++17"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2"]
        }
      }
    }
  ]
}
