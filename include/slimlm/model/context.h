// A Context runs one sequence through a Model: it owns the KV cache, the scratch buffers and
// the thread pool, and produces logits. It is an Engine (engine.h) with one sequence whose cache
// is a single block of n_ctx positions.
//
// All memory is allocated when the context is created; Eval allocates nothing (but for the
// kernels' per-thread scratch, as in engine.h). A Context is used from one thread at a time;
// several Contexts may share one Model.
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
#include "slimlm/model/engine.h"
#include "slimlm/model/model.h"

namespace slimlm {

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
  int n_threads() const { return engine_->n_threads(); }
  const ContextOptions& options() const { return options_; }
  // Starts adding operation statistics to `profile` (null: stop).
  void set_profile(OpProfile* profile) {
    options_.profile = profile;
    engine_->set_profile(profile);
  }
  // Forgets every position (the cache contents are simply overwritten later).
  void Reset() { n_past_ = 0; }
  // Keeps the first n positions (n <= n_past()).
  void Truncate(int64_t n);

  // Bytes held by the KV cache.
  size_t KvCacheBytes() const;

 private:
  Context(const ContextOptions& options, int64_t n_ctx, std::unique_ptr<Engine> engine);

  ContextOptions options_;
  int64_t n_ctx_;
  int64_t n_past_ = 0;
  int64_t last_eval_tokens_ = 0;
  std::unique_ptr<Engine> engine_;
  const int32_t block_ = 0;      // The cache is the engine's only block, of n_ctx positions.
  std::vector<StepToken> step_;  // One step's tokens.
  std::vector<float> logits_;    // (n_vocab) or (n_batch, n_vocab) with all_logits
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_CONTEXT_H_
