/*
 * nodus native memory helper, linked into the same addon as the Reed-Solomon kernel (native/rs.c).
 *
 *   mallocTrim(): boolean   glibc malloc_trim(0): returns the free pages of every malloc arena to the
 *                           kernel (madvise MADV_DONTNEED on whole free pages, then trims each heap's
 *                           top). True when memory was released. Without glibc (musl), false.
 *
 * Why: glibc gives freed memory back only from the top of each arena and only past its trim
 * threshold, so a node's RSS keeps the high-water mark of start-up and of transfers (V8's parser
 * zones, OpenSSL and libuv buffers, freed Buffers) long after they are garbage (docs/BENCHMARKS.md,
 * "Session 7").
 */
#define NAPI_VERSION 8
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#if defined(__GLIBC__)
  released = malloc_trim(0);
#endif
  napi_value result;
  if (napi_get_boolean(env, released != 0, &result) != napi_ok) return NULL;
  return result;
}

/* Adds mallocTrim to the addon's exports; called from the module initialiser in native/rs.c. */
napi_status nodus_register_memory(napi_env env, napi_value exports) {
  napi_value fn;
  napi_status status = napi_create_function(env, "mallocTrim", NAPI_AUTO_LENGTH, js_malloc_trim, NULL, &fn);
  if (status != napi_ok) return status;
  return napi_set_named_property(env, exports, "mallocTrim", fn);
}
