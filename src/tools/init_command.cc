// slimlm init: a model with random weights and a named shape.
#include <fmt/core.h>

#include "slimlm/core/timer.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/formats/tokenizer_files.h"
#include "slimlm/model/presets.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct InitArgs {
  std::string preset;
  std::string out;
  uint64_t seed = 0;
  std::string type = "f32";
  std::string tokenizer;
  int threads = 0;
  bool list = false;
};

Status Init(const InitArgs& args) {
  if (args.list) {
    for (const ModelPreset& p : ModelPresets()) fmt::print("{:<16} {}\n", p.name, p.description);
    return Status::Ok();
  }
  if (args.preset.empty() || args.out.empty()) {
    return InvalidArgumentError("give --preset NAME and OUT (see --list for the presets)");
  }
  SLIMLM_ASSIGN_OR_RETURN(ModelPreset preset, FindPreset(args.preset));
  std::optional<DType> type = ParseDType(args.type);
  if (!type) return InvalidArgumentError("--type '{}' is not a known type", args.type);
  InitOptions options;
  options.seed = args.seed;
  options.type = *type;
  options.n_threads = ResolveThreads(args.threads);
  Metadata tokenizer;
  if (!args.tokenizer.empty()) {
    SLIMLM_RETURN_IF_ERROR(ReadTokenizerFile(args.tokenizer, 0, &tokenizer));
    options.tokenizer = &tokenizer;
  }
  Timer timer;
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, MakeRandomModel(preset, options));
  SLIMLM_RETURN_IF_ERROR(SaveGguf(store, args.out));
  fmt::print(stderr,
             "wrote {}: preset {}, {} weights, seed {}, {} in {:.1f} s (random weights: "
             "for speed and memory measurements, or as the start of training)\n",
             args.out, preset.name, DTypeName(*type), args.seed,
             FormatBytes(static_cast<double>(store.TotalTensorBytes())), timer.Seconds());
  return Status::Ok();
}

}  // namespace

CommandSpec InitCommand() {
  return {"init", "Make a model with random weights from a named shape", [](CLI::App* app) {
            auto args = std::make_shared<InitArgs>();
            app->add_option("--preset", args->preset, "Shape: tiny, 110m, tinyllama-1.1b, ...");
            app->add_option("out", args->out, "Output GGUF file");
            app->add_option("--seed", args->seed, "Seed; the same seed gives the same weights")
                ->capture_default_str();
            app->add_option("--type", args->type,
                            "Type of the weight matrices: f32, f16, bf16, "
                            "q8_0, q4_0, q4_k, q6_k")
                ->capture_default_str();
            app->add_option("--tokenizer", args->tokenizer,
                            "Use this tokenizer (tokenizer.bin, tokenizer.json, GGUF) instead of "
                            "a synthetic byte-level one");
            AddThreadsOption(app, &args->threads);
            app->add_flag("--list", args->list, "List the presets");
            return [args] { return Init(*args); };
          }};
}

}  // namespace slimlm::tools
