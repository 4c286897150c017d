// AVX2 (with FMA and F16C) matrix products on the packed layouts of kernels/packed/.
//
// A packed group of 16 rows is two 256-bit halves (rows 0-7 and 8-15). Without VNNI, 8-bit
// products use vpmaddubsw (unsigned x signed bytes to 16-bit pair sums) then vpmaddwd to 32 bits:
// q4_0 codes (0..15) are the unsigned side directly; q8_0 weights are stored signed and use the
// sign trick |w| x sign(x, w). Both stay clear of 16-bit saturation (see Int8Tile). The k-quants'
// codes (q4_k 0..15, q6_k 0..63) are unsigned too; their offsets are corrected with the
// activation block sums.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/packed/int8_activations.h"
#include "kernels/packed/matmul_schedule.h"
#include "kernels/packed/packed_layout.h"
#include "kernels/x86/kernels_x86.h"
#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::avx2 {
namespace {

using packed::kPackRows;
constexpr int kTile = 4;

inline int32_t Load32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Stores the first `valid` (0..8) lanes of v.
inline void StoreRows(float* y, __m256 v, int64_t valid) {
  if (valid >= 8) {
    _mm256_storeu_ps(y, v);
    return;
  }
  alignas(32) float tmp[8];
  _mm256_store_ps(tmp, v);
  for (int64_t i = 0; i < valid; ++i) y[i] = tmp[i];
}

inline void StoreGroup(float* y, __m256 lo, __m256 hi, int64_t valid) {
  StoreRows(y, lo, valid);
  if (valid > 8) StoreRows(y + 8, hi, valid - 8);
}

// --- Activations ---

void QuantizeInt8(const float* x, void* out, int64_t k) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  uint8_t* p = static_cast<uint8_t*>(out);
  int8_t* q = reinterpret_cast<int8_t*>(p);
  float* d = reinterpret_cast<float*>(p + k);
  int32_t* s = reinterpret_cast<int32_t*>(p + k + (k / 32) * 4);
  int32_t* h = reinterpret_cast<int32_t*>(p + k + (k / 32) * 8);
  for (int64_t b = 0; b < k / 32; ++b) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + b * 32 + j * 8);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign_mask, v[j]));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    float amax = 0.0f;
    for (float l : lanes) amax = std::max(amax, l);
    const float scale = amax / 127.0f;
    const __m256 inv = _mm256_set1_ps(scale != 0.0f ? 1.0f / scale : 0.0f);
    int32_t sum = 0;
    for (int j = 0; j < 4; ++j) {
      // roundf(): truncate, then step away from zero when the dropped fraction is >= 0.5.
      const __m256 y = _mm256_mul_ps(v[j], inv);
      const __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_andnot_ps(sign_mask, _mm256_sub_ps(y, t));
      const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
      const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(y, sign_mask));
      const __m256i r = _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
      alignas(32) int32_t ints[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(ints), r);
      for (int i = 0; i < 8; ++i) {
        q[b * 32 + j * 8 + i] = static_cast<int8_t>(ints[i]);
        sum += ints[i];
      }
      if (j == 1) h[b] = sum;  // The first 16 values.
    }
    s[b] = sum;
    d[b] = F16ToF32(F32ToF16(scale));
  }
}

// --- Float weights ---

template <DType T>
inline void Load16(const uint8_t* group, int64_t c, __m256* lo, __m256* hi) {
  if constexpr (T == DType::kF32) {
    const float* p = reinterpret_cast<const float*>(group) + c * kPackRows;
    *lo = _mm256_loadu_ps(p);
    *hi = _mm256_loadu_ps(p + 8);
  } else {
    const __m128i* p = reinterpret_cast<const __m128i*>(group + c * kPackRows * 2);
    const __m128i a = _mm_loadu_si128(p), b = _mm_loadu_si128(p + 1);
    if constexpr (T == DType::kF16) {
      *lo = _mm256_cvtph_ps(a);
      *hi = _mm256_cvtph_ps(b);
    } else {
      *lo = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(a), 16));
      *hi = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(b), 16));
    }
  }
}

