// A Context runs one sequence through a Model: it owns the KV cache, the scratch buffers and
// the thread pool, and produces logits.
//
// All memory is allocated when the context is created; Eval allocates nothing. A Context is
// used from one thread at a time; several Contexts may share one Model.
#ifndef SLIMLM_MODEL_CONTEXT_H_
#define SLIMLM_MODEL_CONTEXT_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "slimlm/core/op_profile.h"
#include "slimlm/core/status.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/model/model.h"

namespace slimlm {

// Sees the f32 input of every weight product of a forward pass (calibration statistics); called
// on the thread that runs Eval, before the product.
class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // x: (n_tokens, w.matrix.cols)
  virtual void Observe(const Linear& w, const float* x, int64_t n_tokens) = 0;
};

struct ContextOptions {
  int64_t n_ctx = 0;        // Positions the KV cache holds; 0: the model's context length.
  int n_threads = 0;        // 0: the number of physical cores.
  int64_t n_batch = 256;    // Most tokens processed in one forward step (longer inputs are split).
  bool all_logits = false;  // Keep logits of every token of an Eval (perplexity, scoring).
  DType kv_type_k = DType::kF16;  // Type of cached keys: f32, f16 or q8_0.
  DType kv_type_v = DType::kF16;  // Type of cached values: f32, f16 or q8_0.
  bool flash_attention = true;    // Tiled attention with an online softmax.
  // When set, every operation of the forward pass adds its time, bytes and operations here.
  OpProfile* profile = nullptr;
  ActivationObserver* observer = nullptr;  // When set, sees the input of every weight product.
};

class Context {
 public:
  static Result<std::unique_ptr<Context>> Create(const Model& model, const ContextOptions& options);
  ~Context();

  // Appends `tokens` at positions n_past() .. n_past() + n - 1 and runs them through the model.
  // Errors (leaving the context unchanged): an empty input, a token id outside the vocabulary,
  // or more positions than n_ctx().
  Status Eval(std::span<const int32_t> tokens);

  // Logits after the last token of the last Eval: (n_vocab,).
  std::span<const float> logits() const;
  // With all_logits: logits after token i of the last Eval: (n_vocab,).
  std::span<const float> logits_at(int64_t i) const;

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return n_ctx_; }
  int n_threads() const { return pool_.size(); }
  const ContextOptions& options() const { return options_; }
  // Starts adding operation statistics to `profile` (null: stop).
  void set_profile(OpProfile* profile) { options_.profile = profile; }
  // Forgets every position (the cache contents are simply overwritten later).
  void Reset() { n_past_ = 0; }
  // Keeps the first n positions (n <= n_past()).
  void Truncate(int64_t n);

  // Bytes held by the KV cache.
  size_t KvCacheBytes() const;

 private:
  struct Scratch;
  Context(const Model& model, const ContextOptions& options, int64_t n_ctx);
  // Runs one step of n tokens (n <= n_batch) at positions n_past_ ...; keeps logits of the last
  // token, or of all n when all_logits.
  void Forward(const int32_t* tokens, int64_t n, float* logits_out, bool all_logits);
  // Calls fn over ranges of the n tokens of a step, on the pool when there is enough work.
  void ForTokens(int64_t n, int64_t work_per_token, FunctionRef<void(int64_t t0, int64_t t1)> fn);
  // x += y over n rows of `width`.
  void AddRows(float* x, const float* y, int64_t n, int64_t width);
  // y = RMSNorm of each of n rows of width dim.
  void RmsNormRows(const float* x, const float* w, float* y, int64_t n);
  // Biases, QK norm, RoPE on the step's q and k, and k, v into the cache.
  void PrepareAttention(const LayerWeights& w, int64_t layer, int64_t n);
  void PrepareAttentionTokens(const LayerWeights& w, int64_t layer, int64_t t0, int64_t t1);
  void Attention(int64_t layer, int64_t n, const float* q, float* out);
  // y: (n, w.rows) = x: (n, w.cols) times w transposed, rows split across the pool.
  // same_input: x is the previous product's input, unchanged (its conversion is reused).
  void MatMul(const Linear& w, const float* x, int64_t n, float* y, bool same_input = false);

  const Model& model_;
  const kernels::KernelTable& kernels_;
  ContextOptions options_;
  int64_t n_ctx_;
  int64_t n_past_ = 0;
  int64_t last_eval_tokens_ = 0;
  bool act_quantized_ = false;  // Form of the activations last converted for a product.
  ThreadPool pool_;
  std::unique_ptr<Scratch> s_;
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_CONTEXT_H_
