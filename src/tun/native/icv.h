// The RFC 8061 / lispers.net ICV: the first 20 bytes of HMAC-SHA-256 under a 20-byte key.
#ifndef LISPNODE_ICV_H_
#define LISPNODE_ICV_H_

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

namespace lispnode {

constexpr size_t kIcvLength = 20;
constexpr size_t kIcvKeyLength = 20;

class Icv {
 public:
  Icv() = default;
  Icv(const Icv&) = delete;
  Icv& operator=(const Icv&) = delete;
  ~Icv();

  bool Init(const uint8_t key[kIcvKeyLength]);
  // Writes the 20-byte ICV of data[0, length) to out.
  bool Compute(const uint8_t* data, size_t length, uint8_t out[kIcvLength]);

 private:
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ctx_ = nullptr;  // keyed once, re-initialised per packet
};

}  // namespace lispnode

#endif  // LISPNODE_ICV_H_
