// Reference quantization and dequantization of the k-quant blocks (q4_k, q6_k).
//
// Dequantization follows GGUF's layouts exactly. Quantization fits each sub-block by weighted
// least squares over a small grid of candidate scales, then quantizes the sub-block scales
// against the super-block's f16 scale and rounds every weight again with the scales as stored,
// so the codes are the best ones for the scales the file actually holds.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "slimlm/core/check.h"
#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {
namespace {

// Per-element weights of a super-block: the importance of each input channel times the weight's
// magnitude relative to the block (so that both the channel and the value count), or, without
// importance, the magnitude plus the block's RMS.
void ElementWeights(const float* x, const float* importance, float* w) {
  float sum_x2 = 0.0f;
  for (int i = 0; i < kQK_K; ++i) sum_x2 += x[i] * x[i];
  if (importance != nullptr) {
    const float sigma2 = 2.0f * sum_x2 / kQK_K;
    for (int i = 0; i < kQK_K; ++i) w[i] = importance[i] * std::sqrt(sigma2 + x[i] * x[i]);
  } else {
    const float rms = std::sqrt(sum_x2 / kQK_K);
    for (int i = 0; i < kQK_K; ++i) w[i] = rms + std::fabs(x[i]);
  }
}

// The candidate searches below round and sum each sub-block thousands of times per super-block,
// so they work on 4 values at a time with GCC/Clang vector extensions (SSE2 and NEON width, the
// baseline of both targets): the same result everywhere because the lanes and the order of the
// final sum are fixed.
using F4 = float __attribute__((vector_size(16)));
using I4 = int32_t __attribute__((vector_size(16)));

inline F4 Load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline float Sum4(F4 v) {
  float s = 0.0f;
  for (int l = 0; l < 4; ++l) s += v[l];
  return s;
}

// Nearest integer in [lo, hi] of each lane (halves away from zero), as floats.
inline F4 RoundClamp4(F4 v, float lo, float hi) {
  const F4 vlo = F4{} + lo, vhi = F4{} + hi;
  v = v < vlo ? vlo : v;
  v = v > vhi ? vhi : v;
  const F4 half = v < F4{} ? F4{} - 0.5f : F4{} + 0.5f;
  return __builtin_convertvector(__builtin_convertvector(v + half, I4), F4);
}

// Nearest integer, halves away from zero, saturated far beyond any code.
inline int RoundToInt(float v) {
  v = std::clamp(v, -1e7f, 1e7f);
  return static_cast<int>(v + std::copysign(0.5f, v));
}

// Fits x ~ s * q - m with q in [0, nmax], s >= 0, m >= 0, minimizing sum w (s q - m - x)^2 over
// candidate step sizes around (max - min) / nmax, each refined by least squares for (s, m) and
// scored by the error after rounding again with the refined (s, m). n is a multiple of 4.
// Returns s; writes m.
float FitScaleMin(int n, int nmax, const float* x, const float* w, float* min_out) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);
  if (hi <= lo) {
    *min_out = -lo;
    return 0.0f;
  }
  F4 vsw{}, vswx{};
  for (int i = 0; i < n; i += 4) {
    vsw += Load4(w + i);
    vswx += Load4(w + i) * Load4(x + i);
  }
  const float sw = Sum4(vsw), swx = Sum4(vswx);
  float best_err = INFINITY, best_s = (hi - lo) / nmax, best_b = lo;
  for (int step = -10; step <= 10; ++step) {
    const float iscale = (nmax + 0.1f * step) / (hi - lo);
    F4 vswq{}, vswqq{}, vswqx{};
    for (int i = 0; i < n; i += 4) {
      const F4 xv = Load4(x + i), wv = Load4(w + i);
      const F4 q = RoundClamp4((xv - lo) * iscale, 0.0f, static_cast<float>(nmax));
      vswq += wv * q;
      vswqq += wv * q * q;
      vswqx += wv * q * xv;
    }
    const float swq = Sum4(vswq), swqq = Sum4(vswqq), swqx = Sum4(vswqx);
    // Normal equations of x ~ s q + b; b (= -m) may not be positive.
    const float det = sw * swqq - swq * swq;
    if (det <= 0.0f) continue;
    float s = (sw * swqx - swq * swx) / det;
    float b = (swqq * swx - swq * swqx) / det;
    if (b > 0.0f) {
      b = 0.0f;
      s = swqx / swqq;
    }
    if (s <= 0.0f) continue;
    const float inv_s = 1.0f / s;
    F4 verr{};
    for (int i = 0; i < n; i += 4) {
      const F4 xv = Load4(x + i);
      const F4 diff = RoundClamp4((xv - b) * inv_s, 0.0f, static_cast<float>(nmax)) * s + b - xv;
      verr += Load4(w + i) * diff * diff;
    }
    const float err = Sum4(verr);
    if (err < best_err) {
      best_err = err;
      best_s = s;
      best_b = b;
    }
  }
  *min_out = -best_b;
  return best_s;
}

