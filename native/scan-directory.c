/*
 * scanDirectory(path) -> Promise<{ names: Buffer, stats: Float64Array }>
 *   path: a string, or a Buffer of its bytes when they are not UTF-8
 *
 * Lists one directory and lstat()s every entry in it, on a libuv pool thread: a file backup's
 * walk made one readdir and one lstat per entry on the main thread, and for an incremental of
 * an unchanged tree those calls, the Stats objects Node builds for each (14 BigInts and
 * Dates) and their garbage were most of its time. Here the directory is opened once
 * (O_NOFOLLOW: a directory swapped for a symlink since the caller's lstat is not followed),
 * read with readdir(3), and each entry stat'ed relative to it (fstatat, AT_SYMLINK_NOFOLLOW).
 *
 * The result, for n entries in readdir order ("." and ".." left out):
 *   names  the names' bytes, each followed by one NUL (names are bytes on Linux: the caller
 *          decides what is valid UTF-8)
 *   stats  n records of SCAN_FIELDS doubles, in this order:
 *            0 errno of the entry's fstatat (0: the rest is valid; ENOENT: it vanished)
 *            1 st_mode (type and permission bits)   2 st_uid   3 st_gid   4 st_nlink
 *            5 st_size   6 st_blocks (512-byte units)
 *            7 st_dev high 32 bits   8 st_dev low 32 bits
 *            9 st_ino high 32 bits  10 st_ino low 32 bits
 *           11 st_rdev high 32 bits 12 st_rdev low 32 bits
 *           13 atime seconds 14 atime nanoseconds 15 mtime seconds 16 mtime nanoseconds
 *           17 ctime seconds 18 ctime nanoseconds
 *          64-bit numbers are split so that every value is exact in a double; sizes and
 *          seconds are (below 2^53).
 * The promise rejects with an Error whose `code` is the errno name (ENOENT, EACCES, ENOTDIR,
 * ELOOP for a symlink...) when the directory itself cannot be opened or read.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-name.h"
#include "scan-directory.h"
#include "string-argument.h"

#define SCAN_FIELDS 19

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char path[PATH_MAX];
  char *names;
  size_t names_length, names_capacity;
  double *stats;
  size_t count, capacity;
  int error; /* errno of opening or reading the directory; 0 when it was listed */
  const char *call;
} scan_t;

static int grow(void **data, size_t *capacity, size_t needed, size_t unit) {
  if (needed <= *capacity) return 1;
  size_t next = *capacity == 0 ? 64 : *capacity;
  while (next < needed) next *= 2;
  void *grown = realloc(*data, next * unit);
  if (grown == NULL) return 0;
  *data = grown;
  *capacity = next;
  return 1;
}

static void split(double *out, unsigned long long value) {
  out[0] = (double)(value >> 32);
  out[1] = (double)(value & 0xffffffffULL);
}

