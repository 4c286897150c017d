#include "slimlm/train/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace slimlm::train {
namespace {

template <typename T>
T Dot(const T* a, const T* b, int64_t n) {
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

// y += a x over n values.
template <typename T>
void Axpy(T a, const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

template <typename T>
void RmsNormForward(const T* x, const T* w, T* y, T* inv_rms, int64_t n, int64_t d, T eps) {
  for (int64_t t = 0; t < n; ++t) {
    const T* xr = x + t * d;
    const T r = T(1) / std::sqrt(Dot(xr, xr, d) / static_cast<T>(d) + eps);
    inv_rms[t] = r;
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = xr[i] * r * w[i];
  }
}

// y_i = w_i x_i r with r = (mean x^2 + eps)^(-1/2), dr/dx_j = -r^3 x_j / d:
//   dx_j = r w_j dy_j - x_j r^3 / d sum_i w_i dy_i x_i;   dw_i += dy_i x_i r.
template <typename T>
void RmsNormBackward(const T* x, const T* w, const T* inv_rms, const T* dy, T* dx, T* dw, int64_t n,
                     int64_t d) {
  for (int64_t t = 0; t < n; ++t) {
    const T* xr = x + t * d;
    const T* dyr = dy + t * d;
    const T r = inv_rms[t];
    T sum = 0;
    for (int64_t i = 0; i < d; ++i) sum += w[i] * dyr[i] * xr[i];
    const T c = r * r * r * sum / static_cast<T>(d);
    for (int64_t i = 0; i < d; ++i) {
      dx[t * d + i] = r * w[i] * dyr[i] - xr[i] * c;
      dw[i] += dyr[i] * xr[i] * r;
    }
  }
}

template <typename T>
void LinearForward(const T* x, const T* w, T* y, int64_t n, int64_t in, int64_t out) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = 0; o < out; ++o) y[t * out + o] = Dot(x + t * in, w + o * in, in);
  }
}

template <typename T>
void LinearBackward(const T* x, const T* w, const T* dy, T* dx, T* dw, int64_t n, int64_t in,
                    int64_t out) {
  if (dx != nullptr) std::fill(dx, dx + n * in, T(0));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = 0; o < out; ++o) {
      const T g = dy[t * out + o];
      if (dx != nullptr) Axpy(g, w + o * in, dx + t * in, in);
      Axpy(g, x + t * in, dw + o * in, in);
    }
  }
}

template <typename T>
void Rope(T* x, int64_t n, int64_t heads, int64_t head_dim, int64_t rot_dim, double base,
          int64_t pos0, bool inverse) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < rot_dim / 2; ++i) {
      const double freq = std::pow(base, -2.0 * static_cast<double>(i) / rot_dim);
      const double theta = static_cast<double>(pos0 + t) * freq;
      const T c = static_cast<T>(std::cos(theta));
      const T s = static_cast<T>(inverse ? -std::sin(theta) : std::sin(theta));
      for (int64_t h = 0; h < heads; ++h) {
        T* p = x + (t * heads + h) * head_dim + 2 * i;
        const T a = p[0], b = p[1];
        p[0] = a * c - b * s;
        p[1] = a * s + b * c;
      }
    }
  }
}

template <typename T>
void AttentionForward(const T* q, const T* k, const T* v, T* out, T* probs, int64_t n,
                      int64_t heads, int64_t kv, int64_t hd) {
  const int64_t group = heads / kv;
  const T scale = T(1) / std::sqrt(static_cast<T>(hd));
  std::fill(probs, probs + heads * n * n, T(0));
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / group;
    for (int64_t t = 0; t < n; ++t) {
      T* p = probs + (h * n + t) * n;
      const T* qt = q + (t * heads + h) * hd;
      T max = -INFINITY;
      for (int64_t j = 0; j <= t; ++j) {
        p[j] = scale * Dot(qt, k + (j * kv + g) * hd, hd);
        max = std::max(max, p[j]);
      }
      T sum = 0;
      for (int64_t j = 0; j <= t; ++j) sum += (p[j] = std::exp(p[j] - max));
      for (int64_t j = 0; j <= t; ++j) p[j] /= sum;
      T* o = out + (t * heads + h) * hd;
      std::fill(o, o + hd, T(0));
      for (int64_t j = 0; j <= t; ++j) Axpy(p[j], v + (j * kv + g) * hd, o, hd);
    }
  }
}

