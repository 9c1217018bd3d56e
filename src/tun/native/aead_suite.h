// One RFC 8061 cipher suite with its keys, as lispers.net and EVE frame it on the wire:
//   LISP header (8) | IV | ciphertext [| GCM tag (16)] | ICV (20)
// where ICV = HMAC-SHA-256(icv key, everything before it)[0, 20). Suite 2 pads the plaintext
// with ASCII spaces to a whole AES block (no PKCS#7); suite 5 does not pad.
// One OpenSSL cipher context per direction is keyed once and re-used for every packet with the
// packet's IV. No N-API here: bytes in, bytes out.
#ifndef LISPNODE_AEAD_SUITE_H_
#define LISPNODE_AEAD_SUITE_H_

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

#include "icv.h"

namespace lispnode {

constexpr size_t kLispHeaderLength = 8;
constexpr size_t kEncryptKeyLength = 16;
constexpr size_t kGcmTagLength = 16;
constexpr size_t kCbcBlockLength = 16;
// Far beyond any datagram; keeps every length within OpenSSL's int arguments.
constexpr size_t kMaxPacketLength = size_t{1} << 30;

enum SuiteId : int { kSuiteAes128Cbc = 2, kSuiteAes128Gcm = 5 };

// The status byte openBatch reports per packet; the TypeScript face names them in this order.
enum OpenStatus : uint8_t {
  kOpenOk = 0,
  kOpenTooShort = 1,
  kOpenIcvMismatch = 2,
  kOpenTagMismatch = 3,
  kOpenBadLength = 4,
  kOpenInternalError = 255,  // OpenSSL failed for a reason other than the packet; never expected
};

class AeadSuite {
 public:
  AeadSuite() = default;
  AeadSuite(const AeadSuite&) = delete;
  AeadSuite& operator=(const AeadSuite&) = delete;
  ~AeadSuite();

  // False when OpenSSL could not set up the contexts. The suite must be kSuiteAes128Cbc or
  // kSuiteAes128Gcm.
  bool Init(SuiteId suite, const uint8_t encrypt_key[kEncryptKeyLength], const uint8_t icv_key[kIcvKeyLength]);

  size_t IvLength() const { return suite_ == kSuiteAes128Gcm ? 12 : 16; }
  size_t PrefixLength() const { return kLispHeaderLength + IvLength(); }
  // The sealed length of a packet of `length` = header + IV + plaintext bytes (>= PrefixLength()).
  size_t SealedLength(size_t length) const;

  // Seals packet[0, length) in place; packet must hold SealedLength(length) bytes.
  bool Seal(uint8_t* packet, size_t length, size_t* sealed_length);
  // Verifies and decrypts packet[0, length) in place; on kOpenOk, *opened_length is header + IV +
  // plaintext (suite 2: padded plaintext).
  OpenStatus Open(uint8_t* packet, size_t length, size_t* opened_length);

 private:
  bool SealGcm(uint8_t* packet, size_t plaintext_length, size_t* sealed_length);
  bool SealCbc(uint8_t* packet, size_t plaintext_length, size_t* sealed_length);
  OpenStatus OpenGcm(uint8_t* packet, size_t ciphertext_length);
  OpenStatus OpenCbc(uint8_t* packet, size_t ciphertext_length);

  SuiteId suite_ = kSuiteAes128Gcm;
  EVP_CIPHER_CTX* encrypt_ = nullptr;
  EVP_CIPHER_CTX* decrypt_ = nullptr;
  Icv icv_;
};

}  // namespace lispnode

#endif  // LISPNODE_AEAD_SUITE_H_
