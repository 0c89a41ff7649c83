/*
 * coffer_native: the system calls Node.js does not expose: three lseek(2) and syncfs(2)
 * (and, from aead.c, AES-256-GCM decryption into the caller's memory: see there).
 *
 *   seekData(fd, offset) -> next offset >= `offset` that holds data, or -1 past the last data
 *   seekHole(fd, offset) -> next offset >= `offset` that starts a hole (the end of file counts)
 *   seekEnd(fd)          -> size of the file or block device (stat reports 0 for devices)
 *   syncfs(fd)           -> flushes the whole filesystem holding fd (one call instead of an
 *                           fsync per file; see src/repo/backend/local-backend.ts)
 *
 * and, for file-level backup and restore (never following a final symlink; a path is a string,
 * or a Buffer of its bytes when they are not UTF-8: string-argument.c):
 *
 *   listXattrs(path)               -> names of the extended attributes, as Buffers of their bytes (llistxattr(2))
 *   getXattr(path, name)           -> value as a Buffer, or null when absent (lgetxattr(2))
 *   setXattr(path, name, buffer)   -> lsetxattr(2)
 *   mknod(path, mode, major, minor)-> mknod(2): FIFOs, character and block devices
 *   setTimes(path, atimeNs, mtimeNs) -> utimensat(2) with AT_SYMLINK_NOFOLLOW, times as BigInt
 *                                     nanoseconds since 1970 (Node's lutimes rounds to µs)
 *
 * and, from scan-directory.c, a directory listed with every entry lstat'ed on a pool thread
 * (scanDirectory, for the file backup's walk: see there),
 *
 * and, from copy-bytes.c, copyBytes(target, offset, source): memcpy where V8 copies shared
 * memory a word at a time (see there),
 *
 * and, from huge-pages.c, adviseHugePages(view): a large buffer's memory backed by transparent
 * huge pages once written (see there),
 *
 * and, from copy-file-ranges.c, copyFileRanges(ranges, outFd, directFd, skipZeros): byte ranges
 * of files copied into one output on a pool thread, zeros left as holes (see there),
 *
 * and, for writes that bypass the page cache (O_DIRECT; src/disk/raw-target.ts):
 *
 *   alignmentGap(view, alignment) -> bytes from the view's start to the next aligned address
 *
 * Paths are UTF-8 strings of at most PATH_MAX bytes; names at most XATTR_NAME_MAX bytes and
 * values at most XATTR_SIZE_MAX (64 KiB), as Linux allows.
 *
 * They let raw images be read by their allocation map, so holes are never read. Errors other
 * than ENXIO (no data past `offset`) are thrown as JS errors carrying the errno name in `code`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <linux/limits.h>
#include <unistd.h>
#include <node_api.h>
#include "aead.h"
#include "errno-name.h"
#include "copy-bytes.h"
#include "copy-file-ranges.h"
#include "huge-pages.h"
#include "scan-directory.h"
#include "string-argument.h"

static napi_value throw_errno(napi_env env, int err, const char *call) {
  const char *name = errno_name(err);
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

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "EINVAL", "missing arguments");
    return 0;
  }
  return 1;
}

static napi_value list_xattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_MAX];
  if (!get_args(env, info, 1, argv) || !read_string(env, argv[0], path, sizeof path, "path must be a string")) return NULL;
  char *list = malloc(XATTR_LIST_MAX);
  if (list == NULL) return throw_errno(env, ENOMEM, "llistxattr");
  ssize_t size = llistxattr(path, list, XATTR_LIST_MAX);
  if (size < 0) {
    int err = errno;
    if (err != ENOTSUP) {
      free(list);
      return throw_errno(env, err, "llistxattr");
    }
    size = 0; /* the filesystem has none */
  }
  napi_value out;
  napi_create_array(env, &out);
  uint32_t count = 0;
  for (ssize_t start = 0; start < size;) {
    size_t length = strnlen(list + start, (size_t)(size - start));
    if (length > 0) {
      /* The bytes, not a string: a name need not be UTF-8, and a decoded one with U+FFFD in it
       * would not find its attribute again. */
      napi_value name;
      if (napi_create_buffer_copy(env, length, list + start, NULL, &name) != napi_ok) {
        free(list);
        return NULL;
      }
      napi_set_element(env, out, count++, name);
    }
    start += (ssize_t)length + 1;
  }
  free(list); /* every path: a file without attributes (size 0) once kept its 64 KiB */
  return out;
}

static napi_value get_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_MAX];
  char name[XATTR_NAME_MAX + 1];
  if (!get_args(env, info, 2, argv) || !read_string(env, argv[0], path, sizeof path, "path must be a string") ||
      !read_string(env, argv[1], name, sizeof name, "attribute name must be a string of at most 255 bytes")) return NULL;
  char *value = malloc(XATTR_SIZE_MAX);
  if (value == NULL) return throw_errno(env, ENOMEM, "lgetxattr");
  ssize_t size = lgetxattr(path, name, value, XATTR_SIZE_MAX);
  napi_value out;
  if (size < 0) {
    int err = errno;
    free(value);
    if (err == ENODATA) {
      napi_get_null(env, &out);
      return out;
    }
    return throw_errno(env, err, "lgetxattr");
  }
  void *data = NULL;
  napi_create_buffer_copy(env, (size_t)size, value, &data, &out);
  free(value);
  return out;
}

