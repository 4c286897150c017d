#include "slimlm/model/engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "model/rope.h"
#include "slimlm/core/aligned_bytes.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {

// Buffers for one step of up to max_step_tokens tokens, plus the KV pool.
struct Engine::Scratch {
  std::vector<float> x;             // (n, dim) residual stream
  std::vector<float> xb;            // (n, dim) normalized input of a sub-block
  std::vector<float> q;             // (n, q_dim)
  std::vector<float> k;             // (n, kv_dim)
  std::vector<float> v;             // (n, kv_dim)
  std::vector<float> att;           // (n, q_dim) attention output
  std::vector<float> proj;          // (n, dim) output of wo / w_down before the residual add
  std::vector<float> gate;          // (n, ffn_dim)
  std::vector<float> up;            // (n, ffn_dim)
  std::vector<uint8_t> act;         // activations prepared for the kernels' matrix products
  std::vector<float> attn_scratch;  // (n_threads, AttentionScratchFloats) per-thread scratch
  int64_t attn_scratch_per_thread = 0;
  std::vector<float> cos;  // (n, rope_dim / 2)
  std::vector<float> sin;  // (n, rope_dim / 2)
  // KV pool, head-major: (n_layers, n_kv_heads, n_blocks * block_size) rows of head_dim values
  // in the key / value type, so that a block of one head is contiguous memory.
  AlignedBytes k_cache;
  AlignedBytes v_cache;
  size_t k_row_bytes = 0;  // One head at one position.
  size_t v_row_bytes = 0;
  size_t rows_per_head = 0;  // n_blocks * block_size
  std::unique_ptr<RopeAngles> rope;
  std::vector<int64_t> last_pos;  // Step's checks: one entry per sequence (grows, never shrinks).
};

Engine::Engine(const Model& model, const EngineOptions& options)
    : model_(model),
      kernels_(model.kernels()),
      options_(options),
      pool_(options.n_threads > 0 ? options.n_threads : PhysicalCoreCount()),
      s_(std::make_unique<Scratch>()) {}

Engine::~Engine() = default;

