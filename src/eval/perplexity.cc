#include "slimlm/eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "eval/chunks.h"
#include "slimlm/model/context.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm::eval {

Result<std::vector<int32_t>> TokenizeText(const Model& model, std::string_view text) {
  const Tokenizer* tokenizer = model.tokenizer();
  if (tokenizer == nullptr) {
    return InvalidArgumentError("the model has no tokenizer; give one with --tokenizer");
  }
  return tokenizer->Encode(text, /*add_special=*/true, /*parse_special=*/false);
}

Result<PerplexityResult> ComputePerplexity(const Model& model, std::span<const int32_t> tokens,
                                           const PerplexityOptions& options,
                                           FunctionRef<void(int64_t, int64_t)> progress) {
  PerplexityResult r;
  r.n_ctx = options.n_ctx;
  r.text_tokens = static_cast<int64_t>(tokens.size());
  SLIMLM_ASSIGN_OR_RETURN(r.chunks, CountChunks(r.text_tokens, options.n_ctx, options.max_chunks));
  SLIMLM_ASSIGN_OR_RETURN(
      std::unique_ptr<ChunkScorer> scorer,
      ChunkScorer::Create(model, {options.n_ctx, options.n_batch, options.n_threads,
                                  options.kv_type_k, options.kv_type_v, options.profile}));
  const Tokenizer& tokenizer = *model.tokenizer();
  double nll_sum = 0.0, nll2_sum = 0.0, bytes = 0.0;
  int64_t count = 0;
  progress(0, r.chunks);
  for (int64_t c = 0; c < r.chunks; ++c) {
    SLIMLM_RETURN_IF_ERROR(
        scorer->Score(tokens, c, [&](int64_t, std::span<const float> logits, int32_t target) {
          const double nll = NegativeLogLikelihood(logits, target);
          nll_sum += nll;
          nll2_sum += nll * nll;
          bytes += static_cast<double>(tokenizer.TokenToPiece(target).size());
          ++count;
        }));
    r.running_ppl.push_back(std::exp(nll_sum / static_cast<double>(count)));
    progress(c + 1, r.chunks);
  }
  r.scored_tokens = count;
  r.scored_bytes = static_cast<int64_t>(bytes);
  r.nll = nll_sum / static_cast<double>(count);
  r.ppl = std::exp(r.nll);
  // llama-perplexity's estimate: the standard error of the mean nll, carried to ppl by its
  // derivative (d exp(x) = exp(x) dx).
  const double variance = nll2_sum / static_cast<double>(count) - r.nll * r.nll;
  r.ppl_stderr =
      variance > 0 && count > 1 ? std::sqrt(variance / static_cast<double>(count - 1)) * r.ppl : 0;
  r.bits_per_byte = bytes > 0 ? nll_sum / std::log(2.0) / bytes : 0.0;
  return r;
}

}  // namespace slimlm::eval
