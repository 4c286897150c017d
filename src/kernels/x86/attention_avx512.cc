// AVX-512 attention, tuned for decode: one query position, `group` query heads sharing a key/value
// head, n_kv cached rows of f32, f16 or q8_0.
//
// Positions go by tiles. For each tile:
//  1. Scores, 16 positions at a time: 16 key rows are widened to f32 in registers (F16C for f16,
//     int8 -> f32 times the block scale for q8_0) one 16-dimension slice at a time, transposed so
//     that each register holds one dimension of 16 positions, and multiplied by broadcast query
//     values for up to 8 heads. Each key row is read once for all heads, and no horizontal sums
//     are needed: the result is a vector of 16 scores per head. f16 keys are transposed as 16-bit
//     values before they are widened. Meanwhile the keys 128 rows ahead are prefetched, so that
//     memory latency overlaps the arithmetic. A head alone (no grouped-query attention) has no
//     query values to share a transpose with: its 16 positions take one dot product each, whose
//     partial sums are added across lanes for all 16 at once; q8_0 keys then go block by block,
//     each block's 16 sums times the positions' scales of that block.
//  2. Online softmax per head: the tile's maximum updates the running maximum m, the output
//     accumulated so far is rescaled by exp(m_old - m_new), scores become exp(score - m).
//  3. Values: each output block of up to 8 heads x 32 dimensions (4 heads x 64) stays in 16
//     registers while the tile's value rows stream through (each value row is widened once per
//     block of dimensions, not once per head), with the rows 128 ahead prefetched. q8_0 block
//     scales are first folded into the weights (FoldScales), so the rows are only widened.
// Attention is the same with one tile of n_kv positions; FlashAttention uses tiles of kFlashTile.
// Loops over registers carry "#pragma GCC unroll" so that arrays of vectors stay in registers.

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
#include "kernels/x86/vec_math_avx512.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::avx512 {
namespace {

constexpr int kLanes = 16;
// Positions per tile of FlashAttention (a multiple of kLanes): scores of a tile take
// group * kFlashTile floats, and a tile of f16 keys and values for head_dim 64 (64 KB) stays in L2.
constexpr int64_t kFlashTile = 256;
constexpr int kScoreHeads = 8;  // Heads per pass of the score kernel (16 + 8 registers).
// Heads x vectors per pass of the value kernel: 8 x 2 or 4 x 4 (16 registers).
constexpr int kValueHeads = 8;
constexpr int kValueVectors = 4;
// Chunks of positions between the keys being read and those being fetched (128 rows ahead),
// and rows between the values being read and those being fetched: both measured, on a
// stream from memory of head-major f16 rows of 64 (bench/kernels/attention_bench.cc).
constexpr int64_t kPrefetchChunks = 8;
constexpr int64_t kValuePrefetchRows = 128;

__mmask16 FirstLanes(int64_t n) {
  return n >= kLanes ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// Lanes [16 j, 16 j + 16) of a row of type T as f32; lanes outside `mask` read nothing and are 0.
// q8_0 rows have whole blocks (head_dim a multiple of 32), so their mask is always full.
template <DType T>
__m512 LoadRow(const uint8_t* row, int64_t j, __mmask16 mask) {
  if constexpr (T == DType::kF32) {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + kLanes * j);
  } else if constexpr (T == DType::kF16) {
    return _mm512_cvtph_ps(
        _mm256_maskz_loadu_epi16(mask, reinterpret_cast<const uint16_t*>(row) + kLanes * j));
  } else {
    static_assert(T == DType::kQ8_0);
    const BlockQ8_0* block = reinterpret_cast<const BlockQ8_0*>(row) + j / 2;
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block->qs + 16 * (j & 1)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)),
                         _mm512_set1_ps(_cvtsh_ss(block->d)));
  }
}

