// The generation loop: evaluate a prompt, then sample and evaluate one token at a time.
#ifndef SLIMLM_MODEL_GENERATE_H_
#define SLIMLM_MODEL_GENERATE_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/model/context.h"
#include "slimlm/model/sampler.h"

namespace slimlm {

enum class StopReason {
  kLength,           // max_tokens generated.
  kEndOfGeneration,  // The model produced an end-of-generation token.
  kContextFull,      // The KV cache has no room for another token.
  kCallback,         // The token callback asked to stop.
};

// "length", "stop", "context", "callback".
std::string_view StopReasonName(StopReason reason);

struct GenerateOptions {
  int64_t max_tokens = 128;  // Negative: until end of generation or a full context.
  SamplingParams sampling;
  // Tokens that end generation (normally the tokenizer's end-of-generation tokens); the
  // stopping token is not reported to the callback nor included in the result.
  std::function<bool(int32_t)> is_end = nullptr;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // Generated tokens, without the prompt.
  StopReason stop_reason = StopReason::kLength;
  int64_t n_prompt = 0;
  double prompt_seconds = 0.0;    // Time to evaluate the prompt (and sample the first token).
  double generate_seconds = 0.0;  // Time for the remaining tokens.
};

// Runs `prompt` (appended at ctx.n_past()) and generates. on_token is called for each generated
// token and may return false to stop. Errors: an empty prompt, a prompt that does not fit the
// context (the message gives both sizes).
Result<GenerateResult> Generate(Context& ctx, std::span<const int32_t> prompt,
                                const GenerateOptions& options,
                                const std::function<bool(int32_t)>& on_token = nullptr);

}  // namespace slimlm

#endif  // SLIMLM_MODEL_GENERATE_H_
