// AVX2 attention (with FMA and F16C), tuned for decode: one query position, `group` query heads
// sharing a key/value head, n_kv cached rows of f32, f16 or q8_0.
//
// The method of attention_avx512.cc with 8 lanes: per tile of positions, scores 8 positions at a
// time from key rows widened in registers and transposed (each key row read once for all heads,
// no horizontal sums), an online softmax per head, then the value rows streamed through output
// blocks of up to 4 heads x 16 dimensions held in 8 registers. q8_0 block scales are applied once
// per block and position: to the transposed keys (8 positions' scales, one gather), and folded
// into the weights of the values (FoldScales).

// GCC 12 before 12.3 reports its own intrinsics' "undefined" placeholder operands as used
// uninitialized once inlined at -O1 (GCC bug 105593); the pragma must precede the header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/attention_tiles.h"
#include "kernels/ref/ref_kernels.h"
#include "kernels/x86/attention_x86.h"
#include "kernels/x86/vec_math_avx2.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::avx2 {
namespace {

constexpr int kLanes = 8;
// Positions per tile of FlashAttention (a multiple of kLanes): scores of a tile take
// group * kFlashTile floats, and a tile of f16 keys and values for head_dim 64 (64 KB) stays in L2.
constexpr int64_t kFlashTile = 256;
constexpr int kScoreHeads = 4;  // Heads per pass of the score kernel (8 + 4 registers of 16).
constexpr int kValueHeads = 4;  // Heads x vectors per pass of the value kernel (8 registers).
constexpr int kValueVectors = 2;
// Chunks of positions between the keys being read and those being fetched (32 rows ahead).
constexpr int64_t kPrefetchChunks = 4;

// Lanes [0, n) set.
__m256i FirstLanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(n, kLanes))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Lanes [8 j, 8 j + width) of an f32 or f16 row as f32, the others 0 (width <= 8). q8_0 rows go
// by LoadCodes, their scales applied per block and position (below).
template <DType T>
__m256 LoadRow(const uint8_t* row, int64_t j, int64_t width) {
  static_assert(T == DType::kF32 || T == DType::kF16, "q8_0 rows go by LoadCodes");
  if constexpr (T == DType::kF32) {
    const float* x = reinterpret_cast<const float*>(row) + kLanes * j;
    return width == kLanes ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, FirstLanes(width));
  } else {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + kLanes * j;
    if (width == kLanes)
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
    uint16_t tail[kLanes] = {};
    std::memcpy(tail, h, static_cast<size_t>(width) * sizeof(uint16_t));
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tail)));
  }
}

// The f32 scales of block b of up to 8 q8_0 rows, `stride` bytes apart (lanes from n on: 0), by
// one gather of the 32-bit words that start with them.
inline __m256 BlockScales(const uint8_t* rows, size_t stride, int64_t n, int64_t b) {
  const __m256i offsets =
      _mm256_add_epi32(_mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32(static_cast<int32_t>(stride))),
                       _mm256_set1_epi32(static_cast<int32_t>(b * sizeof(BlockQ8_0))));
  const __m256i words = _mm256_and_si256(
      _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), reinterpret_cast<const int*>(rows),
                                  offsets, FirstLanes(n), 1),
      _mm256_set1_epi32(0xffff));
  return _mm256_cvtph_ps(
      _mm_packus_epi32(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1)));
}

// Codes [8 h, 8 h + 8) of block b of a q8_0 row as f32, unscaled.
inline __m256 LoadCodes(const uint8_t* row, int64_t b, int64_t h) {
  const BlockQ8_0* block = reinterpret_cast<const BlockQ8_0*>(row) + b;
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(block->qs + 8 * h))));
}

// In place: r[i] lane j becomes r[j] lane i.
inline void Transpose8(__m256 r[8]) {
  __m256 t[8];
// u[4 i + c] holds, in 128-bit lane l, column 4 l + c of rows 4 i .. 4 i + 3.
#pragma GCC unroll 16
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
#pragma GCC unroll 16
  for (int c = 0; c < 4; ++c) {
    t[c] = _mm256_permute2f128_ps(r[c], r[4 + c], 0x20);
    t[4 + c] = _mm256_permute2f128_ps(r[c], r[4 + c], 0x31);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) r[i] = t[i];
}

