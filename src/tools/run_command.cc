// slimlm run: generate text from a prompt.
#include <cstdio>
#include <random>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/core/file.h"
#include "slimlm/model/context.h"
#include "slimlm/model/generate.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/profile_report.h"

namespace slimlm::tools {
namespace {

struct RunArgs {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  std::string tokenizer;
  int64_t n_predict = 128;
  int64_t n_ctx = 0;
  int threads = 0;
  int64_t seed = -1;
  bool json = false;
  bool no_bos = false;
  bool profile = false;
  std::string kv_type = "f16";
  bool no_flash_attention = false;
  SamplingParams sampling;
};

void PrintStats(const RunArgs& args, const GenerateResult& r, uint64_t seed) {
  const double gen_tokens = static_cast<double>(r.tokens.size() > 1 ? r.tokens.size() - 1 : 0);
  fmt::print(stderr,
             "\n\nprompt: {} tokens in {:.1f} ms ({:.1f} tok/s) | generation: {} tokens, "
             "{:.1f} tok/s | stop: {} | seed {}\n",
             r.n_prompt, r.prompt_seconds * 1e3,
             r.prompt_seconds > 0 ? static_cast<double>(r.n_prompt) / r.prompt_seconds : 0.0,
             r.tokens.size(), r.generate_seconds > 0 ? gen_tokens / r.generate_seconds : 0.0,
             StopReasonName(r.stop_reason), args.sampling.temperature > 0 ? seed : 0);
}

Status Run(RunArgs args) {
  if (args.prompt.empty() == args.prompt_file.empty()) {
    return InvalidArgumentError("give the prompt with exactly one of -p TEXT or -f FILE");
  }
  if (!args.prompt_file.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(args.prompt, ReadFileToString(args.prompt_file));
  }
  SLIMLM_RETURN_IF_ERROR(args.sampling.Validate());
  uint64_t seed = args.seed >= 0 ? static_cast<uint64_t>(args.seed) : std::random_device{}();
  args.sampling.seed = seed;

  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.model, args.tokenizer, true));
  const Tokenizer& tok = *model->tokenizer();
  std::vector<int32_t> prompt = tok.Encode(args.prompt, !args.no_bos, true);
  if (prompt.empty()) {
    return InvalidArgumentError("the prompt encodes to no tokens; give some text");
  }

  ContextOptions copts;
  copts.n_ctx = args.n_ctx;
  copts.n_threads = ResolveThreads(args.threads);
  SLIMLM_ASSIGN_OR_RETURN(copts.kv_type_k, ParseKvType(args.kv_type));
  copts.kv_type_v = copts.kv_type_k;
  copts.flash_attention = !args.no_flash_attention;
  SLIMLM_ASSIGN_OR_RETURN(auto ctx, Context::Create(*model, copts));

  GenerateOptions gopts;
  gopts.max_tokens = args.n_predict;
  gopts.sampling = args.sampling;
  gopts.is_end = [&tok](int32_t id) { return tok.IsEndOfGeneration(id); };

  // Prompt and generation are profiled apart: they hit different limits.
  OpProfile prompt_profile, generation_profile;
  if (args.profile) ctx->set_profile(&prompt_profile);

  // The decoder first sees the prompt, so the continuation is decoded in context (no leading
  // space dropped, no split UTF-8 characters).
  StreamingDecoder decoder(tok);
  for (int32_t id : prompt) decoder.Add(id);
  std::string generated;
  auto on_token = [&](int32_t id) {
    if (args.profile) ctx->set_profile(&generation_profile);
    std::string piece = decoder.Add(id);
    generated += piece;
    if (!args.json) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  };
  if (!args.json) {
    std::fwrite(args.prompt.data(), 1, args.prompt.size(), stdout);
    std::fflush(stdout);
  }
  SLIMLM_ASSIGN_OR_RETURN(GenerateResult result, Generate(*ctx, prompt, gopts, on_token));
  std::string rest = decoder.Flush();
  generated += rest;
  if (args.json) {
    nlohmann::json out = {{"model", args.model},
                          {"prompt", args.prompt},
                          {"prompt_tokens", prompt},
                          {"text", generated},
                          {"tokens", result.tokens},
                          {"stop_reason", StopReasonName(result.stop_reason)},
                          {"seed", seed},
                          {"timings",
                           {{"prompt_seconds", result.prompt_seconds},
                            {"generate_seconds", result.generate_seconds}}}};
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    PrintStats(args, result, seed);
  }
  if (args.profile) {
    SLIMLM_ASSIGN_OR_RETURN(ProfileLimits limits, MeasureProfileLimits(ctx->n_threads()));
    fmt::print(stderr, "{}{}", FormatProfile("prompt", prompt_profile, limits),
               FormatProfile("generation", generation_profile, limits));
  }
  return Status::Ok();
}

}  // namespace

CommandSpec RunCommand() {
  return {
      "run", "Generate text from a prompt", [](CLI::App* app) {
        auto args = std::make_shared<RunArgs>();
        app->add_option("-m,--model", args->model, "Model: GGUF file, HF folder or llama2.c .bin")
            ->required();
        app->add_option("-p,--prompt", args->prompt, "Prompt text");
        app->add_option("-f,--file", args->prompt_file, "Read the prompt from a file");
        app->add_option("-n,--n-predict", args->n_predict,
                        "Tokens to generate (-1: until the end of text or a full context)")
            ->capture_default_str();
        app->add_option("-c,--ctx-size", args->n_ctx, "Context size (0: the model's)")
            ->check(CLI::NonNegativeNumber);
        AddThreadsOption(app, &args->threads);
        AddTokenizerOption(app, &args->tokenizer);
        app->add_option("--temp", args->sampling.temperature, "Temperature (0: greedy)")
            ->capture_default_str();
        app->add_option("--top-k", args->sampling.top_k, "Top-k (0: off)")->capture_default_str();
        app->add_option("--top-p", args->sampling.top_p, "Top-p (1: off)")->capture_default_str();
        app->add_option("--min-p", args->sampling.min_p, "Min-p (0: off)")->capture_default_str();
        app->add_option("--repeat-penalty", args->sampling.repeat_penalty,
                        "Repetition penalty (1: off)")
            ->capture_default_str();
        app->add_option("--repeat-last-n", args->sampling.repeat_last_n,
                        "Tokens the repetition penalty looks back over")
            ->capture_default_str();
        app->add_option("-s,--seed", args->seed, "Random seed (-1: a random one, printed)")
            ->capture_default_str();
        app->add_flag("--no-bos", args->no_bos, "Do not add the beginning-of-text token");
        app->add_flag("--json", args->json, "Print the result as JSON instead of streaming");
        app->add_option("--kv-type", args->kv_type, "KV cache type: f32, f16 or q8_0")
            ->capture_default_str();
        app->add_flag("--no-flash-attn", args->no_flash_attention,
                      "Attention with all scores materialized instead of tiles");
        app->add_flag("--profile", args->profile,
                      "Print time, bytes and operations per operation type against this "
                      "machine's measured limits");
        return [args] { return Run(*args); };
      }};
}

}  // namespace slimlm::tools
