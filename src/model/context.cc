#include "slimlm/model/context.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/rope.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {

// Buffers for one forward step of up to n_batch tokens, plus the KV cache.
struct Context::Scratch {
  std::vector<float> x;        // (n_batch, dim) residual stream
  std::vector<float> xb;       // (n_batch, dim) normalized input of a sub-block
  std::vector<float> q;        // (n_batch, q_dim)
  std::vector<float> k;        // (n_batch, kv_dim)
  std::vector<float> v;        // (n_batch, kv_dim)
  std::vector<float> att;      // (n_batch, q_dim) attention output
  std::vector<float> proj;     // (n_batch, dim) output of wo / w_down before the residual add
  std::vector<float> gate;     // (n_batch, ffn_dim)
  std::vector<float> up;       // (n_batch, ffn_dim)
  std::vector<uint8_t> act;    // activations converted for quantized weights
  std::vector<float> scores;   // (n_threads, n_ctx) attention scores
  std::vector<float> cos;      // (n_batch, rope_dim / 2)
  std::vector<float> sin;      // (n_batch, rope_dim / 2)
  std::vector<float> logits;   // (n_vocab) or (n_batch, n_vocab) with all_logits
  std::vector<float> k_cache;  // (n_layers, n_ctx, kv_dim)
  std::vector<float> v_cache;  // (n_layers, n_ctx, kv_dim)
  std::unique_ptr<RopeAngles> rope;
};

Context::Context(const Model& model, const ContextOptions& options, int64_t n_ctx)
    : model_(model),
      kernels_(kernels::Kernels()),
      options_(options),
      n_ctx_(n_ctx),
      pool_(options.n_threads > 0 ? options.n_threads : PhysicalCoreCount()),
      s_(std::make_unique<Scratch>()) {}

Context::~Context() = default;

Result<std::unique_ptr<Context>> Context::Create(const Model& model,
                                                 const ContextOptions& options) {
  const ModelConfig& c = model.config();
  int64_t n_ctx = options.n_ctx > 0 ? options.n_ctx : c.context_length;
  if (options.n_batch <= 0) {
    return InvalidArgumentError("batch size {} must be positive", options.n_batch);
  }
  if (n_ctx > (int64_t{1} << 24)) {
    return InvalidArgumentError("context size {} is too large", n_ctx);
  }
  std::unique_ptr<Context> ctx(new Context(model, options, n_ctx));
  const int64_t b = std::min(options.n_batch, n_ctx);
  ctx->options_.n_batch = b;
  Scratch& s = *ctx->s_;
  auto sized = [](std::vector<float>& v, int64_t n) { v.assign(static_cast<size_t>(n), 0.0f); };
  try {
    sized(s.x, b * c.dim);
    sized(s.xb, b * c.dim);
    sized(s.q, b * c.q_dim());
    sized(s.k, b * c.kv_dim());
    sized(s.v, b * c.kv_dim());
    sized(s.att, b * c.q_dim());
    sized(s.proj, b * c.dim);
    sized(s.gate, b * c.ffn_dim);
    sized(s.up, b * c.ffn_dim);
    int64_t widest = std::max({c.dim, c.q_dim(), c.ffn_dim});
    s.act.assign(static_cast<size_t>(b) * RowBytes(DType::kQ8_0, (widest + 31) / 32 * 32), 0);
    sized(s.scores, ctx->pool_.size() * n_ctx);
    sized(s.cos, b * (c.rope_dim / 2));
    sized(s.sin, b * (c.rope_dim / 2));
    sized(s.logits, (options.all_logits ? b : 1) * c.n_vocab);
    sized(s.k_cache, c.n_layers * n_ctx * c.kv_dim());
    sized(s.v_cache, c.n_layers * n_ctx * c.kv_dim());
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory allocating a context of {} positions", n_ctx);
  }
  s.rope = std::make_unique<RopeAngles>(c, model.rope_freq_factors());
  return ctx;
}

size_t Context::KvCacheBytes() const {
  return (s_->k_cache.size() + s_->v_cache.size()) * sizeof(float);
}

