#include "tools/training_run.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/progress.h"
#include "slimlm/core/timer.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/model/presets.h"
#include "tools/common.h"

namespace slimlm::tools {

void AddTrainingRunOptions(CLI::App* app, TrainingRunArgs* a) {
  app->add_option("--data,-f", a->data,
                  "Training text (repeatable); documents are separated by <|endoftext|> lines");
  app->add_option("-o,--out", a->out, "Output model (GGUF, f32)");
  app->add_option("--resume", a->resume, "Continue from this checkpoint");
  app->add_option("--name", a->name, "general.name of the output model (default: its file stem)");
  app->add_option("--seed", a->seed, "Seed of the weights and the data order")
      ->capture_default_str();
  app->add_option("-c,--ctx", a->ctx, "Tokens per training window")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 16))
      ->capture_default_str();
  app->add_option("-b,--batch", a->batch, "Windows per step")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
      ->capture_default_str();
  app->add_option("--accumulate", a->accumulate,
                  "Micro-batches of --batch windows per step (gradient accumulation)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
      ->capture_default_str();
  app->add_option("--dropout", a->dropout, "Residual dropout rate while training")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  app->add_option("--token-cache", a->token_cache,
                  "Keep the tokenized data in this file; a later run on the same text "
                  "and tokenizer reads it instead of tokenizing");
  app->add_option("--steps", a->steps, "Total steps")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40))
      ->capture_default_str();
  app->add_option("--lr", a->lr, "Peak learning rate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--min-lr", a->min_lr, "Learning rate at the end of the cosine decay")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--warmup", a->warmup, "Steps of linear warm-up")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--weight-decay", a->weight_decay, "AdamW weight decay (matrices)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--clip", a->clip, "Gradient norm clip (0: off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--valid-fraction", a->valid_fraction, "Share of the documents held out")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  app->add_option("--eval-every", a->eval_every, "Steps between held-out evaluations")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--eval-windows", a->eval_windows, "Held-out windows per evaluation")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--checkpoint", a->checkpoint, "Checkpoint file (written atomically)");
  app->add_option("--checkpoint-every", a->checkpoint_every, "Steps between checkpoints")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  AddThreadsOption(app, &a->threads);
}

void AddShapeOptions(CLI::App* app, ShapeArgs* a) {
  app->add_option("--preset", a->preset,
                  "A shape with random weights: a preset of slimlm init (tiny, 110m, ...)");
  app->add_option("--dim", a->dim, "Override the preset's width");
  app->add_option("--layers", a->layers, "Override the preset's layer count");
  app->add_option("--heads", a->heads, "Override the preset's head count");
  app->add_option("--kv-heads", a->kv_heads, "Override the key/value head count");
  app->add_option("--ffn", a->ffn, "Override the feed-forward width");
}

Result<WeightStore> MakeShapedModel(const ShapeArgs& shape, const Metadata& tokenizer,
                                    const TrainingRunArgs& run) {
  SLIMLM_ASSIGN_OR_RETURN(ModelPreset preset, FindPreset(shape.preset));
  ModelConfig& c = preset.config;
  if (shape.dim > 0) c.dim = shape.dim;
  if (shape.layers > 0) c.n_layers = shape.layers;
  if (shape.heads > 0) c.n_heads = c.n_kv_heads = shape.heads;
  if (shape.kv_heads > 0) c.n_kv_heads = shape.kv_heads;
  if (shape.ffn > 0) c.ffn_dim = shape.ffn;
  if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0) {
    return InvalidArgumentError(
        "--dim {} must be a multiple of --heads {}, and that of --kv-heads {}", c.dim, c.n_heads,
        c.n_kv_heads);
  }
  c.head_dim = c.dim / c.n_heads;
  c.rope_dim = c.head_dim;
  c.context_length = std::max(c.context_length, run.ctx);
  InitOptions init;
  init.seed = run.seed;
  init.tokenizer = &tokenizer;
  return MakeRandomModel(preset, init);
}

Status CheckTrainingRunArgs(const TrainingRunArgs& args) {
  if (args.data.empty()) return InvalidArgumentError("give the training text with --data FILE");
  if (args.out.empty()) return InvalidArgumentError("give the output model with -o FILE");
  // Every file the run writes, checked before it spends hours.
  for (const std::string& path : {args.out, args.checkpoint, args.token_cache}) {
    if (!path.empty()) SLIMLM_RETURN_IF_ERROR(CheckWritable(path));
  }
  return Status::Ok();
}

train::TrainOptions MakeTrainOptions(const TrainingRunArgs& args) {
  train::TrainOptions options;
  options.steps = args.steps;
  options.batch = args.batch;
  options.accumulate = args.accumulate;
  options.dropout = args.dropout;
  options.seed = args.seed;
  options.schedule = train::Schedule{args.lr, args.min_lr, args.warmup, args.steps};
  options.adam.weight_decay = args.weight_decay;
  options.adam.clip_norm = args.clip;
  options.threads = ResolveThreads(args.threads);
  options.eval_every = args.eval_every;
  options.eval_windows = args.eval_windows;
  options.checkpoint = args.checkpoint;
  options.checkpoint_every = args.checkpoint_every;
  return options;
}

Status RecordRun(const TrainingRunArgs& args, bool resuming, Metadata* metadata) {
  const std::pair<const char*, int64_t> run[] = {{"batch", args.batch},
                                                 {"accumulate", args.accumulate},
                                                 {"ctx", args.ctx},
                                                 {"seed", static_cast<int64_t>(args.seed)},
                                                 {"dropout_ppm", std::llround(args.dropout * 1e6)}};
  for (const auto& [name, value] : run) {
    const std::string key = fmt::format("slimlm.train.{}", name);
    const std::optional<int64_t> recorded = metadata->GetInt(key);
    if (resuming && recorded && *recorded != value) {
      return InvalidArgumentError(
          "the checkpoint's run used {} {}, this one {}: give the same value to continue it", name,
          *recorded, value);
    }
    metadata->Set(key, MetaValue::I64(value));
  }
  return Status::Ok();
}

