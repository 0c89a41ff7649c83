/*
 * copyFileRanges(ranges, outFd, directFd, skipZeros)
 *   -> Promise<{ written: number, direct: number, refused: boolean }>
 *
 * Copies byte ranges of open files into one output file on a libuv pool thread, without the
 * bytes passing through JavaScript: a disk convert's data (the host clusters of a qcow2, the
 * blocks of a VHD) goes file to file as qemu-img's does, one pool task per 2 MiB block
 * instead of a read, a buffer turn and a write each handed between threads (a convert spent
 * as much CPU on those hand-overs as on the copies themselves, 2026-11-28).
 *
 *   ranges     a Float64Array of quadruples [inFd, inAt, outAt, length]: `length` bytes of
 *              file `inFd` from `inAt` go to the output at `outAt`. Copied at the call (the
 *              caller may reuse it).
 *   outFd      the output, written through the page cache;
 *   directFd   the same file opened O_DIRECT, or -1: runs whose offset and length are
 *              multiples of 4 KiB go there (the buffer is aligned); the first EINVAL from it
 *              (a filesystem that takes the open but not the write) sends that run and every
 *              later one of the call through `outFd`, and sets `refused`;
 *   skipZeros  the output reads as zeros where unwritten (a new sparse file): 4 KiB pieces
 *              of zeros, aligned in the output, are left unwritten, as qemu-img leaves them.
 *
 * Resolves with the bytes written (`written`, all of them when `skipZeros` is false), those
 * written direct (`direct`) and whether a direct write was refused. Rejects with an Error
 * whose `code` is the errno name (or "EOF" when an input ended before a range did), with
 * `side` ("read" or "write"; "memory" when the thread's buffer could not be had), `position`
 * (the byte of the input or output where it failed) and `range` (the quadruple's index).
 * Ranges before the failing one were copied.
 *
 * Each pool thread keeps one 2 MiB buffer, aligned and advised for a huge page, for the life
 * of the process (libuv's threads are few and never end): fresh memory is dear in the virtual
 * machines this runs on (see huge-pages.c), and a buffer per call would be fresh every time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <node_api.h>
#include "errno-name.h"
#include "copy-file-ranges.h"

#define CHUNK ((size_t)2 * 1024 * 1024)
#define PIECE ((uint64_t)4096)
/* The most quadruples one call takes (a 2 MiB block holds at most 512 runs of 4 KiB). */
#define MAX_RANGES 65536

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  double *ranges;
  size_t count;
  int out_fd, direct_fd, skip_zeros;
  /* results */
  uint64_t written, direct;
  int refused;
  /* failure: errno (or -1 for EOF), side, position, range */
  int error;
  const char *side;
  uint64_t position;
  size_t range;
} copy_t;

static __thread unsigned char *thread_buffer;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned char *buffer_of_thread(void) {
  if (thread_buffer == NULL) {
    void *memory = NULL;
    if (posix_memalign(&memory, CHUNK, CHUNK) != 0) return NULL;
    madvise(memory, CHUNK, MADV_HUGEPAGE);
    thread_buffer = memory;
  }
  return thread_buffer;
}

/* Whether `length` bytes hold only zeros: 64 bytes at a time (the data was just read: it is in the cache), then the rest. */
static int all_zero(const unsigned char *data, size_t length) {
  size_t at = 0;
  if (((uintptr_t)data) % 8 == 0) {
    const uint64_t *words = (const uint64_t *)data;
    for (; at + 64 <= length; at += 64) {
      const uint64_t *w = words + at / 8;
      if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return 0;
    }
  }
  for (; at < length; at++) {
    if (data[at] != 0) return 0;
  }
  return 1;
}

/* Writes `length` bytes of `data` at `at`, direct when allowed. 0 on success, else errno. */
static int write_run(copy_t *copy, const unsigned char *data, uint64_t length, uint64_t at) {
  int direct = copy->direct_fd >= 0 && !copy->refused && at % PIECE == 0 && length % PIECE == 0 && ((uintptr_t)data % PIECE) == 0;
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = pwrite(direct ? copy->direct_fd : copy->out_fd, data + done, length - done, (off_t)(at + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && direct && errno == EINVAL && done == 0) {
      copy->refused = 1;
      direct = 0;
      continue;
    }
    if (n < 0) {
      copy->position = at + done;
      return errno;
    }
    if (n == 0) {
      copy->position = at + done;
      return ENOSPC;
    }
    done += (uint64_t)n;
  }
  copy->written += length;
  if (direct) copy->direct += length;
  return 0;
}

/* Writes a chunk read into `data` (`length` bytes for output offset `at`), leaving out 4 KiB pieces of zeros when asked. */
static int write_chunk(copy_t *copy, const unsigned char *data, uint64_t length, uint64_t at) {
  if (!copy->skip_zeros) return write_run(copy, data, length, at);
  uint64_t run_start = 0, position = 0;
  int in_run = 0;
  while (position < length) {
    /* Pieces end on 4 KiB boundaries of the output, so a skipped piece is a whole page of it. */
    uint64_t end = (at + position) / PIECE * PIECE + PIECE - at;
    if (end > length) end = length;
    int zero = all_zero(data + position, end - position);
    if (zero && in_run) {
      int err = write_run(copy, data + run_start, position - run_start, at + run_start);
      if (err != 0) return err;
      in_run = 0;
    } else if (!zero && !in_run) {
      run_start = position;
      in_run = 1;
    }
    position = end;
  }
  if (in_run) return write_run(copy, data + run_start, length - run_start, at + run_start);
  return 0;
}

