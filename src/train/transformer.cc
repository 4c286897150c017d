#include "slimlm/train/transformer.h"

#include <algorithm>
#include <cstring>

#include <fmt/core.h>

#include "slimlm/core/check.h"
#include "slimlm/tensor/quant_blocks.h"
#include "slimlm/train/ops.h"

namespace slimlm::train {

std::vector<ParamSlot> LayoutParameters(const ModelConfig& c, bool tied_embeddings,
                                        int64_t* total) {
  std::vector<ParamSlot> slots;
  int64_t offset = 0;
  auto add = [&](std::string name, Shape shape) {
    const int64_t size = shape.NumElements();
    slots.push_back({std::move(name), shape, offset, size});
    offset += size;
  };
  add("token_embd.weight", Shape{c.n_vocab, c.dim});
  add("output_norm.weight", Shape{c.dim});
  if (!tied_embeddings) add("output.weight", Shape{c.n_vocab, c.dim});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    auto n = [i](const char* s) { return fmt::format("blk.{}.{}", i, s); };
    add(n("attn_norm.weight"), Shape{c.dim});
    add(n("attn_q.weight"), Shape{c.q_dim(), c.dim});
    add(n("attn_k.weight"), Shape{c.kv_dim(), c.dim});
    add(n("attn_v.weight"), Shape{c.kv_dim(), c.dim});
    add(n("attn_output.weight"), Shape{c.dim, c.q_dim()});
    add(n("ffn_norm.weight"), Shape{c.dim});
    add(n("ffn_gate.weight"), Shape{c.ffn_dim, c.dim});
    add(n("ffn_up.weight"), Shape{c.ffn_dim, c.dim});
    add(n("ffn_down.weight"), Shape{c.dim, c.ffn_dim});
  }
  *total = offset;
  return slots;
}

template <typename T>
Transformer<T>::Transformer(const ModelConfig& config, bool tied_embeddings)
    : config_(config), tied_(tied_embeddings) {
  int64_t total = 0;
  slots_ = LayoutParameters(config, tied_embeddings, &total);
  params_.assign(static_cast<size_t>(total), T(0));
  token_embd_ = Find("token_embd.weight")->offset;
  output_norm_ = Find("output_norm.weight")->offset;
  output_ = tied_ ? token_embd_ : Find("output.weight")->offset;
  for (int64_t i = 0; i < config.n_layers; ++i) {
    auto at = [&](const char* s) { return Find(fmt::format("blk.{}.{}", i, s))->offset; };
    layers_.push_back({at("attn_norm.weight"), at("attn_q.weight"), at("attn_k.weight"),
                       at("attn_v.weight"), at("attn_output.weight"), at("ffn_norm.weight"),
                       at("ffn_gate.weight"), at("ffn_up.weight"), at("ffn_down.weight")});
  }
}

