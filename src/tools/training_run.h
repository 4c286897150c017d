// What `slimlm train` and `slimlm distill` share: the options of a training run (data, steps,
// schedule, batches, checkpoints), loading the data, and the loop that reports progress and
// writes the model.
#ifndef SLIMLM_TOOLS_TRAINING_RUN_H_
#define SLIMLM_TOOLS_TRAINING_RUN_H_

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/train/dataset.h"
#include "slimlm/train/trainer.h"

namespace slimlm::tools {

struct TrainingRunArgs {
  std::vector<std::string> data;
  std::string out;
  std::string name;    // general.name of the output ("": the output file's stem).
  std::string resume;  // Continue this checkpoint.
  std::string token_cache;
  uint64_t seed = 1;
  int64_t ctx = 256;
  int64_t batch = 8;
  int64_t accumulate = 1;
  double dropout = 0;
  int64_t steps = 1000;
  double lr = 1e-3, min_lr = 1e-4;
  int64_t warmup = 100;
  double weight_decay = 0.1;
  double clip = 1.0;
  double valid_fraction = 0.05;
  int64_t eval_every = 100;
  int64_t eval_windows = 16;
  std::string checkpoint;
  int64_t checkpoint_every = 100;
  int threads = 0;
};

// A model shape: a preset of slimlm init, with overrides.
struct ShapeArgs {
  std::string preset;
  int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0;
};
void AddShapeOptions(CLI::App* app, ShapeArgs* args);
// A model of that shape with random weights (seeded by --seed), the vocabulary of the tokenizer
// keys in `tokenizer`, and a context of at least --ctx.
Result<WeightStore> MakeShapedModel(const ShapeArgs& shape, const Metadata& tokenizer,
                                    const TrainingRunArgs& run);

// Declares the run's options (--data, -o, --resume, --steps, --lr, ...) on a command.
void AddTrainingRunOptions(CLI::App* app, TrainingRunArgs* args);

// Checks the required options; the trainer's options from the arguments.
Status CheckTrainingRunArgs(const TrainingRunArgs& args);
train::TrainOptions MakeTrainOptions(const TrainingRunArgs& args);

// Records the options a resumed run must share with the run that wrote the checkpoint (they
// decide which windows each step reads and how) in the metadata; when resuming, refuses
// different ones.
Status RecordRun(const TrainingRunArgs& args, bool resuming, Metadata* metadata);

// Checks the state against the run (steps left, context within the model's, a tokenizer of the
// model's vocabulary), reads and tokenizes the data (through --token-cache), saying so, and
// records its hash in the state's metadata; a resumed run on other data is refused.
Result<train::Dataset> LoadTrainingData(const TrainingRunArgs& args, train::TrainState* state,
                                        const Tokenizer& tokenizer);

// Trains state to args.steps with a progress bar and held-out evaluations, then writes the
// model to args.out (f32 GGUF) and prints the throughput.
Status RunTraining(const TrainingRunArgs& args, const train::TrainOptions& options,
                   const train::Dataset& data, train::TrainState* state);

}  // namespace slimlm::tools

#endif  // SLIMLM_TOOLS_TRAINING_RUN_H_
