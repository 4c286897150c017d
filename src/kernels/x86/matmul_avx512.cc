// AVX-512 (with VNNI) matrix products on the packed layouts of kernels/packed/.
//
// One 512-bit vector holds one value of each of the 16 rows of a packed group, so each lane
// accumulates one output row and activations are broadcast. Up to kTile tokens are processed
// per pass over a group's weights: decoding (1 token) streams the weights once, prompt
// processing reuses each weight vector for kTile tokens from registers.
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

namespace slimlm::kernels::avx512 {
namespace {

using packed::kPackRows;
constexpr int kTile = 8;

inline __mmask16 RowMask(int64_t valid) {
  return valid >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << valid) - 1);
}

inline int32_t Load32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// --- Activations ---

// roundf() for 16 floats: rounds half away from zero (the vector rounding modes round half to
// even), so quantized values equal the reference's bit for bit.
inline __m512i RoundHalfAway(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
  return _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
}

void QuantizeInt8(const float* x, void* out, int64_t k) {
  uint8_t* p = static_cast<uint8_t*>(out);
  int8_t* q = reinterpret_cast<int8_t*>(p);
  float* d = reinterpret_cast<float*>(p + k);
  int32_t* s = reinterpret_cast<int32_t*>(p + k + (k / 32) * 4);
  int32_t* h = reinterpret_cast<int32_t*>(p + k + (k / 32) * 8);
  for (int64_t b = 0; b < k / 32; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + b * 32);
    const __m512 x1 = _mm512_loadu_ps(x + b * 32 + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float scale = amax / 127.0f;
    const __m512 inv = _mm512_set1_ps(scale != 0.0f ? 1.0f / scale : 0.0f);
    const __m512i q0 = RoundHalfAway(_mm512_mul_ps(x0, inv));
    const __m512i q1 = RoundHalfAway(_mm512_mul_ps(x1, inv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * 32 + 16), _mm512_cvtepi32_epi8(q1));
    h[b] = _mm512_reduce_add_epi32(q0);
    s[b] = h[b] + _mm512_reduce_add_epi32(q1);
    d[b] = F16ToF32(F32ToF16(scale));
  }
}

// --- Float weights: f32, f16, bf16 ---

template <DType T>
inline __m512 Load16(const uint8_t* group, int64_t c) {
  if constexpr (T == DType::kF32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(group) + c * kPackRows);
  } else {
    const __m256i h =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(group + c * kPackRows * 2));
    if constexpr (T == DType::kF16) {
      return _mm512_cvtph_ps(h);
    } else {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
  }
}

// y[t, 16 rows] of G groups for TT tokens of f32 activations x (rows x_stride floats apart).
// Each row is one sequential sum over the columns whatever TT and G are, so results do not depend
// on how tokens are batched; G > 1 gives a single token independent chains to hide FMA latency.
template <DType T, int TT, int G>
void FloatTile(const uint8_t* const* groups, int64_t cols, const float* x, int64_t x_stride,
               float* const* ys, int64_t ldy, const __mmask16* masks) {
  __m512 acc[G][TT];
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < TT; ++t) acc[g][t] = _mm512_setzero_ps();
  }
  for (int64_t c = 0; c < cols; ++c) {
    for (int g = 0; g < G; ++g) {
      const __m512 w = Load16<T>(groups[g], c);
      for (int t = 0; t < TT; ++t) {
        acc[g][t] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[t * x_stride + c]), acc[g][t]);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < TT; ++t) _mm512_mask_storeu_ps(ys[g] + t * ldy, masks[g], acc[g][t]);
  }
}

// --- 8-bit weights: q8_0 (stored +128) and q4_0, times int8 activations ---

