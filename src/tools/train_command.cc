// slimlm train: train a Llama-architecture model on text files, from a preset shape with random
// weights, from an existing model, or from a checkpoint of an earlier run.
#include <memory>
#include <string>

#include "slimlm/formats/model_file.h"
#include "slimlm/formats/tokenizer_files.h"
#include "slimlm/model/presets.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/train/trainer.h"
#include "tools/command.h"
#include "tools/training_run.h"

namespace slimlm::tools {
namespace {

struct TrainArgs {
  TrainingRunArgs run;
  std::string model;      // Start from this model...
  std::string preset;     // ...or from this shape with random weights,
  std::string tokenizer;  //    with this tokenizer, or continue run.resume.
  int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0;  // Preset overrides.
};

// The starting point: a checkpoint, a model file, or a preset with random weights.
Result<train::TrainState> Start(const TrainArgs& args, const train::AdamWOptions& adam) {
  const int sources = !args.run.resume.empty() + !args.model.empty() + !args.preset.empty();
  if (sources != 1) {
    return InvalidArgumentError(
        "give one starting point: --preset NAME (random weights), --model FILE or --resume "
        "CHECKPOINT");
  }
  if (!args.run.resume.empty()) return train::LoadCheckpoint(args.run.resume, adam);
  WeightStore store;
  if (!args.model.empty()) {
    LoadOptions load;
    load.tokenizer_path = args.tokenizer;
    SLIMLM_ASSIGN_OR_RETURN(store, LoadModel(args.model, load));
  } else {
    if (args.tokenizer.empty()) {
      return InvalidArgumentError(
          "--preset needs --tokenizer FILE (slimlm train-tokenizer "
          "makes one)");
    }
    SLIMLM_ASSIGN_OR_RETURN(ModelPreset preset, FindPreset(args.preset));
    ModelConfig& c = preset.config;
    if (args.dim > 0) c.dim = args.dim;
    if (args.layers > 0) c.n_layers = args.layers;
    if (args.heads > 0) c.n_heads = c.n_kv_heads = args.heads;
    if (args.kv_heads > 0) c.n_kv_heads = args.kv_heads;
    if (args.ffn > 0) c.ffn_dim = args.ffn;
    if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0) {
      return InvalidArgumentError(
          "--dim {} must be a multiple of --heads {}, and that of --kv-heads {}", c.dim, c.n_heads,
          c.n_kv_heads);
    }
    c.head_dim = c.dim / c.n_heads;
    c.rope_dim = c.head_dim;
    c.context_length = std::max(c.context_length, args.run.ctx);
    Metadata tokenizer;
    SLIMLM_RETURN_IF_ERROR(ReadTokenizerFile(args.tokenizer, 0, &tokenizer));
    InitOptions init;
    init.seed = args.run.seed;
    init.tokenizer = &tokenizer;
    SLIMLM_ASSIGN_OR_RETURN(store, MakeRandomModel(preset, init));
  }
  SLIMLM_ASSIGN_OR_RETURN(train::Transformer<float> model, train::FromWeightStore(store));
  Metadata metadata = store.metadata();
  return train::StartTraining(std::move(model), std::move(metadata), adam);
}

Status Train(const TrainArgs& args) {
  SLIMLM_RETURN_IF_ERROR(CheckTrainingRunArgs(args.run));
  const train::TrainOptions options = MakeTrainOptions(args.run);
  SLIMLM_ASSIGN_OR_RETURN(train::TrainState state, Start(args, options.adam));
  SLIMLM_RETURN_IF_ERROR(RecordRun(args.run, !args.run.resume.empty(), &state.metadata));
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                          Tokenizer::FromMetadata(state.metadata));
  SLIMLM_ASSIGN_OR_RETURN(train::Dataset data, LoadTrainingData(args.run, state, *tokenizer));
  return RunTraining(args.run, options, data, &state);
}

}  // namespace

CommandSpec TrainCommand() {
  return {"train", "Train a model on text: from a preset shape, a model, or a checkpoint",
          [](CLI::App* app) {
            auto a = std::make_shared<TrainArgs>();
            AddTrainingRunOptions(app, &a->run);
            app->add_option("--model,-m", a->model, "Start from this model");
            app->add_option("--preset", a->preset, "Start from this shape with random weights");
            app->add_option("--tokenizer", a->tokenizer,
                            "Tokenizer for --preset (or a model "
                            "without one)");
            app->add_option("--dim", a->dim, "Override the preset's width");
            app->add_option("--layers", a->layers, "Override the preset's layer count");
            app->add_option("--heads", a->heads, "Override the preset's head count");
            app->add_option("--kv-heads", a->kv_heads, "Override the key/value head count");
            app->add_option("--ffn", a->ffn, "Override the feed-forward width");
            return [a] { return Train(*a); };
          }};
}

}  // namespace slimlm::tools
