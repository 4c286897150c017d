// An independent, deliberately plain forward pass in double precision, written from the
// architecture's definition rather than from src/model, to check Context's numerics on
// architectures without external goldens (Qwen2 biases, Qwen3 QK-norm, both RoPE pairings).
#ifndef SLIMLM_TESTS_MODEL_NAIVE_FORWARD_H_
#define SLIMLM_TESTS_MODEL_NAIVE_FORWARD_H_

#include <cmath>
#include <vector>

#include "slimlm/model/model.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::testing {

using Vec = std::vector<double>;

inline Vec LoadVec(const float* p, int64_t n) { return p ? Vec(p, p + n) : Vec(); }

// W (rows, cols) as doubles, from the tensor as stored (not the kernels' packed copy).
inline std::vector<Vec> LoadMatrix(const TensorView& w) {
  std::vector<Vec> m(static_cast<size_t>(w.rows()));
  std::vector<float> row(static_cast<size_t>(w.cols()));
  for (int64_t r = 0; r < w.rows(); ++r) {
    RowToF32(w.dtype, w.row(r), row.data(), w.cols());
    m[static_cast<size_t>(r)] = Vec(row.begin(), row.end());
  }
  return m;
}

inline Vec MatVec(const std::vector<Vec>& w, const Vec& x) {
  Vec y(w.size(), 0.0);
  for (size_t r = 0; r < w.size(); ++r) {
    for (size_t i = 0; i < x.size(); ++i) y[r] += w[r][i] * x[i];
  }
  return y;
}

inline Vec RmsNormD(const Vec& x, const Vec& w, double eps) {
  double ss = 0.0;
  for (double v : x) ss += v * v;
  double s = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * s * w[i];
  return y;
}

// Rotates head `h` of x at position pos (no RoPE scaling).
inline void RopeD(Vec& x, int64_t h, const ModelConfig& c, int64_t pos) {
  const int64_t half = c.rope_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    double angle = static_cast<double>(pos) *
                   std::pow(static_cast<double>(c.rope_theta),
                            -2.0 * static_cast<double>(i) / static_cast<double>(c.rope_dim));
    bool adjacent = c.rope_pairing == kernels::RopePairing::kAdjacent;
    size_t a = static_cast<size_t>(h * c.head_dim + (adjacent ? 2 * i : i));
    size_t b = static_cast<size_t>(h * c.head_dim + (adjacent ? 2 * i + 1 : i + half));
    double x0 = x[a], x1 = x[b];
    x[a] = x0 * std::cos(angle) - x1 * std::sin(angle);
    x[b] = x0 * std::sin(angle) + x1 * std::cos(angle);
  }
}

// Logits after each token of `tokens`, fed from position 0: (n_tokens, n_vocab).
inline std::vector<Vec> NaiveForward(const Model& model, const std::vector<int32_t>& tokens) {
  const ModelConfig& c = model.config();
  const std::vector<Vec> embd = LoadMatrix(model.token_embd());
  const std::vector<Vec> out_w = LoadMatrix(model.output().weight);
  struct Layer {
    Vec attn_norm, ffn_norm, bq, bk, bv, q_norm, k_norm;
    std::vector<Vec> wq, wk, wv, wo, gate, up, down;
  };
  std::vector<Layer> layers;
  for (const LayerWeights& l : model.layers()) {
    layers.push_back(
        {LoadVec(l.attn_norm, c.dim), LoadVec(l.ffn_norm, c.dim), LoadVec(l.bq, c.q_dim()),
         LoadVec(l.bk, c.kv_dim()), LoadVec(l.bv, c.kv_dim()), LoadVec(l.q_norm, c.head_dim),
         LoadVec(l.k_norm, c.head_dim), LoadMatrix(l.wq.weight), LoadMatrix(l.wk.weight),
         LoadMatrix(l.wv.weight), LoadMatrix(l.wo.weight), LoadMatrix(l.w_gate.weight),
         LoadMatrix(l.w_up.weight), LoadMatrix(l.w_down.weight)});
  }
  const Vec out_norm = LoadVec(model.output_norm(), c.dim);
  std::vector<std::vector<Vec>> keys(layers.size()), values(layers.size());
  std::vector<Vec> all_logits;
  for (size_t pos = 0; pos < tokens.size(); ++pos) {
    Vec x = embd[static_cast<size_t>(tokens[pos])];
    for (size_t li = 0; li < layers.size(); ++li) {
      const Layer& L = layers[li];
      Vec h = RmsNormD(x, L.attn_norm, c.norm_eps);
      Vec q = MatVec(L.wq, h), k = MatVec(L.wk, h), v = MatVec(L.wv, h);
      for (size_t i = 0; i < L.bq.size(); ++i) q[i] += L.bq[i];
      for (size_t i = 0; i < L.bk.size(); ++i) k[i] += L.bk[i];
      for (size_t i = 0; i < L.bv.size(); ++i) v[i] += L.bv[i];
      auto head_norm = [&](Vec& t, int64_t heads, const Vec& w) {
        for (int64_t hh = 0; hh < heads; ++hh) {
          Vec part(t.begin() + hh * c.head_dim, t.begin() + (hh + 1) * c.head_dim);
          part = RmsNormD(part, w, c.norm_eps);
          std::copy(part.begin(), part.end(), t.begin() + hh * c.head_dim);
        }
      };
      if (!L.q_norm.empty()) {
        head_norm(q, c.n_heads, L.q_norm);
        head_norm(k, c.n_kv_heads, L.k_norm);
      }
      for (int64_t hh = 0; hh < c.n_heads; ++hh) RopeD(q, hh, c, static_cast<int64_t>(pos));
      for (int64_t hh = 0; hh < c.n_kv_heads; ++hh) RopeD(k, hh, c, static_cast<int64_t>(pos));
      keys[li].push_back(k);
      values[li].push_back(v);
      Vec att(static_cast<size_t>(c.q_dim()), 0.0);
      for (int64_t hh = 0; hh < c.n_heads; ++hh) {
        int64_t kvh = hh / (c.n_heads / c.n_kv_heads);
        Vec s(pos + 1);
        double mx = -1e300;
        for (size_t p = 0; p <= pos; ++p) {
          double d = 0.0;
          for (int64_t j = 0; j < c.head_dim; ++j) {
            d += q[static_cast<size_t>(hh * c.head_dim + j)] *
                 keys[li][p][static_cast<size_t>(kvh * c.head_dim + j)];
          }
          s[p] = d / std::sqrt(static_cast<double>(c.head_dim));
          mx = std::max(mx, s[p]);
        }
        double sum = 0.0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (size_t p = 0; p <= pos; ++p) {
          for (int64_t j = 0; j < c.head_dim; ++j) {
            att[static_cast<size_t>(hh * c.head_dim + j)] +=
                s[p] / sum * values[li][p][static_cast<size_t>(kvh * c.head_dim + j)];
          }
        }
      }
      Vec o = MatVec(L.wo, att);
      for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
      h = RmsNormD(x, L.ffn_norm, c.norm_eps);
      Vec g = MatVec(L.gate, h), u = MatVec(L.up, h);
      for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      Vec d = MatVec(L.down, g);
      for (size_t i = 0; i < x.size(); ++i) x[i] += d[i];
    }
    all_logits.push_back(MatVec(out_w, RmsNormD(x, out_norm, c.norm_eps)));
  }
  return all_logits;
}

}  // namespace slimlm::testing

#endif  // SLIMLM_TESTS_MODEL_NAIVE_FORWARD_H_
