// Reference elementwise, normalization and RoPE kernels, and the table of references
// (attention is in attention_ref.cc).
#include <cmath>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::ref {

void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  // Accumulate the mean square in double: it is the one reduction here whose error grows with n.
  double sum_sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void Rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos,
          const float* sin, RopePairing pairing) {
  const int64_t n_pairs = rot_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* head = x + h * head_dim;
    for (int64_t i = 0; i < n_pairs; ++i) {
      const int64_t a = pairing == RopePairing::kAdjacent ? 2 * i : i;
      const int64_t b = pairing == RopePairing::kAdjacent ? 2 * i + 1 : i + n_pairs;
      const float x0 = head[a];
      const float x1 = head[b];
      head[a] = x0 * cos[i] - x1 * sin[i];
      head[b] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

void Softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void SiluGate(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void FromF32(DType type, const float* x, void* out, int64_t n) { RowFromF32(type, x, out, n); }

const KernelTable& Table() {
  static const KernelTable table = [] {
    KernelTable t;
    t.isa = Isa::kScalar;
    t.row_block = 1;
    t.packed_bytes = [](DType, int64_t, int64_t) -> size_t { return 0; };
    t.activation_row_bytes = ActivationRowBytes;
    t.convert_activation = ConvertActivation;
    t.matmul = MatMul;
    t.from_f32 = FromF32;
    t.rms_norm = RmsNorm;
    t.rope = Rope;
    t.softmax = Softmax;
    t.silu_gate = SiluGate;
    t.attention = Attention;
    t.flash_attention = FlashAttention;
    return t;
  }();
  return table;
}

}  // namespace slimlm::kernels::ref