// Fits x ~ s * q with q in [-nmax, nmax - 1], minimizing sum w (s q - x)^2. The value of largest
// magnitude maps near -nmax with its sign, so the asymmetric range is used where it matters.
float FitScale(int n, int nmax, const float* x, const float* w) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < 1e-30f) return 0.0f;
  float best_score = -1.0f, best_s = max / -nmax;
  for (int step = -9; step <= 9; ++step) {
    const float iscale = -(nmax + 0.1f * step) / max;
    F4 vswqx{}, vswqq{};
    for (int i = 0; i < n; i += 4) {
      const F4 xv = Load4(x + i), wv = Load4(w + i);
      const F4 q =
          RoundClamp4(xv * iscale, static_cast<float>(-nmax), static_cast<float>(nmax - 1));
      vswqx += wv * q * xv;
      vswqq += wv * q * q;
    }
    const float swqx = Sum4(vswqx), swqq = Sum4(vswqq);
    // The least-squares s = swqx / swqq lowers the error by swqx^2 / swqq.
    if (swqq > 0.0f && swqx * swqx / swqq > best_score) {
      best_score = swqx * swqx / swqq;
      best_s = swqx / swqq;
    }
  }
  return best_s;
}

void QuantizeBlockQ4_K(const float* x, const float* importance, BlockQ4_K* y) {
  float w[kQK_K];
  ElementWeights(x, importance, w);
  float scales[8], mins[8];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < 8; ++j) {
    scales[j] = FitScaleMin(32, 15, x + 32 * j, w + 32 * j, &mins[j]);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  y->d = F32ToF16(max_scale / 63.0f);
  y->dmin = F32ToF16(max_min / 63.0f);
  const float d = F16ToF32(y->d), dmin = F16ToF32(y->dmin);
  // Each sub-block's 6-bit scale and min: of the two nearest levels of each, the pair whose
  // codes (rounded again) give the smallest weighted error.
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    const float s = d > 0.0f ? scales[j] / d : 0.0f, m = dmin > 0.0f ? mins[j] / dmin : 0.0f;
    const int s0 = std::clamp(RoundToInt(s), 0, 63), m0 = std::clamp(RoundToInt(m), 0, 63);
    ls[j] = static_cast<uint8_t>(s0);
    lm[j] = static_cast<uint8_t>(m0);
    float best = INFINITY;
    for (int sc : {static_cast<int>(std::floor(s)), static_cast<int>(std::floor(s)) + 1}) {
      for (int mn : {static_cast<int>(std::floor(m)), static_cast<int>(std::floor(m)) + 1}) {
        if (sc < 0 || sc > 63 || mn < 0 || mn > 63) continue;
        const float step = d * sc, offset = dmin * mn;
        const float inv = step != 0.0f ? 1.0f / step : 0.0f;
        F4 verr{};
        for (int i = 0; i < 32; i += 4) {
          const F4 xv = Load4(x + 32 * j + i);
          const F4 diff = RoundClamp4((xv + offset) * inv, 0.0f, 15.0f) * step - offset - xv;
          verr += Load4(w + 32 * j + i) * diff * diff;
        }
        const float err = Sum4(verr);
        if (err < best) {
          best = err;
          ls[j] = static_cast<uint8_t>(sc);
          lm[j] = static_cast<uint8_t>(mn);
        }
      }
    }
  }
  std::fill(std::begin(y->scales), std::end(y->scales), uint8_t{0});
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      y->scales[j] = ls[j];
      y->scales[j + 4] = lm[j];
    } else {
      y->scales[j + 4] = static_cast<uint8_t>((ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4));
      y->scales[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
      y->scales[j] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
    }
  }
  uint8_t codes[kQK_K];
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    Q4_KScaleMin(y->scales, j, &sc, &m);
    const float step = d * sc, offset = dmin * m;
    const float inv = step != 0.0f ? 1.0f / step : 0.0f;
    for (int i = 0; i < 32; ++i) {
      const int q = RoundToInt((x[32 * j + i] + offset) * inv);
      codes[32 * j + i] = static_cast<uint8_t>(std::clamp(q, 0, 15));
    }
  }
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      y->qs[32 * c + l] = static_cast<uint8_t>(codes[64 * c + l] | (codes[64 * c + 32 + l] << 4));
    }
  }
}

