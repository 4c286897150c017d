// The batched forward pass: one step runs tokens of many sequences at their own positions
// (chunks of prompts and single decode tokens mixed) through the model, reading every weight
// matrix once for all of them. Keys and values live in a paged cache: one pool of blocks of
// block_size positions per layer and key/value head, each sequence's positions found through its
// block table, which the caller keeps (serve::KvBlockPool hands out the block ids).
//
// A sequence's results do not depend on what it is batched with: every product, norm and
// attention of a token reads only that token's row and its own sequence's cache, and the matrix
// kernels give a row the same result whatever the number of rows beside it. So a prompt decodes
// to the same tokens alone or among sixteen others, bit for bit.
//
// All memory is allocated at creation; Step allocates nothing, except that a few kernels keep
// per-thread scratch that grows on first use and is then reused (the AMX products' offset
// corrections, the q8_0 attention's scaled weights). An Engine is used from one thread at a time;
// several Engines may share one Model. Context (context.h) is an Engine with one sequence whose
// cache is a single block.
#ifndef SLIMLM_MODEL_ENGINE_H_
#define SLIMLM_MODEL_ENGINE_H_

#include <cstdint>
#include <memory>
#include <span>

#include "slimlm/core/op_profile.h"
#include "slimlm/core/status.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/model/model.h"

namespace slimlm {

// Sees the f32 input of every weight product of a forward pass (calibration statistics); called
// on the thread that runs the step, before the product.
class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // x: (n_tokens, w.matrix.cols)
  virtual void Observe(const Linear& w, const float* x, int64_t n_tokens) = 0;
};

struct EngineOptions {
  int64_t n_blocks = 0;           // Blocks in the KV pool (per layer and key/value head).
  int64_t block_size = 16;        // Positions per block.
  int64_t max_step_tokens = 256;  // Most tokens in one step.
  int n_threads = 0;              // 0: the number of physical cores.
  DType kv_type_k = DType::kF16;  // f32, f16 or q8_0.
  DType kv_type_v = DType::kF16;
  bool flash_attention = true;  // Tiled attention with an online softmax.
  // Most positions one sequence may reach (sizes the attention scratch when flash attention is
  // off); 0: the whole pool.
  int64_t max_positions = 0;
  OpProfile* profile = nullptr;            // When set, every operation adds its figures here.
  ActivationObserver* observer = nullptr;  // When set, sees the input of every weight product.
};

// One token of a step.
struct StepToken {
  int32_t token = 0;
  int64_t pos = 0;      // Its position in its sequence.
  int32_t seq = 0;      // Index into the step's block tables.
  bool logits = false;  // Compute its next-token logits.
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(const Model& model, const EngineOptions& options);
  ~Engine();

  // Runs one step. tables[s] is the block table of the step's sequence s, long enough for every
  // position of its tokens. A token at position p attends to its sequence's positions [0, p]:
  // those before this step must be in the cache already; those in this step come earlier in
  // `tokens` (positions increase within a sequence). Logits of the tokens marked for them go to
  // `logits`, one row of n_vocab each, in token order. Errors (nothing computed): an empty or
  // too large step, a token outside the vocabulary, a position the table does not cover, a block
  // outside the pool, positions not increasing within a sequence.
  Status Step(std::span<const StepToken> tokens, std::span<const std::span<const int32_t>> tables,
              float* logits);

  const Model& model() const { return model_; }
  const EngineOptions& options() const { return options_; }
  int n_threads() const { return pool_.size(); }
  // Bytes held by the KV pool.
  size_t KvCacheBytes() const;
  void set_profile(OpProfile* profile) { options_.profile = profile; }
  void set_observer(ActivationObserver* observer) { options_.observer = observer; }

 private:
  struct Scratch;
  Engine(const Model& model, const EngineOptions& options);
  void Forward(std::span<const StepToken> tokens, std::span<const std::span<const int32_t>> tables,
               float* logits);
  // Calls fn over ranges of the n tokens of a step, on the pool when there is enough work.
  void ForTokens(int64_t n, int64_t work_per_token, FunctionRef<void(int64_t t0, int64_t t1)> fn);
  void AddRows(float* x, const float* y, int64_t n, int64_t width);
  // y = RMSNorm of each of n rows of width dim.
  void RmsNormRows(const float* x, const float* w, float* y, int64_t n);
  // Biases, QK norm, RoPE on the step's q and k, and k, v into the cache.
  void PrepareAttention(const LayerWeights& w, int64_t layer, std::span<const StepToken> tokens,
                        std::span<const std::span<const int32_t>> tables);
  void Attention(int64_t layer, std::span<const StepToken> tokens,
                 std::span<const std::span<const int32_t>> tables, const float* q, float* out);
  // y: (n, w.rows) = x: (n, w.cols) times w transposed, rows split across the pool.
  // same_input: x is the previous product's input, unchanged (its conversion is reused).
  void MatMul(const Linear& w, const float* x, int64_t n, float* y, bool same_input = false);
  // The cache row of position `pos` of a sequence, within one (layer, head) pool.
  size_t CacheRow(std::span<const int32_t> table, int64_t pos) const;

  const Model& model_;
  const kernels::KernelTable& kernels_;
  EngineOptions options_;
  bool act_quantized_ = false;  // Form of the activations last converted for a product.
  ThreadPool pool_;
  std::unique_ptr<Scratch> s_;
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_ENGINE_H_
