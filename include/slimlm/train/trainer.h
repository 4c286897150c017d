// The training loop: batches of windows from a Dataset, AdamW on the mean cross-entropy, the
// learning-rate schedule, held-out loss now and then, and checkpoints from which a run resumes
// exactly (the same parameters, bit for bit, as a run that never stopped).
#ifndef SLIMLM_TRAIN_TRAINER_H_
#define SLIMLM_TRAIN_TRAINER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/train/dataset.h"
#include "slimlm/train/optimizer.h"
#include "slimlm/train/schedule.h"
#include "slimlm/train/transformer.h"

namespace slimlm::train {

// Supplies the loss of a micro-batch in place of the cross-entropy (distillation does): called
// with the stream indices (Dataset::Window) of the micro-batch's windows, in order, it returns
// the loss for them, used until the next call.
using BatchLoss = std::function<const LogitLoss<float>*(std::span<const int64_t> windows)>;

struct TrainOptions {
  int64_t steps = 1000;    // Total optimizer steps of the run (a resumed run continues to it).
  int64_t batch = 8;       // Windows per micro-batch.
  int64_t accumulate = 1;  // Micro-batches whose gradients are averaged into one step.
  double dropout = 0;      // Residual dropout while training (PassOptions); none when held out.
  uint64_t seed = 1;       // Of the dropout masks.
  BatchLoss batch_loss;    // Empty: cross-entropy on the data.
  Schedule schedule;
  AdamWOptions adam;
  int threads = 1;
  int64_t eval_every = 100;   // Steps between held-out evaluations (0: only at the end).
  int64_t eval_windows = 16;  // Held-out windows per evaluation (at most those there are).
  std::string checkpoint;     // Written every checkpoint_every steps and at the end; "" none.
  int64_t checkpoint_every = 100;
};

// The model, its optimizer and how far training got.
struct TrainState {
  Transformer<float> model;
  AdamW adam;
  int64_t step = 0;
  Metadata metadata;  // The model's other keys (tokenizer, name), kept in files written.
};

// A new state for `model` (step 0, zero moments).
TrainState StartTraining(Transformer<float> model, Metadata metadata, const AdamWOptions& adam);

struct StepReport {
  int64_t step = 0;  // Steps done.
  double loss = 0;   // This step's mean training loss (nats per token).
  double lr = 0;
  double grad_norm = 0;
  double tokens_per_second = 0;  // Over this step.
  std::optional<double> valid_loss;
};

// An error unless the data holds at least one batch of distinct windows.
Status CheckBatchFits(const Dataset& data, int64_t batch);

// Runs steps state->step .. options.steps - 1; report after each. Step s reads windows
// (s * accumulate + m) * batch + i of the stream for micro-batch m. A loss that is not finite
// stops training with an error before the step is applied (the last checkpoint is kept).
Status Train(TrainState* state, const Dataset& data, const TrainOptions& options,
             FunctionRef<void(const StepReport&)> report);

// Mean loss over the first `windows` held-out windows (all when 0 or more than there are).
double ValidLoss(Transformer<float>& model, const Dataset& data, int64_t windows);

// A checkpoint is a GGUF file: the model's tensors and keys and keys, the
// optimizer's moments as "optimizer.m.<name>" / "optimizer.v.<name>", and slimlm.train.step.
Status SaveCheckpoint(const TrainState& state, const std::string& path);
Result<TrainState> LoadCheckpoint(const std::string& path, const AdamWOptions& adam);

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_TRAINER_H_