// The f32 scales of block b of up to 16 q8_0 rows, `stride` bytes apart (lanes from n on: 0), by
// one gather of the 32-bit words that start with them.
inline __m512 BlockScales(const uint8_t* rows, size_t stride, int64_t n, int64_t b) {
  const __m512i offsets = _mm512_add_epi32(
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int32_t>(stride))),
      _mm512_set1_epi32(static_cast<int32_t>(b * sizeof(BlockQ8_0))));
  const __m512i words =
      _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), FirstLanes(n), offsets, rows, 1);
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(words));
}

// Codes [16 h, 16 h + 16) of block b of a q8_0 row as f32, unscaled.
inline __m512 LoadCodes(const uint8_t* row, int64_t b, int h) {
  const BlockQ8_0* block = reinterpret_cast<const BlockQ8_0*>(row) + b;
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block->qs + 16 * h))));
}

// In place: r[i] lane j becomes r[j] lane i.
inline void Transpose16(__m512 r[16]) {
  __m512 t[16];
// Interleave pairs of rows within each 128-bit lane, then pairs of pairs: u[4 i + c] holds, in
// 128-bit lane l, column 4 l + c of rows 4 i .. 4 i + 3.
#pragma GCC unroll 16
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 2]);
    const __m512d c = _mm512_castps_pd(t[i + 1]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
// Transpose the 4 x 4 grid of 128-bit lanes of r[c], r[4 + c], r[8 + c], r[12 + c].
#pragma GCC unroll 16
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xee);
    const __m512 v2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
    const __m512 v3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xee);
    t[c] = _mm512_shuffle_f32x4(v0, v2, 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
    t[8 + c] = _mm512_shuffle_f32x4(v1, v3, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// In place: word j of r[i] becomes word i of r[j] (a 16 x 16 transpose of 16-bit values). f16
// keys are transposed before they are widened: half the bytes of the f32 transpose, and 256-bit
// shuffles, which leave more of the vector pipes to the multiply-adds.
inline void Transpose16x16Words(__m256i r[16]) {
  __m256i t[16];
  // Within each 128-bit lane (columns 0-7 | 8-15), the classic 8 x 8 transpose of rows 0-7 and of
  // rows 8-15: pairs of words, then pairs of pairs, then quadruples.
#pragma GCC unroll 16
  for (int h = 0; h < 16; h += 8) {
#pragma GCC unroll 16
    for (int i = 0; i < 8; i += 2) {
      t[h + i] = _mm256_unpacklo_epi16(r[h + i], r[h + i + 1]);
      t[h + i + 1] = _mm256_unpackhi_epi16(r[h + i], r[h + i + 1]);
    }
    // u[h + 2 p + s] (p: pair of rows 0-3 or 4-7 as p = 0, 1 ... ) built in r.
#pragma GCC unroll 16
    for (int i = 0; i < 8; i += 4) {
      r[h + i] = _mm256_unpacklo_epi32(t[h + i], t[h + i + 2]);          // columns 0, 1
      r[h + i + 1] = _mm256_unpackhi_epi32(t[h + i], t[h + i + 2]);      // columns 2, 3
      r[h + i + 2] = _mm256_unpacklo_epi32(t[h + i + 1], t[h + i + 3]);  // columns 4, 5
      r[h + i + 3] = _mm256_unpackhi_epi32(t[h + i + 1], t[h + i + 3]);  // columns 6, 7
    }
    // r[h + 0..3]: rows h .. h + 3; r[h + 4..7]: rows h + 4 .. h + 7. Column c of the 8 rows:
#pragma GCC unroll 16
    for (int c = 0; c < 4; ++c) {
      t[h + 2 * c] = _mm256_unpacklo_epi64(r[h + c], r[h + 4 + c]);
      t[h + 2 * c + 1] = _mm256_unpackhi_epi64(r[h + c], r[h + 4 + c]);
    }
  }
  // t[c] holds column c (lane 0) and c + 8 (lane 1) of rows 0-7; t[8 + c] the same of rows 8-15.
#pragma GCC unroll 16
  for (int c = 0; c < 8; ++c) {
    r[c] = _mm256_permute2x128_si256(t[c], t[8 + c], 0x20);
    r[8 + c] = _mm256_permute2x128_si256(t[c], t[8 + c], 0x31);
  }
}

// Scores of GB heads for up to 16 positions:
//   k: n <= 16 key rows, k_stride bytes apart; q: GB query rows, q_stride floats apart
//   s: GB rows, s_stride floats apart; s[g][i] = scale * q_g . k_i for i < n, -inf for i >= n.
template <DType T, int GB>
void ScoreChunk(const uint8_t* k, size_t k_stride, int64_t n, const float* q, int64_t q_stride,
                int64_t head_dim, float scale, float* s, int64_t s_stride) {
  __m512 acc[GB];
#pragma GCC unroll 16
  for (int g = 0; g < GB; ++g) acc[g] = _mm512_setzero_ps();
  for (int64_t j = 0; j * kLanes < head_dim; ++j) {
    const int64_t width = std::min<int64_t>(kLanes, head_dim - j * kLanes);
    const __mmask16 mask = FirstLanes(width);
    if constexpr (T == DType::kF16) {
      __m256i w[16];
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        w[i] = i < n ? _mm256_maskz_loadu_epi16(
                           mask, reinterpret_cast<const uint16_t*>(k + i * k_stride) + kLanes * j)
                     : _mm256_setzero_si256();
      }
      Transpose16x16Words(w);
      float qj[GB * kLanes];
#pragma GCC unroll 16
      for (int g = 0; g < GB; ++g) {
        _mm512_storeu_ps(qj + g * kLanes,
                         _mm512_maskz_loadu_ps(mask, q + g * q_stride + j * kLanes));
      }
      asm volatile("" : : "r"(qj) : "memory");
#pragma GCC unroll 16
      for (int d = 0; d < kLanes; ++d) {
        const __m512 c = _mm512_cvtph_ps(w[d]);
#pragma GCC unroll 16
        for (int g = 0; g < GB; ++g) {
          acc[g] = _mm512_fmadd_ps(c, _mm512_set1_ps(qj[g * kLanes + d]), acc[g]);
        }
      }
      continue;
    }
    __m512 c[16];
    if (n == kLanes) {
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) c[i] = LoadRow<T>(k + i * k_stride, j, mask);
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        c[i] = i < n ? LoadRow<T>(k + i * k_stride, j, mask) : _mm512_setzero_ps();
      }
    }
    Transpose16(c);
    // c[d] holds dimension 16 j + d of the 16 positions. The query slice goes to a local block
    // (zero past head_dim), so that every broadcast below has a constant address.
    float qj[GB * kLanes];
#pragma GCC unroll 16
    for (int g = 0; g < GB; ++g) {
      _mm512_storeu_ps(qj + g * kLanes, _mm512_maskz_loadu_ps(mask, q + g * q_stride + j * kLanes));
    }
    // Without this barrier GCC forwards the stores above and broadcasts each value with a
    // permute, which would load the shuffle unit that the transpose needs; from memory, a broadcast
    // is part of the FMA.
    asm volatile("" : : "r"(qj) : "memory");
#pragma GCC unroll 16
    for (int d = 0; d < kLanes; ++d) {
#pragma GCC unroll 16
      for (int g = 0; g < GB; ++g) {
        acc[g] = _mm512_fmadd_ps(c[d], _mm512_set1_ps(qj[g * kLanes + d]), acc[g]);
      }
    }
  }
  const __m512 minus_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512 vscale = _mm512_set1_ps(scale);