template <bool kQ4, int TT>
void Int8Tile(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes, float* y,
              int64_t ldy, __mmask16 mask) {
  constexpr size_t kRecord = kQ4 ? packed::kQ4Record : packed::kQ8Record;
  constexpr int kScales = kQ4 ? 256 : 512;
  constexpr int kOffsetShift = kQ4 ? 3 : 7;  // Weights are stored as value + 8 (128).
  // Independent integer accumulators per token: with few tokens, the 8 dot products of a block
  // would otherwise form one long dependency chain. Integer sums are exact, so the split does
  // not change any result.
  constexpr int kAcc = TT >= 4 ? 1 : (TT >= 2 ? 2 : 4);
  // One base pointer per token; the scales and sums of a row sit at fixed offsets from its
  // values (int8_activations.h), which keeps the pointers in registers.
  const int8_t* xq[TT];
  for (int t = 0; t < TT; ++t) xq[t] = reinterpret_cast<const int8_t*>(x + t * x_row_bytes);
  const int64_t d_offset = k, s_offset = k + (k / 32) * 4;
  auto scale_of = [&](int t, int64_t b) {
    float v;
    std::memcpy(&v, xq[t] + d_offset + b * 4, sizeof(v));
    return v;
  };
  auto sum_of = [&](int t, int64_t b) {
    return _mm512_broadcastd_epi32(_mm_loadu_si32(xq[t] + s_offset + b * 4));
  };
  // Each block's integer sum starts at the bits of the float 1.5 * 2^23 minus the weights'
  // offset times the activations' sum, so that at the end the bits are the float
  // 1.5 * 2^23 + (the exact dot product): one float subtraction converts it, where a scalar
  // shift, a broadcast from a general register, an integer subtraction and a conversion did
  // (the sums stay far below 2^22, where this is exact).
  const __m512i magic_bits = _mm512_set1_epi32(0x4B400000);
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  __m512 accf[TT];
  for (int t = 0; t < TT; ++t) accf[t] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const int64_t nb = k / 32;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* rec = group + static_cast<size_t>(b) * kRecord;
    packed::PrefetchAhead<TT>(rec, kRecord);
    __m512i acc[TT][kAcc];
    for (int t = 0; t < TT; ++t) {
      acc[t][0] = _mm512_sub_epi32(magic_bits, _mm512_slli_epi32(sum_of(t, b), kOffsetShift));
      for (int a = 1; a < kAcc; ++a) acc[t][a] = _mm512_setzero_si512();
    }
    // Product j (0..7) of the block goes to accumulator j % kAcc.
    if constexpr (kQ4) {
      for (int p = 0; p < 4; ++p) {
        __m512i v = _mm512_loadu_si512(rec + p * 64);
        // Keeps v in a register: otherwise the compiler folds the load into both of its uses
        // below and reads the same 64 bytes twice.
        __asm__("" : "+v"(v));
        const __m512i lo = _mm512_and_si512(v, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        for (int t = 0; t < TT; ++t) {
          const int8_t* xb = xq[t] + b * 32;
          __m512i& a0 = acc[t][(2 * p) % kAcc];
          __m512i& a1 = acc[t][(2 * p + 1) % kAcc];
          a0 = _mm512_dpbusd_epi32(a0, lo, _mm512_set1_epi32(Load32(xb + 4 * p)));
          a1 = _mm512_dpbusd_epi32(a1, hi, _mm512_set1_epi32(Load32(xb + 16 + 4 * p)));
        }
      }
    } else {
      for (int q = 0; q < 8; ++q) {
        const __m512i v = _mm512_loadu_si512(rec + q * 64);
        for (int t = 0; t < TT; ++t) {
          __m512i& a = acc[t][q % kAcc];
          a = _mm512_dpbusd_epi32(a, v, _mm512_set1_epi32(Load32(xq[t] + b * 32 + 4 * q)));
        }
      }
    }
    const __m512 ws =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + kScales)));
    for (int t = 0; t < TT; ++t) {
      __m512i sum = acc[t][0];
      for (int a = 1; a < kAcc; ++a) sum = _mm512_add_epi32(sum, acc[t][a]);
      const __m512 exact = _mm512_sub_ps(_mm512_castsi512_ps(sum), magic);
      accf[t] = _mm512_fmadd_ps(exact, _mm512_mul_ps(ws, _mm512_set1_ps(scale_of(t, b))), accf[t]);
    }
  }
  for (int t = 0; t < TT; ++t) _mm512_mask_storeu_ps(y + t * ldy, mask, accf[t]);
}

// Int8 tile functions for 1..kTile tokens, indexed by count - 1.
using Int8TileFn = void (*)(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes,
                            float* y, int64_t ldy, __mmask16 mask);

template <bool kQ4, size_t... I>
constexpr std::array<Int8TileFn, sizeof...(I)> Int8Tiles(std::index_sequence<I...>) {
  return {Int8Tile<kQ4, static_cast<int>(I) + 1>...};
}

// Runs tiles[tt - 1] (tt = 1..kTile tokens) over the groups covering rows [r0, r1): chunks of
// tokens outside, then groups, then the chunk's token tiles, so a group's weights stay in cache
// across token tiles and a chunk's activations across groups.
void RunTiles(const Int8TileFn* tiles, const Matrix& w, const uint8_t* x, size_t x_row_bytes,
              float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  const size_t group_bytes = packed::GroupBytes(w.dtype, w.cols);
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  const int64_t chunk = std::max<int64_t>(
      kTile, static_cast<int64_t>(packed::kChunkBytes / x_row_bytes) / kTile * kTile);
  for (int64_t c0 = 0; c0 < n_tokens; c0 += chunk) {
    const int64_t c1 = std::min(n_tokens, c0 + chunk);
    for (int64_t g = r0 / kPackRows; g * kPackRows < r1; ++g) {
      const __mmask16 mask = RowMask(std::min<int64_t>(kPackRows, r1 - g * kPackRows));
      const uint8_t* group = data + static_cast<size_t>(g) * group_bytes;
      for (int64_t t0 = c0; t0 < c1; t0 += kTile) {
        const int64_t tt = std::min<int64_t>(kTile, c1 - t0);
        tiles[tt - 1](group, w.cols, x + static_cast<size_t>(t0) * x_row_bytes, x_row_bytes,
                      y + t0 * ldy + g * kPackRows, ldy, mask);
      }
    }
  }
}