void QuantizeBlockQ6_K(const float* x, const float* importance, BlockQ6_K* y) {
  float w[kQK_K];
  if (importance != nullptr) {
    ElementWeights(x, importance, w);
  } else {
    // Squared magnitude: at 6 bits the large weights dominate the error that remains.
    for (int i = 0; i < kQK_K; ++i) w[i] = x[i] * x[i];
  }
  float scales[16];
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 16; ++j) {
    scales[j] = FitScale(16, 32, x + 16 * j, w + 16 * j);
    if (std::fabs(scales[j]) > amax) {
      amax = std::fabs(scales[j]);
      max = scales[j];
    }
  }
  // The scales are int8 against d; the largest in magnitude maps to -128.
  const float iscale = amax > 0.0f ? -128.0f / max : 0.0f;
  for (int j = 0; j < 16; ++j) {
    y->scales[j] = static_cast<int8_t>(std::clamp(RoundToInt(iscale * scales[j]), -128, 127));
  }
  y->d = F32ToF16(iscale != 0.0f ? 1.0f / iscale : 0.0f);
  const float d = F16ToF32(y->d);
  uint8_t codes[kQK_K];
  for (int e = 0; e < kQK_K; ++e) {
    const float step = d * y->scales[e / 16];
    const int q = step != 0.0f ? RoundToInt(x[e] * (1.0f / step)) : 0;
    codes[e] = static_cast<uint8_t>(std::clamp(q, -32, 31) + 32);
  }
  for (int h = 0; h < 2; ++h) {
    const uint8_t* c = codes + 128 * h;
    for (int l = 0; l < 32; ++l) {
      y->ql[64 * h + l] = static_cast<uint8_t>((c[l] & 0x0f) | ((c[l + 64] & 0x0f) << 4));
      y->ql[64 * h + 32 + l] = static_cast<uint8_t>((c[l + 32] & 0x0f) | ((c[l + 96] & 0x0f) << 4));
      y->qh[32 * h + l] = static_cast<uint8_t>((c[l] >> 4) | ((c[l + 32] >> 4) << 2) |
                                               ((c[l + 64] >> 4) << 4) | ((c[l + 96] >> 4) << 6));
    }
  }
}

}  // namespace

void Q4_KScaleMin(const uint8_t* scales, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

void QuantizeRowQ4_KRef(const float* x, BlockQ4_K* y, int64_t n, const float* importance) {
  SLIMLM_DCHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    QuantizeBlockQ4_K(x + b * kQK_K, importance ? importance + b * kQK_K : nullptr, y + b);
  }
}

void QuantizeRowQ6_KRef(const float* x, BlockQ6_K* y, int64_t n, const float* importance) {
  SLIMLM_DCHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    QuantizeBlockQ6_K(x + b * kQK_K, importance ? importance + b * kQK_K : nullptr, y + b);
  }
}

void DequantizeRowQ4_KRef(const BlockQ4_K* x, float* y, int64_t n) {
  SLIMLM_DCHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = F16ToF32(x[b].d), dmin = F16ToF32(x[b].dmin);
    float* yb = y + b * kQK_K;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      Q4_KScaleMin(x[b].scales, j, &sc, &m);
      const float step = d * sc, offset = dmin * m;
      const uint8_t* q = x[b].qs + 32 * (j / 2);
      const int shift = (j % 2) * 4;
      for (int l = 0; l < 32; ++l) yb[32 * j + l] = step * ((q[l] >> shift) & 0x0f) - offset;
    }
  }
}

void DequantizeRowQ6_KRef(const BlockQ6_K* x, float* y, int64_t n) {
  SLIMLM_DCHECK(n % kQK_K == 0);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const float d = F16ToF32(x[b].d);
    float* yb = y + b * kQK_K;
    for (int e = 0; e < kQK_K; ++e) {
      const int q = Q6_KCode(x[b], e) - 32;
      yb[e] = d * static_cast<float>(x[b].scales[e / 16]) * static_cast<float>(q);
    }
  }
}

}  // namespace slimlm