#pragma GCC unroll 16
  for (int g = 0; g < GB; ++g) {
    _mm512_storeu_ps(s + g * s_stride,
                     _mm512_mask_mul_ps(minus_inf, FirstLanes(n), acc[g], vscale));
  }
}

// Adds each of 16 vectors across its lanes: lane i of the result is the sum of acc[i]'s lanes.
// 30 shuffles and adds for 16 sums.
inline __m512 SumLanes16(const __m512 acc[16]) {
  // Pairs of positions: per 128-bit lane, [a0 + a2, b0 + b2, a1 + a3, b1 + b3].
  __m512 r[8];
#pragma GCC unroll 16
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_add_ps(_mm512_unpacklo_ps(acc[2 * i], acc[2 * i + 1]),
                         _mm512_unpackhi_ps(acc[2 * i], acc[2 * i + 1]));
  }
  // Quadruples: per 128-bit lane, the lane's sums of positions 4 i .. 4 i + 3.
  __m512 u[4];
#pragma GCC unroll 16
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(r[2 * i]), b = _mm512_castps_pd(r[2 * i + 1]);
    u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  // Then the four 128-bit lanes of each quadruple: positions 0-7, 8-15, then all 16 in order.
  const __m512 v0 =
      _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x44), _mm512_shuffle_f32x4(u[0], u[1], 0xee));
  const __m512 v1 =
      _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x44), _mm512_shuffle_f32x4(u[2], u[3], 0xee));
  return _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x88), _mm512_shuffle_f32x4(v0, v1, 0xdd));
}

