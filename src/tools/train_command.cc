// slimlm train: train a Llama-architecture model on text files, from a preset shape with random
// weights, from an existing model, or from a checkpoint of an earlier run.
#include <memory>
#include <string>

#include "slimlm/formats/model_file.h"
#include "slimlm/formats/tokenizer_files.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/train/trainer.h"
#include "tools/command.h"
#include "tools/training_run.h"

namespace slimlm::tools {
namespace {

struct TrainArgs {
  TrainingRunArgs run;
  std::string model;      // Start from this model...
  ShapeArgs shape;        // ...or from this shape with random weights,
  std::string tokenizer;  //    with this tokenizer, or continue run.resume.
};

// The starting point: a checkpoint, a model file, or a preset with random weights.
Result<train::TrainState> Start(const TrainArgs& args, const train::AdamWOptions& adam) {
  const int sources = !args.run.resume.empty() + !args.model.empty() + !args.shape.preset.empty();
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
          "--preset needs --tokenizer FILE (slimlm train-tokenizer makes one)");
    }
    Metadata tokenizer;
    SLIMLM_RETURN_IF_ERROR(ReadTokenizerFile(args.tokenizer, 0, &tokenizer));
    SLIMLM_ASSIGN_OR_RETURN(store, MakeShapedModel(args.shape, tokenizer, args.run));
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
  SLIMLM_ASSIGN_OR_RETURN(train::Dataset data, LoadTrainingData(args.run, &state, *tokenizer));
  return RunTraining(args.run, options, data, &state);
}

}  // namespace

CommandSpec TrainCommand() {
  return {"train", "Train a model on text: from a preset shape, a model, or a checkpoint",
          [](CLI::App* app) {
            auto a = std::make_shared<TrainArgs>();
            AddTrainingRunOptions(app, &a->run);
            app->add_option("--model,-m", a->model, "Start from this model");
            AddShapeOptions(app, &a->shape);
            app->add_option("--tokenizer", a->tokenizer,
                            "Tokenizer for --preset (or a model without one)");
            return [a] { return Train(*a); };
          }};
}

}  // namespace slimlm::tools
