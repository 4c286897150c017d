// NEON matrix products on the packed layouts of kernels/packed/.
//
// A packed group of 16 rows is four 128-bit vectors of 4 rows each. Float weights are widened
// in registers and multiplied by a broadcast activation: every output row is one sequential sum
// of fused multiply-adds over the columns, in column order, whatever the tiling, so results do
// not depend on the number of tokens or on how rows are split. 8-bit weights (q8_0 stored signed,
// q4_0 codes 0..15) multiply int8 activations with sdot (vdotq_s32), which sums four byte
// products into each 32-bit lane: one 16-byte load of a quad holds 4 bytes of 4 rows, and the
// activation's 4 bytes are broadcast to every lane. K-quants (q4_k, q6_k) take the same sdot on
// their q4_0-style code records and apply the sub-block scales per 32-column block, as the
// reference does. f16_nm weights (no packed form) go to the scalar reference.
#include <arm_neon.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/arm/kernels_arm.h"
#include "kernels/arm/vec_math_neon.h"
#include "kernels/packed/int8_activations.h"
#include "kernels/packed/matmul_schedule.h"
#include "kernels/packed/packed_layout.h"
#include "kernels/ref/ref_kernels.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::neon {
namespace {

using packed::kPackRows;
constexpr int kVectors = 4;    // 128-bit vectors per packed group of 16 rows.
constexpr int kFloatTile = 4;  // Tokens per float tile (16 accumulators).
constexpr int kInt8Tile = 2;   // Tokens per 8-bit tile (8 integer + 8 float accumulators).

// Stores the first `valid` (0..16) rows of a group's four vectors.
inline void StoreGroup(float* y, const float32x4_t v[kVectors], int64_t valid) {
  for (int i = 0; i < kVectors; ++i) {
    const int64_t lanes = std::min<int64_t>(4, valid - 4 * i);
    if (lanes <= 0) return;
    if (lanes == 4) {
      vst1q_f32(y + 4 * i, v[i]);
    } else {
      StorePartial(y + 4 * i, v[i], lanes);
    }
  }
}

// --- Activations ---

// QuantizeInt8ActivationsScalar with NEON: vcvtaq rounds to nearest with ties away from zero,
// as roundf() does, and the product x * inv is the same float product.
void QuantizeInt8(const float* x, void* out, int64_t k) {
  uint8_t* p = static_cast<uint8_t*>(out);
  int8_t* q = reinterpret_cast<int8_t*>(p);
  float* d = reinterpret_cast<float*>(p + k);
  int32_t* s = reinterpret_cast<int32_t*>(p + k + (k / 32) * 4);
  int32_t* h = reinterpret_cast<int32_t*>(p + k + (k / 32) * 8);
  for (int64_t b = 0; b < k / 32; ++b) {
    float32x4_t v[8];
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int j = 0; j < 8; ++j) {
      v[j] = vld1q_f32(x + b * 32 + j * 4);
      m = vmaxq_f32(m, vabsq_f32(v[j]));
    }
    const float scale = vmaxvq_f32(m) / 127.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    int32x4_t sum = vdupq_n_s32(0);
    int16x8_t halves[4];
    for (int j = 0; j < 8; j += 2) {
      const int32x4_t r0 = vcvtaq_s32_f32(vmulq_n_f32(v[j], inv));
      const int32x4_t r1 = vcvtaq_s32_f32(vmulq_n_f32(v[j + 1], inv));
      sum = vaddq_s32(sum, vaddq_s32(r0, r1));
      halves[j / 2] = vcombine_s16(vmovn_s32(r0), vmovn_s32(r1));
      if (j == 2) h[b] = vaddvq_s32(sum);  // The first 16 values.
    }
    vst1q_s8(q + b * 32, vcombine_s8(vmovn_s16(halves[0]), vmovn_s16(halves[1])));
    vst1q_s8(q + b * 32 + 16, vcombine_s8(vmovn_s16(halves[2]), vmovn_s16(halves[3])));
    s[b] = vaddvq_s32(sum);
    d[b] = RoundThroughHalf(scale);
  }
}

// --- Float weights ---

