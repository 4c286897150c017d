#include "slimlm/eval/perplexity.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "slimlm/model/context.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm::eval {
namespace {

// -log softmax(logits)[target], in double: the scale of a sum of many such terms.
double NegativeLogLikelihood(std::span<const float> logits, int32_t target) {
  float max = logits[0];
  for (float l : logits) max = std::max(max, l);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  return std::log(sum) - (static_cast<double>(logits[static_cast<size_t>(target)]) - max);
}

}  // namespace

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
  const int64_t n_ctx = options.n_ctx;
  if (n_ctx < 4) return InvalidArgumentError("-c {}: a chunk needs at least 4 tokens", n_ctx);
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < 2 * n_ctx) {
    return InvalidArgumentError(
        "the text has {} tokens; perplexity with -c {} needs at least {} (two chunks)", n_tokens,
        n_ctx, 2 * n_ctx);
  }
  const Tokenizer* tokenizer = model.tokenizer();
  if (tokenizer == nullptr) return InvalidArgumentError("the model has no tokenizer");
  // The vocabulary adds BOS when TokenizeText put one first; each chunk then starts with it.
  const int32_t bos = tokenizer->bos_id();
  const bool add_bos = bos >= 0 && tokens[0] == bos;

  ContextOptions copts;
  copts.n_ctx = n_ctx;
  copts.n_threads = options.n_threads;
  copts.n_batch = std::min(options.n_batch, n_ctx);
  copts.all_logits = true;
  copts.kv_type_k = options.kv_type_k;
  copts.kv_type_v = options.kv_type_v;
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::Create(model, copts));

  PerplexityResult r;
  r.n_ctx = n_ctx;
  r.text_tokens = n_tokens;
  r.chunks = n_tokens / n_ctx;
  if (options.max_chunks > 0) r.chunks = std::min(r.chunks, options.max_chunks);
  const int64_t first = n_ctx / 2;
  double nll_sum = 0.0, nll2_sum = 0.0, bytes = 0.0;
  int64_t count = 0;
  std::vector<int32_t> chunk(static_cast<size_t>(n_ctx));
  progress(0, r.chunks);
  for (int64_t c = 0; c < r.chunks; ++c) {
    std::copy_n(tokens.begin() + c * n_ctx, n_ctx, chunk.begin());
    if (add_bos) chunk[0] = bos;
    ctx->Reset();
    for (int64_t start = 0; start < n_ctx; start += copts.n_batch) {
      const int64_t n = std::min(copts.n_batch, n_ctx - start);
      SLIMLM_RETURN_IF_ERROR(ctx->Eval(std::span<const int32_t>(chunk).subspan(
          static_cast<size_t>(start), static_cast<size_t>(n))));
      // Position j's logits predict token j + 1; scored: first <= j < n_ctx - 1.
      for (int64_t j = std::max(start, first); j < std::min(start + n, n_ctx - 1); ++j) {
        const int32_t target = chunk[static_cast<size_t>(j + 1)];
        const double nll = NegativeLogLikelihood(ctx->logits_at(j - start), target);
        nll_sum += nll;
        nll2_sum += nll * nll;
        bytes += static_cast<double>(tokenizer->TokenToPiece(target).size());
        ++count;
      }
    }
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
