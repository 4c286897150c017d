#include "slimlm/train/transformer.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <type_traits>

#include <fmt/core.h>

#include "slimlm/core/check.h"
#include "slimlm/core/hash.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/tensor/quant_blocks.h"
#include "slimlm/train/ops.h"
#include "train/attention_gemm.h"
#include "train/packed_matrix.h"

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

// Float models: every matrix packed for y = x w^T (forward) and for the transposed product
// (the backward pass's dx = dy w), repacked at each ForwardBackward since training changes them.
template <typename T>
struct Transformer<T>::Fast {
  const kernels::KernelTable* kernels = &kernels::Kernels();
  std::unique_ptr<ThreadPool> pool;
  std::map<int64_t, PackedMatrix> forward, transposed;  // By parameter offset.
};

template <typename T>
Transformer<T>::~Transformer() = default;
template <typename T>
Transformer<T>::Transformer(Transformer&& other) noexcept = default;
template <typename T>
Transformer<T>& Transformer<T>::operator=(Transformer&& other) noexcept = default;

template <typename T>
void Transformer<T>::SetThreads(int n_threads) {
  n_threads_ = std::max(1, n_threads);
  if (!fast_) fast_ = std::make_unique<Fast>();
  fast_->pool = n_threads_ > 1 ? std::make_unique<ThreadPool>(n_threads_) : nullptr;
}

template <typename T>
void Transformer<T>::PackWeights() {
  if constexpr (std::is_same_v<T, float>) {
    if (!fast_) fast_ = std::make_unique<Fast>();
    const kernels::KernelTable& k = *fast_->kernels;
    for (const ParamSlot& s : slots_) {
      if (s.shape.rank() != 2 || s.name == "token_embd.weight") continue;
      const int64_t rows = s.shape.Rows(), cols = s.shape.Cols();
      fast_->forward[s.offset].Pack(k, params_.data() + s.offset, rows, cols);
      fast_->transposed[s.offset].PackTransposed(k, params_.data() + s.offset, rows, cols);
    }
    if (tied_) {  // The embedding is the output matrix too.
      const int64_t rows = config_.n_vocab, cols = config_.dim;
      fast_->forward[output_].Pack(k, params_.data() + output_, rows, cols);
      fast_->transposed[output_].PackTransposed(k, params_.data() + output_, rows, cols);
    }
  }
}

template <typename T>
void Transformer<T>::Linear(int64_t offset, const T* x, T* y, int64_t n, int64_t in,
                            int64_t out) const {
  if constexpr (std::is_same_v<T, float>) {
    fast_->forward.at(offset).Apply(*fast_->kernels, x, n, y);
  } else {
    LinearForward(x, params_.data() + offset, y, n, in, out);
  }
}

