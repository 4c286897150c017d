// The chunks of llama-perplexity's method, shared by perplexity and KL divergence: chunk c holds
// tokens [c n_ctx, (c + 1) n_ctx), evaluated from an empty cache with its first token replaced
// by BOS when the vocabulary adds one; positions n_ctx/2 .. n_ctx-2 are scored, each against the
// token after it.
#ifndef SLIMLM_EVAL_CHUNKS_H_
#define SLIMLM_EVAL_CHUNKS_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/model/context.h"
#include "slimlm/model/model.h"

namespace slimlm::eval {

struct ChunkSetup {
  int64_t n_ctx = 512;
  int64_t n_batch = 256;
  int n_threads = 0;
  DType kv_type_k = DType::kF16;
  DType kv_type_v = DType::kF16;
  OpProfile* profile = nullptr;  // When set, every forward operation adds its figures here.
};

// Checks the text's length (at least two chunks) and the chunk size; the number of chunks to
// score, at most max_chunks when positive.
Result<int64_t> CountChunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks);

// Scores position by position: fn(j, logits at j, token j + 1) for j in [n_ctx/2, n_ctx - 1).
class ChunkScorer {
 public:
  static Result<std::unique_ptr<ChunkScorer>> Create(const Model& model, const ChunkSetup& setup);
  Status Score(std::span<const int32_t> tokens, int64_t chunk,
               FunctionRef<void(int64_t j, std::span<const float> logits, int32_t target)> fn);
  // Positions scored per chunk.
  int64_t scored_per_chunk() const { return n_ctx_ - n_ctx_ / 2 - 1; }

 private:
  ChunkScorer(std::unique_ptr<Context> ctx, int64_t n_ctx, int64_t n_batch, int32_t bos)
      : ctx_(std::move(ctx)), n_ctx_(n_ctx), n_batch_(n_batch), bos_(bos) {}
  std::unique_ptr<Context> ctx_;
  int64_t n_ctx_, n_batch_;
  int32_t bos_;  // -1: the vocabulary adds no BOS.
  std::vector<int32_t> chunk_;
};

// -log softmax(logits)[target], in double.
double NegativeLogLikelihood(std::span<const float> logits, int32_t target);

}  // namespace slimlm::eval

#endif  // SLIMLM_EVAL_CHUNKS_H_
