/* Memory of a view asked to be backed by transparent huge pages (huge-pages.c), registered by syscalls.c's module init. */
#ifndef COFFER_HUGE_PAGES_H
#define COFFER_HUGE_PAGES_H
#include <node_api.h>
napi_value advise_huge_pages(napi_env env, napi_callback_info info);
#endif
