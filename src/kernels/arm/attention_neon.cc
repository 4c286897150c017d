// NEON attention for one query position: `group` query heads sharing a key/value head, n_kv
// cached rows of f32, f16 or q8_0 (other types go to the reference).
//
// The method of the x86 paths with 4 lanes: per tile of positions, the scores of 4 positions at
// a time for up to 4 heads (each key row read once per pass of heads, widened in registers, the
// 16 partial sums reduced pairwise into one vector of 4 scores per head), an online softmax per
// head, then the value rows streamed through output blocks of up to 4 heads x 16 dimensions held
// in 16 registers.
#include <arm_neon.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/arm/kernels_arm.h"
#include "kernels/arm/vec_math_neon.h"
#include "kernels/attention_tiles.h"
#include "kernels/ref/ref_kernels.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::neon {
namespace {

constexpr int kLanes = 4;
// Positions per tile of FlashAttention (a multiple of kLanes): scores of a tile take
// group * kFlashTile floats, and a tile of f16 keys and values for head_dim 64 (64 KB) stays in L2.
constexpr int64_t kFlashTile = 256;
constexpr int kScoreHeads = 4;  // Heads per pass of the score kernel (16 accumulators).
constexpr int kValueHeads = 4;  // Heads x vectors per pass of the value kernel (16 accumulators).
constexpr int kValueVectors = 4;

// Lanes [4 j, 4 j + width) of a row of type T as f32, the others 0 (width <= 4). q8_0 rows have
// whole blocks (head_dim a multiple of 32), so their width is always 4.
template <DType T>
inline float32x4_t LoadRow(const uint8_t* row, int64_t j, int64_t width) {
  if constexpr (T == DType::kF32) {
    const float* x = reinterpret_cast<const float*>(row) + kLanes * j;
    return width == kLanes ? vld1q_f32(x) : LoadPartial(x, width);
  } else if constexpr (T == DType::kF16) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + kLanes * j;
    uint16x4_t bits;
    if (width == kLanes) {
      bits = vld1_u16(h);
    } else {
      uint16_t tail[kLanes] = {};
      std::memcpy(tail, h, static_cast<size_t>(width) * sizeof(uint16_t));
      bits = vld1_u16(tail);
    }
    return vcvt_f32_f16(vreinterpret_f16_u16(bits));
  } else {
    static_assert(T == DType::kQ8_0);
    const BlockQ8_0* block = reinterpret_cast<const BlockQ8_0*>(row) + j / 8;
    int32_t quad;
    std::memcpy(&quad, block->qs + kLanes * (j & 7), sizeof(quad));
    const int16x8_t wide = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(quad)));
    const float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(block->d)));
    return vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(wide))), d);
  }
}

// Lanes [0, n) set.
inline uint32x4_t FirstLanes(int64_t n) {
  const uint32_t index[kLanes] = {0, 1, 2, 3};
  return vcltq_u32(vld1q_u32(index),
                   vdupq_n_u32(static_cast<uint32_t>(std::min<int64_t>(n, kLanes))));
}

