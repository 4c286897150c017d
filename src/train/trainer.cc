#include "slimlm/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "slimlm/core/hash.h"
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

Status CheckBatchFits(const Dataset& data, int64_t batch) {
  if (data.windows() >= batch) return Status::Ok();
  return InvalidArgumentError(
      "the training text holds {} window(s) of {} tokens, fewer than one batch of {}: give more "
      "text, a shorter --ctx or a smaller --batch",
      data.windows(), data.n_ctx(), batch);
}

Status Train(TrainState* state, const Dataset& data, const TrainOptions& options,
             FunctionRef<void(const StepReport&)> report) {
  if (options.batch < 1) return InvalidArgumentError("the batch must be at least 1 window");
  if (options.accumulate < 1) return InvalidArgumentError("accumulate at least 1 micro-batch");
  if (options.dropout < 0 || options.dropout >= 1) {
    return InvalidArgumentError("the dropout rate must be in [0, 1), got {}", options.dropout);
  }
  SLIMLM_RETURN_IF_ERROR(CheckBatchFits(data, options.batch));
  Transformer<float>& model = state->model;
  model.SetThreads(options.threads);
  const int64_t ctx = data.n_ctx();
  std::vector<int32_t> tokens(static_cast<size_t>(options.batch * ctx)), targets(tokens.size());
  std::vector<int64_t> windows(static_cast<size_t>(options.batch));
  std::vector<float> grads(model.params().size());
  while (state->step < options.steps) {
    Timer timer;
    const int64_t step = state->step;
    std::fill(grads.begin(), grads.end(), 0.0f);
    double loss = 0;
    for (int64_t m = 0; m < options.accumulate; ++m) {
      // The batch depends on the step alone.
      const int64_t micro = step * options.accumulate + m;
      for (int64_t i = 0; i < options.batch; ++i) {
        windows[static_cast<size_t>(i)] = micro * options.batch + i;
        data.Window(windows[static_cast<size_t>(i)], &tokens[i * ctx], &targets[i * ctx]);
      }
      PassOptions<float> pass;
      pass.dropout = options.dropout;
      pass.dropout_seed = Mix64(options.seed ^ Mix64(static_cast<uint64_t>(micro)));
      if (options.batch_loss) pass.loss = options.batch_loss(windows);
      loss += model.ForwardBackward(tokens, targets, options.batch, ctx, &grads, pass);
    }
    loss /= static_cast<double>(options.accumulate);
    if (!std::isfinite(loss)) {
      return InternalError(
          "the loss is {} at step {}: training stopped (the last checkpoint is kept); try a "
          "lower learning rate",
          loss, step + 1);
    }
    if (options.accumulate > 1) {
      const float inv = 1.0f / static_cast<float>(options.accumulate);
      for (float& g : grads) g *= inv;
    }
    StepReport r;
    r.lr = options.schedule.At(step);
    r.grad_norm = state->adam.Step(model.params(), grads, r.lr);
    state->step = step + 1;
    r.step = state->step;
    r.loss = loss;
    r.tokens_per_second =
        static_cast<double>(options.accumulate * options.batch * ctx) / timer.Seconds();
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