static void scan_execute(napi_env env, void *data) {
  (void)env;
  scan_t *scan = data;
  /* O_NOATIME: listing a directory does not move its access time (a backup leaves no trace
   * in what it reads); allowed only to the directory's owner or root, so retried without. */
  int fd = open(scan->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(scan->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    scan->error = errno;
    scan->call = "open";
    return;
  }
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    scan->error = errno;
    scan->call = "fdopendir";
    close(fd);
    return;
  }
  for (;;) {
    errno = 0;
    struct dirent *entry = readdir(dir);
    if (entry == NULL) {
      if (errno != 0) {
        scan->error = errno;
        scan->call = "readdir";
      }
      break;
    }
    const char *name = entry->d_name;
    if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
    size_t length = strlen(name);
    if (!grow((void **)&scan->names, &scan->names_capacity, scan->names_length + length + 1, 1) ||
        !grow((void **)&scan->stats, &scan->capacity, (scan->count + 1) * SCAN_FIELDS, sizeof(double))) {
      scan->error = ENOMEM;
      scan->call = "readdir";
      break;
    }
    memcpy(scan->names + scan->names_length, name, length + 1);
    scan->names_length += length + 1;
    double *record = scan->stats + scan->count * SCAN_FIELDS;
    scan->count++;
    memset(record, 0, SCAN_FIELDS * sizeof(double));
    struct stat st;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      record[0] = (double)errno;
      continue;
    }
    record[1] = (double)st.st_mode;
    record[2] = (double)st.st_uid;
    record[3] = (double)st.st_gid;
    record[4] = (double)st.st_nlink;
    record[5] = (double)st.st_size;
    record[6] = (double)st.st_blocks;
    split(record + 7, (unsigned long long)st.st_dev);
    split(record + 9, (unsigned long long)st.st_ino);
    split(record + 11, (unsigned long long)st.st_rdev);
    record[13] = (double)st.st_atim.tv_sec;
    record[14] = (double)st.st_atim.tv_nsec;
    record[15] = (double)st.st_mtim.tv_sec;
    record[16] = (double)st.st_mtim.tv_nsec;
    record[17] = (double)st.st_ctim.tv_sec;
    record[18] = (double)st.st_ctim.tv_nsec;
  }
  closedir(dir); /* closes fd */
}

static napi_value errno_error(napi_env env, int err, const char *call, const char *path) {
  const char *name = errno_name(err);
  char text[PATH_MAX + 160];
  snprintf(text, sizeof text, "%s failed: %s, scandir '%s'", call, strerror(err), path);
  napi_value code, message, error;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_set_named_property(env, error, "code", code);
  napi_value number;
  napi_create_int32(env, err, &number);
  napi_set_named_property(env, error, "errno", number);
  return error;
}

static void scan_complete(napi_env env, napi_status status, void *data) {
  scan_t *scan = data;
  if (status != napi_ok) {
    napi_value error = errno_error(env, ECANCELED, "scan", scan->path);
    napi_reject_deferred(env, scan->deferred, error);
  } else if (scan->error != 0) {
    napi_reject_deferred(env, scan->deferred, errno_error(env, scan->error, scan->call, scan->path));
  } else {
    napi_value result, names, buffer, stats;
    void *copy = NULL;
    napi_create_object(env, &result);
    napi_create_buffer_copy(env, scan->names_length, scan->names_length == 0 ? "" : scan->names, &copy, &names);
    size_t bytes = scan->count * SCAN_FIELDS * sizeof(double);
    void *target = NULL;
    napi_create_arraybuffer(env, bytes, &target, &buffer);
    if (bytes > 0) memcpy(target, scan->stats, bytes);
    napi_create_typedarray(env, napi_float64_array, scan->count * SCAN_FIELDS, buffer, 0, &stats);
    napi_set_named_property(env, result, "names", names);
    napi_set_named_property(env, result, "stats", stats);
    napi_resolve_deferred(env, scan->deferred, result);
  }
  napi_delete_async_work(env, scan->work);
  free(scan->names);
  free(scan->stats);
  free(scan);
}

napi_value scan_directory(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, "EINVAL", "missing arguments");
    return NULL;
  }
  scan_t *scan = calloc(1, sizeof *scan);
  if (scan == NULL) {
    napi_throw_error(env, "ENOMEM", "scanDirectory: out of memory");
    return NULL;
  }
  if (!read_string(env, argv[0], scan->path, sizeof scan->path, "path must be a string or a Buffer")) {
    free(scan);
    return NULL;
  }
  napi_value promise, resource_name;
  napi_create_promise(env, &scan->deferred, &promise);
  napi_create_string_utf8(env, "coffer.scanDirectory", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_async_work(env, NULL, resource_name, scan_execute, scan_complete, scan, &scan->work) != napi_ok ||
      napi_queue_async_work(env, scan->work) != napi_ok) {
    napi_reject_deferred(env, scan->deferred, errno_error(env, ENOMEM, "scan", scan->path));
    free(scan);
  }
  return promise;
}
