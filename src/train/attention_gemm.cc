#include "train/attention_gemm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "train/packed_matrix.h"

namespace slimlm::train {
namespace {

// Copies head h's columns [h hd, (h + 1) hd) of an (n, stride) array into a contiguous (n, hd).
void Gather(const float* a, int64_t n, int64_t stride, int64_t h, int64_t hd, float* out) {
  for (int64_t t = 0; t < n; ++t) std::copy_n(a + t * stride + h * hd, hd, out + t * hd);
}

// Adds (scaled) a contiguous (n, hd) into head h's columns of an (n, stride) array.
void Scatter(const float* a, int64_t n, int64_t stride, int64_t h, int64_t hd, float scale,
             float* out) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < hd; ++i) out[t * stride + h * hd + i] += scale * a[t * hd + i];
  }
}

// y: (rows of x, w_rows) = x w^T with w: (w_rows, cols) packed now.
void Product(const kernels::KernelTable& k, const float* w, int64_t w_rows, int64_t cols,
             const float* x, int64_t x_rows, float* y) {
  PackedMatrix m;
  m.Pack(k, w, w_rows, cols);
  m.Apply(k, x, x_rows, y);
}

}  // namespace

void AttentionForwardGemm(const kernels::KernelTable& k, const float* q, const float* kk,
                          const float* v, float* out, float* probs, int64_t n, int64_t heads,
                          int64_t kv, int64_t hd) {
  const int64_t group = heads / kv, qd = heads * hd, kvd = kv * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::vector<float> qh(n * hd), kh(n * hd), vt(hd * n), oh(n * hd);
  std::fill(out, out + n * qd, 0.0f);
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / group;
    Gather(q, n, qd, h, hd, qh.data());
    Gather(kk, n, kvd, g, hd, kh.data());
    float* p = probs + h * n * n;
    Product(k, kh.data(), n, hd, qh.data(), n, p);  // p[t, j] = q_t . k_j
    for (int64_t t = 0; t < n; ++t) {
      float* row = p + t * n;
      float max = -INFINITY;
      for (int64_t j = 0; j <= t; ++j) max = std::max(max, row[j] *= scale);
      float sum = 0;
      for (int64_t j = 0; j <= t; ++j) sum += (row[j] = std::exp(row[j] - max));
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j <= t; ++j) row[j] *= inv;
      std::fill(row + t + 1, row + n, 0.0f);
    }
    Gather(v, n, kvd, g, hd, oh.data());
    Transpose(oh.data(), n, hd, vt.data());
    Product(k, vt.data(), hd, n, p, n, oh.data());  // o[t] = sum_j p[t, j] v_j
    Scatter(oh.data(), n, qd, h, hd, 1.0f, out);
  }
}

void AttentionBackwardGemm(const kernels::KernelTable& k, const float* q, const float* kk,
                           const float* v, const float* probs, const float* dout, float* dq,
                           float* dk, float* dv, int64_t n, int64_t heads, int64_t kv, int64_t hd) {
  const int64_t group = heads / kv, qd = heads * hd, kvd = kv * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  std::fill(dq, dq + n * qd, 0.0f);
  std::fill(dk, dk + n * kvd, 0.0f);
  std::fill(dv, dv + n * kvd, 0.0f);
  std::vector<float> doh(n * hd), dot(hd * n), vh(n * hd), kh(n * hd), kt(hd * n), qh(n * hd),
      qt(hd * n), dp(n * n), pt(n * n), dst(n * n), tmp(n * hd);
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / group;
    const float* p = probs + h * n * n;
    Gather(dout, n, qd, h, hd, doh.data());
    Gather(v, n, kvd, g, hd, vh.data());
    // dV_g += P^T dO: rows j of P^T against dO^T.
    Transpose(doh.data(), n, hd, dot.data());
    Transpose(p, n, n, pt.data());
    Product(k, dot.data(), hd, n, pt.data(), n, tmp.data());
    Scatter(tmp.data(), n, kvd, g, hd, 1.0f, dv);
    // dP = dO V^T, then dS = P (dP - rowsum(P dP)) in place.
    Product(k, vh.data(), n, hd, doh.data(), n, dp.data());
    for (int64_t t = 0; t < n; ++t) {
      const float* pr = p + t * n;
      float* d = dp.data() + t * n;
      float weighted = 0;
      for (int64_t j = 0; j <= t; ++j) weighted += pr[j] * d[j];
      for (int64_t j = 0; j <= t; ++j) d[j] = pr[j] * (d[j] - weighted);
      std::fill(d + t + 1, d + n, 0.0f);
    }
    // dQ_h = scale dS K_g.
    Gather(kk, n, kvd, g, hd, kh.data());
    Transpose(kh.data(), n, hd, kt.data());
    Product(k, kt.data(), hd, n, dp.data(), n, tmp.data());
    Scatter(tmp.data(), n, qd, h, hd, scale, dq);
    // dK_g += scale dS^T Q_h.
    Gather(q, n, qd, h, hd, qh.data());
    Transpose(qh.data(), n, hd, qt.data());
    Transpose(dp.data(), n, n, dst.data());
    Product(k, qt.data(), hd, n, dst.data(), n, tmp.data());
    Scatter(tmp.data(), n, kvd, g, hd, scale, dk);
  }
}

}  // namespace slimlm::train