static void copy_execute(napi_env env, void *data) {
  (void)env;
  copy_t *copy = data;
  unsigned char *buffer = buffer_of_thread();
  if (buffer == NULL) {
    copy->error = ENOMEM;
    copy->side = "memory";
    return;
  }
  for (size_t r = 0; r < copy->count; r++) {
    int in_fd = (int)copy->ranges[r * 4];
    uint64_t in_at = (uint64_t)copy->ranges[r * 4 + 1];
    uint64_t out_at = (uint64_t)copy->ranges[r * 4 + 2];
    uint64_t length = (uint64_t)copy->ranges[r * 4 + 3];
    copy->range = r;
    for (uint64_t done = 0; done < length;) {
      /* A chunk starts where the output is 4 KiB aligned, so the buffer and the output line up for O_DIRECT. */
      uint64_t take = CHUNK - (out_at + done) % PIECE;
      if (take > length - done) take = length - done;
      uint64_t head = (out_at + done) % PIECE; /* the chunk sits at `head` in the buffer */
      uint64_t got = 0;
      while (got < take) {
        ssize_t n = pread(in_fd, buffer + head + got, take - got, (off_t)(in_at + done + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          copy->error = n < 0 ? errno : -1;
          copy->side = "read";
          copy->position = in_at + done + got;
          return;
        }
        got += (uint64_t)n;
      }
      pthread_mutex_lock(&write_lock);
      int err = write_chunk(copy, buffer + head, take, out_at + done);
      pthread_mutex_unlock(&write_lock);
      if (err != 0) {
        copy->error = err;
        copy->side = "write";
        return;
      }
      done += take;
    }
  }
}

static void copy_complete(napi_env env, napi_status status, void *data) {
  copy_t *copy = data;
  if (status != napi_ok || copy->error != 0) {
    int err = status != napi_ok ? ECANCELED : copy->error;
    const char *name = err == -1 ? "EOF" : errno_name(err);
    char text[200];
    if (err == -1) snprintf(text, sizeof text, "the input ended at byte %llu", (unsigned long long)copy->position);
    else snprintf(text, sizeof text, "%s failed at byte %llu: %s", copy->side == NULL ? "copy" : copy->side, (unsigned long long)copy->position, strerror(err));
    napi_value code, message, error, side, position, range;
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &error);
    napi_set_named_property(env, error, "code", code);
    napi_create_string_utf8(env, copy->side == NULL ? "read" : copy->side, NAPI_AUTO_LENGTH, &side);
    napi_set_named_property(env, error, "side", side);
    napi_create_double(env, (double)copy->position, &position);
    napi_set_named_property(env, error, "position", position);
    napi_create_double(env, (double)copy->range, &range);
    napi_set_named_property(env, error, "range", range);
    napi_reject_deferred(env, copy->deferred, error);
  } else {
    napi_value result, written, direct, refused;
    napi_create_object(env, &result);
    napi_create_double(env, (double)copy->written, &written);
    napi_create_double(env, (double)copy->direct, &direct);
    napi_get_boolean(env, copy->refused != 0, &refused);
    napi_set_named_property(env, result, "written", written);
    napi_set_named_property(env, result, "direct", direct);
    napi_set_named_property(env, result, "refused", refused);
    napi_resolve_deferred(env, copy->deferred, result);
  }
  napi_delete_async_work(env, copy->work);
  free(copy->ranges);
  free(copy);
}

static int whole(double value) {
  return value >= 0 && value <= 9007199254740991.0 && value == (double)(uint64_t)value;
}

napi_value copy_file_ranges(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_typedarray_type type;
  size_t length;
  void *values;
  int32_t out_fd, direct_fd;
  bool skip_zeros;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &values, NULL, NULL) != napi_ok || type != napi_float64_array ||
      length % 4 != 0 || length / 4 > MAX_RANGES || napi_get_value_int32(env, argv[1], &out_fd) != napi_ok || out_fd < 0 ||
      napi_get_value_int32(env, argv[2], &direct_fd) != napi_ok || napi_get_value_bool(env, argv[3], &skip_zeros) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "copyFileRanges(ranges: Float64Array of [inFd, inAt, outAt, length]..., outFd, directFd, skipZeros)");
    return NULL;
  }
  const double *quads = values;
  for (size_t i = 0; i < length; i++) {
    if (!whole(quads[i]) || (i % 4 == 0 && quads[i] > 2147483647.0)) {
      napi_throw_range_error(env, "ERANGE", "copyFileRanges: every descriptor, offset and length must be a whole number");
      return NULL;
    }
  }
  copy_t *copy = calloc(1, sizeof *copy);
  double *ranges = malloc(length == 0 ? 1 : length * sizeof(double));
  if (copy == NULL || ranges == NULL) {
    free(copy);
    free(ranges);
    napi_throw_error(env, "ENOMEM", "copyFileRanges: out of memory");
    return NULL;
  }
  memcpy(ranges, quads, length * sizeof(double));
  copy->ranges = ranges;
  copy->count = length / 4;
  copy->out_fd = out_fd;
  copy->direct_fd = direct_fd < 0 ? -1 : direct_fd;
  copy->skip_zeros = skip_zeros;
  napi_value promise, resource_name;
  napi_create_promise(env, &copy->deferred, &promise);
  napi_create_string_utf8(env, "coffer.copyFileRanges", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_async_work(env, NULL, resource_name, copy_execute, copy_complete, copy, &copy->work) != napi_ok ||
      napi_queue_async_work(env, copy->work) != napi_ok) {
    napi_value code, message, error;
    napi_create_string_utf8(env, "ENOMEM", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, "copyFileRanges: cannot queue the copy", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, code, message, &error);
    napi_reject_deferred(env, copy->deferred, error);
    free(copy->ranges);
    free(copy);
  }
  return promise;
}