// Stores scale * sums to the n first lanes of s and -inf to the others.
inline void StoreScores(__m512 sums, int64_t n, float scale, float* s) {
  _mm512_storeu_ps(s, _mm512_mask_mul_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()),
                                         FirstLanes(n), sums, _mm512_set1_ps(scale)));
}

// Scores of one head for up to 16 positions, by dot products whose 16 partial sums are added
// across lanes at the end, 16 positions at once: for one head this costs 30 shuffles per 16
// positions where the transpose of ScoreChunk costs 4 per position and dimension slice. Same
// arguments as ScoreChunk with GB = 1.
template <DType T>
void ScoreChunkOneHead(const uint8_t* k, size_t k_stride, int64_t n, const float* q, int64_t,
                       int64_t head_dim, float scale, float* s, int64_t) {
  __m512 acc[16];
#pragma GCC unroll 16
  for (int i = 0; i < kLanes; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t j = 0; j * kLanes < head_dim; ++j) {
    const __mmask16 mask = FirstLanes(head_dim - j * kLanes);
    const __m512 qj = _mm512_maskz_loadu_ps(mask, q + j * kLanes);
    if (n == kLanes) {
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        acc[i] = _mm512_fmadd_ps(LoadRow<T>(k + i * k_stride, j, mask), qj, acc[i]);
      }
    } else {
#pragma GCC unroll 16
      for (int i = 0; i < kLanes; ++i) {
        if (i < n) acc[i] = _mm512_fmadd_ps(LoadRow<T>(k + i * k_stride, j, mask), qj, acc[i]);
      }
    }
  }
  StoreScores(SumLanes16(acc), n, scale, s);
}

// ScoreChunkOneHead for q8_0 keys, block by block: the 16 positions' unscaled dot products with
// the block's query values, added across lanes, times the positions' scales of the block (one
// gather). A scale then costs one multiply per block and position, not one per 16 values.
void ScoreChunkOneHeadQ8(const uint8_t* k, size_t k_stride, int64_t n, const float* q, int64_t,
                         int64_t head_dim, float scale, float* s, int64_t) {
  __m512 scores = _mm512_setzero_ps();
  for (int64_t b = 0; b < head_dim / 32; ++b) {
    const __m512 q0 = _mm512_loadu_ps(q + 32 * b), q1 = _mm512_loadu_ps(q + 32 * b + kLanes);
    __m512 acc[16];
#pragma GCC unroll 16
    for (int i = 0; i < kLanes; ++i) {
      const uint8_t* row = k + i * k_stride;
      acc[i] =
          i < n ? _mm512_fmadd_ps(LoadCodes(row, b, 1), q1, _mm512_mul_ps(LoadCodes(row, b, 0), q0))
                : _mm512_setzero_ps();
    }
    scores = _mm512_fmadd_ps(SumLanes16(acc), BlockScales(k, k_stride, n, b), scores);
  }
  StoreScores(scores, n, scale, s);
}