static napi_value set_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_MAX];
  char name[XATTR_NAME_MAX + 1];
  if (!get_args(env, info, 3, argv) || !read_string(env, argv[0], path, sizeof path, "path must be a string") ||
      !read_string(env, argv[1], name, sizeof name, "attribute name must be a string of at most 255 bytes")) return NULL;
  void *data = NULL;
  size_t length = 0;
  bool is_buffer = false;
  if (napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer || napi_get_buffer_info(env, argv[2], &data, &length) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "value must be a Buffer");
    return NULL;
  }
  if (length > XATTR_SIZE_MAX) return throw_errno(env, E2BIG, "lsetxattr");
  if (lsetxattr(path, name, length == 0 ? "" : data, length, 0) != 0) return throw_errno(env, errno, "lsetxattr");
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

static napi_value make_node(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[PATH_MAX];
  uint32_t mode = 0, major_number = 0, minor_number = 0;
  if (!get_args(env, info, 4, argv) || !read_string(env, argv[0], path, sizeof path, "path must be a string")) return NULL;
  if (napi_get_value_uint32(env, argv[1], &mode) != napi_ok || napi_get_value_uint32(env, argv[2], &major_number) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &minor_number) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "mode, major and minor must be numbers");
    return NULL;
  }
  mode_t type = mode & S_IFMT;
  if (type != S_IFIFO && type != S_IFCHR && type != S_IFBLK) return throw_errno(env, EINVAL, "mknod");
  if (mknod(path, (mode_t)mode, makedev(major_number, minor_number)) != 0) return throw_errno(env, errno, "mknod");
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

static int read_ns(napi_env env, napi_value value, struct timespec *out) {
  int64_t ns = 0;
  bool lossless = false;
  if (napi_get_value_bigint_int64(env, value, &ns, &lossless) != napi_ok || !lossless) {
    napi_throw_type_error(env, "EINVAL", "times must be BigInt nanoseconds");
    return 0;
  }
  int64_t sec = ns / 1000000000, nsec = ns % 1000000000;
  if (nsec < 0) {
    nsec += 1000000000;
    sec -= 1;
  }
  out->tv_sec = (time_t)sec;
  out->tv_nsec = (long)nsec;
  return 1;
}

static napi_value set_times(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[PATH_MAX];
  struct timespec times[2];
  if (!get_args(env, info, 3, argv) || !read_string(env, argv[0], path, sizeof path, "path must be a string") ||
      !read_ns(env, argv[1], &times[0]) || !read_ns(env, argv[2], &times[1])) return NULL;
  if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) != 0) return throw_errno(env, errno, "utimensat");
  napi_value out;
  napi_get_undefined(env, &out);
  return out;
}

/*
 * alignmentGap(view, alignment) -> bytes from the view's first byte to the next address that
 * is a multiple of `alignment` (a power of two): where an O_DIRECT buffer may start inside a
 * larger allocation (JavaScript cannot see addresses; ArrayBuffers never move).
 */
static napi_value alignment_gap(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "view must be a typed array");
    return NULL;
  }
  int64_t alignment;
  if (napi_get_value_int64(env, argv[1], &alignment) != napi_ok || alignment <= 0 || (alignment & (alignment - 1)) != 0) {
    napi_throw_type_error(env, "EINVAL", "alignment must be a power of two");
    return NULL;
  }
  uintptr_t address = (uintptr_t)data;
  uintptr_t gap = (uintptr_t)(-(intptr_t)address) & (uintptr_t)(alignment - 1);
  napi_value out;
  napi_create_int64(env, (int64_t)gap, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL},
    {"seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL},
    {"seekEnd", NULL, seek_end, NULL, NULL, NULL, napi_default, NULL},
    {"syncfs", NULL, sync_fs, NULL, NULL, NULL, napi_default, NULL},
    {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_default, NULL},
    {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"mknod", NULL, make_node, NULL, NULL, NULL, napi_default, NULL},
    {"setTimes", NULL, set_times, NULL, NULL, NULL, napi_default, NULL},
    {"alignmentGap", NULL, alignment_gap, NULL, NULL, NULL, napi_default, NULL},
    {"aesGcmOpenInto", NULL, aes_gcm_open_into, NULL, NULL, NULL, napi_default, NULL},
    {"aesGcmSealInto", NULL, aes_gcm_seal_into, NULL, NULL, NULL, napi_default, NULL},
    {"scanDirectory", NULL, scan_directory, NULL, NULL, NULL, napi_default, NULL},
    {"copyBytes", NULL, copy_bytes, NULL, NULL, NULL, napi_default, NULL},
    {"adviseHugePages", NULL, advise_huge_pages, NULL, NULL, NULL, napi_default, NULL},
    {"copyFileRanges", NULL, copy_file_ranges, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