// y[t, 16 rows] of G groups for TT tokens (see the AVX-512 version): every row is one
// sequential sum over the columns, whatever TT and G are.
template <DType T, int TT, int G>
void FloatTile(const uint8_t* const* groups, int64_t cols, const float* x, int64_t x_stride,
               float* const* ys, int64_t ldy, const int64_t* valid) {
  __m256 lo[G][TT], hi[G][TT];
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < TT; ++t) lo[g][t] = hi[g][t] = _mm256_setzero_ps();
  }
  for (int64_t c = 0; c < cols; ++c) {
    for (int g = 0; g < G; ++g) {
      __m256 a, b;
      Load16<T>(groups[g], c, &a, &b);
      for (int t = 0; t < TT; ++t) {
        const __m256 xv = _mm256_set1_ps(x[t * x_stride + c]);
        lo[g][t] = _mm256_fmadd_ps(a, xv, lo[g][t]);
        hi[g][t] = _mm256_fmadd_ps(b, xv, hi[g][t]);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < TT; ++t) StoreGroup(ys[g] + t * ldy, lo[g][t], hi[g][t], valid[g]);
  }
}

// --- 8-bit weights ---

// Sum over the 4-byte groups of unsigned a times signed b, into 32-bit lanes.
inline __m256i DotBytes(__m256i a_unsigned, __m256i b_signed) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(a_unsigned, b_signed), _mm256_set1_epi16(1));
}

// One half (8 rows) of a block for TT tokens; returns 32-bit sums in acc.
template <bool kQ4, int TT>
inline void HalfBlock(const uint8_t* rec, int half, const packed::Int8ActivationRow* xr, int64_t b,
                      __m256i* acc) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  if constexpr (kQ4) {
    // 16-bit pair sums of codes (<= 15) times activations (|x| <= 127) stay below 2 * 15 * 127;
    // all 8 products of a block add up to at most 8 * 3810 = 30480 < 32767: no saturation.
    __m256i s16[TT];
    for (int t = 0; t < TT; ++t) s16[t] = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      const __m256i v =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + p * 64 + half * 32));
      const __m256i lo = _mm256_and_si256(v, low4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      for (int t = 0; t < TT; ++t) {
        const int8_t* xq = xr[t].q + b * 32;
        s16[t] = _mm256_add_epi16(s16[t],
                                  _mm256_maddubs_epi16(lo, _mm256_set1_epi32(Load32(xq + 4 * p))));
        s16[t] = _mm256_add_epi16(
            s16[t], _mm256_maddubs_epi16(hi, _mm256_set1_epi32(Load32(xq + 16 + 4 * p))));
      }
    }
    for (int t = 0; t < TT; ++t) acc[t] = _mm256_madd_epi16(s16[t], _mm256_set1_epi16(1));
  } else {
    // |w| <= 127 and |x| <= 127: a pair sum is at most 2 * 127 * 127 = 32258, inside int16.
    for (int t = 0; t < TT; ++t) acc[t] = _mm256_setzero_si256();
    for (int q = 0; q < 8; ++q) {
      const __m256i w =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + q * 64 + half * 32));
      const __m256i aw = _mm256_abs_epi8(w);
      for (int t = 0; t < TT; ++t) {
        const __m256i xv = _mm256_set1_epi32(Load32(xr[t].q + b * 32 + 4 * q));
        acc[t] = _mm256_add_epi32(acc[t], DotBytes(aw, _mm256_sign_epi8(xv, w)));
      }
    }
  }
}

template <bool kQ4, int TT>
void Int8Tile(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes, float* y,
              int64_t ldy, int64_t valid) {
  constexpr size_t kRecord = kQ4 ? packed::kQ4Record : packed::kQ8Record;
  constexpr int kScales = kQ4 ? 256 : 512;
  constexpr int32_t kOffset = kQ4 ? 8 : 0;  // q4_0 codes are value + 8; q8_0 is stored signed.
  packed::Int8ActivationRow xr[TT];
  for (int t = 0; t < TT; ++t) xr[t] = packed::ViewInt8Activations(x + t * x_row_bytes, k);
  __m256 accf[2][TT];
  for (int h = 0; h < 2; ++h) {
    for (int t = 0; t < TT; ++t) accf[h][t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < k / 32; ++b) {
    const uint8_t* rec = group + static_cast<size_t>(b) * kRecord;
    packed::PrefetchAhead<TT>(rec, kRecord);
    for (int h = 0; h < 2; ++h) {
      __m256i acc[TT];
      HalfBlock<kQ4, TT>(rec, h, xr, b, acc);
      const __m256 ws = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + kScales + h * 16)));
      for (int t = 0; t < TT; ++t) {
        const __m256i exact = _mm256_sub_epi32(acc[t], _mm256_set1_epi32(kOffset * xr[t].s[b]));
        accf[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(exact),
                                     _mm256_mul_ps(ws, _mm256_set1_ps(xr[t].d[b])), accf[h][t]);
      }
    }
  }
  for (int t = 0; t < TT; ++t) StoreGroup(y + t * ldy, accf[0][t], accf[1][t], valid);
}