Result<train::Dataset> LoadTrainingData(const TrainingRunArgs& args, train::TrainState* state,
                                        const Tokenizer& tokenizer) {
  if (state->step >= args.steps) {
    return InvalidArgumentError("the checkpoint is at step {}; give --steps beyond it",
                                state->step);
  }
  const ModelConfig& c = state->model.config();
  if (args.ctx > c.context_length && c.context_length > 0) {
    return InvalidArgumentError("--ctx {} exceeds the model's context of {}", args.ctx,
                                c.context_length);
  }
  if (tokenizer.vocab_size() != c.n_vocab) {
    return InvalidArgumentError("the tokenizer has {} tokens, the model's vocabulary {}",
                                tokenizer.vocab_size(), c.n_vocab);
  }
  std::vector<std::string> texts;
  for (const std::string& path : args.data) {
    SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    texts.push_back(std::move(text));
  }
  train::DatasetOptions data_options;
  data_options.n_ctx = args.ctx;
  data_options.valid_fraction = args.valid_fraction;
  data_options.seed = args.seed;
  Timer timer;
  bool cached = false;
  SLIMLM_ASSIGN_OR_RETURN(
      train::Dataset data,
      train::Dataset::BuildCached(texts, tokenizer, data_options, args.token_cache, &cached));
  SLIMLM_RETURN_IF_ERROR(train::CheckBatchFits(data, args.batch));
  // A resumed run continues the same run only on the same tokenized data.
  const std::string data_hash = fmt::format("{:016x}", data.Fingerprint());
  const std::optional<std::string> recorded = state->metadata.GetString("slimlm.train.data_hash");
  if (!args.resume.empty() && recorded && *recorded != data_hash) {
    return InvalidArgumentError(
        "the checkpoint's run trained on other data (or another tokenization of it): give the "
        "same --data files, in the same order, to continue it");
  }
  state->metadata.Set("slimlm.train.data_hash", MetaValue::String(data_hash));
  fmt::print(stderr,
             "data: {} documents ({} held out), {} training tokens ({} windows of {}), {} held-out "
             "tokens; {} in {:.1f} s\n",
             data.documents(), data.valid_documents(), data.train_tokens(), data.windows(),
             args.ctx, data.valid_tokens(), cached ? "read from the token cache" : "tokenized",
             timer.Seconds());
  return data;
}

Status RunTraining(const TrainingRunArgs& args, const train::TrainOptions& options,
                   const train::Dataset& data, train::TrainState* state) {
  const ModelConfig& c = state->model.config();
  const double params = static_cast<double>(state->model.params().size());
  fmt::print(stderr, "model: {:.2f} M parameters, dim {}, {} layers, {} heads ({} kv), ffn {}\n",
             params / 1e6, c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim);
  const int64_t tokens_per_step = args.batch * args.accumulate * args.ctx;
  Timer timer;
  const int64_t first = state->step;
  double loss_sum = 0;
  int64_t loss_n = 0;
  // On a terminal the evaluation lines are printed over the progress bar's line, which the
  // next update draws again below them.
  const bool terminal = isatty(fileno(stderr)) != 0;
  std::optional<Progress> progress;
  progress.emplace("train", options.steps - first, "steps");
  Status status = train::Train(state, data, options, [&](const train::StepReport& r) {
    loss_sum += r.loss;
    ++loss_n;
    if (r.valid_loss) {
      const double elapsed = timer.Seconds();
      const double done = static_cast<double>(r.step - first);
      fmt::print(
          stderr,
          "{}step {:>6}/{}  loss {:.4f}  held-out {:.4f}  lr {:.2e}  grad {:.2f}  {:.0f} "
          "tok/s  epoch {:.2f}  ETA {}\n",
          terminal ? "\r\033[K" : "", r.step, options.steps, loss_sum / static_cast<double>(loss_n),
          *r.valid_loss, r.lr, r.grad_norm, done * static_cast<double>(tokens_per_step) / elapsed,
          static_cast<double>(r.step * args.batch * args.accumulate) /
              static_cast<double>(data.windows()),
          Progress::FormatDuration(elapsed / done * static_cast<double>(options.steps - r.step)));
      loss_sum = 0;
      loss_n = 0;
    }
    progress->Update(r.step - first);
  });
  progress.reset();
  SLIMLM_RETURN_IF_ERROR(status);
  Metadata metadata = state->metadata;
  metadata.Erase("slimlm.init.random_weights");  // Trained now; slimlm.init.* stay as provenance.
  metadata.Set(
      "general.name",
      MetaValue::String(!args.name.empty() ? args.name
                                           : std::filesystem::path(args.out).stem().string()));
  metadata.Set("slimlm.train.tokens",
               MetaValue::U64(static_cast<uint64_t>(state->step * tokens_per_step)));
  SLIMLM_RETURN_IF_ERROR(WriteGguf(train::ToWeightStore(state->model, metadata), args.out));
  const double seconds = timer.Seconds();
  const double tokens = static_cast<double>((state->step - first) * tokens_per_step);
  fmt::print(stderr,
             "wrote {}: {} steps in {}, {:.0f} tokens/s ({:.1f} GFLOP/s as 6 x {:.2f} M "
             "parameters x tokens/s)\n",
             args.out, state->step - first, Progress::FormatDuration(seconds), tokens / seconds,
             6.0 * params * tokens / seconds / 1e9, params / 1e6);
  return Status::Ok();
}

}  // namespace slimlm::tools