void Context::Truncate(int64_t n) { n_past_ = std::clamp<int64_t>(n, 0, n_past_); }

std::span<const float> Context::logits() const {
  const int64_t n_vocab = model_.config().n_vocab;
  int64_t row = options_.all_logits ? std::max<int64_t>(0, last_eval_tokens_ - 1) : 0;
  return {s_->logits.data() + row * n_vocab, static_cast<size_t>(n_vocab)};
}

std::span<const float> Context::logits_at(int64_t i) const {
  SLIMLM_CHECK(options_.all_logits) << "logits_at needs ContextOptions::all_logits";
  SLIMLM_CHECK(i >= 0 && i < last_eval_tokens_) << "token " << i << " of " << last_eval_tokens_;
  const int64_t n_vocab = model_.config().n_vocab;
  return {s_->logits.data() + i * n_vocab, static_cast<size_t>(n_vocab)};
}

Status Context::Eval(std::span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_vocab = model_.config().n_vocab;
  if (n == 0) return InvalidArgumentError("nothing to evaluate: the token list is empty");
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) {
      return InvalidArgumentError("token id {} is outside the vocabulary [0, {})", t, n_vocab);
    }
  }
  if (n_past_ + n > n_ctx_) {
    return OutOfRangeError("{} tokens do not fit the context: {} of {} positions are used", n,
                           n_past_, n_ctx_);
  }
  if (options_.all_logits && n > options_.n_batch) {
    return InvalidArgumentError("at most {} tokens per call when keeping all logits, got {}",
                                options_.n_batch, n);
  }
  for (int64_t start = 0; start < n; start += options_.n_batch) {
    const int64_t chunk = std::min(options_.n_batch, n - start);
    Forward(tokens.data() + start, chunk, s_->logits.data(), options_.all_logits);
  }
  last_eval_tokens_ = n;
  return Status::Ok();
}

void Context::MatMul(const TensorView& w, const float* x, int64_t n, float* y) {
  const int64_t k = w.cols();
  const int64_t rows = w.rows();
  const DType act_type = kernels::ActivationType(w.dtype);
  const void* act = x;
  size_t act_row_bytes = static_cast<size_t>(k) * sizeof(float);
  if (act_type != DType::kF32) {
    act_row_bytes = RowBytes(act_type, k);
    for (int64_t t = 0; t < n; ++t) {
      kernels::ConvertActivation(kernels_, w.dtype, x + t * k,
                                 s_->act.data() + static_cast<size_t>(t) * act_row_bytes, k);
    }
    act = s_->act.data();
  }
  const kernels::MatMulFn fn = kernels_.MatMul(w.dtype);
  const size_t w_row_bytes = w.row_bytes();
  pool_.ParallelFor(rows, [&](int64_t r0, int64_t r1, int) {
    fn(w.data, w_row_bytes, act, act_row_bytes, k, y, rows, n, r0, r1);
  });
}

void Context::Attention(int64_t layer, int64_t n, const float* q, float* out) {
  const ModelConfig& c = model_.config();
  const int64_t kv_dim = c.kv_dim();
  const int64_t group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  const float* k_base = s_->k_cache.data() + layer * n_ctx_ * kv_dim;
  const float* v_base = s_->v_cache.data() + layer * n_ctx_ * kv_dim;
  pool_.Run(n * c.n_heads, [&](int64_t task, int thread) {
    const int64_t t = task / c.n_heads;
    const int64_t h = task % c.n_heads;
    const int64_t kv_head = h / group;
    const int64_t n_kv = n_past_ + t + 1;  // Causal: this token sees itself and the past.
    kernels_.attention(q + t * c.q_dim() + h * c.head_dim, k_base + kv_head * c.head_dim,
                       v_base + kv_head * c.head_dim, kv_dim, n_kv, c.head_dim, scale,
                       s_->scores.data() + thread * n_ctx_, out + t * c.q_dim() + h * c.head_dim);
  });
}

namespace {

void AddBias(float* x, const float* bias, int64_t n, int64_t width) {
  if (bias == nullptr) return;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < width; ++i) x[t * width + i] += bias[i];
  }
}

