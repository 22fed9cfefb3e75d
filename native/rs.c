/*
 * nodus native Reed-Solomon kernel: out[r] = XOR over i of matrix[r][i] * in[i] in GF(2^8) with the
 * polynomial 0x11d (the field of src/storage/codec/gf256.ts and klauspost/reedsolomon).
 *
 * Three paths, chosen once at load from what the CPU supports (__builtin_cpu_supports):
 *   gfni-avx512  GF2P8AFFINEQB on 64-byte vectors: multiplication by a constant c is a linear map over
 *                GF(2), so it is one 8x8 bit-matrix affine transform per byte (Intel SDM, "GF2P8AFFINEQB";
 *                the technique of klauspost/reedsolomon's GFNI path).
 *   avx2         the split-nibble table multiply with VPSHUFB on 32-byte vectors (J. S. Plank, K. M. Greenan,
 *                E. L. Miller, "Screaming Fast Galois Field Arithmetic Using Intel SIMD Instructions",
 *                FAST 2013).
 *   scalar       a 64 KiB product table, one byte at a time.
 * All three give identical bytes; src/storage/codec/rs-kernels.ts self-checks the kernel at load and the
 * property tests compare it with the portable TypeScript kernel.
 *
 * Exposed through Node-API (ABI-stable across Node versions), so it needs only node_api.h to build:
 *   mulRows(matrix: Uint8Array (nOut*nIn, row-major), inputs: Uint8Array[], outputs: Uint8Array[],
 *           byteLength: number): undefined
 *   kernel: string (the path in use)
 *   mallocTrim(): boolean (native/memory.c)
 * Built by scripts/build-native.ts; src/storage/codec/rs-kernels.ts falls back to WebAssembly when it is absent.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>

#define MAX_SHARDS 256

static uint8_t MUL[256][256];
static uint64_t AFFINE[256];
static uint8_t NIB_LO[256][16];
static uint8_t NIB_HI[256][16];

static uint8_t gf_mul_slow(uint8_t a, uint8_t b) {
  uint8_t p = 0;
  while (b) {
    if (b & 1) p ^= a;
    uint8_t hi = a & 0x80;
    a <<= 1;
    if (hi) a ^= 0x1d;
    b >>= 1;
  }
  return p;
}

static void init_tables(void) {
  for (int c = 0; c < 256; c++) {
    for (int x = 0; x < 256; x++) MUL[c][x] = gf_mul_slow((uint8_t)c, (uint8_t)x);
    for (int x = 0; x < 16; x++) {
      NIB_LO[c][x] = MUL[c][x];
      NIB_HI[c][x] = MUL[c][x << 4];
    }
    /* GF2P8AFFINEQB: result bit i = parity(A.byte[7 - i] & x). Row i holds the input bits j whose
       image c * 2^j has bit i set. */
    uint64_t a = 0;
    for (int i = 0; i < 8; i++) {
      uint8_t row = 0;
      for (int j = 0; j < 8; j++)
        if ((MUL[c][1 << j] >> i) & 1) row |= (uint8_t)(1 << j);
      a |= (uint64_t)row << (8 * (7 - i));
    }
    AFFINE[c] = a;
  }
}

/* ---- scalar ---------------------------------------------------------------------------------- */

static void mul_rows_scalar(const uint8_t *matrix, const uint8_t **in, uint8_t **out, int nIn, int nOut,
                            size_t len) {
  for (int r = 0; r < nOut; r++) {
    uint8_t *o = out[r];
    const uint8_t *row = matrix + (size_t)r * nIn;
    const uint8_t *t0 = MUL[row[0]];
    const uint8_t *s0 = in[0];
    for (size_t p = 0; p < len; p++) o[p] = t0[s0[p]];
    for (int i = 1; i < nIn; i++) {
      const uint8_t *t = MUL[row[i]];
      const uint8_t *s = in[i];
      for (size_t p = 0; p < len; p++) o[p] ^= t[s[p]];
    }
  }
}

/* ---- GFNI + AVX-512 -------------------------------------------------------------------------- */

/* R outputs (a compile-time constant after inlining) over all inputs, 64 bytes per step; the tail uses
   masked loads and stores, so no byte past len is read or written. */
