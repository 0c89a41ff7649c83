/* One directory listed and every entry lstat'ed on a pool thread (scan-directory.c), registered by syscalls.c's module init. */
#ifndef COFFER_SCAN_DIRECTORY_H
#define COFFER_SCAN_DIRECTORY_H
#include <node_api.h>
napi_value scan_directory(napi_env env, napi_callback_info info);
#endif