using ScoreFn = void (*)(const uint8_t*, size_t, int64_t, const float*, int64_t, int64_t, float,
                         float*, int64_t);

// A head alone goes by ScoreChunkOneHead; groups of heads share the transpose.
template <DType T>
constexpr ScoreFn kOneHead = T == DType::kQ8_0 ? ScoreChunkOneHeadQ8 : ScoreChunkOneHead<T>;

template <DType T>
constexpr std::array<ScoreFn, kScoreHeads> kScoreFns = {
    kOneHead<T>,      ScoreChunk<T, 2>, ScoreChunk<T, 3>, ScoreChunk<T, 4>,
    ScoreChunk<T, 5>, ScoreChunk<T, 6>, ScoreChunk<T, 7>, ScoreChunk<T, 8>};

// Prefetches the cache lines of rows [r0, r1) of `bytes` bytes each, stride bytes apart.
template <int Hint>
void PrefetchRows(const void* base, size_t stride, size_t bytes, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const char* row = static_cast<const char*>(base) + static_cast<size_t>(r) * stride;
    for (size_t offset = 0; offset < bytes; offset += 64) {
      _mm_prefetch(row + offset, static_cast<_mm_hint>(Hint));
    }
    _mm_prefetch(row + bytes - 1, static_cast<_mm_hint>(Hint));
  }
}

// Scores of positions [t0, t0 + n) for every head: s: (group, s_stride), lanes past n are -inf.
// While the arithmetic runs, the keys kPrefetchChunks chunks ahead are fetched, so that memory
// latency overlaps the arithmetic.
template <DType T>
void ScoreTile(const AttentionArgs& a, int64_t t0, int64_t n, float* s, int64_t s_stride) {
  const uint8_t* k = static_cast<const uint8_t*>(a.k) + static_cast<size_t>(t0) * a.k_stride;
  const size_t k_bytes = RowBytes(a.k_type, a.head_dim);
  for (int64_t i = 0; i < n; i += kLanes) {
    const int64_t chunk = std::min<int64_t>(kLanes, n - i);
    const int64_t ahead = t0 + i + kPrefetchChunks * kLanes;
    PrefetchRows<_MM_HINT_T0>(a.k, a.k_stride, k_bytes, ahead, std::min(ahead + kLanes, a.n_kv));
    for (int64_t g = 0; g < a.group; g += kScoreHeads) {
      const int64_t heads = std::min<int64_t>(kScoreHeads, a.group - g);
      kScoreFns<T>[heads - 1](k + static_cast<size_t>(i) * a.k_stride, a.k_stride, chunk,
                              a.q + g * a.head_dim, a.head_dim, a.head_dim, a.scale,
                              s + g * s_stride + i, s_stride);
    }
  }
}

