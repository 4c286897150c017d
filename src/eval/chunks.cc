#include "eval/chunks.h"

#include <algorithm>
#include <cmath>

#include "slimlm/model/tokenizer.h"

namespace slimlm::eval {

Result<int64_t> CountChunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks) {
  if (n_ctx < 4) return InvalidArgumentError("-c {}: a chunk needs at least 4 tokens", n_ctx);
  if (n_tokens < 2 * n_ctx) {
    return InvalidArgumentError(
        "the text has {} tokens; -c {} needs at least {} (two chunks, as llama-perplexity)",
        n_tokens, n_ctx, 2 * n_ctx);
  }
  const int64_t chunks = n_tokens / n_ctx;
  return max_chunks > 0 ? std::min(chunks, max_chunks) : chunks;
}

Result<std::unique_ptr<ChunkScorer>> ChunkScorer::Create(const Model& model,
                                                         const ChunkSetup& setup) {
  const Tokenizer* tokenizer = model.tokenizer();
  if (tokenizer == nullptr) return InvalidArgumentError("the model has no tokenizer");
  ContextOptions o;
  o.n_ctx = setup.n_ctx;
  o.n_threads = setup.n_threads;
  o.n_batch = std::min(setup.n_batch, setup.n_ctx);
  o.all_logits = true;
  o.kv_type_k = setup.kv_type_k;
  o.kv_type_v = setup.kv_type_v;
  o.profile = setup.profile;
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::Create(model, o));
  // The vocabulary adds BOS exactly when encoding with special tokens puts one first.
  const std::vector<int32_t> probe = tokenizer->Encode("a", true, false);
  const int32_t bos =
      !probe.empty() && probe[0] == tokenizer->bos_id() ? tokenizer->bos_id() : int32_t{-1};
  return std::unique_ptr<ChunkScorer>(new ChunkScorer(std::move(ctx), setup.n_ctx, o.n_batch, bos));
}

Status ChunkScorer::Score(
    std::span<const int32_t> tokens, int64_t chunk,
    FunctionRef<void(int64_t j, std::span<const float> logits, int32_t target)> fn) {
  chunk_.assign(tokens.begin() + chunk * n_ctx_, tokens.begin() + (chunk + 1) * n_ctx_);
  if (bos_ >= 0) chunk_[0] = bos_;
  ctx_->Reset();
  const int64_t first = n_ctx_ / 2;
  for (int64_t start = 0; start < n_ctx_; start += n_batch_) {
    const int64_t n = std::min(n_batch_, n_ctx_ - start);
    SLIMLM_RETURN_IF_ERROR(ctx_->Eval(std::span<const int32_t>(chunk_).subspan(
        static_cast<size_t>(start), static_cast<size_t>(n))));
    // Position j's logits predict token j + 1.
    for (int64_t j = std::max(start, first); j < std::min(start + n, n_ctx_ - 1); ++j) {
      fn(j, ctx_->logits_at(j - start), chunk_[static_cast<size_t>(j + 1)]);
    }
  }
  return Status::Ok();
}

double NegativeLogLikelihood(std::span<const float> logits, int32_t target) {
  float max = logits[0];
  for (float l : logits) max = std::max(max, l);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  return std::log(sum) - (static_cast<double>(logits[static_cast<size_t>(target)]) - max);
}

}  // namespace slimlm::eval
