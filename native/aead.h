/* AES-256-GCM into caller memory (aead.c), registered by syscalls.c's module init. */
#ifndef COFFER_AEAD_H
#define COFFER_AEAD_H
#include <node_api.h>
napi_value aes_gcm_open_into(napi_env env, napi_callback_info info);
napi_value aes_gcm_seal_into(napi_env env, napi_callback_info info);
#endif