using Int8TileFn = void (*)(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes,
                            float* y, int64_t ldy, int64_t valid);

template <bool kQ4, size_t... I>
constexpr std::array<Int8TileFn, sizeof...(I)> Int8Tiles(std::index_sequence<I...>) {
  return {Int8Tile<kQ4, static_cast<int>(I) + 1>...};
}

// Runs the tile of each token count over the row groups covering [r0, r1), kTile tokens at a
// time: each group's records are read once per tile.
void RunInt8Tiles(const Int8TileFn* tiles, const Matrix& w, const uint8_t* x, size_t x_row_bytes,
                  float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  const size_t group_bytes = packed::GroupBytes(w.dtype, w.cols);
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  for (int64_t g = r0 / kPackRows; g * kPackRows < r1; ++g) {
    const int64_t valid = std::min<int64_t>(kPackRows, r1 - g * kPackRows);
    const uint8_t* group = data + static_cast<size_t>(g) * group_bytes;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTile) {
      const int64_t tt = std::min<int64_t>(kTile, n_tokens - t0);
      tiles[tt - 1](group, w.cols, x + static_cast<size_t>(t0) * x_row_bytes, x_row_bytes,
                    y + t0 * ldy + g * kPackRows, ldy, valid);
    }
  }
}

void Int8MatMul(bool q4, const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  static constexpr auto kQ8Tiles = Int8Tiles<false>(std::make_index_sequence<kTile>());
  static constexpr auto kQ4Tiles = Int8Tiles<true>(std::make_index_sequence<kTile>());
  RunInt8Tiles(q4 ? kQ4Tiles.data() : kQ8Tiles.data(), w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
}

// --- K-quant weights ---

inline __m128i Load64(const uint8_t* p) {
  return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
}

// Two int16 in each 32-bit lane, lo first: the multiplier vpmaddwd pairs with two products.
inline __m256i Pair16(int32_t lo, int32_t hi) {
  return _mm256_set1_epi32(
      static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) | static_cast<uint16_t>(lo)));
}

// q4_k super-block (8 sub-blocks of 32 columns, activation blocks b0 ..) for TT tokens:
// d_a (d sc sum code a - dmin m sum a) per sub-block, as the reference.
template <int TT>
inline void Q4KSuperBlock(const uint8_t* rec, const packed::Int8ActivationRow* xr, int64_t b0,
                          __m256 (*accf)[TT]) {
  for (int j = 0; j < 8; ++j) {
    const int64_t b = b0 + j;
    for (int h = 0; h < 2; ++h) {
      __m256i acc[TT];
      HalfBlock<true, TT>(rec + packed::kQ4KCodes + j * 256, h, xr, b, acc);
      // d sc and dmin m per row, shared by the tokens.
      const __m256 d = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + packed::kQ4KD + h * 16)));
      const __m256 dmin = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + packed::kQ4KDmin + h * 16)));
      const size_t at = static_cast<size_t>(j * 16 + h * 8);
      const __m256 ws = _mm256_mul_ps(
          d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(Load64(rec + packed::kQ4KScales + at))));
      const __m256 wm = _mm256_mul_ps(
          dmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(Load64(rec + packed::kQ4KMins + at))));
      for (int t = 0; t < TT; ++t) {
        const float da = xr[t].d[b];
        accf[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[t]),
                                     _mm256_mul_ps(ws, _mm256_set1_ps(da)), accf[h][t]);
        accf[h][t] =
            _mm256_fnmadd_ps(wm, _mm256_set1_ps(da * static_cast<float>(xr[t].s[b])), accf[h][t]);
      }
    }
  }
}