// Scores of GB heads for up to 8 positions:
//   k: n <= 8 key rows, k_stride bytes apart; q: GB query rows, q_stride floats apart
//   s: GB rows, s_stride floats apart; s[g][i] = scale * q_g . k_i for i < n, -inf for i >= n.
template <DType T, int GB>
void ScoreChunk(const uint8_t* k, size_t k_stride, int64_t n, const float* q, int64_t q_stride,
                int64_t head_dim, float scale, float* s, int64_t s_stride) {
  __m256 acc[GB];
#pragma GCC unroll 16
  for (int g = 0; g < GB; ++g) acc[g] = _mm256_setzero_ps();
  for (int64_t j = 0; j * kLanes < head_dim; ++j) {
    const int64_t width = std::min<int64_t>(kLanes, head_dim - j * kLanes);
    __m256 c[kLanes];
    if constexpr (T == DType::kQ8_0) {
      // Codes unscaled; after the transpose, one multiply by the 8 positions' scales.
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        c[i] = i < n ? LoadCodes(k + i * k_stride, j / 4, j % 4) : _mm256_setzero_ps();
      }
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        c[i] = i < n ? LoadRow<T>(k + i * k_stride, j, width) : _mm256_setzero_ps();
      }
    }
    Transpose8(c);
    if constexpr (T == DType::kQ8_0) {
      const __m256 d = BlockScales(k, k_stride, n, j / 4);
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) c[i] = _mm256_mul_ps(c[i], d);
    }
    // c[d] holds dimension 8 j + d of the 8 positions. The query slice goes to a local block
    // (zero past head_dim), so that every broadcast below has a constant address.
    float qj[GB * kLanes];
    const __m256i mask = FirstLanes(width);
#pragma GCC unroll 16
    for (int g = 0; g < GB; ++g) {
      _mm256_storeu_ps(qj + g * kLanes, _mm256_maskload_ps(q + g * q_stride + j * kLanes, mask));
    }
    // Without this barrier GCC sees through the block and broadcasts from 32 addresses into q
    // that it keeps on the stack.
    asm volatile("" : : "r"(qj) : "memory");
#pragma GCC unroll 16
    for (int d = 0; d < kLanes; ++d) {
#pragma GCC unroll 16
      for (int g = 0; g < GB; ++g) {
        acc[g] = _mm256_fmadd_ps(c[d], _mm256_set1_ps(qj[g * kLanes + d]), acc[g]);
      }
    }
  }
  const __m256 minus_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  const __m256 valid = _mm256_castsi256_ps(FirstLanes(n));
#pragma GCC unroll 16
  for (int g = 0; g < GB; ++g) {
    const __m256 scaled = _mm256_mul_ps(acc[g], _mm256_set1_ps(scale));
    _mm256_storeu_ps(s + g * s_stride, _mm256_blendv_ps(minus_inf, scaled, valid));
  }
}

using ScoreFn = void (*)(const uint8_t*, size_t, int64_t, const float*, int64_t, int64_t, float,
                         float*, int64_t);

template <DType T>
constexpr std::array<ScoreFn, kScoreHeads> kScoreFns = {ScoreChunk<T, 1>, ScoreChunk<T, 2>,
                                                        ScoreChunk<T, 3>, ScoreChunk<T, 4>};

// Prefetches the cache lines of rows [r0, r1) of `bytes` bytes each, stride bytes apart.
void PrefetchRows(const void* base, size_t stride, size_t bytes, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const char* row = static_cast<const char*>(base) + static_cast<size_t>(r) * stride;
    for (size_t offset = 0; offset < bytes; offset += 64) _mm_prefetch(row + offset, _MM_HINT_T0);
    _mm_prefetch(row + bytes - 1, _MM_HINT_T0);
  }
}

// Scores of positions [t0, t0 + n) for every head: s: (group, s_stride), lanes past n are -inf.
// While the arithmetic runs, the keys kPrefetchChunks chunks ahead and the values of this chunk
// (which the value pass reads next) are fetched, so that memory latency overlaps the arithmetic.
template <DType T>
void ScoreTile(const AttentionArgs& a, int64_t t0, int64_t n, float* s, int64_t s_stride) {
  const uint8_t* k = static_cast<const uint8_t*>(a.k) + static_cast<size_t>(t0) * a.k_stride;
  const size_t k_bytes = RowBytes(a.k_type, a.head_dim), v_bytes = RowBytes(a.v_type, a.head_dim);
  for (int64_t i = 0; i < n; i += kLanes) {
    const int64_t chunk = std::min<int64_t>(kLanes, n - i);
    const int64_t ahead = t0 + i + kPrefetchChunks * kLanes;
    PrefetchRows(a.k, a.k_stride, k_bytes, ahead, std::min(ahead + kLanes, a.n_kv));
    PrefetchRows(a.v, a.v_stride, v_bytes, t0 + i, t0 + i + chunk);
    for (int64_t g = 0; g < a.group; g += kScoreHeads) {
      const int64_t heads = std::min<int64_t>(kScoreHeads, a.group - g);
      kScoreFns<T>[heads - 1](k + static_cast<size_t>(i) * a.k_stride, a.k_stride, chunk,
                              a.q + g * a.head_dim, a.head_dim, a.head_dim, a.scale,
                              s + g * s_stride + i, s_stride);
    }
  }
}