// out[g][16 j0 .. 16 (j0 + DB)) += sum over t < n of w(g, i, t) * v_t[same lanes], for GB heads:
//   v: n value rows of row_bytes, v_stride bytes apart
//   w: f32 and f16 values: w(g, i, t) = w[g * w_stride + t], the softmax weights. q8_0 values:
//     w(g, i, t) = w[(g * w_blocks + b) * w_stride + t] with b the q8_0 block of vector j0 + i,
//     the weights times row t's scale of block b (FoldScales), so that codes are only widened;
//     j0 is even, and vector j0 + i lies in block j0 / 2 + i / 2.
//   out: GB rows, out_stride floats apart; the last vector is masked to `last`.
template <DType T, int GB, int DB>
void ValueBlock(const uint8_t* v, size_t v_stride, size_t row_bytes, int64_t n, const float* w,
                int64_t w_stride, int64_t w_blocks, float* out, int64_t out_stride, int64_t j0,
                __mmask16 last) {
  constexpr bool kQ8 = T == DType::kQ8_0;
  constexpr int kWeights = kQ8 ? (DB + 1) / 2 : 1;  // Weights per head and row.
  __m512 acc[GB][DB];
#pragma GCC unroll 16
  for (int g = 0; g < GB; ++g) {
#pragma GCC unroll 16
    for (int i = 0; i < DB; ++i) {
      acc[g][i] = _mm512_maskz_loadu_ps(i == DB - 1 ? last : 0xffff,
                                        out + g * out_stride + (j0 + i) * kLanes);
    }
  }
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = v + static_cast<size_t>(t) * v_stride;
    // The hardware prefetchers do not run far enough ahead of this loop; 16 KB ahead (for f16
    // rows of 64) they do. Rows past the n given are another run's, or none.
    if (j0 == 0 && t + kValuePrefetchRows < n) {
      const char* ahead = reinterpret_cast<const char*>(row + kValuePrefetchRows * v_stride);
      for (size_t b = 0; b < row_bytes; b += 64) _mm_prefetch(ahead + b, _MM_HINT_T0);
      _mm_prefetch(ahead + row_bytes - 1, _MM_HINT_T0);
    }
    __m512 x[DB];
#pragma GCC unroll 16
    for (int i = 0; i < DB; ++i) {
      if constexpr (kQ8) {
        x[i] = LoadCodes(row, j0 / 2 + i / 2, i % 2);
      } else {
        x[i] = LoadRow<T>(row, j0 + i, i == DB - 1 ? last : 0xffff);
      }
    }
#pragma GCC unroll 16
    for (int g = 0; g < GB; ++g) {
      __m512 wg[kWeights];
#pragma GCC unroll 16
      for (int c = 0; c < kWeights; ++c) {
        const int64_t b = kQ8 ? j0 / 2 + c : 0;
        wg[c] = _mm512_set1_ps(w[(g * w_blocks + b) * w_stride + t]);
      }
#pragma GCC unroll 16
      for (int i = 0; i < DB; ++i) {
        acc[g][i] = _mm512_fmadd_ps(x[i], wg[kQ8 ? i / 2 : 0], acc[g][i]);
      }
    }
  }
#pragma GCC unroll 16
  for (int g = 0; g < GB; ++g) {
#pragma GCC unroll 16
    for (int i = 0; i < DB; ++i) {
      _mm512_mask_storeu_ps(out + g * out_stride + (j0 + i) * kLanes, i == DB - 1 ? last : 0xffff,
                            acc[g][i]);
    }
  }
}

using ValueFn = void (*)(const uint8_t*, size_t, size_t, int64_t, const float*, int64_t, int64_t,
                         float*, int64_t, int64_t, __mmask16);

// Blocks of GB x DB accumulators up to 16 registers (kValueVectors for up to 4 heads, 2 for
// more); the others are never called.
template <DType T, int GB, int DB>
constexpr ValueFn ValueFnFor() {
  if constexpr (GB * DB <= 16) {
    return ValueBlock<T, GB, DB>;
  } else {
    return nullptr;
  }
}

template <DType T, int GB>
constexpr std::array<ValueFn, kValueVectors> kValueRow = {
    ValueFnFor<T, GB, 1>(), ValueFnFor<T, GB, 2>(), ValueFnFor<T, GB, 3>(), ValueFnFor<T, GB, 4>()};

template <DType T>
constexpr std::array<std::array<ValueFn, kValueVectors>, kValueHeads> kValueFns = {
    kValueRow<T, 1>, kValueRow<T, 2>, kValueRow<T, 3>, kValueRow<T, 4>,
    kValueRow<T, 5>, kValueRow<T, 6>, kValueRow<T, 7>, kValueRow<T, 8>};

