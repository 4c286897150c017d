// NEON row operations: RMSNorm, RoPE, softmax, SwiGLU and conversions for the KV cache.
#include <arm_neon.h>

#include <cmath>

#include "kernels/arm/kernels_arm.h"
#include "kernels/arm/vec_math_neon.h"
#include "kernels/ref/ref_kernels.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::neon {
namespace {

// Sum of squares of x[0, n) in double, as the reference accumulates it.
double SumOfSquares(const float* x, int64_t n) {
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v));
    const float64x2_t hi = vcvt_high_f64_f32(v);
    s0 = vfmaq_f64(s0, lo, lo);
    s1 = vfmaq_f64(s1, hi, hi);
  }
  double sum = vaddvq_f64(vaddq_f64(s0, s1));
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

// QuantizeRowQ8_0Ref with NEON: the same float products, rounded half away from zero (vcvtaq).
void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ8_0BlockSize; ++b) {
    const float* xb = x + b * kQ8_0BlockSize;
    float32x4_t v[8];
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int j = 0; j < 8; ++j) {
      v[j] = vld1q_f32(xb + 4 * j);
      m = vmaxq_f32(m, vabsq_f32(v[j]));
    }
    const float d = vmaxvq_f32(m) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = HalfBits(d);
    int16x8_t halves[4];
    for (int j = 0; j < 8; j += 2) {
      const int32x4_t r0 = vcvtaq_s32_f32(vmulq_n_f32(v[j], id));
      const int32x4_t r1 = vcvtaq_s32_f32(vmulq_n_f32(v[j + 1], id));
      halves[j / 2] = vcombine_s16(vmovn_s32(r0), vmovn_s32(r1));
    }
    vst1q_s8(y[b].qs, vcombine_s8(vmovn_s16(halves[0]), vmovn_s16(halves[1])));
    vst1q_s8(y[b].qs + 16, vcombine_s8(vmovn_s16(halves[2]), vmovn_s16(halves[3])));
  }
}

}  // namespace

void FromF32(DType type, const float* x, void* out, int64_t n) {
  if (type == DType::kQ8_0) {
    QuantizeQ8_0(x, static_cast<BlockQ8_0*>(out), n);
    return;
  }
  if (type != DType::kF16) {
    ref::FromF32(type, x, out, n);
    return;
  }
  // FCVT rounds to nearest even, as F32ToF16 does.
  uint16_t* h = static_cast<uint16_t*>(out);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(h + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  for (; i < n; ++i) h[i] = HalfBits(x[i]);
}

void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  const double sum_sq = SumOfSquares(x, n);
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
  }
  for (; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void Rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos,
          const float* sin, RopePairing pairing) {
  // Separate products and a subtraction (no fused multiply-add), as the reference rounds.
  const int64_t n_pairs = rot_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* head = x + h * head_dim;
    int64_t i = 0;
    if (pairing == RopePairing::kHalf) {
      for (; i + 4 <= n_pairs; i += 4) {
        const float32x4_t x0 = vld1q_f32(head + i), x1 = vld1q_f32(head + n_pairs + i);
        const float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
        vst1q_f32(head + i, vsubq_f32(vmulq_f32(x0, c), vmulq_f32(x1, s)));
        vst1q_f32(head + n_pairs + i, vaddq_f32(vmulq_f32(x0, s), vmulq_f32(x1, c)));
      }
    } else {
      for (; i + 4 <= n_pairs; i += 4) {
        float32x4x2_t v = vld2q_f32(head + 2 * i);  // val[0]: even dimensions, val[1]: odd.
        const float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
        const float32x4_t x0 = v.val[0], x1 = v.val[1];
        v.val[0] = vsubq_f32(vmulq_f32(x0, c), vmulq_f32(x1, s));
        v.val[1] = vaddq_f32(vmulq_f32(x0, s), vmulq_f32(x1, c));
        vst2q_f32(head + 2 * i, v);
      }
    }
    for (; i < n_pairs; ++i) {
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
  float32x4_t m = vdupq_n_f32(-INFINITY);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
  float max = vmaxvq_f32(m);
  for (; i < n; ++i) max = std::fmax(max, x[i]);
  const float32x4_t vmax = vdupq_n_f32(max);
  // The sum accumulates in double, as the reference does.
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
  for (i = 0; i + 4 <= n; i += 4) {
    const float32x4_t e = Exp(vsubq_f32(vld1q_f32(x + i), vmax));
    vst1q_f32(x + i, e);
    s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(e)));
    s1 = vaddq_f64(s1, vcvt_high_f64_f32(e));
  }
  double sum = vaddvq_f64(vaddq_f64(s0, s1));
  for (; i < n; ++i) sum += (x[i] = std::exp(x[i] - max));
  const float inv = static_cast<float>(1.0 / sum);
  for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
  for (; i < n; ++i) x[i] *= inv;
}

void SiluGate(const float* gate, const float* up, float* out, int64_t n) {
  const float32x4_t one = vdupq_n_f32(1.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t g = vld1q_f32(gate + i);
    // silu(g) = g / (1 + exp(-g)).
    const float32x4_t s = vdivq_f32(g, vaddq_f32(one, Exp(vnegq_f32(g))));
    vst1q_f32(out + i, vmulq_f32(s, vld1q_f32(up + i)));
  }
  if (i < n) ref::SiluGate(gate + i, up + i, out + i, n - i);
}

}  // namespace slimlm::kernels::neon
