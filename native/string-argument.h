/* A path or name argument read as a C string: a JavaScript string (UTF-8) or a Buffer's bytes (string-argument.c). */
#ifndef COFFER_STRING_ARGUMENT_H
#define COFFER_STRING_ARGUMENT_H
#include <stddef.h>
#include <node_api.h>
/* Copies `value` into `out` (`size` bytes with the final NUL); throws a JavaScript error with
 * `what` and returns 0 when it is neither a string nor a Buffer, too long, or holds a NUL. */
int read_string(napi_env env, napi_value value, char *out, size_t size, const char *what);
#endif
