/*
 * nodus native memory helper, linked into the same addon as the Reed-Solomon kernel (native/rs.c).
 *
 *   mallocTrim(): boolean   glibc malloc_trim(0): returns the free pages of every malloc arena to the
 *                           kernel (madvise MADV_DONTNEED on whole free pages, then trims each heap's
 *                           top). True when memory was released. Without glibc (musl), false.
 *
 *   alignOffset(view, align): number
 *                           bytes from the start of `view` (a TypedArray or DataView) to the first
 *                           address in it that is a multiple of `align` (a power of two). Direct I/O
 *                           (O_DIRECT) needs buffers aligned to the device's logical block size, and
 *                           JavaScript cannot see addresses.
 *
 * Why mallocTrim: glibc gives freed memory back only from the top of each arena and only past its trim
 * threshold, so a node's RSS keeps the high-water mark of start-up and of transfers (V8's parser
 * zones, OpenSSL and libuv buffers, freed Buffers) long after they are garbage (docs/BENCHMARKS.md,
 * "Session 7").
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
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

static napi_value js_align_offset(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2) {
    napi_throw_type_error(env, "INVALID_ARGUMENT", "alignOffset(view, align)");
    return NULL;
  }
  void *data = NULL;
  bool is_typed = false;
  bool is_view = false;
  napi_is_typedarray(env, argv[0], &is_typed);
  if (is_typed) {
    if (napi_get_typedarray_info(env, argv[0], NULL, NULL, &data, NULL, NULL) != napi_ok) return NULL;
  } else {
    napi_is_dataview(env, argv[0], &is_view);
    if (!is_view || napi_get_dataview_info(env, argv[0], NULL, &data, NULL, NULL) != napi_ok) {
      napi_throw_type_error(env, "INVALID_ARGUMENT", "alignOffset: not a TypedArray or DataView");
      return NULL;
    }
  }
  uint32_t align = 0;
  if (napi_get_value_uint32(env, argv[1], &align) != napi_ok || align == 0 || (align & (align - 1)) != 0) {
    napi_throw_range_error(env, "INVALID_ARGUMENT", "alignOffset: align must be a power of two");
    return NULL;
  }
  uintptr_t addr = (uintptr_t)data;
  uint32_t offset = (uint32_t)((align - (addr & (align - 1))) & (align - 1));
  napi_value result;
  if (napi_create_uint32(env, offset, &result) != napi_ok) return NULL;
  return result;
}

/* Adds mallocTrim and alignOffset to the addon's exports; called from the module initialiser in native/rs.c. */
napi_status nodus_register_memory(napi_env env, napi_value exports) {
  napi_value fn;
  napi_status status = napi_create_function(env, "mallocTrim", NAPI_AUTO_LENGTH, js_malloc_trim, NULL, &fn);
  if (status != napi_ok) return status;
  status = napi_set_named_property(env, exports, "mallocTrim", fn);
  if (status != napi_ok) return status;
  status = napi_create_function(env, "alignOffset", NAPI_AUTO_LENGTH, js_align_offset, NULL, &fn);
  if (status != napi_ok) return status;
  return napi_set_named_property(env, exports, "alignOffset", fn);
}