#define GFNI_BLOCK(R)                                                                                  \
  static __attribute__((target("avx512f,avx512bw,gfni,bmi2"))) void gfni_block_##R(                         \
      const uint64_t *mats, const uint8_t **in, uint8_t **out, int nIn, size_t len) {                  \
    size_t p = 0;                                                                                      \
    for (; p + 64 <= len; p += 64) {                                                                   \
      __m512i acc[R];                                                                                  \
      __m512i x = _mm512_loadu_si512((const void *)(in[0] + p));                                       \
      for (int r = 0; r < R; r++)                                                                      \
        acc[r] = _mm512_gf2p8affine_epi64_epi8(x, _mm512_set1_epi64((long long)mats[r * nIn]), 0);     \
      for (int i = 1; i < nIn; i++) {                                                                  \
        x = _mm512_loadu_si512((const void *)(in[i] + p));                                             \
        for (int r = 0; r < R; r++)                                                                    \
          acc[r] = _mm512_xor_si512(                                                                   \
              acc[r], _mm512_gf2p8affine_epi64_epi8(x, _mm512_set1_epi64((long long)mats[r * nIn + i]), \
                                                    0));                                               \
      }                                                                                                \
      for (int r = 0; r < R; r++) _mm512_storeu_si512((void *)(out[r] + p), acc[r]);                   \
    }                                                                                                  \
    if (p < len) {                                                                                     \
      __mmask64 m = _bzhi_u64(~0ULL, (unsigned)(len - p));                                             \
      __m512i acc[R];                                                                                  \
      for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_si512();                                     \
      for (int i = 0; i < nIn; i++) {                                                                  \
        __m512i x = _mm512_maskz_loadu_epi8(m, (const void *)(in[i] + p));                             \
        for (int r = 0; r < R; r++)                                                                    \
          acc[r] = _mm512_xor_si512(                                                                   \
              acc[r], _mm512_gf2p8affine_epi64_epi8(x, _mm512_set1_epi64((long long)mats[r * nIn + i]), \
                                                    0));                                               \
      }                                                                                                \
      for (int r = 0; r < R; r++) _mm512_mask_storeu_epi8((void *)(out[r] + p), m, acc[r]);            \
    }                                                                                                  \
  }

GFNI_BLOCK(1)
GFNI_BLOCK(2)
GFNI_BLOCK(3)
GFNI_BLOCK(4)
GFNI_BLOCK(5)
GFNI_BLOCK(6)
GFNI_BLOCK(7)
GFNI_BLOCK(8)

/* Columns are processed in slices so that the inputs of a slice stay in L1/L2 while every group of
   outputs is computed from them. */
#define SLICE_BYTES 16384

static __attribute__((target("avx512f,avx512bw,gfni,bmi2"))) void mul_rows_gfni(
    const uint8_t *matrix, const uint8_t **in, uint8_t **out, int nIn, int nOut, size_t len) {
  uint64_t mats[8 * MAX_SHARDS];
  const uint8_t *ins[MAX_SHARDS];
  uint8_t *outs[8];
  for (size_t from = 0; from < len; from += SLICE_BYTES) {
    size_t n = len - from < SLICE_BYTES ? len - from : SLICE_BYTES;
    for (int i = 0; i < nIn; i++) ins[i] = in[i] + from;
    for (int r0 = 0; r0 < nOut; r0 += 8) {
      int R = nOut - r0 < 8 ? nOut - r0 : 8;
      for (int r = 0; r < R; r++) {
        outs[r] = out[r0 + r] + from;
        for (int i = 0; i < nIn; i++) mats[r * nIn + i] = AFFINE[matrix[(size_t)(r0 + r) * nIn + i]];
      }
      switch (R) {
        case 1: gfni_block_1(mats, ins, outs, nIn, n); break;
        case 2: gfni_block_2(mats, ins, outs, nIn, n); break;
        case 3: gfni_block_3(mats, ins, outs, nIn, n); break;
        case 4: gfni_block_4(mats, ins, outs, nIn, n); break;
        case 5: gfni_block_5(mats, ins, outs, nIn, n); break;
        case 6: gfni_block_6(mats, ins, outs, nIn, n); break;
        case 7: gfni_block_7(mats, ins, outs, nIn, n); break;
        default: gfni_block_8(mats, ins, outs, nIn, n); break;
      }
    }
  }
}

/* ---- AVX2 split-nibble ----------------------------------------------------------------------- */

static __attribute__((target("avx2"))) void mul_rows_avx2(const uint8_t *matrix, const uint8_t **in,
                                                          uint8_t **out, int nIn, int nOut, size_t len) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  size_t vec = len & ~(size_t)31;
  for (size_t from = 0; from < vec; from += SLICE_BYTES) {
    size_t end = from + SLICE_BYTES < vec ? from + SLICE_BYTES : vec;
    for (int r = 0; r < nOut; r++) {
      const uint8_t *row = matrix + (size_t)r * nIn;
      for (size_t p = from; p < end; p += 32) {
        __m256i acc = _mm256_setzero_si256();
        for (int i = 0; i < nIn; i++) {
          __m256i lo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)NIB_LO[row[i]]));
          __m256i hi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)NIB_HI[row[i]]));
          __m256i x = _mm256_loadu_si256((const __m256i *)(in[i] + p));
          __m256i xl = _mm256_and_si256(x, low4);
          __m256i xh = _mm256_and_si256(_mm256_srli_epi64(x, 4), low4);
          acc = _mm256_xor_si256(acc, _mm256_xor_si256(_mm256_shuffle_epi8(lo, xl), _mm256_shuffle_epi8(hi, xh)));
        }
        _mm256_storeu_si256((__m256i *)(out[r] + p), acc);
      }
    }
  }
  if (vec < len) {
    const uint8_t *tin[MAX_SHARDS];
    uint8_t *tout[MAX_SHARDS];
    for (int i = 0; i < nIn; i++) tin[i] = in[i] + vec;
    for (int r = 0; r < nOut; r++) tout[r] = out[r] + vec;
    mul_rows_scalar(matrix, tin, tout, nIn, nOut, len - vec);
  }
}

