/* Bytes copied between views with memcpy (copy-bytes.c), registered by syscalls.c's module init. */
#ifndef COFFER_COPY_BYTES_H
#define COFFER_COPY_BYTES_H
#include <node_api.h>
napi_value copy_bytes(napi_env env, napi_callback_info info);
#endif