// Scores of GB heads for up to 4 positions:
//   k: n <= 4 key rows, k_stride bytes apart; q: GB query rows, q_stride floats apart
//   s: GB rows, s_stride floats apart; s[g][i] = scale * q_g . k_i for i < n, -inf for i >= n.
template <DType T, int GB>
void ScoreChunk(const uint8_t* k, size_t k_stride, int64_t n, const float* q, int64_t q_stride,
                int64_t head_dim, float scale, float* s, int64_t s_stride) {
  float32x4_t acc[GB][kLanes];  // [head][position], partial sums over the dimensions.
  for (int g = 0; g < GB; ++g) {
    for (int i = 0; i < kLanes; ++i) acc[g][i] = vdupq_n_f32(0.0f);
  }
  for (int64_t j = 0; j * kLanes < head_dim; ++j) {
    const int64_t width = std::min<int64_t>(kLanes, head_dim - j * kLanes);
    float32x4_t key[kLanes];
    for (int i = 0; i < kLanes; ++i) {
      key[i] = i < n ? LoadRow<T>(k + i * k_stride, j, width) : vdupq_n_f32(0.0f);
    }
    for (int g = 0; g < GB; ++g) {
      const float* qg = q + g * q_stride + j * kLanes;
      const float32x4_t qv = width == kLanes ? vld1q_f32(qg) : LoadPartial(qg, width);
      for (int i = 0; i < kLanes; ++i) acc[g][i] = vfmaq_f32(acc[g][i], key[i], qv);
    }
  }
  const float32x4_t minus_inf = vdupq_n_f32(-std::numeric_limits<float>::infinity());
  const uint32x4_t valid = FirstLanes(n);
  for (int g = 0; g < GB; ++g) {
    // Pairwise sums: lane i becomes the full sum of acc[g][i].
    const float32x4_t dots =
        vpaddq_f32(vpaddq_f32(acc[g][0], acc[g][1]), vpaddq_f32(acc[g][2], acc[g][3]));
    vst1q_f32(s + g * s_stride, vbslq_f32(valid, vmulq_n_f32(dots, scale), minus_inf));
  }
}

using ScoreFn = void (*)(const uint8_t*, size_t, int64_t, const float*, int64_t, int64_t, float,
                         float*, int64_t);

template <DType T>
constexpr std::array<ScoreFn, kScoreHeads> kScoreFns = {ScoreChunk<T, 1>, ScoreChunk<T, 2>,
                                                        ScoreChunk<T, 3>, ScoreChunk<T, 4>};

// Scores of positions [t0, t0 + n) for every head: s: (group, s_stride), lanes past n are -inf.
template <DType T>
void ScoreTile(const AttentionArgs& a, int64_t t0, int64_t n, float* s, int64_t s_stride) {
  const uint8_t* k = static_cast<const uint8_t*>(a.k) + static_cast<size_t>(t0) * a.k_stride;
  for (int64_t i = 0; i < n; i += kLanes) {
    const int64_t chunk = std::min<int64_t>(kLanes, n - i);
    for (int64_t g = 0; g < a.group; g += kScoreHeads) {
      const int64_t heads = std::min<int64_t>(kScoreHeads, a.group - g);
      kScoreFns<T>[heads - 1](k + static_cast<size_t>(i) * a.k_stride, a.k_stride, chunk,
                              a.q + g * a.head_dim, a.head_dim, a.head_dim, a.scale,
                              s + g * s_stride + i, s_stride);
    }
  }
}

// out[g][4 j0 .. 4 j0 + 4 DB) += sum over t < n of p[g][t] * v_t[same lanes], for GB heads:
//   v: n value rows, v_stride bytes apart; p: GB rows, p_stride floats apart
//   out: GB rows, out_stride floats apart; the last vector has `last` lanes (<= 4).
template <DType T, int GB, int DB>
void ValueBlock(const uint8_t* v, size_t v_stride, int64_t n, const float* p, int64_t p_stride,
                float* out, int64_t out_stride, int64_t j0, int64_t last) {
  float32x4_t acc[GB][DB];
  for (int g = 0; g < GB; ++g) {
    for (int i = 0; i < DB; ++i) {
      const float* o = out + g * out_stride + (j0 + i) * kLanes;
      acc[g][i] = i == DB - 1 ? LoadPartial(o, last) : vld1q_f32(o);
    }
  }
  for (int64_t t = 0; t < n; ++t) {
    const uint8_t* row = v + static_cast<size_t>(t) * v_stride;
    float32x4_t x[DB];
    for (int i = 0; i < DB; ++i) x[i] = LoadRow<T>(row, j0 + i, i == DB - 1 ? last : kLanes);
    for (int g = 0; g < GB; ++g) {
      const float32x4_t w = vdupq_n_f32(p[g * p_stride + t]);
      for (int i = 0; i < DB; ++i) acc[g][i] = vfmaq_f32(acc[g][i], x[i], w);
    }
  }
  for (int g = 0; g < GB; ++g) {
    for (int i = 0; i < DB; ++i) {
      float* o = out + g * out_stride + (j0 + i) * kLanes;
      if (i == DB - 1) {
        StorePartial(o, acc[g][i], last);
      } else {
        vst1q_f32(o, acc[g][i]);
      }
    }
  }
}