// With s = scale q.k, p = softmax(s), out = sum p v:
//   dv_j += p_tj dout_t;  dp_tj = dout_t . v_j;  ds_tj = p_tj (dp_tj - sum_j' p_tj' dp_tj');
//   dq_t = scale sum_j ds_tj k_j;  dk_j += scale ds_tj q_t.
template <typename T>
void AttentionBackward(const T* q, const T* k, const T* v, const T* probs, const T* dout, T* dq,
                       T* dk, T* dv, int64_t n, int64_t heads, int64_t kv, int64_t hd) {
  const int64_t group = heads / kv;
  const T scale = T(1) / std::sqrt(static_cast<T>(hd));
  std::fill(dq, dq + n * heads * hd, T(0));
  std::fill(dk, dk + n * kv * hd, T(0));
  std::fill(dv, dv + n * kv * hd, T(0));
  std::vector<T> ds(static_cast<size_t>(n));
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / group;
    for (int64_t t = 0; t < n; ++t) {
      const T* p = probs + (h * n + t) * n;
      const T* dot = dout + (t * heads + h) * hd;
      T weighted = 0;
      for (int64_t j = 0; j <= t; ++j) {
        Axpy(p[j], dot, dv + (j * kv + g) * hd, hd);
        ds[j] = Dot(dot, v + (j * kv + g) * hd, hd);
        weighted += p[j] * ds[j];
      }
      const T* qt = q + (t * heads + h) * hd;
      T* dqt = dq + (t * heads + h) * hd;
      for (int64_t j = 0; j <= t; ++j) {
        const T d = scale * p[j] * (ds[j] - weighted);
        Axpy(d, k + (j * kv + g) * hd, dqt, hd);
        Axpy(d, qt, dk + (j * kv + g) * hd, hd);
      }
    }
  }
}

template <typename T>
void SiluGateForward(const T* g, const T* u, T* out, int64_t m) {
  for (int64_t i = 0; i < m; ++i) out[i] = g[i] / (T(1) + std::exp(-g[i])) * u[i];
}

