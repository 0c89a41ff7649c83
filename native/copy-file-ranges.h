/* Byte ranges of files copied into one output on a pool thread (copy-file-ranges.c), registered by syscalls.c's module init. */
#ifndef COFFER_COPY_FILE_RANGES_H
#define COFFER_COPY_FILE_RANGES_H
#include <node_api.h>
napi_value copy_file_ranges(napi_env env, napi_callback_info info);
#endif