void Int8MatMul(bool q4, const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  static constexpr auto kQ8Tiles = Int8Tiles<false>(std::make_index_sequence<kTile>());
  static constexpr auto kQ4Tiles = Int8Tiles<true>(std::make_index_sequence<kTile>());
  const auto& tiles = q4 ? kQ4Tiles : kQ8Tiles;
  RunTiles(tiles.data(), w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
}

// --- K-quant weights: q4_k and q6_k, times int8 activations ---

// Rows' f32 values of 16 bytes at p, unsigned (q4_k scales, mins) or signed (q6_k scales).
inline __m512 BytesToFloat(const uint8_t* p, bool is_signed) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm512_cvtepi32_ps(is_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b));
}

inline __m512 HalfToFloat(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// One pass over a group's super-blocks for TT tokens. Codes are unsigned (q4_k 0..15, q6_k
// 0..63), so vpdpbusd takes them as they are. Per 32-column block, the products of the first
// and the second 16 columns (low and high nibbles) are kept apart, which q6_k's 16-wide
// sub-blocks need and which gives decoding two independent chains.
//   q4_k: y += d_a (d sc isum - dmin m s_a)
//   q6_k: y += d_a d (sc0 (isum0 - 32 h_a) + sc1 (isum1 - 32 (s_a - h_a)))
template <bool kQ6, int TT>
void KQuantTile(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes, float* y,
                int64_t ldy, __mmask16 mask) {
  packed::Int8ActivationRow xr[TT];
  for (int t = 0; t < TT; ++t) xr[t] = packed::ViewInt8Activations(x + t * x_row_bytes, k);
  __m512 accf[TT];
  for (int t = 0; t < TT; ++t) accf[t] = _mm512_setzero_ps();
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  const __m512i bits45 = _mm512_set1_epi8(0x30);
  const size_t record = kQ6 ? packed::kQ6KRecord : packed::kQ4KRecord;
  // With one or two tokens, each half's 4 dot products would form one dependency chain; split
  // them over kSplit accumulators (integer sums: the result does not change).
  constexpr int kSplit = TT <= 2 ? 2 : 1;
  for (int64_t sb = 0; sb < k / kQK_K; ++sb) {
    const uint8_t* rec = group + static_cast<size_t>(sb) * record;
    packed::PrefetchAhead<TT>(rec, record);
    const __m512 d = HalfToFloat(rec + (kQ6 ? packed::kQ6KD : packed::kQ4KD));
    for (int j = 0; j < 8; ++j) {
      const int64_t b = sb * 8 + j;
      const uint8_t* codes = kQ6 ? rec + packed::kQ6KBlocks + j * packed::kQ6KBlock
                                 : rec + packed::kQ4KCodes + j * 256;
      __m512i acc0[TT][kSplit], acc1[TT][kSplit];
      for (int t = 0; t < TT; ++t) {
        for (int a = 0; a < kSplit; ++a) acc0[t][a] = acc1[t][a] = _mm512_setzero_si512();
      }
      __m512i high[2];
      if constexpr (kQ6) {
        high[0] = _mm512_loadu_si512(codes + 256);
        high[1] = _mm512_loadu_si512(codes + 320);
      }
      for (int p = 0; p < 4; ++p) {
        __m512i v = _mm512_loadu_si512(codes + p * 64);
        __asm__("" : "+v"(v));  // One load for both uses (see Int8Tile).
        __m512i lo = _mm512_and_si512(v, low4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        if constexpr (kQ6) {
          // The high 2 bits of the low (high) nibble's codes sit at bits 0-1 (2-3) of the
          // pair's nibble in the high-bit vector; move them to bits 4-5.
          const __m512i hv = high[p / 2];
          if (p % 2 == 0) {
            lo = _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi16(hv, 4), bits45));
            hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_slli_epi16(hv, 2), bits45));
          } else {
            lo = _mm512_or_si512(lo, _mm512_and_si512(hv, bits45));
            hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_srli_epi16(hv, 2), bits45));
          }
        }
        for (int t = 0; t < TT; ++t) {
          const int8_t* xb = xr[t].q + b * 32;
          __m512i& a0 = acc0[t][p % kSplit];
          __m512i& a1 = acc1[t][p % kSplit];
          a0 = _mm512_dpbusd_epi32(a0, lo, _mm512_set1_epi32(Load32(xb + 4 * p)));
          a1 = _mm512_dpbusd_epi32(a1, hi, _mm512_set1_epi32(Load32(xb + 16 + 4 * p)));
        }
      }
      __m512i sum0[TT], sum1[TT];
      for (int t = 0; t < TT; ++t) {
        sum0[t] = acc0[t][0];
        sum1[t] = acc1[t][0];
        for (int a = 1; a < kSplit; ++a) {
          sum0[t] = _mm512_add_epi32(sum0[t], acc0[t][a]);
          sum1[t] = _mm512_add_epi32(sum1[t], acc1[t][a]);
        }
      }
      if constexpr (kQ6) {
        const uint8_t* sc = rec + packed::kQ6KScales + 32 * j;
        const __m512 ws0 = _mm512_mul_ps(d, BytesToFloat(sc, true));
        const __m512 ws1 = _mm512_mul_ps(d, BytesToFloat(sc + 16, true));
        for (int t = 0; t < TT; ++t) {
          const int32_t h = xr[t].h[b], s_all = xr[t].s[b];
          const __m512i e0 = _mm512_sub_epi32(sum0[t], _mm512_set1_epi32(32 * h));
          const __m512i e1 = _mm512_sub_epi32(sum1[t], _mm512_set1_epi32(32 * (s_all - h)));
          const __m512 da = _mm512_set1_ps(xr[t].d[b]);
          accf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(e0), _mm512_mul_ps(ws0, da), accf[t]);
          accf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(e1), _mm512_mul_ps(ws1, da), accf[t]);
        }
      } else {
        const __m512 ws = _mm512_mul_ps(d, BytesToFloat(rec + packed::kQ4KScales + 16 * j, false));
        const __m512 wm = _mm512_mul_ps(HalfToFloat(rec + packed::kQ4KDmin),
                                        BytesToFloat(rec + packed::kQ4KMins + 16 * j, false));
        for (int t = 0; t < TT; ++t) {
          const float da = xr[t].d[b];
          const __m512i isum = _mm512_add_epi32(sum0[t], sum1[t]);
          accf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(ws, _mm512_set1_ps(da)),
                                    accf[t]);
          accf[t] =
              _mm512_fnmadd_ps(wm, _mm512_set1_ps(da * static_cast<float>(xr[t].s[b])), accf[t]);
        }
      }
    }
  }
  for (int t = 0; t < TT; ++t) _mm512_mask_storeu_ps(y + t * ldy, mask, accf[t]);
}