using ValueFn = void (*)(const uint8_t*, size_t, int64_t, const float*, int64_t, float*, int64_t,
                         int64_t, int64_t);

template <DType T, int GB>
constexpr std::array<ValueFn, kValueVectors> kValueRow = {
    ValueBlock<T, GB, 1>, ValueBlock<T, GB, 2>, ValueBlock<T, GB, 3>, ValueBlock<T, GB, 4>};

template <DType T>
constexpr std::array<std::array<ValueFn, kValueVectors>, kValueHeads> kValueFns = {
    kValueRow<T, 1>, kValueRow<T, 2>, kValueRow<T, 3>, kValueRow<T, 4>};

// out[g] += sum over positions [t0, t0 + n) of p[g][t - t0] * v_t, for every head.
template <DType T>
void ValueTile(const AttentionArgs& a, int64_t t0, int64_t n, const float* p, int64_t p_stride) {
  const uint8_t* v = static_cast<const uint8_t*>(a.v) + static_cast<size_t>(t0) * a.v_stride;
  const int64_t vectors = (a.head_dim + kLanes - 1) / kLanes;
  const int64_t tail = a.head_dim - (vectors - 1) * kLanes;
  for (int64_t g = 0; g < a.group; g += kValueHeads) {
    const int64_t heads = std::min<int64_t>(kValueHeads, a.group - g);
    for (int64_t j = 0; j < vectors; j += kValueVectors) {
      const int64_t count = std::min<int64_t>(kValueVectors, vectors - j);
      kValueFns<T>[heads - 1][count - 1](v, a.v_stride, n, p + g * p_stride, p_stride,
                                         a.out + g * a.head_dim, a.head_dim, j,
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
  int64_t d = 0;
  for (; d + kLanes <= n; d += kLanes) vst1q_f32(x + d, vmulq_n_f32(vld1q_f32(x + d), factor));
  for (; d < n; ++d) x[d] *= factor;
}

// Turns the scores of one tile into exp(score - m) with m the running maximum of head g, and
// rescales that head's running sum l and output to the new maximum.
//   s: (n rounded up to 4,) with -inf past n; out: (head_dim,)
void SoftmaxUpdate(float* s, int64_t n, float* m, float* l, float* out, int64_t head_dim) {
  const int64_t vectors = (n + kLanes - 1) / kLanes;
  float32x4_t vmax = vdupq_n_f32(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < vectors; ++i) vmax = vmaxq_f32(vmax, vld1q_f32(s + i * kLanes));
  const float m_new = std::max(*m, vmaxvq_f32(vmax));
  // exp(-inf) = 0 on the first tile, when the output and the sum are still zero.
  const float alpha = std::exp(*m - m_new);
  const float32x4_t vm = vdupq_n_f32(m_new);
  float32x4_t sum = vdupq_n_f32(0.0f);
  for (int64_t i = 0; i < vectors; ++i) {
    const float32x4_t e = Exp(vsubq_f32(vld1q_f32(s + i * kLanes), vm));
    vst1q_f32(s + i * kLanes, e);
    sum = vaddq_f32(sum, e);
  }
  *l = *l * alpha + vaddvq_f32(sum);
  *m = m_new;
  if (alpha != 1.0f) Scale(out, head_dim, alpha);
}

// This path's pieces of the shared tile loop (kernels/attention_tiles.h).
struct Path {
  static constexpr int64_t kLanes = neon::kLanes;
  static constexpr int64_t kFlashTile = neon::kFlashTile;
  static bool Supported(DType type) { return neon::Supported(type); }
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
  for (; i + kLanes <= n; i += kLanes) vst1q_f32(y + i, Exp(vld1q_f32(x + i)));
  if (i < n) StorePartial(y + i, Exp(LoadPartial(x + i, n - i)), n - i);
}

}  // namespace slimlm::kernels::neon
