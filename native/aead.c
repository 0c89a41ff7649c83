/*
 * AES-256-GCM opened into memory the caller owns, with the OpenSSL inside Node.js (the
 * EVP_* symbols the node binary exports to addons): Node's Decipher allocates a zeroed
 * output buffer for every call, then copies it to one of the exact size, and fresh memory
 * costs a page fault a 4 KiB page (~1.5 us here, 14 times the writing itself). Decrypting
 * a stored frame (up to 2 MiB) into a buffer the codec reuses avoids all three.
 *
 *   aesGcmOpenInto(key, nonce, aad, ciphertext, tag, out) -> true when the tag authenticates
 *     key 32 bytes, nonce 12, tag 16; `out` at least as long as `ciphertext` (the plaintext
 *     is written to its start; on false its bytes are unspecified and must not be used).
 *   aesGcmSealInto(key, nonce, aad, plaintext, out, tag) -> undefined
 *     the ciphertext written to the start of `out` (at least as long as `plaintext`; it may
 *     be the very memory `plaintext` is in, starting at the same byte), the tag into `tag`.
 *     Sealing a frame this way writes it once, where it is stored from (codec.ts sealInto).
 *
 * Every argument is a Uint8Array (a Buffer, or a view of a SharedArrayBuffer). A wrong size
 * throws a TypeError; nothing else is checked here (the envelope is parsed by codec.ts).
 */
#include <limits.h>
#include <openssl/evp.h>
#include <node_api.h>
#include "aead.h"

static int bytes_of(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  void *raw;
  if (napi_get_typedarray_info(env, value, &type, length, &raw, &buffer, &offset) != napi_ok || type != napi_uint8_array) return 0;
  *data = raw;
  return 1;
}

napi_value aes_gcm_open_into(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  uint8_t *key, *nonce, *aad, *ciphertext, *tag, *out;
  size_t key_length, nonce_length, aad_length, ciphertext_length, tag_length, out_length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      !bytes_of(env, argv[0], &key, &key_length) || !bytes_of(env, argv[1], &nonce, &nonce_length) ||
      !bytes_of(env, argv[2], &aad, &aad_length) || !bytes_of(env, argv[3], &ciphertext, &ciphertext_length) ||
      !bytes_of(env, argv[4], &tag, &tag_length) || !bytes_of(env, argv[5], &out, &out_length)) {
    napi_throw_type_error(env, NULL, "aesGcmOpenInto(key, nonce, aad, ciphertext, tag, out) takes six Uint8Arrays");
    return NULL;
  }
  if (key_length != 32 || nonce_length != 12 || tag_length != 16 || out_length < ciphertext_length || ciphertext_length > INT_MAX || aad_length > INT_MAX) {
    napi_throw_type_error(env, NULL, "aesGcmOpenInto: a 32-byte key, a 12-byte nonce, a 16-byte tag and room for the plaintext");
    return NULL;
  }
  int authentic = 0;
  int length = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 && EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
      (aad_length == 0 || EVP_DecryptUpdate(ctx, NULL, &length, aad, (int)aad_length) == 1) &&
      (ciphertext_length == 0 || EVP_DecryptUpdate(ctx, out, &length, ciphertext, (int)ciphertext_length) == 1) &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1) {
    authentic = EVP_DecryptFinal_ex(ctx, out + length, &length) == 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  napi_value result;
  napi_get_boolean(env, authentic, &result);
  return result;
}

napi_value aes_gcm_seal_into(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  uint8_t *key, *nonce, *aad, *plaintext, *out, *tag;
  size_t key_length, nonce_length, aad_length, plaintext_length, out_length, tag_length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      !bytes_of(env, argv[0], &key, &key_length) || !bytes_of(env, argv[1], &nonce, &nonce_length) ||
      !bytes_of(env, argv[2], &aad, &aad_length) || !bytes_of(env, argv[3], &plaintext, &plaintext_length) ||
      !bytes_of(env, argv[4], &out, &out_length) || !bytes_of(env, argv[5], &tag, &tag_length)) {
    napi_throw_type_error(env, NULL, "aesGcmSealInto(key, nonce, aad, plaintext, out, tag) takes six Uint8Arrays");
    return NULL;
  }
  if (key_length != 32 || nonce_length != 12 || tag_length != 16 || out_length < plaintext_length || plaintext_length > INT_MAX || aad_length > INT_MAX) {
    napi_throw_type_error(env, NULL, "aesGcmSealInto: a 32-byte key, a 12-byte nonce, a 16-byte tag and room for the ciphertext");
    return NULL;
  }
  /* In place only from the same first byte: a shifted overlap would overwrite input not yet read. */
  if (out != plaintext && out < plaintext + plaintext_length && plaintext < out + plaintext_length) {
    napi_throw_type_error(env, NULL, "aesGcmSealInto: `out` overlaps `plaintext` without starting at the same byte");
    return NULL;
  }
  int length = 0;
  int sealed = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 && EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) == 1 &&
      (aad_length == 0 || EVP_EncryptUpdate(ctx, NULL, &length, aad, (int)aad_length) == 1) &&
      (plaintext_length == 0 || EVP_EncryptUpdate(ctx, out, &length, plaintext, (int)plaintext_length) == 1) &&
      EVP_EncryptFinal_ex(ctx, out + length, &length) == 1 && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1) {
    sealed = 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  if (!sealed) {
    napi_throw_error(env, "E_CRYPTO", "aesGcmSealInto: OpenSSL failed to encrypt");
    return NULL;
  }
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}
