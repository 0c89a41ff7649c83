/*
 * coffer_native: the system calls Node.js does not expose: three lseek(2) and syncfs(2).
 *
 *   seekData(fd, offset) -> next offset >= `offset` that holds data, or -1 past the last data
 *   seekHole(fd, offset) -> next offset >= `offset` that starts a hole (the end of file counts)
 *   seekEnd(fd)          -> size of the file or block device (stat reports 0 for devices)
 *   syncfs(fd)           -> flushes the whole filesystem holding fd (one call instead of an
 *                           fsync per file; see src/repo/backend/local-backend.ts)
 *
 * They let raw images be read by their allocation map, so holes are never read. Errors other
 * than ENXIO (no data past `offset`) are thrown as JS errors carrying the errno name in `code`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, int err, const char *call) {
  const char *name = "EIO";
  switch (err) {
    case EBADF: name = "EBADF"; break;
    case EINVAL: name = "EINVAL"; break;
    case ESPIPE: name = "ESPIPE"; break;
    case EOVERFLOW: name = "EOVERFLOW"; break;
    case ENXIO: name = "ENXIO"; break;
    case ENOSPC: name = "ENOSPC"; break;
    case EDQUOT: name = "EDQUOT"; break;
    default: break;
  }
  char message[128];
  snprintf(message, sizeof message, "%s failed: %s", call, strerror(err));
  napi_throw_error(env, name, message);
  return NULL;
}

static int read_args(napi_env env, napi_callback_info info, size_t want, int *fd, int64_t *offset) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "EINVAL", "missing arguments");
    return 0;
  }
  if (napi_get_value_int32(env, argv[0], fd) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "fd must be a number");
    return 0;
  }
  if (want > 1 && napi_get_value_int64(env, argv[1], offset) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "offset must be a number");
    return 0;
  }
  return 1;
}

static napi_value seek(napi_env env, napi_callback_info info, int whence, const char *call) {
  int fd = -1;
  int64_t offset = 0;
  if (!read_args(env, info, whence == SEEK_END ? 1 : 2, &fd, &offset)) return NULL;
  off_t result = lseek(fd, whence == SEEK_END ? 0 : (off_t)offset, whence);
  napi_value out;
  if (result < 0) {
    if (errno == ENXIO && whence != SEEK_END) {
      napi_create_int64(env, -1, &out);
      return out;
    }
    return throw_errno(env, errno, call);
  }
  napi_create_int64(env, (int64_t)result, &out);
  return out;
}

static napi_value seek_data(napi_env env, napi_callback_info info) { return seek(env, info, SEEK_DATA, "lseek(SEEK_DATA)"); }
static napi_value seek_hole(napi_env env, napi_callback_info info) { return seek(env, info, SEEK_HOLE, "lseek(SEEK_HOLE)"); }
static napi_value seek_end(napi_env env, napi_callback_info info) { return seek(env, info, SEEK_END, "lseek(SEEK_END)"); }

static napi_value sync_fs(napi_env env, napi_callback_info info) {
  int fd = -1;
  int64_t unused = 0;
  if (!read_args(env, info, 1, &fd, &unused)) return NULL;
  if (syncfs(fd) != 0) return throw_errno(env, errno, "syncfs");
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL},
    {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL},
    {"seekEnd", NULL, seek_end, NULL, NULL, NULL, napi_default, NULL},
    {"syncfs", NULL, sync_fs, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
