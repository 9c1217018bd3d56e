#include "aead_suite.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <cstring>

namespace lispnode {

namespace {

// OpenSSL's error queue is per thread and shared with node:crypto; leave it as we found it.
template <typename T>
T Failed(T value) {
  ERR_clear_error();
  return value;
}

}  // namespace

AeadSuite::~AeadSuite() {
  EVP_CIPHER_CTX_free(encrypt_);  // frees (and cleanses) the key schedules
  EVP_CIPHER_CTX_free(decrypt_);
}

bool AeadSuite::Init(SuiteId suite, const uint8_t encrypt_key[kEncryptKeyLength], const uint8_t icv_key[kIcvKeyLength]) {
  suite_ = suite;
  const EVP_CIPHER* cipher = suite == kSuiteAes128Gcm ? EVP_aes_128_gcm() : EVP_aes_128_cbc();
  encrypt_ = EVP_CIPHER_CTX_new();
  decrypt_ = EVP_CIPHER_CTX_new();
  if (encrypt_ == nullptr || decrypt_ == nullptr) return Failed(false);
  // The GCM default IV length is the 12 bytes suite 5 uses.
  if (EVP_EncryptInit_ex(encrypt_, cipher, nullptr, encrypt_key, nullptr) != 1 ||
      EVP_DecryptInit_ex(decrypt_, cipher, nullptr, encrypt_key, nullptr) != 1) {
    return Failed(false);
  }
  if (suite == kSuiteAes128Cbc &&
      (EVP_CIPHER_CTX_set_padding(encrypt_, 0) != 1 || EVP_CIPHER_CTX_set_padding(decrypt_, 0) != 1)) {
    return Failed(false);
  }
  if (!icv_.Init(icv_key)) return Failed(false);
  return true;
}

size_t AeadSuite::SealedLength(size_t length) const {
  size_t plaintext = length - PrefixLength();
  if (suite_ == kSuiteAes128Gcm) return length + kGcmTagLength + kIcvLength;
  size_t pad = (kCbcBlockLength - plaintext % kCbcBlockLength) % kCbcBlockLength;
  return length + pad + kIcvLength;
}

bool AeadSuite::Seal(uint8_t* packet, size_t length, size_t* sealed_length) {
  size_t plaintext_length = length - PrefixLength();
  return suite_ == kSuiteAes128Gcm ? SealGcm(packet, plaintext_length, sealed_length)
                                   : SealCbc(packet, plaintext_length, sealed_length);
}

bool AeadSuite::SealGcm(uint8_t* packet, size_t plaintext_length, size_t* sealed_length) {
  uint8_t* iv = packet + kLispHeaderLength;
  uint8_t* text = iv + 12;
  int n = 0;
  int tail = 0;
  if (EVP_EncryptInit_ex(encrypt_, nullptr, nullptr, nullptr, iv) != 1) return Failed(false);
  if (plaintext_length > 0 && EVP_EncryptUpdate(encrypt_, text, &n, text, static_cast<int>(plaintext_length)) != 1) {
    return Failed(false);
  }
  if (EVP_EncryptFinal_ex(encrypt_, text + n, &tail) != 1) return Failed(false);
  if (static_cast<size_t>(n) + static_cast<size_t>(tail) != plaintext_length) return false;
  uint8_t* tag = text + plaintext_length;
  if (EVP_CIPHER_CTX_ctrl(encrypt_, EVP_CTRL_AEAD_GET_TAG, kGcmTagLength, tag) != 1) return Failed(false);
  size_t covered = static_cast<size_t>(tag + kGcmTagLength - packet);
  if (!icv_.Compute(packet, covered, packet + covered)) return Failed(false);
  *sealed_length = covered + kIcvLength;
  return true;
}

bool AeadSuite::SealCbc(uint8_t* packet, size_t plaintext_length, size_t* sealed_length) {
  uint8_t* iv = packet + kLispHeaderLength;
  uint8_t* text = iv + 16;
  size_t pad = (kCbcBlockLength - plaintext_length % kCbcBlockLength) % kCbcBlockLength;
  std::memset(text + plaintext_length, ' ', pad);
  size_t ciphertext_length = plaintext_length + pad;
  int n = 0;
  int tail = 0;
  if (EVP_EncryptInit_ex(encrypt_, nullptr, nullptr, nullptr, iv) != 1) return Failed(false);
  if (ciphertext_length > 0 && EVP_EncryptUpdate(encrypt_, text, &n, text, static_cast<int>(ciphertext_length)) != 1) {
    return Failed(false);
  }
  // Whole blocks and no padding: Final has nothing left to write (it would land in the ICV's room).
  if (EVP_EncryptFinal_ex(encrypt_, text + n, &tail) != 1) return Failed(false);
  if (static_cast<size_t>(n) + static_cast<size_t>(tail) != ciphertext_length) return false;
  size_t covered = static_cast<size_t>(text + ciphertext_length - packet);
  if (!icv_.Compute(packet, covered, packet + covered)) return Failed(false);
  *sealed_length = covered + kIcvLength;
  return true;
}

OpenStatus AeadSuite::Open(uint8_t* packet, size_t length, size_t* opened_length) {
  size_t overhead = PrefixLength() + (suite_ == kSuiteAes128Gcm ? kGcmTagLength : 0) + kIcvLength;
  if (length < overhead) return kOpenTooShort;
  size_t ciphertext_length = length - overhead;
  // A structural check on public bytes: no need to spend an HMAC on it first.
  if (suite_ == kSuiteAes128Cbc && ciphertext_length % kCbcBlockLength != 0) return kOpenBadLength;
  // The ICV is checked before anything is decrypted, in constant time.
  size_t covered = length - kIcvLength;
  uint8_t icv[kIcvLength];
  if (!icv_.Compute(packet, covered, icv)) return Failed(kOpenInternalError);
  if (CRYPTO_memcmp(icv, packet + covered, kIcvLength) != 0) return kOpenIcvMismatch;
  OpenStatus status = suite_ == kSuiteAes128Gcm ? OpenGcm(packet, ciphertext_length) : OpenCbc(packet, ciphertext_length);
  if (status == kOpenOk) *opened_length = PrefixLength() + ciphertext_length;
  return status;
}

OpenStatus AeadSuite::OpenGcm(uint8_t* packet, size_t ciphertext_length) {
  uint8_t* iv = packet + kLispHeaderLength;
  uint8_t* text = iv + 12;
  uint8_t* tag = text + ciphertext_length;
  int n = 0;
  int tail = 0;
  if (EVP_DecryptInit_ex(decrypt_, nullptr, nullptr, nullptr, iv) != 1 ||
      EVP_CIPHER_CTX_ctrl(decrypt_, EVP_CTRL_AEAD_SET_TAG, kGcmTagLength, tag) != 1) {
    return Failed(kOpenInternalError);
  }
  if (ciphertext_length > 0 && EVP_DecryptUpdate(decrypt_, text, &n, text, static_cast<int>(ciphertext_length)) != 1) {
    return Failed(kOpenInternalError);
  }
  if (EVP_DecryptFinal_ex(decrypt_, text + n, &tail) != 1) {
    // Decryption ran in place before the tag could be checked: leave no unauthenticated plaintext.
    OPENSSL_cleanse(text, ciphertext_length);
    return Failed(kOpenTagMismatch);
  }
  return kOpenOk;
}

OpenStatus AeadSuite::OpenCbc(uint8_t* packet, size_t ciphertext_length) {
  uint8_t* iv = packet + kLispHeaderLength;
  uint8_t* text = iv + 16;
  int n = 0;
  int tail = 0;
  if (EVP_DecryptInit_ex(decrypt_, nullptr, nullptr, nullptr, iv) != 1) return Failed(kOpenInternalError);
  if (ciphertext_length > 0 && EVP_DecryptUpdate(decrypt_, text, &n, text, static_cast<int>(ciphertext_length)) != 1) {
    return Failed(kOpenInternalError);
  }
  if (EVP_DecryptFinal_ex(decrypt_, text + n, &tail) != 1) return Failed(kOpenInternalError);
  return kOpenOk;
}

}  // namespace lispnode
