/*
 * AES-256-GCM into memory the caller owns, with the OpenSSL inside Node.js (the EVP_*
 * symbols the node binary exports to addons): Node's Cipher and Decipher allocate a zeroed
 * output buffer for every call, then copy it to one of the exact size, and fresh memory
 * costs a page fault a 4 KiB page (~1.5 us here, 14 times the writing itself). Opening a
 * stored frame (up to 2 MiB) into a buffer the codec reuses, or sealing it where it is
 * stored from, avoids all three.
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

/* The six Uint8Array arguments' memory and lengths; a TypeError saying `usage` (and 0) otherwise. */
static int six_byte_arrays(napi_env env, napi_callback_info info, const char *usage, uint8_t *data[6], size_t length[6]) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) goto wrong;
  for (int i = 0; i < 6; i++) {
    napi_typedarray_type type;
    napi_value buffer;
    size_t offset;
    void *raw;
    if (napi_get_typedarray_info(env, argv[i], &type, &length[i], &raw, &buffer, &offset) != napi_ok || type != napi_uint8_array) goto wrong;
    data[i] = raw;
  }
  return 1;
wrong:
  napi_throw_type_error(env, NULL, usage);
  return 0;
}

/*
 * One AES-256-GCM pass of `in` into `out` (encrypt 1: the tag is written to `tag`; 0: `tag`
 * is checked). 1 when it went through (decrypting: when the tag authenticates), else 0.
 */
static int run_gcm(int encrypt, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_length, const uint8_t *in, size_t in_length, uint8_t *out, uint8_t *tag) {
  int length = 0;
  int ok = 0;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (ctx != NULL && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 && EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, encrypt) == 1 &&
      (aad_length == 0 || EVP_CipherUpdate(ctx, NULL, &length, aad, (int)aad_length) == 1) &&
      (in_length == 0 || EVP_CipherUpdate(ctx, out, &length, in, (int)in_length) == 1) &&
      (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1)) {
    ok = EVP_CipherFinal_ex(ctx, out + length, &length) == 1 && (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
  }
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

/* Whether `out` overlaps `in` (both `length` long) without starting at the same byte: in place
 * works only from the same first byte, a shifted overlap would overwrite input not yet read. */
static int overlap_shifted(const uint8_t *in, const uint8_t *out, size_t length) {
  return out != in && out < in + length && in < out + length;
}

napi_value aes_gcm_open_into(napi_env env, napi_callback_info info) {
  uint8_t *arg[6];
  size_t size[6];
  if (!six_byte_arrays(env, info, "aesGcmOpenInto(key, nonce, aad, ciphertext, tag, out) takes six Uint8Arrays", arg, size)) return NULL;
  uint8_t *key = arg[0], *nonce = arg[1], *aad = arg[2], *ciphertext = arg[3], *tag = arg[4], *out = arg[5];
  size_t aad_length = size[2], ciphertext_length = size[3];
  if (size[0] != 32 || size[1] != 12 || size[4] != 16 || size[5] < ciphertext_length || ciphertext_length > INT_MAX || aad_length > INT_MAX) {
    napi_throw_type_error(env, NULL, "aesGcmOpenInto: a 32-byte key, a 12-byte nonce, a 16-byte tag and room for the plaintext");
    return NULL;
  }
  if (overlap_shifted(ciphertext, out, ciphertext_length)) {
    napi_throw_type_error(env, NULL, "aesGcmOpenInto: `out` overlaps `ciphertext` without starting at the same byte");
    return NULL;
  }
  int authentic = run_gcm(0, key, nonce, aad, aad_length, ciphertext, ciphertext_length, out, tag);
  napi_value result;
  napi_get_boolean(env, authentic, &result);
  return result;
}

napi_value aes_gcm_seal_into(napi_env env, napi_callback_info info) {
  uint8_t *arg[6];
  size_t size[6];
  if (!six_byte_arrays(env, info, "aesGcmSealInto(key, nonce, aad, plaintext, out, tag) takes six Uint8Arrays", arg, size)) return NULL;
  uint8_t *key = arg[0], *nonce = arg[1], *aad = arg[2], *plaintext = arg[3], *out = arg[4], *tag = arg[5];
  size_t aad_length = size[2], plaintext_length = size[3];
  if (size[0] != 32 || size[1] != 12 || size[5] != 16 || size[4] < plaintext_length || plaintext_length > INT_MAX || aad_length > INT_MAX) {
    napi_throw_type_error(env, NULL, "aesGcmSealInto: a 32-byte key, a 12-byte nonce, a 16-byte tag and room for the ciphertext");
    return NULL;
  }
  if (overlap_shifted(plaintext, out, plaintext_length)) {
    napi_throw_type_error(env, NULL, "aesGcmSealInto: `out` overlaps `plaintext` without starting at the same byte");
    return NULL;
  }
  int sealed = run_gcm(1, key, nonce, aad, aad_length, plaintext, plaintext_length, out, tag);
  if (!sealed) {
    napi_throw_error(env, "E_CRYPTO", "aesGcmSealInto: OpenSSL failed to encrypt");
    return NULL;
  }
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}