// Column c of a packed group: the 16 rows' values as f32.
template <DType T>
inline void Load16(const uint8_t* group, int64_t c, float32x4_t v[kVectors]) {
  if constexpr (T == DType::kF32) {
    const float* p = reinterpret_cast<const float*>(group) + c * kPackRows;
    for (int i = 0; i < kVectors; ++i) v[i] = vld1q_f32(p + 4 * i);
  } else {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(group) + c * kPackRows;
    const uint16x8_t a = vld1q_u16(p), b = vld1q_u16(p + 8);
    if constexpr (T == DType::kF16) {
      v[0] = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(a)));
      v[1] = vcvt_high_f32_f16(vreinterpretq_f16_u16(a));
      v[2] = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(b)));
      v[3] = vcvt_high_f32_f16(vreinterpretq_f16_u16(b));
    } else {
      // bf16 is the high half of an f32.
      v[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(a), 16));
      v[1] = vreinterpretq_f32_u32(vshll_high_n_u16(a, 16));
      v[2] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(b), 16));
      v[3] = vreinterpretq_f32_u32(vshll_high_n_u16(b, 16));
    }
  }
}

// y[t, 16 rows] of G groups for TT tokens: every row is one sequential sum over the columns.
template <DType T, int TT, int G>
void FloatTile(const uint8_t* const* groups, int64_t cols, const float* x, int64_t x_stride,
               float* const* ys, int64_t ldy, const int64_t* valid) {
  float32x4_t acc[G][TT][kVectors];
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < TT; ++t) {
      for (int i = 0; i < kVectors; ++i) acc[g][t][i] = vdupq_n_f32(0.0f);
    }
  }
  for (int64_t c = 0; c < cols; ++c) {
    for (int g = 0; g < G; ++g) {
      float32x4_t w[kVectors];
      Load16<T>(groups[g], c, w);
      for (int t = 0; t < TT; ++t) {
        const float32x4_t xv = vdupq_n_f32(x[t * x_stride + c]);
        for (int i = 0; i < kVectors; ++i) acc[g][t][i] = vfmaq_f32(acc[g][t][i], w[i], xv);
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    for (int t = 0; t < TT; ++t) StoreGroup(ys[g] + t * ldy, acc[g][t], valid[g]);
  }
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

// --- 8-bit weights ---

// Integer dot products of one block record with TT activation blocks: acc[v][t] lane i is
// sum over the block's 32 columns of code(row 4 v + i) * x_t, codes as stored (q4_0: 0..15).
//   xq: TT pointers to the block's 32 int8 activations
template <bool kQ4, int TT>
inline void BlockDots(const uint8_t* rec, const int8_t* const* xq, int32x4_t acc[kVectors][TT]) {
  for (int v = 0; v < kVectors; ++v) {
    for (int t = 0; t < TT; ++t) acc[v][t] = vdupq_n_s32(0);
  }
  if constexpr (kQ4) {
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    for (int p = 0; p < 4; ++p) {
      int8x16_t x_lo[TT], x_hi[TT];
      for (int t = 0; t < TT; ++t) {
        x_lo[t] = BroadcastQuad(xq[t] + 4 * p);
        x_hi[t] = BroadcastQuad(xq[t] + 16 + 4 * p);
      }
      for (int v = 0; v < kVectors; ++v) {
        const uint8x16_t codes = vld1q_u8(rec + p * 64 + v * 16);
        const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(codes, low4));
        const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(codes, 4));
        for (int t = 0; t < TT; ++t) {
          acc[v][t] = vdotq_s32(acc[v][t], lo, x_lo[t]);
          acc[v][t] = vdotq_s32(acc[v][t], hi, x_hi[t]);
        }
      }
    }
  } else {
    for (int q = 0; q < 8; ++q) {
      int8x16_t xv[TT];
      for (int t = 0; t < TT; ++t) xv[t] = BroadcastQuad(xq[t] + 4 * q);
      for (int v = 0; v < kVectors; ++v) {
        const int8x16_t w = vld1q_s8(reinterpret_cast<const int8_t*>(rec) + q * 64 + v * 16);
        for (int t = 0; t < TT; ++t) acc[v][t] = vdotq_s32(acc[v][t], w, xv[t]);
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
  float32x4_t accf[kVectors][TT];
  for (int v = 0; v < kVectors; ++v) {
    for (int t = 0; t < TT; ++t) accf[v][t] = vdupq_n_f32(0.0f);
  }
  for (int64_t b = 0; b < k / 32; ++b) {
    const uint8_t* rec = group + static_cast<size_t>(b) * kRecord;
    const int8_t* xq[TT];
    for (int t = 0; t < TT; ++t) xq[t] = xr[t].q + b * 32;
    int32x4_t acc[kVectors][TT];
    BlockDots<kQ4, TT>(rec, xq, acc);
    const uint16_t* scales = reinterpret_cast<const uint16_t*>(rec + kScales);
    for (int v = 0; v < kVectors; ++v) {
      const float32x4_t ws = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(scales + 4 * v)));
      for (int t = 0; t < TT; ++t) {
        const int32x4_t exact = vsubq_s32(acc[v][t], vdupq_n_s32(kOffset * xr[t].s[b]));
        accf[v][t] = vfmaq_f32(accf[v][t], vcvtq_f32_s32(exact), vmulq_n_f32(ws, xr[t].d[b]));
      }
    }
  }
  for (int t = 0; t < TT; ++t) {
    float32x4_t row[kVectors];
    for (int v = 0; v < kVectors; ++v) row[v] = accf[v][t];
    StoreGroup(y + t * ldy, row, valid);
  }
}

using Int8TileFn = void (*)(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes,
                            float* y, int64_t ldy, int64_t valid);

template <bool kQ4, size_t... I>
constexpr std::array<Int8TileFn, sizeof...(I)> Int8Tiles(std::index_sequence<I...>) {
  return {Int8Tile<kQ4, static_cast<int>(I) + 1>...};
}

// Groups outside, tiles of up to kInt8Tile tokens inside: a group's records stay in cache while
// every token passes over them.
void RunInt8Tiles(const std::array<Int8TileFn, kInt8Tile>& tiles, const Matrix& w, const uint8_t* x,
                  size_t x_row_bytes, float* y, int64_t ldy, int64_t n_tokens, int64_t r0,
                  int64_t r1) {
  const size_t group_bytes = packed::GroupBytes(w.dtype, w.cols);
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  for (int64_t g = r0 / kPackRows; g * kPackRows < r1; ++g) {
    const int64_t valid = std::min<int64_t>(kPackRows, r1 - g * kPackRows);
    const uint8_t* group = data + static_cast<size_t>(g) * group_bytes;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kInt8Tile) {
      const int64_t tt = std::min<int64_t>(kInt8Tile, n_tokens - t0);
      tiles[static_cast<size_t>(tt - 1)](group, w.cols, x + static_cast<size_t>(t0) * x_row_bytes,
                                         x_row_bytes, y + t0 * ldy + g * kPackRows, ldy, valid);
    }
  }
}

