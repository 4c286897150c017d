#include "slimlm/model/generate.h"

#include "slimlm/core/timer.h"

namespace slimlm {

std::string_view StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kLength:
      return "length";
    case StopReason::kEndOfGeneration:
      return "stop";
    case StopReason::kContextFull:
      return "context";
    case StopReason::kCallback:
      return "callback";
  }
  return "unknown";
}

Result<GenerateResult> Generate(Context& ctx, std::span<const int32_t> prompt,
                                const GenerateOptions& options,
                                const std::function<bool(int32_t)>& on_token) {
  SLIMLM_RETURN_IF_ERROR(options.sampling.Validate());
  if (prompt.empty()) return InvalidArgumentError("the prompt is empty (no tokens to start from)");
  const int64_t room = ctx.n_ctx() - ctx.n_past();
  if (static_cast<int64_t>(prompt.size()) > room) {
    return OutOfRangeError("the prompt is {} tokens but the context holds {} (use a larger -c)",
                           prompt.size(), room);
  }
  GenerateResult result;
  result.n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t n_vocab = static_cast<int64_t>(ctx.logits().size());
  Sampler sampler(options.sampling, n_vocab);
  for (int32_t t : prompt) sampler.Accept(t);

  Timer timer;
  SLIMLM_RETURN_IF_ERROR(ctx.Eval(prompt));
  bool first = true;
  while (options.max_tokens < 0 ||
         static_cast<int64_t>(result.tokens.size()) < options.max_tokens) {
    const int32_t next = sampler.Sample(ctx.logits());
    if (first) {
      result.prompt_seconds = timer.Seconds();
      timer.Reset();
      first = false;
    }
    if (options.is_end && options.is_end(next)) {
      result.stop_reason = StopReason::kEndOfGeneration;
      break;
    }
    result.tokens.push_back(next);
    sampler.Accept(next);
    if (on_token && !on_token(next)) {
      result.stop_reason = StopReason::kCallback;
      break;
    }
    if (options.max_tokens >= 0 &&
        static_cast<int64_t>(result.tokens.size()) >= options.max_tokens) {
      result.stop_reason = StopReason::kLength;
      break;
    }
    if (ctx.n_past() >= ctx.n_ctx()) {
      result.stop_reason = StopReason::kContextFull;
      break;
    }
    SLIMLM_RETURN_IF_ERROR(ctx.Eval(std::span<const int32_t>(&next, 1)));
  }
  if (first) {
    result.prompt_seconds = timer.Seconds();
  } else {
    result.generate_seconds = timer.Seconds();
  }
  return result;
}

}  // namespace slimlm