template <typename T>
const ParamSlot* Transformer<T>::Find(const std::string& name) const {
  for (const ParamSlot& s : slots_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

template <typename T>
T Transformer<T>::ForwardBackward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                                  int64_t n_seq, int64_t seq_len, std::vector<T>* grads) {
  SLIMLM_CHECK(static_cast<int64_t>(tokens.size()) == n_seq * seq_len &&
               tokens.size() == targets.size());
  if (grads != nullptr) SLIMLM_CHECK(grads->size() == params_.size());
  int64_t counted = 0;
  for (int32_t t : targets) counted += t >= 0 ? 1 : 0;
  if (counted == 0) return T(0);
  // Each sequence's loss is a sum over its positions; scaling by 1 / counted makes the total the
  // mean over all scored positions, and the gradients those of the mean.
  const T scale = T(1) / static_cast<T>(counted);
  T loss = 0;
  for (int64_t s = 0; s < n_seq; ++s) {
    loss +=
        Sequence(tokens.data() + s * seq_len, targets.data() + s * seq_len, seq_len, scale, grads);
  }
  return loss * scale;
}

template <typename T>
T Transformer<T>::Sequence(const int32_t* tokens, const int32_t* targets, int64_t n, T scale,
                           std::vector<T>* grads) {
  const ModelConfig& c = config_;
  const int64_t d = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), f = c.ffn_dim, V = c.n_vocab;
  const int64_t H = c.n_heads, KV = c.n_kv_heads, hd = c.head_dim;
  const T eps = static_cast<T>(c.norm_eps);
  const T* P = params_.data();
  auto buf = [](int64_t size) { return std::vector<T>(static_cast<size_t>(size)); };

  // What the backward pass needs, per layer.
  struct Saved {
    std::vector<T> x_in, inv1, xn1, q, k, v, probs, att, x_mid, inv2, xn2, gate, up, act;
  };
  std::vector<Saved> saved(static_cast<size_t>(c.n_layers));
  std::vector<T> x = buf(n * d);
  for (int64_t t = 0; t < n; ++t) {
    std::copy_n(P + token_embd_ + static_cast<int64_t>(tokens[t]) * d, d, x.begin() + t * d);
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    Saved& S = saved[static_cast<size_t>(l)];
    S.x_in = x;
    S.inv1 = buf(n), S.xn1 = buf(n * d);
    RmsNormForward(x.data(), P + L.attn_norm, S.xn1.data(), S.inv1.data(), n, d, eps);
    S.q = buf(n * qd), S.k = buf(n * kvd), S.v = buf(n * kvd);
    LinearForward(S.xn1.data(), P + L.wq, S.q.data(), n, d, qd);
    LinearForward(S.xn1.data(), P + L.wk, S.k.data(), n, d, kvd);
    LinearForward(S.xn1.data(), P + L.wv, S.v.data(), n, d, kvd);
    Rope(S.q.data(), n, H, hd, c.rope_dim, c.rope_theta, 0, false);
    Rope(S.k.data(), n, KV, hd, c.rope_dim, c.rope_theta, 0, false);
    S.att = buf(n * qd), S.probs = buf(H * n * n);
    AttentionForward(S.q.data(), S.k.data(), S.v.data(), S.att.data(), S.probs.data(), n, H, KV,
                     hd);
    std::vector<T> proj = buf(n * d);
    LinearForward(S.att.data(), P + L.wo, proj.data(), n, qd, d);
    for (int64_t i = 0; i < n * d; ++i) x[i] += proj[i];
    S.x_mid = x;
    S.inv2 = buf(n), S.xn2 = buf(n * d);
    RmsNormForward(x.data(), P + L.ffn_norm, S.xn2.data(), S.inv2.data(), n, d, eps);
    S.gate = buf(n * f), S.up = buf(n * f), S.act = buf(n * f);
    LinearForward(S.xn2.data(), P + L.w_gate, S.gate.data(), n, d, f);
    LinearForward(S.xn2.data(), P + L.w_up, S.up.data(), n, d, f);
    SiluGateForward(S.gate.data(), S.up.data(), S.act.data(), n * f);
    LinearForward(S.act.data(), P + L.w_down, proj.data(), n, f, d);
    for (int64_t i = 0; i < n * d; ++i) x[i] += proj[i];
  }
  std::vector<T> inv_f = buf(n), xnf = buf(n * d), logits = buf(n * V);
  RmsNormForward(x.data(), P + output_norm_, xnf.data(), inv_f.data(), n, d, eps);
  LinearForward(xnf.data(), P + output_, logits.data(), n, d, V);
  std::vector<T> dlogits;
  if (grads != nullptr) dlogits = buf(n * V);
  // CrossEntropy gives the mean over this sequence's scored positions; scale it to a sum.
  int64_t counted = 0;
  for (int64_t t = 0; t < n; ++t) counted += targets[t] >= 0 ? 1 : 0;
  if (counted == 0) return T(0);
  const T loss = CrossEntropy(logits.data(), targets, grads ? dlogits.data() : nullptr, n, V) *
                 static_cast<T>(counted);
  if (grads == nullptr) return loss;

  T* G = grads->data();
  const T g_scale = scale * static_cast<T>(counted);
  for (T& g : dlogits) g *= g_scale;
  std::vector<T> dxnf = buf(n * d), dres = buf(n * d);
  LinearBackward(xnf.data(), P + output_, dlogits.data(), dxnf.data(), G + output_, n, d, V);
  RmsNormBackward(x.data(), P + output_norm_, inv_f.data(), dxnf.data(), dres.data(),
                  G + output_norm_, n, d);
  std::vector<T> tmp = buf(n * d);
  for (int64_t l = c.n_layers - 1; l >= 0; --l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    Saved& S = saved[static_cast<size_t>(l)];
    // Feed-forward block: x_out = x_mid + down(silu(gate(xn2)) * up(xn2)).
    std::vector<T> dact = buf(n * f), dgate = buf(n * f), dup = buf(n * f), dxn = buf(n * d);
    LinearBackward(S.act.data(), P + L.w_down, dres.data(), dact.data(), G + L.w_down, n, f, d);
    SiluGateBackward(S.gate.data(), S.up.data(), dact.data(), dgate.data(), dup.data(), n * f);
    LinearBackward(S.xn2.data(), P + L.w_gate, dgate.data(), dxn.data(), G + L.w_gate, n, d, f);
    LinearBackward(S.xn2.data(), P + L.w_up, dup.data(), tmp.data(), G + L.w_up, n, d, f);
    for (int64_t i = 0; i < n * d; ++i) dxn[i] += tmp[i];
    RmsNormBackward(S.x_mid.data(), P + L.ffn_norm, S.inv2.data(), dxn.data(), tmp.data(),
                    G + L.ffn_norm, n, d);
    for (int64_t i = 0; i < n * d; ++i) dres[i] += tmp[i];
    // Attention block: x_mid = x_in + wo(attention(rope(wq xn1), rope(wk xn1), wv xn1)).
    std::vector<T> datt = buf(n * qd), dq = buf(n * qd), dk = buf(n * kvd), dv = buf(n * kvd);
    LinearBackward(S.att.data(), P + L.wo, dres.data(), datt.data(), G + L.wo, n, qd, d);
    AttentionBackward(S.q.data(), S.k.data(), S.v.data(), S.probs.data(), datt.data(), dq.data(),
                      dk.data(), dv.data(), n, H, KV, hd);
    Rope(dq.data(), n, H, hd, c.rope_dim, c.rope_theta, 0, true);
    Rope(dk.data(), n, KV, hd, c.rope_dim, c.rope_theta, 0, true);
    LinearBackward(S.xn1.data(), P + L.wq, dq.data(), dxn.data(), G + L.wq, n, d, qd);
    LinearBackward(S.xn1.data(), P + L.wk, dk.data(), tmp.data(), G + L.wk, n, d, kvd);
    for (int64_t i = 0; i < n * d; ++i) dxn[i] += tmp[i];
    LinearBackward(S.xn1.data(), P + L.wv, dv.data(), tmp.data(), G + L.wv, n, d, kvd);
    for (int64_t i = 0; i < n * d; ++i) dxn[i] += tmp[i];
    RmsNormBackward(S.x_in.data(), P + L.attn_norm, S.inv1.data(), dxn.data(), tmp.data(),
                    G + L.attn_norm, n, d);
    for (int64_t i = 0; i < n * d; ++i) dres[i] += tmp[i];
  }
  for (int64_t t = 0; t < n; ++t) {
    T* row = G + token_embd_ + static_cast<int64_t>(tokens[t]) * d;
    for (int64_t i = 0; i < d; ++i) row[i] += dres[t * d + i];
  }
  return loss;
}