// out[g][8 j0 .. 8 j0 + 8 DB) += sum over t < n of w(g, t) * v_t[same lanes], for GB heads:
//   v: n value rows, v_stride bytes apart
//   w: f32 and f16 values: w(g, t) = w[g * w_stride + t], the softmax weights. q8_0 values:
//     w(g, t) = w[(g * w_blocks + j0 / 4) * w_stride + t], the weights times row t's scale of
//     q8_0 block j0 / 4 (FoldScales), where both vectors lie (j0 is even), so that codes are only
//     widened.
//   out: GB rows, out_stride floats apart; the last vector has `last` lanes (<= 8).
template <DType T, int GB, int DB>
void ValueBlock(const uint8_t* v, size_t v_stride, int64_t n, const float* w, int64_t w_stride,
                int64_t w_blocks, float* out, int64_t out_stride, int64_t j0, int64_t last) {
  constexpr bool kQ8 = T == DType::kQ8_0;
  const __m256i tail = FirstLanes(last);
  const float* wb = w + (kQ8 ? j0 / 4 : 0) * w_stride;
  __m256 acc[GB][DB];
#pragma GCC unroll 16
  for (int g = 0; g < GB; ++g) {
#pragma GCC unroll 16
    for (int i = 0; i < DB; ++i) {
      acc[g][i] = _mm256_maskload_ps(out + g * out_stride + (j0 + i) * kLanes,
                                     i == DB - 1 ? tail : _mm256_set1_epi32(-1));
    }
  }
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = v + static_cast<size_t>(t) * v_stride;
    __m256 x[DB];
#pragma GCC unroll 16
    for (int i = 0; i < DB; ++i) {
      if constexpr (kQ8) {
        x[i] = LoadCodes(row, j0 / 4, (j0 + i) % 4);
      } else {
        x[i] = LoadRow<T>(row, j0 + i, i == DB - 1 ? last : kLanes);
      }
    }
#pragma GCC unroll 16
    for (int g = 0; g < GB; ++g) {
      const __m256 wg = _mm256_broadcast_ss(wb + g * w_blocks * w_stride + t);
#pragma GCC unroll 16
      for (int i = 0; i < DB; ++i) acc[g][i] = _mm256_fmadd_ps(x[i], wg, acc[g][i]);
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < GB; ++g) {
#pragma GCC unroll 16
    for (int i = 0; i < DB; ++i) {
      _mm256_maskstore_ps(out + g * out_stride + (j0 + i) * kLanes,
                          i == DB - 1 ? tail : _mm256_set1_epi32(-1), acc[g][i]);
    }
  }
}

using ValueFn = void (*)(const uint8_t*, size_t, int64_t, const float*, int64_t, int64_t, float*,
                         int64_t, int64_t, int64_t);

template <DType T, int GB>
constexpr std::array<ValueFn, kValueVectors> kValueRow = {ValueBlock<T, GB, 1>,
                                                          ValueBlock<T, GB, 2>};

template <DType T>
constexpr std::array<std::array<ValueFn, kValueVectors>, kValueHeads> kValueFns = {
    kValueRow<T, 1>, kValueRow<T, 2>, kValueRow<T, 3>, kValueRow<T, 4>};

// out[g] += sum over positions [t0, t0 + n) of p[g][t - t0] * v_t, for every head.
template <DType T>
void ValueTile(const AttentionArgs& a, int64_t t0, int64_t n, const float* p, int64_t p_stride) {
  const uint8_t* v = static_cast<const uint8_t*>(a.v) + static_cast<size_t>(t0) * a.v_stride;
  const int64_t vectors = (a.head_dim + kLanes - 1) / kLanes;
  const int64_t tail = a.head_dim - (vectors - 1) * kLanes;
  const float* w = p;
  int64_t w_stride = p_stride, w_blocks = 1;
  if constexpr (T == DType::kQ8_0) {
    // One gather of 8 rows' scales, then one multiply per head.
    w = FoldScales<kLanes>(a, v, n, p, &w_stride,
                           [&](const uint8_t* rows, int64_t count, int64_t b, const float* pt,
                               float* wt, int64_t w_head) {
                             const __m256 d = BlockScales(rows, a.v_stride, count, b);
                             const __m256i valid = FirstLanes(count);
                             for (int64_t g = 0; g < a.group; ++g) {
                               const __m256 pg = _mm256_maskload_ps(pt + g * p_stride, valid);
                               _mm256_storeu_ps(wt + g * w_head, _mm256_mul_ps(pg, d));
                             }
                           });
    w_blocks = a.head_dim / 32;
  }
  for (int64_t g = 0; g < a.group; g += kValueHeads) {
    const int64_t heads = std::min<int64_t>(kValueHeads, a.group - g);
    for (int64_t j = 0; j < vectors; j += kValueVectors) {
      const int64_t count = std::min<int64_t>(kValueVectors, vectors - j);
      kValueFns<T>[heads - 1][count - 1](v, a.v_stride, n, w + g * w_blocks * w_stride, w_stride,
                                         w_blocks, a.out + g * a.head_dim, a.head_dim, j,
                                         j + count == vectors ? tail : kLanes);
    }
  }
}