// One half (8 rows) of q6_k block b for TT tokens, exact in 32 bits:
//   sc0 sum_{first 16} (code - 32) a + sc1 sum_{second 16} (code - 32) a,
// the offset taken out as 32 (sc0 h + sc1 (s - h)) with h and s the activation's half and block
// sums. sc points at the 16 rows' scales of the block's first sub-block.
template <int TT>
inline void Q6KHalfBlock(const uint8_t* blk, const uint8_t* sc, int half,
                         const packed::Int8ActivationRow* xr, int64_t b, __m256i* acc) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
  // Per row lane: [sc0, sc0] and [sc1, sc1] to scale the pair sums, [32 sc0, 32 sc1] (<= 4096 in
  // magnitude, fits int16) for the offset.
  const __m128i s0 = Load64(sc + half * 8), s1 = Load64(sc + 16 + half * 8);
  const __m256i sc0 = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(s0, s0));
  const __m256i sc1 = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(s1, s1));
  const __m256i sc32 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_unpacklo_epi8(s0, s1)), 5);
  for (int t = 0; t < TT; ++t) {
    const int32_t hs = xr[t].h[b];
    acc[t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                              _mm256_madd_epi16(sc32, Pair16(hs, xr[t].s[b] - hs)));
  }
  for (int v = 0; v < 2; ++v) {
    // High-bit vector v serves pairs 2 v (bits 0-3) and 2 v + 1 (bits 4-7); the 16-bit shifts
    // carry bits across bytes only where the 0x30 mask drops them.
    const __m256i hb =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 256 + v * 64 + half * 32));
    const __m256i n0 =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + (2 * v) * 64 + half * 32));
    const __m256i n1 =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + (2 * v + 1) * 64 + half * 32));
    const __m256i lo0 = _mm256_or_si256(_mm256_and_si256(n0, low4),
                                        _mm256_and_si256(_mm256_slli_epi16(hb, 4), bits45));
    const __m256i hi0 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(n0, 4), low4),
                                        _mm256_and_si256(_mm256_slli_epi16(hb, 2), bits45));
    const __m256i lo1 = _mm256_or_si256(_mm256_and_si256(n1, low4), _mm256_and_si256(hb, bits45));
    const __m256i hi1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(n1, 4), low4),
                                        _mm256_and_si256(_mm256_srli_epi16(hb, 2), bits45));
    for (int t = 0; t < TT; ++t) {
      // Low nibbles are the first 16 columns, high nibbles the second: separate scales. Two pair
      // sums of codes <= 63 times |a| <= 127 reach at most 4 * 63 * 127 = 32004: no saturation.
      const int8_t* xq = xr[t].q + b * 32 + 8 * v;
      const __m256i first =
          _mm256_add_epi16(_mm256_maddubs_epi16(lo0, _mm256_set1_epi32(Load32(xq))),
                           _mm256_maddubs_epi16(lo1, _mm256_set1_epi32(Load32(xq + 4))));
      const __m256i second =
          _mm256_add_epi16(_mm256_maddubs_epi16(hi0, _mm256_set1_epi32(Load32(xq + 16))),
                           _mm256_maddubs_epi16(hi1, _mm256_set1_epi32(Load32(xq + 20))));
      acc[t] = _mm256_add_epi32(
          acc[t], _mm256_add_epi32(_mm256_madd_epi16(first, sc0), _mm256_madd_epi16(second, sc1)));
    }
  }
}

// q6_k super-block (8 blocks of 32 columns, activation blocks b0 ..) for TT tokens:
// d_a d sum per block, as the reference.
template <int TT>
inline void Q6KSuperBlock(const uint8_t* rec, const packed::Int8ActivationRow* xr, int64_t b0,
                          __m256 (*accf)[TT]) {
  for (int j = 0; j < 8; ++j) {
    const int64_t b = b0 + j;
    for (int h = 0; h < 2; ++h) {
      __m256i acc[TT];
      Q6KHalfBlock<TT>(rec + packed::kQ6KBlocks + j * packed::kQ6KBlock,
                       rec + packed::kQ6KScales + j * 32, h, xr, b, acc);
      const __m256 d = _mm256_cvtph_ps(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + packed::kQ6KD + h * 16)));
      for (int t = 0; t < TT; ++t) {
        accf[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[t]),
                                     _mm256_mul_ps(d, _mm256_set1_ps(xr[t].d[b])), accf[h][t]);
      }
    }
  }
}