void AddInto(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

}  // namespace

void Context::Forward(const int32_t* tokens, int64_t n, float* logits_out, bool all_logits) {
  const ModelConfig& c = model_.config();
  Scratch& s = *s_;
  const int64_t dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), half = c.rope_dim / 2;
  const TensorView& embd = model_.token_embd();
  for (int64_t t = 0; t < n; ++t) {
    RowToF32(embd.dtype, embd.row(tokens[t]), s.x.data() + t * dim, dim);
    s.rope->Compute(n_past_ + t, s.cos.data() + t * half, s.sin.data() + t * half);
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model_.layers()[static_cast<size_t>(l)];
    // Attention block.
    for (int64_t t = 0; t < n; ++t) {
      kernels_.rms_norm(s.x.data() + t * dim, w.attn_norm, s.xb.data() + t * dim, dim, c.norm_eps);
    }
    MatMul(w.wq, s.xb.data(), n, s.q.data());
    MatMul(w.wk, s.xb.data(), n, s.k.data());
    MatMul(w.wv, s.xb.data(), n, s.v.data());
    AddBias(s.q.data(), w.bq, n, q_dim);
    AddBias(s.k.data(), w.bk, n, kv_dim);
    AddBias(s.v.data(), w.bv, n, kv_dim);
    for (int64_t t = 0; t < n; ++t) {
      float* qt = s.q.data() + t * q_dim;
      float* kt = s.k.data() + t * kv_dim;
      if (w.q_norm != nullptr) {  // Qwen3: RMSNorm over each head before RoPE.
        for (int64_t h = 0; h < c.n_heads; ++h) {
          kernels_.rms_norm(qt + h * c.head_dim, w.q_norm, qt + h * c.head_dim, c.head_dim,
                            c.norm_eps);
        }
        for (int64_t h = 0; h < c.n_kv_heads; ++h) {
          kernels_.rms_norm(kt + h * c.head_dim, w.k_norm, kt + h * c.head_dim, c.head_dim,
                            c.norm_eps);
        }
      }
      const float* cos = s.cos.data() + t * half;
      const float* sin = s.sin.data() + t * half;
      kernels_.rope(qt, c.n_heads, c.head_dim, c.rope_dim, cos, sin, c.rope_pairing);
      kernels_.rope(kt, c.n_kv_heads, c.head_dim, c.rope_dim, cos, sin, c.rope_pairing);
      const int64_t pos = n_past_ + t;
      std::memcpy(s.k_cache.data() + (l * n_ctx_ + pos) * kv_dim, kt, kv_dim * sizeof(float));
      std::memcpy(s.v_cache.data() + (l * n_ctx_ + pos) * kv_dim, s.v.data() + t * kv_dim,
                  kv_dim * sizeof(float));
    }
    Attention(l, n, s.q.data(), s.att.data());
    MatMul(w.wo, s.att.data(), n, s.proj.data());
    AddInto(s.x.data(), s.proj.data(), n * dim);
    // Feed-forward block (SwiGLU).
    for (int64_t t = 0; t < n; ++t) {
      kernels_.rms_norm(s.x.data() + t * dim, w.ffn_norm, s.xb.data() + t * dim, dim, c.norm_eps);
    }
    MatMul(w.w_gate, s.xb.data(), n, s.gate.data());
    MatMul(w.w_up, s.xb.data(), n, s.up.data());
    kernels_.silu_gate(s.gate.data(), s.up.data(), s.gate.data(), n * c.ffn_dim);
    MatMul(w.w_down, s.gate.data(), n, s.proj.data());
    AddInto(s.x.data(), s.proj.data(), n * dim);
  }
  // Only the rows whose logits are wanted go through the output projection.
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t count = n - first;
  for (int64_t t = first; t < n; ++t) {
    kernels_.rms_norm(s.x.data() + t * dim, model_.output_norm(), s.xb.data() + (t - first) * dim,
                      dim, c.norm_eps);
  }
  MatMul(model_.output(), s.xb.data(), count, logits_out);
  n_past_ += n;
}

}  // namespace slimlm