template <bool kQ6, size_t... I>
constexpr std::array<Int8TileFn, sizeof...(I)> KQuantTiles(std::index_sequence<I...>) {
  return {KQuantTile<kQ6, static_cast<int>(I) + 1>...};
}

void KQuantMatMul(const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y, int64_t ldy,
                  int64_t n_tokens, int64_t r0, int64_t r1) {
  static constexpr auto kQ4KTiles = KQuantTiles<false>(std::make_index_sequence<kTile>());
  static constexpr auto kQ6KTiles = KQuantTiles<true>(std::make_index_sequence<kTile>());
  const auto& tiles = w.dtype == DType::kQ6_K ? kQ6KTiles : kQ4KTiles;
  RunTiles(tiles.data(), w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
}

// Runs FloatTile<T, TT, G> over groups [g, g + G) for tokens [t0, t0 + TT).
template <DType T, int TT, int G>
void FloatStep(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy, int64_t r1,
               int64_t g, int64_t t0) {
  const size_t group_bytes = packed::GroupBytes(w.dtype, w.cols);
  const uint8_t* groups[G];
  float* ys[G];
  __mmask16 masks[G];
  for (int i = 0; i < G; ++i) {
    groups[i] = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(g + i) * group_bytes;
    ys[i] = y + t0 * ldy + (g + i) * kPackRows;
    masks[i] = RowMask(std::min<int64_t>(kPackRows, r1 - (g + i) * kPackRows));
  }
  FloatTile<T, TT, G>(groups, w.cols, x + t0 * x_stride, x_stride, ys, ldy, masks);
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
    avx512::Int8MatMul(q4, w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
  }
  static void KQuantMatMul(const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                           int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
    avx512::KQuantMatMul(w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
  }
  static void SparseMatMul(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                           int64_t n_tokens, int64_t r0, int64_t r1) {
    avx512::SparseMatMul(w, x, x_stride, y, ldy, n_tokens, r0, r1);
  }
};

}  // namespace

size_t PackedBytes(DType dtype, int64_t rows, int64_t cols) {
  return packed::PackedBytes(dtype, rows, cols);
}

void Pack(DType dtype, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t r0,
          int64_t r1, void* out) {
  packed::Pack(dtype, packed::Int8Form::kOffset8, w, w_row_bytes, rows, cols, r0, r1, out);
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

}  // namespace slimlm::kernels::avx512
