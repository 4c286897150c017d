// Reference attention: every score materialized (the specification), and flash attention by
// tiles of positions with an online softmax.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::ref {
namespace {

// Positions per tile of the flash reference: scores of one tile are (group, kFlashTile).
constexpr int64_t kFlashTile = 64;

// The row of position p, through the block table when the cache is paged.
const uint8_t* Row(const AttentionArgs& a, const void* base, size_t stride, int64_t p) {
  if (a.blocks != nullptr)
    p = int64_t{a.blocks[p / a.block_rows]} * a.block_rows + p % a.block_rows;
  return static_cast<const uint8_t*>(base) + static_cast<size_t>(p) * stride;
}

}  // namespace

void Attention(const AttentionArgs& a) {
  // Scratch: scores (group, n_kv), then one key or value row widened to f32.
  float* scores = a.scratch;
  float* row = a.scratch + a.group * a.n_kv;
  for (int64_t p = 0; p < a.n_kv; ++p) {
    RowToF32(a.k_type, Row(a, a.k, a.k_stride, p), row, a.head_dim);
    for (int64_t g = 0; g < a.group; ++g) {
      const float* q = a.q + g * a.head_dim;
      float dot = 0.0f;
      for (int64_t d = 0; d < a.head_dim; ++d) dot += q[d] * row[d];
      scores[g * a.n_kv + p] = dot * a.scale;
    }
  }
  for (int64_t g = 0; g < a.group; ++g) Softmax(scores + g * a.n_kv, a.n_kv);
  for (int64_t i = 0; i < a.group * a.head_dim; ++i) a.out[i] = 0.0f;
  for (int64_t p = 0; p < a.n_kv; ++p) {
    RowToF32(a.v_type, Row(a, a.v, a.v_stride, p), row, a.head_dim);
    for (int64_t g = 0; g < a.group; ++g) {
      const float s = scores[g * a.n_kv + p];
      float* out = a.out + g * a.head_dim;
      for (int64_t d = 0; d < a.head_dim; ++d) out[d] += s * row[d];
    }
  }
}

void FlashAttention(const AttentionArgs& a) {
  // Scratch, independent of n_kv: scores of one tile (group, kFlashTile), one key or value row
  // widened to f32, and per head the running maximum m and running sum l of exp(score - m).
  // The output itself accumulates sum exp(score - m) * v, rescaled whenever m grows.
  float* scores = a.scratch;
  float* row = scores + a.group * kFlashTile;
  float* m = row + a.head_dim;
  float* l = m + a.group;
  for (int64_t i = 0; i < a.group * a.head_dim; ++i) a.out[i] = 0.0f;
  if (a.n_kv <= 0) return;
  for (int64_t g = 0; g < a.group; ++g) {
    m[g] = -std::numeric_limits<float>::infinity();
    l[g] = 0.0f;
  }
  for (int64_t t0 = 0; t0 < a.n_kv; t0 += kFlashTile) {
    const int64_t n = std::min(kFlashTile, a.n_kv - t0);
    for (int64_t p = 0; p < n; ++p) {
      RowToF32(a.k_type, Row(a, a.k, a.k_stride, t0 + p), row, a.head_dim);
      for (int64_t g = 0; g < a.group; ++g) {
        const float* q = a.q + g * a.head_dim;
        float dot = 0.0f;
        for (int64_t d = 0; d < a.head_dim; ++d) dot += q[d] * row[d];
        scores[g * kFlashTile + p] = dot * a.scale;
      }
    }
    for (int64_t g = 0; g < a.group; ++g) {
      float* s = scores + g * kFlashTile;
      float m_new = m[g];
      for (int64_t p = 0; p < n; ++p) m_new = std::fmax(m_new, s[p]);
      // exp(-inf) = 0 on the first tile, when the output and the sum are still zero.
      const float alpha = std::exp(m[g] - m_new);
      float tile_sum = 0.0f;
      for (int64_t p = 0; p < n; ++p) {
        s[p] = std::exp(s[p] - m_new);
        tile_sum += s[p];
      }
      l[g] = l[g] * alpha + tile_sum;
      m[g] = m_new;
      float* out = a.out + g * a.head_dim;
      for (int64_t d = 0; d < a.head_dim; ++d) out[d] *= alpha;
    }
    for (int64_t p = 0; p < n; ++p) {
      RowToF32(a.v_type, Row(a, a.v, a.v_stride, t0 + p), row, a.head_dim);
      for (int64_t g = 0; g < a.group; ++g) {
        const float s = scores[g * kFlashTile + p];
        float* out = a.out + g * a.head_dim;
        for (int64_t d = 0; d < a.head_dim; ++d) out[d] += s * row[d];
      }
    }
  }
  for (int64_t g = 0; g < a.group; ++g) {
    const float inv = 1.0f / l[g];
    float* out = a.out + g * a.head_dim;
    for (int64_t d = 0; d < a.head_dim; ++d) out[d] *= inv;
  }
}

}  // namespace slimlm::kernels::ref