template <DType T, int TT>
void KQuantTile(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes, float* y,
                int64_t ldy, int64_t valid) {
  constexpr size_t kRecord = T == DType::kQ4_K ? packed::kQ4KRecord : packed::kQ6KRecord;
  packed::Int8ActivationRow xr[TT];
  for (int t = 0; t < TT; ++t) xr[t] = packed::ViewInt8Activations(x + t * x_row_bytes, k);
  __m256 accf[2][TT];
  for (int h = 0; h < 2; ++h) {
    for (int t = 0; t < TT; ++t) accf[h][t] = _mm256_setzero_ps();
  }
  for (int64_t s = 0; s < k / kQK_K; ++s) {
    const uint8_t* rec = group + static_cast<size_t>(s) * kRecord;
    packed::PrefetchAhead<TT>(rec, kRecord);
    if constexpr (T == DType::kQ4_K) {
      Q4KSuperBlock<TT>(rec, xr, s * 8, accf);
    } else {
      Q6KSuperBlock<TT>(rec, xr, s * 8, accf);
    }
  }
  for (int t = 0; t < TT; ++t) StoreGroup(y + t * ldy, accf[0][t], accf[1][t], valid);
}

template <DType T, size_t... I>
constexpr std::array<Int8TileFn, sizeof...(I)> KQuantTiles(std::index_sequence<I...>) {
  return {KQuantTile<T, static_cast<int>(I) + 1>...};
}

void KQuantMatMul(const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y, int64_t ldy,
                  int64_t n_tokens, int64_t r0, int64_t r1) {
  static constexpr auto kQ4KTiles = KQuantTiles<DType::kQ4_K>(std::make_index_sequence<kTile>());
  static constexpr auto kQ6KTiles = KQuantTiles<DType::kQ6_K>(std::make_index_sequence<kTile>());
  RunInt8Tiles(w.dtype == DType::kQ4_K ? kQ4KTiles.data() : kQ6KTiles.data(), w, x, x_row_bytes, y,
               ldy, n_tokens, r0, r1);
}

// Runs FloatTile<T, TT, G> over groups [g, g + G) for tokens [t0, t0 + TT).
template <DType T, int TT, int G>
void FloatStep(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy, int64_t r1,
               int64_t g, int64_t t0) {
  const size_t group_bytes = packed::GroupBytes(w.dtype, w.cols);
  const uint8_t* groups[G];
  float* ys[G];
  int64_t valid[G];
  for (int i = 0; i < G; ++i) {
    groups[i] = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(g + i) * group_bytes;
    ys[i] = y + t0 * ldy + (g + i) * kPackRows;
    valid[i] = std::min<int64_t>(kPackRows, r1 - (g + i) * kPackRows);
  }
  FloatTile<T, TT, G>(groups, w.cols, x + t0 * x_stride, x_stride, ys, ldy, valid);
}

// This path's pieces of the shared schedule (kernels/packed/matmul_schedule.h).
struct Path {
  static constexpr int kFloatTile = kTile;
  template <DType T, int TT, int G>
  static void Step(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                   int64_t r1, int64_t g, int64_t t0) {
    FloatStep<T, TT, G>(w, x, x_stride, y, ldy, r1, g, t0);
  }
  static void Int8MatMul(bool q4, const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                         int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
    avx2::Int8MatMul(q4, w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
  }
  static void KQuantMatMul(const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                           int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
    avx2::KQuantMatMul(w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
  }
  static void SparseMatMul(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                           int64_t n_tokens, int64_t r0, int64_t r1) {
    avx2::SparseMatMul(w, x, x_stride, y, ldy, n_tokens, r0, r1);
  }
};

}  // namespace

size_t PackedBytes(DType dtype, int64_t rows, int64_t cols) {
  return packed::PackedBytes(dtype, rows, cols);
}

void Pack(DType dtype, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t r0,
          int64_t r1, void* out) {
  packed::Pack(dtype, packed::Int8Form::kSigned8, w, w_row_bytes, rows, cols, r0, r1, out);
}

size_t ActivationRowBytes(DType weight, int64_t k) {
  return Traits(weight).quantized ? packed::Int8ActivationRowBytes(k)
                                  : static_cast<size_t>(k) * sizeof(float);
}

void ConvertActivation(DType weight, const float* x, void* out, int64_t k) {
  if (Traits(weight).quantized) {
    QuantizeInt8(x, out, k);
  } else {
    std::memcpy(out, x, static_cast<size_t>(k) * sizeof(float));
  }
}

void MatMul(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
            int64_t n_tokens, int64_t r0, int64_t r1) {
  packed::MatMulByPath<Path>(w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
}

}  // namespace slimlm::kernels::avx2