// d silu(g) / dg = s (1 + g (1 - s)) with s = sigmoid(g).
template <typename T>
void SiluGateBackward(const T* g, const T* u, const T* dout, T* dg, T* du, int64_t m) {
  for (int64_t i = 0; i < m; ++i) {
    const T s = T(1) / (T(1) + std::exp(-g[i]));
    du[i] = dout[i] * g[i] * s;
    dg[i] = dout[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
  }
}

template <typename T>
T CrossEntropy(const T* logits, const int32_t* targets, T* dlogits, int64_t n, int64_t vocab) {
  int64_t counted = 0;
  for (int64_t t = 0; t < n; ++t) counted += targets[t] >= 0 ? 1 : 0;
  T loss = 0;
  for (int64_t t = 0; t < n; ++t) {
    const T* l = logits + t * vocab;
    T* dl = dlogits != nullptr ? dlogits + t * vocab : nullptr;
    if (targets[t] < 0) {
      if (dl != nullptr) std::fill(dl, dl + vocab, T(0));
      continue;
    }
    const T max = *std::max_element(l, l + vocab);
    T sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(l[i] - max);
    const T log_z = std::log(sum) + max;
    loss += log_z - l[targets[t]];
    if (dl != nullptr) {
      for (int64_t i = 0; i < vocab; ++i) dl[i] = std::exp(l[i] - log_z) / static_cast<T>(counted);
      dl[targets[t]] -= T(1) / static_cast<T>(counted);
    }
  }
  return counted > 0 ? loss / static_cast<T>(counted) : T(0);
}

template <typename T>
T DistillKl(const T* logits, const int32_t* teacher_ids, const T* teacher_logp, int64_t k,
            T* dlogits, int64_t n, int64_t vocab, T temperature, T reverse_weight) {
  if (n == 0) return T(0);
  const T inv_tau = T(1) / temperature;
  const T inv_n = T(1) / static_cast<T>(n);
  const int64_t rest = vocab - k;
  std::vector<T> log_q(static_cast<size_t>(vocab)), log_p(static_cast<size_t>(vocab));
  T loss = 0;
  for (int64_t t = 0; t < n; ++t) {
    const T* z = logits + t * vocab;
    const int32_t* ids = teacher_ids + t * k;
    const T* lp = teacher_logp + t * k;
    // Student: log softmax(z / tau).
    T max = *std::max_element(z, z + vocab) * inv_tau;
    T sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(z[i] * inv_tau - max);
    const T log_zq = std::log(sum) + max;
    for (int64_t i = 0; i < vocab; ++i) log_q[static_cast<size_t>(i)] = z[i] * inv_tau - log_zq;
    // Teacher: the top k and an even tail, tempered and normalized in the log domain.
    T top_mass = 0;
    for (int64_t j = 0; j < k; ++j) top_mass += std::exp(lp[j]);
    const T tail =
        rest > 0 ? std::log(std::max(T(1) - top_mass, T(1e-6)) / static_cast<T>(rest)) : T(0);
    std::fill(log_p.begin(), log_p.end(), tail * inv_tau);
    for (int64_t j = 0; j < k; ++j) log_p[static_cast<size_t>(ids[j])] = lp[j] * inv_tau;
    max = *std::max_element(log_p.begin(), log_p.end());
    sum = 0;
    for (T v : log_p) sum += std::exp(v - max);
    const T log_zp = std::log(sum) + max;
    for (T& v : log_p) v -= log_zp;
    // KL(p || q) = sum p (log p - log q); KL(q || p) = sum q (log q - log p).
    T forward = 0, reverse = 0;
    for (size_t i = 0; i < log_p.size(); ++i) {
      const T diff = log_p[i] - log_q[i];
      forward += std::exp(log_p[i]) * diff;
      reverse -= std::exp(log_q[i]) * diff;
    }
    loss += (T(1) - reverse_weight) * forward + reverse_weight * reverse;
    if (dlogits == nullptr) continue;
    // d KL(p||q) / dz = (q - p) / tau;  d KL(q||p) / dz = q (log q - log p - KL(q||p)) / tau.
    T* dz = dlogits + t * vocab;
    for (size_t i = 0; i < log_p.size(); ++i) {
      const T q = std::exp(log_q[i]);
      const T g_forward = q - std::exp(log_p[i]);
      const T g_reverse = q * (log_q[i] - log_p[i] - reverse);
      dz[i] = ((T(1) - reverse_weight) * g_forward + reverse_weight * g_reverse) * inv_tau * inv_n;
    }
  }
  return loss * inv_n;
}

#define SLIMLM_INSTANTIATE_TRAIN_OPS(T)                                                            \
  template void RmsNormForward<T>(const T*, const T*, T*, T*, int64_t, int64_t, T);                \
  template void RmsNormBackward<T>(const T*, const T*, const T*, const T*, T*, T*, int64_t,        \
                                   int64_t);                                                       \
  template void LinearForward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t);               \
  template void LinearBackward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t,          \
                                  int64_t);                                                        \
  template void Rope<T>(T*, int64_t, int64_t, int64_t, int64_t, double, int64_t, bool);            \
  template void AttentionForward<T>(const T*, const T*, const T*, T*, T*, int64_t, int64_t,        \
                                    int64_t, int64_t);                                             \
  template void AttentionBackward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*, \
                                     int64_t, int64_t, int64_t, int64_t);                          \
  template void SiluGateForward<T>(const T*, const T*, T*, int64_t);                               \
  template void SiluGateBackward<T>(const T*, const T*, const T*, T*, T*, int64_t);                \
  template T CrossEntropy<T>(const T*, const int32_t*, T*, int64_t, int64_t);                      \
  template T DistillKl<T>(const T*, const int32_t*, const T*, int64_t, T*, int64_t, int64_t, T, T);

SLIMLM_INSTANTIATE_TRAIN_OPS(float)
SLIMLM_INSTANTIATE_TRAIN_OPS(double)

}  // namespace slimlm::train