namespace {

Status CheckKvType(DType type, int64_t head_dim, const char* which) {
  if (type != DType::kF32 && type != DType::kF16 && type != DType::kQ8_0) {
    return InvalidArgumentError("{} cache type {} is not one of f32, f16, q8_0", which,
                                DTypeName(type));
  }
  if (!IsRowLengthValid(type, head_dim)) {
    return InvalidArgumentError(
        "{} cache type {} needs a head dimension that is a multiple of {}, "
        "this model's is {}",
        which, DTypeName(type), Traits(type).block_size, head_dim);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::Create(const Model& model, const EngineOptions& options) {
  const ModelConfig& c = model.config();
  if (options.max_step_tokens <= 0) {
    return InvalidArgumentError("batch size {} must be positive", options.max_step_tokens);
  }
  if (options.n_blocks <= 0 || options.block_size <= 0) {
    return InvalidArgumentError("the KV pool needs blocks: {} of {} positions", options.n_blocks,
                                options.block_size);
  }
  const int64_t pool_positions = options.n_blocks * options.block_size;
  if (options.n_blocks > (int64_t{1} << 24) || pool_positions > (int64_t{1} << 26)) {
    return InvalidArgumentError("a KV pool of {} blocks of {} positions is too large",
                                options.n_blocks, options.block_size);
  }
  SLIMLM_RETURN_IF_ERROR(CheckKvType(options.kv_type_k, c.head_dim, "key"));
  SLIMLM_RETURN_IF_ERROR(CheckKvType(options.kv_type_v, c.head_dim, "value"));
  std::unique_ptr<Engine> engine(new Engine(model, options));
  const int64_t b = options.max_step_tokens;
  const int64_t max_positions =
      options.max_positions > 0 ? std::min(options.max_positions, pool_positions) : pool_positions;
  Scratch& s = *engine->s_;
  const kernels::KernelTable& k = model.kernels();
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
    size_t act_row = 0;
    for (const LayerWeights& l : model.layers()) {
      for (const Linear* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
        act_row = std::max(act_row, k.activation_row_bytes(m->matrix.dtype, m->matrix.cols));
      }
    }
    act_row = std::max(act_row, k.activation_row_bytes(model.output().matrix.dtype, c.dim));
    s.act.assign(static_cast<size_t>(b) * act_row, 0);
    const int64_t group = c.n_heads / c.n_kv_heads;
    s.attn_scratch_per_thread = kernels::AttentionScratchFloats(
        group, c.head_dim, options.flash_attention ? 0 : max_positions);
    sized(s.attn_scratch, engine->pool_.size() * s.attn_scratch_per_thread);
    sized(s.cos, b * (c.rope_dim / 2));
    s.last_pos.reserve(static_cast<size_t>(b));  // A step has at most b sequences with tokens.
    sized(s.sin, b * (c.rope_dim / 2));
    s.k_row_bytes = RowBytes(options.kv_type_k, c.head_dim);
    s.v_row_bytes = RowBytes(options.kv_type_v, c.head_dim);
    s.rows_per_head = static_cast<size_t>(pool_positions);
    const size_t rows = static_cast<size_t>(c.n_layers * c.n_kv_heads) * s.rows_per_head;
    s.k_cache = AlignedBytes(rows * s.k_row_bytes);
    s.v_cache = AlignedBytes(rows * s.v_row_bytes);
    // Every page written now keeps page faults out of the first steps.
    std::memset(s.k_cache.data(), 0, s.k_cache.size());
    std::memset(s.v_cache.data(), 0, s.v_cache.size());
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory allocating a KV cache of {} positions",
                                  pool_positions);
  }
  s.rope = std::make_unique<RopeAngles>(c, model.rope_freq_factors());
  return engine;
}

size_t Engine::KvCacheBytes() const { return s_->k_cache.size() + s_->v_cache.size(); }

size_t Engine::CacheRow(std::span<const int32_t> table, int64_t pos) const {
  const int64_t bs = options_.block_size;
  return static_cast<size_t>(table[static_cast<size_t>(pos / bs)]) * static_cast<size_t>(bs) +
         static_cast<size_t>(pos % bs);
}

Status Engine::Step(std::span<const StepToken> tokens,
                    std::span<const std::span<const int32_t>> tables, float* logits) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_vocab = model_.config().n_vocab;
  if (n == 0) return InvalidArgumentError("nothing to evaluate: the token list is empty");
  if (n > options_.max_step_tokens) {
    return InvalidArgumentError("{} tokens in one step, at most {}", n, options_.max_step_tokens);
  }
  // The last position each sequence reaches in this step: positions must increase, and the
  // sequence's blocks up to it are checked once, after the tokens.
  std::vector<int64_t>& last = s_->last_pos;
  last.assign(tables.size(), -1);
  for (const StepToken& t : tokens) {
    if (t.token < 0 || t.token >= n_vocab) {
      return InvalidArgumentError("token id {} is outside the vocabulary [0, {})", t.token,
                                  n_vocab);
    }
    if (t.seq < 0 || static_cast<size_t>(t.seq) >= tables.size()) {
      return InvalidArgumentError("sequence {} has no block table ({} given)", t.seq,
                                  tables.size());
    }
    const std::span<const int32_t> table = tables[static_cast<size_t>(t.seq)];
    if (t.pos < 0 || t.pos / options_.block_size >= static_cast<int64_t>(table.size())) {
      return OutOfRangeError("position {} of sequence {} is beyond its {} blocks of {}", t.pos,
                             t.seq, table.size(), options_.block_size);
    }
    if (t.pos <= last[static_cast<size_t>(t.seq)]) {
      return InvalidArgumentError("positions of sequence {} do not increase within the step",
                                  t.seq);
    }
    last[static_cast<size_t>(t.seq)] = t.pos;
  }
  for (size_t seq = 0; seq < tables.size(); ++seq) {
    for (int64_t i = 0; i <= last[seq] / options_.block_size && last[seq] >= 0; ++i) {
      const int32_t block = tables[seq][static_cast<size_t>(i)];
      if (block < 0 || block >= options_.n_blocks) {
        return InvalidArgumentError("block {} of sequence {} is outside the pool of {}", block, seq,
                                    options_.n_blocks);
      }
    }
  }
  Forward(tokens, tables, logits);
  return Status::Ok();
}