// dx = dy w through the transposed matrix; dw += dy^T x as x^T (packed) times the rows of dy^T.
template <typename T>
void Transformer<T>::LinearGrad(int64_t offset, const T* x, const T* dy, T* dx, T* dw, int64_t n,
                                int64_t in, int64_t out) const {
  if constexpr (std::is_same_v<T, float>) {
    const kernels::KernelTable& k = *fast_->kernels;
    if (dx != nullptr) fast_->transposed.at(offset).Apply(k, dy, n, dx);
    // Scratch kept per thread: these products run for every matrix of every sequence.
    thread_local std::vector<float> dyt, prod;
    thread_local PackedMatrix xt;
    dyt.resize(static_cast<size_t>(out * n));
    prod.resize(static_cast<size_t>(out * in));
    Transpose(dy, n, out, dyt.data());
    xt.PackTransposed(k, x, n, in);
    xt.Apply(k, dyt.data(), out, prod.data());
    for (int64_t i = 0; i < out * in; ++i) dw[i] += prod[static_cast<size_t>(i)];
  } else {
    LinearBackward(x, params_.data() + offset, dy, dx, dw, n, in, out);
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
                                  int64_t n_seq, int64_t seq_len, std::vector<T>* grads,
                                  const PassOptions<T>& options) {
  SLIMLM_CHECK(static_cast<int64_t>(tokens.size()) == n_seq * seq_len &&
               tokens.size() == targets.size());
  if (grads != nullptr) SLIMLM_CHECK(grads->size() == params_.size());
  int64_t counted = 0;
  for (int32_t t : targets) counted += t >= 0 ? 1 : 0;
  if (counted == 0) return T(0);
  // Each sequence's loss is a sum over its positions; scaling by 1 / counted makes the total the
  // mean over all scored positions, and the gradients those of the mean.
  const T scale = T(1) / static_cast<T>(counted);
  PackWeights();
  // Chunk c of the sequences goes to its own loss and gradient buffer (chunk 0 writes into
  // *grads); the chunks are then summed in order.
  const int64_t chunks = std::min<int64_t>(n_threads_, n_seq);
  std::vector<T> losses(static_cast<size_t>(chunks), T(0));
  std::vector<std::vector<T>> buffers(static_cast<size_t>(chunks > 1 && grads ? chunks - 1 : 0));
  auto run_chunk = [&](int64_t c, int) {
    std::vector<T>* g = grads;
    if (c > 0 && grads != nullptr) {
      g = &buffers[static_cast<size_t>(c - 1)];
      g->assign(params_.size(), T(0));
    }
    for (int64_t s = c * n_seq / chunks; s < (c + 1) * n_seq / chunks; ++s) {
      losses[static_cast<size_t>(c)] += Sequence(
          s, tokens.data() + s * seq_len, targets.data() + s * seq_len, seq_len, scale, g, options);
    }
  };
  if (chunks > 1 && fast_ && fast_->pool) {
    fast_->pool->Run(chunks, run_chunk);
  } else {
    for (int64_t c = 0; c < chunks; ++c) run_chunk(c, 0);
  }
  T loss = 0;
  for (T l : losses) loss += l;
  for (const std::vector<T>& b : buffers) {
    for (size_t i = 0; i < b.size(); ++i) (*grads)[i] += b[i];
  }
  return loss * scale;
}

namespace {

// The residual-dropout mask of one block: 0 with probability p, else 1 / (1 - p), from a
// counter-based hash of (seed, sequence, layer, site, element) so that it does not depend on
// threads or order.
template <typename T>
std::vector<T> DropoutMask(double p, uint64_t seed, int64_t seq, int64_t layer, int site,
                           int64_t size) {
  const uint64_t base =
      Mix64(seed ^ Mix64(static_cast<uint64_t>(seq) * 4096 + static_cast<uint64_t>(layer) * 2 +
                         static_cast<uint64_t>(site)));
  const uint64_t threshold = static_cast<uint64_t>(p * 18446744073709551616.0);
  const T keep = static_cast<T>(1.0 / (1.0 - p));
  std::vector<T> mask(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) {
    mask[static_cast<size_t>(i)] = Mix64(base + static_cast<uint64_t>(i)) < threshold ? T(0) : keep;
  }
  return mask;
}

}  // namespace

template <typename T>
T Transformer<T>::Sequence(int64_t seq, const int32_t* tokens, const int32_t* targets, int64_t n,
                           T scale, std::vector<T>* grads, const PassOptions<T>& options) {
  const ModelConfig& c = config_;
  const int64_t d = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), f = c.ffn_dim, V = c.n_vocab;
  const int64_t H = c.n_heads, KV = c.n_kv_heads, hd = c.head_dim;
  const T eps = static_cast<T>(c.norm_eps);
  const T* P = params_.data();
  auto buf = [](int64_t size) { return std::vector<T>(static_cast<size_t>(size)); };

  // What the backward pass needs, per layer.
  struct Saved {
    std::vector<T> x_in, inv1, xn1, q, k, v, probs, att, x_mid, inv2, xn2, gate, up, act;
    std::vector<T> drop_attn, drop_ffn;  // Dropout masks (empty without dropout).
  };
  const bool dropout = options.dropout > 0;
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
    Linear(L.wq, S.xn1.data(), S.q.data(), n, d, qd);
    Linear(L.wk, S.xn1.data(), S.k.data(), n, d, kvd);
    Linear(L.wv, S.xn1.data(), S.v.data(), n, d, kvd);
    Rope(S.q.data(), n, H, hd, c.rope_dim, c.rope_theta, 0, false);
    Rope(S.k.data(), n, KV, hd, c.rope_dim, c.rope_theta, 0, false);
    S.att = buf(n * qd), S.probs = buf(H * n * n);
    if constexpr (std::is_same_v<T, float>) {
      AttentionForwardGemm(*fast_->kernels, S.q.data(), S.k.data(), S.v.data(), S.att.data(),
                           S.probs.data(), n, H, KV, hd);
    } else {
      AttentionForward(S.q.data(), S.k.data(), S.v.data(), S.att.data(), S.probs.data(), n, H, KV,
                       hd);
    }
    std::vector<T> proj = buf(n * d);
    Linear(L.wo, S.att.data(), proj.data(), n, qd, d);
    if (dropout) {
      S.drop_attn = DropoutMask<T>(options.dropout, options.dropout_seed, seq, l, 0, n * d);
      for (int64_t i = 0; i < n * d; ++i) proj[i] *= S.drop_attn[i];
    }
    for (int64_t i = 0; i < n * d; ++i) x[i] += proj[i];
    S.x_mid = x;
    S.inv2 = buf(n), S.xn2 = buf(n * d);
    RmsNormForward(x.data(), P + L.ffn_norm, S.xn2.data(), S.inv2.data(), n, d, eps);
    S.gate = buf(n * f), S.up = buf(n * f), S.act = buf(n * f);
    Linear(L.w_gate, S.xn2.data(), S.gate.data(), n, d, f);
    Linear(L.w_up, S.xn2.data(), S.up.data(), n, d, f);
    SiluGateForward(S.gate.data(), S.up.data(), S.act.data(), n * f);
    Linear(L.w_down, S.act.data(), proj.data(), n, f, d);
    if (dropout) {
      S.drop_ffn = DropoutMask<T>(options.dropout, options.dropout_seed, seq, l, 1, n * d);
      for (int64_t i = 0; i < n * d; ++i) proj[i] *= S.drop_ffn[i];
    }
    for (int64_t i = 0; i < n * d; ++i) x[i] += proj[i];
  }
  std::vector<T> inv_f = buf(n), xnf = buf(n * d), logits = buf(n * V);
  RmsNormForward(x.data(), P + output_norm_, xnf.data(), inv_f.data(), n, d, eps);
  Linear(output_, xnf.data(), logits.data(), n, d, V);
  std::vector<T> dlogits;
  if (grads != nullptr) dlogits = buf(n * V);
  // CrossEntropy gives the mean over this sequence's scored positions; scale it to a sum.
  int64_t counted = 0;
  for (int64_t t = 0; t < n; ++t) counted += targets[t] >= 0 ? 1 : 0;
  if (counted == 0) return T(0);
  T* dl = grads != nullptr ? dlogits.data() : nullptr;
  const T mean = options.loss != nullptr ? (*options.loss)(seq, logits.data(), targets, dl, n, V)
                                         : CrossEntropy(logits.data(), targets, dl, n, V);
  const T loss = mean * static_cast<T>(counted);
  if (grads == nullptr) return loss;

  T* G = grads->data();
  const T g_scale = scale * static_cast<T>(counted);
  for (T& g : dlogits) g *= g_scale;
  std::vector<T> dxnf = buf(n * d), dres = buf(n * d);
  LinearGrad(output_, xnf.data(), dlogits.data(), dxnf.data(), G + output_, n, d, V);
  RmsNormBackward(x.data(), P + output_norm_, inv_f.data(), dxnf.data(), dres.data(),
                  G + output_norm_, n, d);
  std::vector<T> tmp = buf(n * d), dproj = buf(n * d);
  // The gradient reaching a block's output: the residual's, through the block's dropout mask.
  auto through = [&](const std::vector<T>& mask) -> const T* {
    if (mask.empty()) return dres.data();
    for (int64_t i = 0; i < n * d; ++i) dproj[i] = dres[i] * mask[i];
    return dproj.data();
  };
  for (int64_t l = c.n_layers - 1; l >= 0; --l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    Saved& S = saved[static_cast<size_t>(l)];
    // Feed-forward block: x_out = x_mid + down(silu(gate(xn2)) * up(xn2)).
    std::vector<T> dact = buf(n * f), dgate = buf(n * f), dup = buf(n * f), dxn = buf(n * d);
    LinearGrad(L.w_down, S.act.data(), through(S.drop_ffn), dact.data(), G + L.w_down, n, f, d);
    SiluGateBackward(S.gate.data(), S.up.data(), dact.data(), dgate.data(), dup.data(), n * f);
    LinearGrad(L.w_gate, S.xn2.data(), dgate.data(), dxn.data(), G + L.w_gate, n, d, f);
    LinearGrad(L.w_up, S.xn2.data(), dup.data(), tmp.data(), G + L.w_up, n, d, f);
    for (int64_t i = 0; i < n * d; ++i) dxn[i] += tmp[i];
    RmsNormBackward(S.x_mid.data(), P + L.ffn_norm, S.inv2.data(), dxn.data(), tmp.data(),
                    G + L.ffn_norm, n, d);
    for (int64_t i = 0; i < n * d; ++i) dres[i] += tmp[i];
    // Attention block: x_mid = x_in + wo(attention(rope(wq xn1), rope(wk xn1), wv xn1)).
    std::vector<T> datt = buf(n * qd), dq = buf(n * qd), dk = buf(n * kvd), dv = buf(n * kvd);
    LinearGrad(L.wo, S.att.data(), through(S.drop_attn), datt.data(), G + L.wo, n, qd, d);
    if constexpr (std::is_same_v<T, float>) {
      AttentionBackwardGemm(*fast_->kernels, S.q.data(), S.k.data(), S.v.data(), S.probs.data(),
                            datt.data(), dq.data(), dk.data(), dv.data(), n, H, KV, hd);
    } else {
      AttentionBackward(S.q.data(), S.k.data(), S.v.data(), S.probs.data(), datt.data(), dq.data(),
                        dk.data(), dv.data(), n, H, KV, hd);
    }
    Rope(dq.data(), n, H, hd, c.rope_dim, c.rope_theta, 0, true);
    Rope(dk.data(), n, KV, hd, c.rope_dim, c.rope_theta, 0, true);
    LinearGrad(L.wq, S.xn1.data(), dq.data(), dxn.data(), G + L.wq, n, d, qd);
    LinearGrad(L.wk, S.xn1.data(), dk.data(), tmp.data(), G + L.wk, n, d, kvd);
    for (int64_t i = 0; i < n * d; ++i) dxn[i] += tmp[i];
    LinearGrad(L.wv, S.xn1.data(), dv.data(), tmp.data(), G + L.wv, n, d, kvd);
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