void Int8MatMul(bool q4, const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  static constexpr auto kQ8Tiles = Int8Tiles<false>(std::make_index_sequence<kInt8Tile>());
  static constexpr auto kQ4Tiles = Int8Tiles<true>(std::make_index_sequence<kInt8Tile>());
  RunInt8Tiles(q4 ? kQ4Tiles : kQ8Tiles, w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
}

// --- K-quants ---

// 16 per-row bytes (one per row of the group) as four vectors of 4 rows.
inline void WidenU8(const uint8_t* p, float32x4_t out[kVectors]) {
  const uint8x16_t b = vld1q_u8(p);
  const uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_high_u8(b);
  out[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo)));
  out[1] = vcvtq_f32_u32(vmovl_high_u16(lo));
  out[2] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi)));
  out[3] = vcvtq_f32_u32(vmovl_high_u16(hi));
}

inline void WidenS8(const uint8_t* p, int32x4_t out[kVectors]) {
  const int8x16_t b = vld1q_s8(reinterpret_cast<const int8_t*>(p));
  const int16x8_t lo = vmovl_s8(vget_low_s8(b)), hi = vmovl_high_s8(b);
  out[0] = vmovl_s16(vget_low_s16(lo));
  out[1] = vmovl_high_s16(lo);
  out[2] = vmovl_s16(vget_low_s16(hi));
  out[3] = vmovl_high_s16(hi);
}

// 16 per-row f16 values as f32.
inline void LoadHalves(const uint8_t* p, float32x4_t out[kVectors]) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  for (int v = 0; v < kVectors; ++v) {
    out[v] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + 4 * v)));
  }
}

