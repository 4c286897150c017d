// Perplexity by llama.cpp's chunked method (llama-perplexity), so that figures compare:
// the tokenized text is cut into chunks of n_ctx tokens; each chunk is evaluated from an empty
// cache (its first token replaced by BOS when the vocabulary adds one), and only the second half
// is scored: the logits at positions n_ctx/2 .. n_ctx-2 predict the tokens after them, so every
// scored token has at least n_ctx/2 tokens of context.
#ifndef SLIMLM_EVAL_PERPLEXITY_H_
#define SLIMLM_EVAL_PERPLEXITY_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/op_profile.h"
#include "slimlm/core/status.h"
#include "slimlm/model/model.h"
#include "slimlm/tensor/dtype.h"

namespace slimlm::eval {

struct PerplexityOptions {
  int64_t n_ctx = 512;     // Tokens per chunk (-c).
  int64_t max_chunks = 0;  // 0: every whole chunk of the text.
  int64_t n_batch = 256;   // Tokens per forward step.
  int n_threads = 0;       // 0: the physical cores.
  DType kv_type_k = DType::kF16;
  DType kv_type_v = DType::kF16;
  OpProfile* profile = nullptr;  // When set, every forward operation adds its figures here.
};

struct PerplexityResult {
  int64_t n_ctx = 0;
  int64_t chunks = 0;
  int64_t text_tokens = 0;     // Tokens of the whole text (with BOS when the vocabulary adds it).
  int64_t scored_tokens = 0;   // chunks * (n_ctx - n_ctx / 2 - 1)
  int64_t scored_bytes = 0;    // Bytes of text the scored tokens stand for.
  double nll = 0.0;            // Mean negative log-likelihood, nats per scored token.
  double ppl = 0.0;            // exp(nll)
  double ppl_stderr = 0.0;     // Standard error of ppl (llama.cpp's estimate, from the nll spread).
  double bits_per_byte = 0.0;  // Total nll in bits over scored_bytes: compares across tokenizers.
  std::vector<double> running_ppl;  // PPL over the chunks so far, after each chunk.
};

// The text's tokens as llama-perplexity makes them: BOS first when the vocabulary adds it, and
// control-token spellings in the text kept as plain text.
Result<std::vector<int32_t>> TokenizeText(const Model& model, std::string_view text);

// Scores `tokens` (from TokenizeText). Needs at least 2 * n_ctx tokens, as llama-perplexity does.
// progress(chunks done, chunks) after each chunk.
Result<PerplexityResult> ComputePerplexity(const Model& model, std::span<const int32_t> tokens,
                                           const PerplexityOptions& options,
                                           FunctionRef<void(int64_t, int64_t)> progress);

}  // namespace slimlm::eval

#endif  // SLIMLM_EVAL_PERPLEXITY_H_
