#include "slimlm/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "slimlm/core/timer.h"
#include "slimlm/formats/gguf.h"

namespace slimlm::train {

TrainState StartTraining(Transformer<float> model, Metadata metadata, const AdamWOptions& adam) {
  const int64_t n = static_cast<int64_t>(model.params().size());
  AdamW optimizer(model.slots(), n, adam);
  return TrainState{std::move(model), std::move(optimizer), 0, std::move(metadata)};
}

double ValidLoss(Transformer<float>& model, const Dataset& data, int64_t windows) {
  const int64_t available = data.valid_windows();
  const int64_t n = windows <= 0 ? available : std::min(windows, available);
  if (n == 0) return NAN;
  const int64_t ctx = data.n_ctx();
  std::vector<int32_t> tokens(static_cast<size_t>(n * ctx)), targets(tokens.size());
  for (int64_t i = 0; i < n; ++i) data.ValidWindow(i, &tokens[i * ctx], &targets[i * ctx]);
  return model.ForwardBackward(tokens, targets, n, ctx, nullptr);
}

Status Train(TrainState* state, const Dataset& data, const TrainOptions& options,
             FunctionRef<void(const StepReport&)> report) {
  if (options.batch < 1) return InvalidArgumentError("the batch must be at least 1 window");
  Transformer<float>& model = state->model;
  model.SetThreads(options.threads);
  const int64_t ctx = data.n_ctx();
  std::vector<int32_t> tokens(static_cast<size_t>(options.batch * ctx)), targets(tokens.size());
  std::vector<float> grads(model.params().size());
  while (state->step < options.steps) {
    Timer timer;
    const int64_t step = state->step;
    // The batch depends on the step alone: window (step * batch + i) of the shuffled stream.
    for (int64_t i = 0; i < options.batch; ++i) {
      data.Window(step * options.batch + i, &tokens[i * ctx], &targets[i * ctx]);
    }
    std::fill(grads.begin(), grads.end(), 0.0f);
    const double loss = model.ForwardBackward(tokens, targets, options.batch, ctx, &grads);
    if (!std::isfinite(loss)) {
      return InternalError(
          "the loss is {} at step {}: training stopped (the last checkpoint is kept); try a "
          "lower learning rate",
          loss, step + 1);
    }
    StepReport r;
    r.lr = options.schedule.At(step);
    r.grad_norm = state->adam.Step(model.params(), grads, r.lr);
    state->step = step + 1;
    r.step = state->step;
    r.loss = loss;
    r.tokens_per_second = static_cast<double>(options.batch * ctx) / timer.Seconds();
    const bool last = state->step == options.steps;
    if (last || (options.eval_every > 0 && state->step % options.eval_every == 0)) {
      r.valid_loss = ValidLoss(model, data, options.eval_windows);
    }
    if (!options.checkpoint.empty() &&
        (last || (options.checkpoint_every > 0 && state->step % options.checkpoint_every == 0))) {
      SLIMLM_RETURN_IF_ERROR(SaveCheckpoint(*state, options.checkpoint));
    }
    report(r);
  }
  return Status::Ok();
}

Status SaveCheckpoint(const TrainState& state, const std::string& path) {
  WeightStore store = ToWeightStore(state.model, state.metadata);
  const AdamW& adam = state.adam;
  for (const ParamSlot& s : state.model.slots()) {
    for (const auto& [prefix, moments] :
         {std::pair{"optimizer.m.", &adam.m()}, std::pair{"optimizer.v.", &adam.v()}}) {
      uint8_t* data = store.AddOwned(prefix + s.name, DType::kF32, s.shape);
      std::memcpy(data, moments->data() + s.offset, static_cast<size_t>(s.size) * sizeof(float));
    }
  }
  store.metadata().Set("slimlm.train.step", MetaValue::U64(static_cast<uint64_t>(state.step)));
  store.metadata().Set("slimlm.train.adam_steps",
                       MetaValue::U64(static_cast<uint64_t>(state.adam.steps())));
  return WriteGguf(store, path);
}

Result<TrainState> LoadCheckpoint(const std::string& path, const AdamWOptions& adam) {
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, ReadGguf(path));
  std::optional<int64_t> step = store.metadata().GetInt("slimlm.train.step");
  std::optional<int64_t> adam_steps = store.metadata().GetInt("slimlm.train.adam_steps");
  if (!step || !adam_steps) {
    return InvalidArgumentError("{}: not a training checkpoint (no slimlm.train.step)", path);
  }
  Result<Transformer<float>> model = FromWeightStore(store);
  if (!model.ok()) return model.status().WithContext(path);
  Metadata metadata = store.metadata();
  metadata.Erase("slimlm.train.step");
  metadata.Erase("slimlm.train.adam_steps");
  TrainState state = StartTraining(std::move(*model), std::move(metadata), adam);
  state.step = *step;
  state.adam.set_steps(*adam_steps);
  for (const ParamSlot& s : state.model.slots()) {
    for (const auto& [prefix, moments] :
         {std::pair{"optimizer.m.", &state.adam.m()}, std::pair{"optimizer.v.", &state.adam.v()}}) {
      const StoredTensor* t = store.Find(prefix + s.name);
      if (t == nullptr || t->dtype != DType::kF32 || t->shape != s.shape) {
        return CorruptError("{}: the checkpoint's tensor '{}{}' is missing or malformed", path,
                            prefix, s.name);
      }
      std::memcpy(moments->data() + s.offset, t->data, static_cast<size_t>(s.size) * 4);
    }
  }
  return state;
}

}  // namespace slimlm::train