// One q4_k super-block record: its sub-block j's codes are a q4_0 code record, met by
// activation block b0 + j. Per sub-block as the reference: d_a (d sc sum q a - dmin m sum a).
template <int TT>
inline void Q4KSuperBlock(const uint8_t* rec, const packed::Int8ActivationRow* xr, int64_t b0,
                          float32x4_t accf[kVectors][TT]) {
  float32x4_t d[kVectors], dmin[kVectors];
  LoadHalves(rec + packed::kQ4KD, d);
  LoadHalves(rec + packed::kQ4KDmin, dmin);
  for (int j = 0; j < 8; ++j) {
    const int64_t b = b0 + j;
    const int8_t* xq[TT];
    for (int t = 0; t < TT; ++t) xq[t] = xr[t].q + b * 32;
    int32x4_t acc[kVectors][TT];
    BlockDots<true, TT>(rec + packed::kQ4KCodes + j * 256, xq, acc);
    float32x4_t sc[kVectors], m[kVectors];
    WidenU8(rec + packed::kQ4KScales + j * 16, sc);
    WidenU8(rec + packed::kQ4KMins + j * 16, m);
    for (int v = 0; v < kVectors; ++v) {
      const float32x4_t dsc = vmulq_f32(d[v], sc[v]), dm = vmulq_f32(dmin[v], m[v]);
      for (int t = 0; t < TT; ++t) {
        const float32x4_t part = vsubq_f32(vmulq_f32(dsc, vcvtq_f32_s32(acc[v][t])),
                                           vmulq_n_f32(dm, static_cast<float>(xr[t].s[b])));
        accf[v][t] = vfmaq_f32(accf[v][t], part, vdupq_n_f32(xr[t].d[b]));
      }
    }
  }
}

// Integer dot products of one q6_k block record with TT activation blocks, per 16-column half:
// lo[v][t] over the first half (the low nibbles), hi[v][t] over the second, codes 0..63.
template <int TT>
inline void Q6KBlockDots(const uint8_t* block, const int8_t* const* xq, int32x4_t lo[kVectors][TT],
                         int32x4_t hi[kVectors][TT]) {
  for (int v = 0; v < kVectors; ++v) {
    for (int t = 0; t < TT; ++t) lo[v][t] = hi[v][t] = vdupq_n_s32(0);
  }
  const uint8x16_t low4 = vdupq_n_u8(0x0f), bits45 = vdupq_n_u8(0x30);
  for (int p = 0; p < 4; ++p) {
    int8x16_t x_lo[TT], x_hi[TT];
    for (int t = 0; t < TT; ++t) {
      x_lo[t] = BroadcastQuad(xq[t] + 4 * p);
      x_hi[t] = BroadcastQuad(xq[t] + 16 + 4 * p);
    }
    for (int v = 0; v < kVectors; ++v) {
      const uint8x16_t codes = vld1q_u8(block + p * 64 + v * 16);
      const uint8x16_t high = vld1q_u8(block + 256 + (p / 2) * 64 + v * 16);
      // Pair p's high bits: bits 4 (p % 2) .. + 1 for the first half's column, the next two
      // for the second half's; each moved to bits 4..5 of its code.
      const uint8x16_t high_lo = p % 2 == 0 ? vshlq_n_u8(high, 4) : high;
      const uint8x16_t high_hi = p % 2 == 0 ? vshlq_n_u8(high, 2) : vshrq_n_u8(high, 2);
      const int8x16_t c_lo =
          vreinterpretq_s8_u8(vorrq_u8(vandq_u8(codes, low4), vandq_u8(high_lo, bits45)));
      const int8x16_t c_hi =
          vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(codes, 4), vandq_u8(high_hi, bits45)));
      for (int t = 0; t < TT; ++t) {
        lo[v][t] = vdotq_s32(lo[v][t], c_lo, x_lo[t]);
        hi[v][t] = vdotq_s32(hi[v][t], c_hi, x_hi[t]);
      }
    }
  }
}

// One q6_k super-block record: block j meets activation block b0 + j. As the reference:
// d_a d (sc0 sum (q - 32) a + sc1 sum (q - 32) a), the bracket in integers. The codes go to sdot
// as stored; the 32 comes off the sums as 32 h (first half) and 32 (s - h) (second half).
template <int TT>
inline void Q6KSuperBlock(const uint8_t* rec, const packed::Int8ActivationRow* xr, int64_t b0,
                          float32x4_t accf[kVectors][TT]) {
  float32x4_t d[kVectors];
  LoadHalves(rec + packed::kQ6KD, d);
  for (int j = 0; j < 8; ++j) {
    const int64_t b = b0 + j;
    const int8_t* xq[TT];
    for (int t = 0; t < TT; ++t) xq[t] = xr[t].q + b * 32;
    int32x4_t lo[kVectors][TT], hi[kVectors][TT];
    Q6KBlockDots<TT>(rec + packed::kQ6KBlocks + j * packed::kQ6KBlock, xq, lo, hi);
    int32x4_t sc0[kVectors], sc1[kVectors];
    WidenS8(rec + packed::kQ6KScales + (2 * j) * 16, sc0);
    WidenS8(rec + packed::kQ6KScales + (2 * j + 1) * 16, sc1);
    for (int t = 0; t < TT; ++t) {
      const int32_t first = xr[t].h[b], second = xr[t].s[b] - first;
      const int32x4_t off_lo = vdupq_n_s32(32 * first), off_hi = vdupq_n_s32(32 * second);
      for (int v = 0; v < kVectors; ++v) {
        int32x4_t sumi = vmulq_s32(sc0[v], vsubq_s32(lo[v][t], off_lo));
        sumi = vmlaq_s32(sumi, sc1[v], vsubq_s32(hi[v][t], off_hi));
        accf[v][t] = vfmaq_f32(accf[v][t], vcvtq_f32_s32(sumi), vmulq_n_f32(d[v], xr[t].d[b]));
      }
    }
  }
}