namespace {

std::string_view MatMulName(DType type) {
  switch (type) {
    case DType::kF32:
      return "matmul f32";
    case DType::kF16:
      return "matmul f16";
    case DType::kBF16:
      return "matmul bf16";
    case DType::kQ8_0:
      return "matmul q8_0";
    case DType::kQ4_0:
      return "matmul q4_0";
    case DType::kQ4_K:
      return "matmul q4_k";
    case DType::kQ6_K:
      return "matmul q6_k";
    case DType::kF16NM:
      return "matmul f16_nm";
  }
  return "matmul";
}

void AddBias(float* x, const float* bias, int64_t n, int64_t width) {
  if (bias == nullptr) return;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < width; ++i) x[t * width + i] += bias[i];
  }
}

}  // namespace

void Engine::ForTokens(int64_t n, int64_t work_per_token,
                       FunctionRef<void(int64_t t0, int64_t t1)> fn) {
  // Spreading a step's elementwise work over the threads pays once there is enough of it; a
  // single decoded token stays on the calling thread.
  if (n * work_per_token < 16384 || pool_.size() == 1) {
    fn(0, n);
    return;
  }
  pool_.ParallelFor(n, [&](int64_t t0, int64_t t1, int) { fn(t0, t1); });
}

void Engine::MatMul(const Linear& linear, const float* x, int64_t n, float* y, bool same_input) {
  if (options_.observer != nullptr) options_.observer->Observe(linear, x, n);
  const kernels::Matrix& w = linear.matrix;
  // Weights read once per call, activations read and outputs written.
  const double bytes = static_cast<double>(linear.weight.nbytes()) +
                       4.0 * static_cast<double>(n) * static_cast<double>(w.cols + w.rows);
  ScopedOp op(
      options_.profile, MatMulName(w.dtype), bytes,
      2.0 * static_cast<double>(n) * static_cast<double>(w.rows) * static_cast<double>(w.cols));
  const size_t act_row_bytes = kernels_.activation_row_bytes(w.dtype, w.cols);
  // Products that share their input (q, k, v; gate, up) convert it once when their weights
  // take the same activation form.
  const bool quantized = Traits(w.dtype).quantized;
  if (!same_input || quantized != act_quantized_) {
    ForTokens(n, w.cols, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        kernels_.convert_activation(w.dtype, x + t * w.cols,
                                    s_->act.data() + static_cast<size_t>(t) * act_row_bytes,
                                    w.cols);
      }
    });
    act_quantized_ = quantized;
  }
  // Threads take whole packed groups of rows.
  const int64_t block = kernels_.row_block;
  const int64_t groups = (w.rows + block - 1) / block;
  pool_.ParallelFor(groups, [&](int64_t g0, int64_t g1, int) {
    kernels_.matmul(w, s_->act.data(), act_row_bytes, y, w.rows, n, g0 * block,
                    std::min(w.rows, g1 * block));
  });
}