// out[g] += sum over positions [t0, t0 + n) of p[g][t - t0] * v_t, for every head.
template <DType T>
void ValueTile(const AttentionArgs& a, int64_t t0, int64_t n, const float* p, int64_t p_stride) {
  const uint8_t* v = static_cast<const uint8_t*>(a.v) + static_cast<size_t>(t0) * a.v_stride;
  const size_t row_bytes = RowBytes(a.v_type, a.head_dim);
  const int64_t vectors = (a.head_dim + kLanes - 1) / kLanes;
  const __mmask16 tail = FirstLanes(a.head_dim - (vectors - 1) * kLanes);
  const float* w = p;
  int64_t w_stride = p_stride, w_blocks = 1;
  if constexpr (T == DType::kQ8_0) {
    // One gather of 16 rows' scales, then one multiply per head.
    w = FoldScales<kLanes>(a, v, n, p, &w_stride,
                           [&](const uint8_t* rows, int64_t count, int64_t b, const float* pt,
                               float* wt, int64_t w_head) {
                             const __m512 d = BlockScales(rows, a.v_stride, count, b);
                             for (int64_t g = 0; g < a.group; ++g) {
                               const __m512 pg =
                                   _mm512_maskz_loadu_ps(FirstLanes(count), pt + g * p_stride);
                               _mm512_storeu_ps(wt + g * w_head, _mm512_mul_ps(pg, d));
                             }
                           });
    w_blocks = a.head_dim / 32;
  }
  for (int64_t g = 0; g < a.group; g += kValueHeads) {
    const int64_t heads = std::min<int64_t>(kValueHeads, a.group - g);
    const int64_t most = heads <= 4 ? kValueVectors : 2;
    for (int64_t j = 0; j < vectors; j += most) {
      const int64_t count = std::min<int64_t>(most, vectors - j);
      kValueFns<T>[heads - 1][count - 1](v, a.v_stride, row_bytes, n, w + g * w_blocks * w_stride,
                                         w_stride, w_blocks, a.out + g * a.head_dim, a.head_dim, j,
                                         j + count == vectors ? tail : 0xffff);
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
  const __m512 f = _mm512_set1_ps(factor);
  for (int64_t d = 0; d < n; d += kLanes) {
    const __mmask16 mask = FirstLanes(n - d);
    _mm512_mask_storeu_ps(x + d, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + d), f));
  }
}

// Turns the scores of one tile into exp(score - m) with m the running maximum of head g, and
// rescales that head's running sum l and output to the new maximum.
//   s: (n rounded up to 16,) with -inf past n; out: (head_dim,)
void SoftmaxUpdate(float* s, int64_t n, float* m, float* l, float* out, int64_t head_dim) {
  const int64_t vectors = (n + kLanes - 1) / kLanes;
  __m512 vmax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < vectors; ++i) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + i * kLanes));
  const float m_new = std::max(*m, _mm512_reduce_max_ps(vmax));
  // exp(-inf) = 0 on the first tile, when the output and the sum are still zero.
  const float alpha = std::exp(*m - m_new);
  const __m512 vm = _mm512_set1_ps(m_new);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < vectors; ++i) {
    const __m512 e = Exp(_mm512_sub_ps(_mm512_loadu_ps(s + i * kLanes), vm));
    _mm512_storeu_ps(s + i * kLanes, e);
    sum = _mm512_add_ps(sum, e);
  }
  *l = *l * alpha + _mm512_reduce_add_ps(sum);
  *m = m_new;
  if (alpha != 1.0f) Scale(out, head_dim, alpha);
}

// This path's pieces of the shared tile loop (kernels/attention_tiles.h).
struct Path {
  static constexpr int64_t kLanes = avx512::kLanes;
  static constexpr int64_t kFlashTile = avx512::kFlashTile;
  static bool Supported(DType type) { return avx512::Supported(type); }
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
  for (int64_t i = 0; i < n; i += kLanes) {
    const __mmask16 mask = FirstLanes(n - i);
    _mm512_mask_storeu_ps(y + i, mask, Exp(_mm512_maskz_loadu_ps(mask, x + i)));
  }
}

}  // namespace slimlm::kernels::avx512
