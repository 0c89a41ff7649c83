/* Path and name arguments of the addon's functions: a string, or a Buffer for a path whose bytes are not UTF-8. */
#include <stdbool.h>
#include <string.h>
#include <node_api.h>
#include "string-argument.h"

/* Reads `value` as a UTF-8 string, or as the bytes of a Buffer (a path whose names are not
 * UTF-8: Linux names are bytes), into `out` (size `size`, NUL-terminated); 0 on error. */
int read_string(napi_env env, napi_value value, char *out, size_t size, const char *what) {
  size_t length = 0;
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) == napi_ok && is_buffer) {
    void *bytes = NULL;
    if (napi_get_buffer_info(env, value, &bytes, &length) != napi_ok) {
      napi_throw_type_error(env, "EINVAL", what);
      return 0;
    }
    if (length + 1 > size) {
      napi_throw_error(env, "ENAMETOOLONG", what);
      return 0;
    }
    if (length > 0) memcpy(out, bytes, length);
    out[length] = '\0';
    if (strlen(out) != length) { /* an embedded NUL would silently cut the path */
      napi_throw_type_error(env, "EINVAL", what);
      return 0;
    }
    return 1;
  }
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", what);
    return 0;
  }
  if (length + 1 > size) {
    napi_throw_error(env, "ENAMETOOLONG", what);
    return 0;
  }
  napi_get_value_string_utf8(env, value, out, size, &length);
  if (strlen(out) != length) { /* an embedded NUL would silently cut the path */
    napi_throw_type_error(env, "EINVAL", what);
    return 0;
  }
  return 1;
}

