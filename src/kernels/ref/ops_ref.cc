// Reference elementwise, normalization, RoPE and attention kernels.
#include <cmath>

#include "kernels/ref/ref_kernels.h"

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

void Attention(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_kv,
               int64_t head_dim, float scale, float* scores, float* out) {
  for (int64_t p = 0; p < n_kv; ++p) {
    const float* kp = k + p * kv_stride;
    float dot = 0.0f;
    for (int64_t d = 0; d < head_dim; ++d) dot += q[d] * kp[d];
    scores[p] = dot * scale;
  }
  Softmax(scores, n_kv);
  for (int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
  for (int64_t p = 0; p < n_kv; ++p) {
    const float* vp = v + p * kv_stride;
    const float s = scores[p];
    for (int64_t d = 0; d < head_dim; ++d) out[d] += s * vp[d];
  }
}

const KernelTable& Table() {
  static const KernelTable table = [] {
    KernelTable t;
    t.isa = Isa::kScalar;
    t.matmul_f32 = MatMulF32;
    t.matmul_f16 = MatMulF16;
    t.matmul_bf16 = MatMulBF16;
    t.matmul_q8_0 = MatMulQ8_0;
    t.matmul_q4_0 = MatMulQ4_0;
    t.quantize_q8_0 = QuantizeQ8_0;
    t.rms_norm = RmsNorm;
    t.rope = Rope;
    t.softmax = Softmax;
    t.silu_gate = SiluGate;
    t.attention = Attention;
    return t;
  }();
  return table;
}

}  // namespace slimlm::kernels::ref
