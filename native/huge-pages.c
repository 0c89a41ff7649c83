/*
 * adviseHugePages(view) -> bytes advised
 *
 * madvise(MADV_HUGEPAGE) over the whole 2 MiB pages inside a view's memory, before it is first
 * written: the kernel then backs them with transparent huge pages (where it runs THP in its
 * "madvise" mode, the default of many distributions), one fault per 2 MiB instead of 512. In a
 * virtual machine whose page faults are dear the difference is large: writing 64 MiB of fresh
 * memory took 243-284 ms in 4 KiB pages and 22-37 ms in huge pages on the machines this was
 * written on (a PVM guest, 2026-11-28). Returns the bytes advised: 0 for a view holding no
 * whole aligned 2 MiB, or where the kernel refuses (no THP: EINVAL), which changes nothing
 * but speed.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <node_api.h>
#include "huge-pages.h"

#define HUGE_PAGE ((uintptr_t)2 * 1024 * 1024)

napi_value advise_huge_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "EINVAL", "adviseHugePages: view must be a Uint8Array");
    return NULL;
  }
  uintptr_t start = ((uintptr_t)data + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  uintptr_t end = ((uintptr_t)data + length) & ~(HUGE_PAGE - 1);
  int64_t advised = 0;
  if (end > start && madvise((void *)start, end - start, MADV_HUGEPAGE) == 0) advised = (int64_t)(end - start);
  napi_value out;
  napi_create_int64(env, advised, &out);
  return out;
}