template <bool kQ6, int TT>
void KQuantTile(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes, float* y,
                int64_t ldy, int64_t valid) {
  constexpr size_t kRecord = kQ6 ? packed::kQ6KRecord : packed::kQ4KRecord;
  packed::Int8ActivationRow xr[TT];
  for (int t = 0; t < TT; ++t) xr[t] = packed::ViewInt8Activations(x + t * x_row_bytes, k);
  float32x4_t accf[kVectors][TT];
  for (int v = 0; v < kVectors; ++v) {
    for (int t = 0; t < TT; ++t) accf[v][t] = vdupq_n_f32(0.0f);
  }
  for (int64_t s = 0; s < k / kQK_K; ++s) {
    const uint8_t* rec = group + static_cast<size_t>(s) * kRecord;
    if constexpr (kQ6) {
      Q6KSuperBlock<TT>(rec, xr, s * (kQK_K / 32), accf);
    } else {
      Q4KSuperBlock<TT>(rec, xr, s * (kQK_K / 32), accf);
    }
  }
  for (int t = 0; t < TT; ++t) {
    float32x4_t row[kVectors];
    for (int v = 0; v < kVectors; ++v) row[v] = accf[v][t];
    StoreGroup(y + t * ldy, row, valid);
  }
}

template <bool kQ6, size_t... I>
constexpr std::array<Int8TileFn, sizeof...(I)> KQuantTiles(std::index_sequence<I...>) {
  return {KQuantTile<kQ6, static_cast<int>(I) + 1>...};
}

void KQuantMatMul(const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y, int64_t ldy,
                  int64_t n_tokens, int64_t r0, int64_t r1) {
  static constexpr auto kQ4KTiles = KQuantTiles<false>(std::make_index_sequence<kInt8Tile>());
  static constexpr auto kQ6KTiles = KQuantTiles<true>(std::make_index_sequence<kInt8Tile>());
  RunInt8Tiles(w.dtype == DType::kQ6_K ? kQ6KTiles : kQ4KTiles, w, x, x_row_bytes, y, ldy, n_tokens,
               r0, r1);
}

// This path's pieces of the shared schedule (kernels/packed/matmul_schedule.h).
struct Path {
  static constexpr int kFloatTile = neon::kFloatTile;
  template <DType T, int TT, int G>
  static void Step(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                   int64_t r1, int64_t g, int64_t t0) {
    FloatStep<T, TT, G>(w, x, x_stride, y, ldy, r1, g, t0);
  }
  static void Int8MatMul(bool q4, const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                         int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
    neon::Int8MatMul(q4, w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
  }
  static void KQuantMatMul(const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                           int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
    neon::KQuantMatMul(w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
  }
  // f16_nm weights go to the scalar reference: a NEON version (vtbl to expand each mask byte's
  // 4 values) is left for when an ARM machine can measure it.
  static void SparseMatMul(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                           int64_t n_tokens, int64_t r0, int64_t r1) {
    ref::MatMul(w, x, static_cast<size_t>(x_stride) * sizeof(float), y, ldy, n_tokens, r0, r1);
  }
};

}  // namespace

size_t PackedBytes(DType dtype, int64_t rows, int64_t cols) {
  return packed::PackedBytes(dtype, rows, cols);
}

void Pack(DType dtype, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t r0,
          int64_t r1, void* out) {
  // sdot multiplies signed bytes by signed bytes, so q8_0 keeps its signed values.
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

}  // namespace slimlm::kernels::neon