void Engine::Attention(int64_t layer, std::span<const StepToken> tokens,
                       std::span<const std::span<const int32_t>> tables, const float* q,
                       float* out) {
  const ModelConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  // Token t reads pos + 1 cached rows of keys and values; each query head does two dot products
  // of head_dim per row (scores and weighted values).
  double rows_read = 0;
  for (const StepToken& t : tokens) rows_read += static_cast<double>(t.pos + 1);
  ScopedOp op(options_.profile, "attention",
              rows_read * static_cast<double>(c.n_kv_heads) *
                  static_cast<double>(s_->k_row_bytes + s_->v_row_bytes),
              rows_read * 4.0 * static_cast<double>(c.n_heads * c.head_dim));
  const int64_t group = c.n_heads / c.n_kv_heads;
  // The pool rows of one (layer, head).
  auto rows_of = [&](AlignedBytes& cache, size_t row_bytes, int64_t h) {
    return cache.data() +
           static_cast<size_t>(layer * c.n_kv_heads + h) * s_->rows_per_head * row_bytes;
  };
  const auto attention = options_.flash_attention ? kernels_.flash_attention : kernels_.attention;
  // One task per (token, key/value head): the key/value rows are read once for the `group`
  // query heads that share them.
  pool_.Run(n * c.n_kv_heads, [&](int64_t task, int thread) {
    const int64_t t = task / c.n_kv_heads;
    const int64_t h = task % c.n_kv_heads;
    const StepToken& token = tokens[static_cast<size_t>(t)];
    const std::span<const int32_t> table = tables[static_cast<size_t>(token.seq)];
    kernels::AttentionArgs a;
    a.q = q + t * c.q_dim() + h * group * c.head_dim;
    a.group = group;
    a.head_dim = c.head_dim;
    a.k = rows_of(s_->k_cache, s_->k_row_bytes, h);
    a.v = rows_of(s_->v_cache, s_->v_row_bytes, h);
    a.k_type = options_.kv_type_k;
    a.v_type = options_.kv_type_v;
    a.k_stride = s_->k_row_bytes;
    a.v_stride = s_->v_row_bytes;
    a.n_kv = token.pos + 1;  // Causal: this token sees itself and its sequence's past.
    a.blocks = table.data();
    a.block_rows = options_.block_size;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    a.out = out + t * c.q_dim() + h * group * c.head_dim;
    a.scratch = s_->attn_scratch.data() + thread * s_->attn_scratch_per_thread;
    attention(a);
  });
}

void Engine::AddRows(float* x, const float* y, int64_t n, int64_t width) {
  ForTokens(n, width, [&](int64_t t0, int64_t t1) {
    for (int64_t i = t0 * width; i < t1 * width; ++i) x[i] += y[i];
  });
}

void Engine::RmsNormRows(const float* x, const float* w, float* y, int64_t n) {
  const int64_t dim = model_.config().dim;
  ScopedOp op(options_.profile, "rms_norm", 8.0 * static_cast<double>(n * dim),
              4.0 * static_cast<double>(n * dim));
  ForTokens(n, dim, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      kernels_.rms_norm(x + t * dim, w, y + t * dim, dim, model_.config().norm_eps);
    }
  });
}

void Engine::PrepareAttention(const LayerWeights& w, int64_t layer,
                              std::span<const StepToken> tokens,
                              std::span<const std::span<const int32_t>> tables) {
  const ModelConfig& c = model_.config();
  Scratch& s = *s_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim(), half = c.rope_dim / 2;
  ScopedOp op(options_.profile, "rope + kv store",
              static_cast<double>(n) *
                  (8.0 * static_cast<double>(q_dim + kv_dim) +
                   static_cast<double>(c.n_kv_heads * (s.k_row_bytes + s.v_row_bytes))),
              6.0 * static_cast<double>(n * (q_dim + kv_dim)));
  ForTokens(n, q_dim + 2 * kv_dim, [&](int64_t t0, int64_t t1) {
    AddBias(s.q.data() + t0 * q_dim, w.bq, t1 - t0, q_dim);
    AddBias(s.k.data() + t0 * kv_dim, w.bk, t1 - t0, kv_dim);
    AddBias(s.v.data() + t0 * kv_dim, w.bv, t1 - t0, kv_dim);
    for (int64_t t = t0; t < t1; ++t) {
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
      const float* vt = s.v.data() + t * kv_dim;
      const StepToken& token = tokens[static_cast<size_t>(t)];
      const size_t pos_row = CacheRow(tables[static_cast<size_t>(token.seq)], token.pos);
      for (int64_t h = 0; h < c.n_kv_heads; ++h) {
        const size_t row =
            static_cast<size_t>(layer * c.n_kv_heads + h) * s.rows_per_head + pos_row;
        kernels_.from_f32(options_.kv_type_k, kt + h * c.head_dim,
                          s.k_cache.data() + row * s.k_row_bytes, c.head_dim);
        kernels_.from_f32(options_.kv_type_v, vt + h * c.head_dim,
                          s.v_cache.data() + row * s.v_row_bytes, c.head_dim);
      }
    }
  });
}