bool Supported(DType type) {
  return type == DType::kF32 || type == DType::kF16 || type == DType::kQ8_0;
}

void Scores(const AttentionArgs& a, int64_t t0, int64_t n, float* s, int64_t s_stride) {
  switch (a.k_type) {
    case DType::kF32:
      return ScoreTile<DType::kF32>(a, t0, n, s, s_stride);
    case DType::kF16:
      return ScoreTile<DType::kF16>(a, t0, n, s, s_stride);
    default:
      return ScoreTile<DType::kQ8_0>(a, t0, n, s, s_stride);
  }
}

void Values(const AttentionArgs& a, int64_t t0, int64_t n, const float* p, int64_t p_stride) {
  switch (a.v_type) {
    case DType::kF32:
      return ValueTile<DType::kF32>(a, t0, n, p, p_stride);
    case DType::kF16:
      return ValueTile<DType::kF16>(a, t0, n, p, p_stride);
    default:
      return ValueTile<DType::kQ8_0>(a, t0, n, p, p_stride);
  }
}

// x[0, n) *= factor.
void Scale(float* x, int64_t n, float factor) {
  const __m256 f = _mm256_set1_ps(factor);
  for (int64_t d = 0; d < n; d += kLanes) {
    const __m256i mask = FirstLanes(n - d);
    _mm256_maskstore_ps(x + d, mask, _mm256_mul_ps(_mm256_maskload_ps(x + d, mask), f));
  }
}

// Turns the scores of one tile into exp(score - m) with m the running maximum of head g, and
// rescales that head's running sum l and output to the new maximum.
//   s: (n rounded up to 8,) with -inf past n; out: (head_dim,)
void SoftmaxUpdate(float* s, int64_t n, float* m, float* l, float* out, int64_t head_dim) {
  const int64_t vectors = (n + kLanes - 1) / kLanes;
  __m256 vmax = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < vectors; ++i) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + i * kLanes));
  const float m_new = std::max(*m, ReduceMax(vmax));
  // exp(-inf) = 0 on the first tile, when the output and the sum are still zero.
  const float alpha = std::exp(*m - m_new);
  const __m256 vm = _mm256_set1_ps(m_new);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t i = 0; i < vectors; ++i) {
    const __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(s + i * kLanes), vm));
    _mm256_storeu_ps(s + i * kLanes, e);
    sum = _mm256_add_ps(sum, e);
  }
  *l = *l * alpha + ReduceAdd(sum);
  *m = m_new;
  if (alpha != 1.0f) Scale(out, head_dim, alpha);
}

// This path's pieces of the shared tile loop (kernels/attention_tiles.h).
struct Path {
  static constexpr int64_t kLanes = avx2::kLanes;
  static constexpr int64_t kFlashTile = avx2::kFlashTile;
  static bool Supported(DType type) { return avx2::Supported(type); }
  static void TileScores(const AttentionArgs& a, int64_t t0, int64_t n, float* s, int64_t st) {
    Scores(a, t0, n, s, st);
  }
  static void TileValues(const AttentionArgs& a, int64_t t0, int64_t n, const float* p,
                         int64_t st) {
    Values(a, t0, n, p, st);
  }
  static void TileSoftmax(float* s, int64_t n, float* m, float* l, float* out, int64_t head_dim) {
    SoftmaxUpdate(s, n, m, l, out, head_dim);
  }
  static void ScaleRow(float* x, int64_t n, float factor) { Scale(x, n, factor); }
};

}  // namespace

void Attention(const AttentionArgs& args) { AttentionByPath<Path>(args); }

void FlashAttention(const AttentionArgs& args) { FlashAttentionByPath<Path>(args); }

void ExpRow(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) _mm256_storeu_ps(y + i, Exp(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i mask = FirstLanes(n - i);
    _mm256_maskstore_ps(y + i, mask, Exp(_mm256_maskload_ps(x + i, mask)));
  }
}

}  // namespace slimlm::kernels::avx2