/* ---- dispatch and Node-API ------------------------------------------------------------------- */

typedef void (*mul_rows_fn)(const uint8_t *, const uint8_t **, uint8_t **, int, int, size_t);
static mul_rows_fn mul_rows = mul_rows_scalar;
static const char *kernel_name = "scalar";

/* NODUS_NATIVE_KERNEL=avx2|scalar caps the path (tests run every path the CPU has). */
static void choose_kernel(void) {
  __builtin_cpu_init();
  const char *cap = getenv("NODUS_NATIVE_KERNEL");
  int allow_gfni = cap == NULL || strcmp(cap, "gfni-avx512") == 0;
  int allow_avx2 = allow_gfni || strcmp(cap, "avx2") == 0;
  if (allow_gfni && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("gfni") && __builtin_cpu_supports("bmi2")) {
    mul_rows = mul_rows_gfni;
    kernel_name = "gfni-avx512";
  } else if (allow_avx2 && __builtin_cpu_supports("avx2")) {
    mul_rows = mul_rows_avx2;
    kernel_name = "avx2";
  }
}

static napi_value throw_error(napi_env env, const char *code, const char *message) {
  napi_throw_type_error(env, code, message);
  return NULL;
}

static int get_bytes(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, value, &type, length, &ptr, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = (uint8_t *)ptr;
  return 1;
}

static int get_shards(napi_env env, napi_value array, uint8_t **ptrs, uint32_t *count, size_t byteLength) {
  bool is_array = false;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array) return 0;
  if (napi_get_array_length(env, array, count) != napi_ok || *count > MAX_SHARDS) return 0;
  for (uint32_t i = 0; i < *count; i++) {
    napi_value item;
    size_t len = 0;
    if (napi_get_element(env, array, i, &item) != napi_ok) return 0;
    if (!get_bytes(env, item, &ptrs[i], &len) || len < byteLength) return 0;
  }
  return 1;
}

static napi_value js_mul_rows(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4)
    return throw_error(env, "ERASURE_INVALID", "mulRows(matrix, inputs, outputs, byteLength)");
  int64_t byteLength = 0;
  if (napi_get_value_int64(env, argv[3], &byteLength) != napi_ok || byteLength < 0)
    return throw_error(env, "ERASURE_INVALID", "byteLength must be a non-negative integer");
  uint8_t *matrix = NULL;
  size_t matrixLength = 0;
  if (!get_bytes(env, argv[0], &matrix, &matrixLength))
    return throw_error(env, "ERASURE_INVALID", "matrix must be a Uint8Array");
  uint8_t *ins[MAX_SHARDS];
  uint8_t *outs[MAX_SHARDS];
  uint32_t nIn = 0, nOut = 0;
  if (!get_shards(env, argv[1], ins, &nIn, (size_t)byteLength))
    return throw_error(env, "ERASURE_INVALID", "inputs must be at most 256 Uint8Arrays of byteLength bytes");
  if (!get_shards(env, argv[2], outs, &nOut, (size_t)byteLength))
    return throw_error(env, "ERASURE_INVALID", "outputs must be at most 256 Uint8Arrays of byteLength bytes");
  if (nIn == 0 || matrixLength != (size_t)nIn * nOut)
    return throw_error(env, "ERASURE_INVALID", "matrix must hold nOut * nIn coefficients");
  if (nOut > 0 && byteLength > 0) mul_rows(matrix, (const uint8_t **)ins, outs, (int)nIn, (int)nOut, (size_t)byteLength);
  return NULL;
}

napi_status nodus_register_memory(napi_env env, napi_value exports);

NAPI_MODULE_INIT() {
  init_tables();
  choose_kernel();
  napi_value fn, name;
  if (napi_create_function(env, "mulRows", NAPI_AUTO_LENGTH, js_mul_rows, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "mulRows", fn) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, kernel_name, NAPI_AUTO_LENGTH, &name) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "kernel", name) != napi_ok) return NULL;
  if (nodus_register_memory(env, exports) != napi_ok) return NULL;
  return exports;
}