void Engine::Forward(std::span<const StepToken> tokens,
                     std::span<const std::span<const int32_t>> tables, float* logits_out) {
  const ModelConfig& c = model_.config();
  Scratch& s = *s_;
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t dim = c.dim, half = c.rope_dim / 2;
  {
    const TensorView& embd = model_.token_embd();
    ScopedOp op(options_.profile, "embedding",
                static_cast<double>(n) * (static_cast<double>(embd.row_bytes()) + 4.0 * dim), 0.0);
    for (int64_t t = 0; t < n; ++t) {
      const StepToken& token = tokens[static_cast<size_t>(t)];
      RowToF32(embd.dtype, embd.row(token.token), s.x.data() + t * dim, dim);
      s.rope->Compute(token.pos, s.cos.data() + t * half, s.sin.data() + t * half);
    }
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = model_.layers()[static_cast<size_t>(l)];
    // Attention block.
    RmsNormRows(s.x.data(), w.attn_norm, s.xb.data(), n);
    MatMul(w.wq, s.xb.data(), n, s.q.data());
    MatMul(w.wk, s.xb.data(), n, s.k.data(), /*same_input=*/true);
    MatMul(w.wv, s.xb.data(), n, s.v.data(), /*same_input=*/true);
    PrepareAttention(w, l, tokens, tables);
    Attention(l, tokens, tables, s.q.data(), s.att.data());
    MatMul(w.wo, s.att.data(), n, s.proj.data());
    AddRows(s.x.data(), s.proj.data(), n, dim);
    // Feed-forward block (SwiGLU).
    RmsNormRows(s.x.data(), w.ffn_norm, s.xb.data(), n);
    MatMul(w.w_gate, s.xb.data(), n, s.gate.data());
    MatMul(w.w_up, s.xb.data(), n, s.up.data(), /*same_input=*/true);
    {
      const double count = static_cast<double>(n * c.ffn_dim);
      ScopedOp op(options_.profile, "silu_gate", 12.0 * count, 6.0 * count);
      ForTokens(n, c.ffn_dim, [&](int64_t t0, int64_t t1) {
        const int64_t f = c.ffn_dim;
        kernels_.silu_gate(s.gate.data() + t0 * f, s.up.data() + t0 * f, s.gate.data() + t0 * f,
                           (t1 - t0) * f);
      });
    }
    MatMul(w.w_down, s.gate.data(), n, s.proj.data());
    AddRows(s.x.data(), s.proj.data(), n, dim);
  }
  // Only the rows whose logits are wanted go through the output projection; gathered in token
  // order (a contiguous run needs no copy).
  int64_t m = 0;
  for (int64_t t = 0; t < n; ++t) {
    if (!tokens[static_cast<size_t>(t)].logits) continue;
    if (m != t) std::memcpy(s.x.data() + m * dim, s.x.data() + t * dim, sizeof(float) * dim);
    ++m;
  }
  if (m == 0) return;
  RmsNormRows(s.x.data(), model_.output_norm(), s.xb.data(), m);
  MatMul(model_.output(), s.xb.data(), m, logits_out);
}

}  // namespace slimlm