template class Transformer<float>;
template class Transformer<double>;

WeightStore ToWeightStore(const Transformer<float>& model, const Metadata& metadata) {
  WeightStore store;
  store.metadata() = metadata;
  model.config().ToMetadata(&store.metadata());
  for (const ParamSlot& s : model.slots()) {
    uint8_t* data = store.AddOwned(s.name, DType::kF32, s.shape);
    std::memcpy(data, model.params().data() + s.offset, static_cast<size_t>(s.size) * 4);
  }
  return store;
}

Result<Transformer<float>> FromWeightStore(const WeightStore& store) {
  const StoredTensor* embd = store.Find("token_embd.weight");
  if (embd == nullptr) return InvalidArgumentError("the model has no tensor 'token_embd.weight'");
  SLIMLM_ASSIGN_OR_RETURN(
      ModelConfig config,
      ModelConfig::FromMetadata(store.metadata(), embd->shape.Rows(), "the model"));
  if (config.arch != Architecture::kLlama) {
    return UnsupportedError("training supports the Llama architecture, not {}",
                            ArchitectureName(config.arch));
  }
  const bool tied = store.Find("output.weight") == nullptr;
  Transformer<float> model(config, tied);
  for (const ParamSlot& s : model.slots()) {
    const StoredTensor* t = store.Find(s.name);
    if (t == nullptr) return InvalidArgumentError("the model has no tensor '{}'", s.name);
    if (t->shape != s.shape) {
      return InvalidArgumentError("tensor '{}' has shape {}, the config implies {}", s.name,
                                  t->shape.ToString(), s.shape.ToString());
    }
    const int64_t cols = s.shape.Cols();
    const size_t row_bytes = RowBytes(t->dtype, cols);
    for (int64_t r = 0; r < s.shape.Rows(); ++r) {
      RowToF32(t->dtype, t->data + static_cast<size_t>(r) * row_bytes,
               model.params().data() + s.offset + r * cols, cols);
    }
  }
  return model;
}

}  // namespace slimlm::train
