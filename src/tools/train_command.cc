// slimlm train: train a Llama-architecture model on text files, from a preset shape with random
// weights, from an existing model, or from a checkpoint of an earlier run.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/progress.h"
#include "slimlm/core/timer.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/formats/tokenizer_files.h"
#include "slimlm/model/presets.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/train/trainer.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct TrainArgs {
  std::vector<std::string> data;
  std::string out;
  std::string model;      // Start from this model...
  std::string preset;     // ...or from this shape with random weights,
  std::string tokenizer;  //    with this tokenizer,
  std::string resume;     // ...or continue this checkpoint.
  int64_t dim = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0;  // Preset overrides.
  uint64_t seed = 1;
  int64_t ctx = 256;
  int64_t batch = 8;
  int64_t accumulate = 1;
  double dropout = 0;
  std::string token_cache;
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

// The starting point: a checkpoint, a model file, or a preset with random weights.
Result<train::TrainState> Start(const TrainArgs& args, const train::AdamWOptions& adam) {
  const int sources = !args.resume.empty() + !args.model.empty() + !args.preset.empty();
  if (sources != 1) {
    return InvalidArgumentError(
        "give one starting point: --preset NAME (random weights), --model FILE or --resume "
        "CHECKPOINT");
  }
  if (!args.resume.empty()) return train::LoadCheckpoint(args.resume, adam);
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
    c.context_length = std::max(c.context_length, args.ctx);
    Metadata tokenizer;
    SLIMLM_RETURN_IF_ERROR(ReadTokenizerFile(args.tokenizer, 0, &tokenizer));
    InitOptions init;
    init.seed = args.seed;
    init.tokenizer = &tokenizer;
    SLIMLM_ASSIGN_OR_RETURN(store, MakeRandomModel(preset, init));
  }
  SLIMLM_ASSIGN_OR_RETURN(train::Transformer<float> model, train::FromWeightStore(store));
  Metadata metadata = store.metadata();
  return train::StartTraining(std::move(model), std::move(metadata), adam);
}

// The options a resumed run must share with the run that wrote the checkpoint (they decide
// which windows each step reads and how), kept in the checkpoint and the model's metadata.
Status RecordRun(const TrainArgs& args, bool resuming, Metadata* metadata) {
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

Status Train(const TrainArgs& args) {
  if (args.data.empty()) return InvalidArgumentError("give the training text with --data FILE");
  if (args.out.empty()) return InvalidArgumentError("give the output model with -o FILE");
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
  SLIMLM_ASSIGN_OR_RETURN(train::TrainState state, Start(args, options.adam));
  SLIMLM_RETURN_IF_ERROR(RecordRun(args, !args.resume.empty(), &state.metadata));
  if (state.step >= options.steps) {
    return InvalidArgumentError("the checkpoint is at step {}; give --steps beyond it", state.step);
  }
  const ModelConfig& c = state.model.config();
  if (args.ctx > c.context_length && c.context_length > 0) {
    return InvalidArgumentError("--ctx {} exceeds the model's context of {}", args.ctx,
                                c.context_length);
  }
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                          Tokenizer::FromMetadata(state.metadata));
  if (tokenizer->vocab_size() != c.n_vocab) {
    return InvalidArgumentError("the tokenizer has {} tokens, the model's vocabulary {}",
                                tokenizer->vocab_size(), c.n_vocab);
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
  Timer tokenize_timer;
  bool cached = false;
  SLIMLM_ASSIGN_OR_RETURN(
      train::Dataset data,
      train::Dataset::BuildCached(texts, *tokenizer, data_options, args.token_cache, &cached));
  fmt::print(stderr,
             "data: {} documents ({} held out), {} training tokens ({} windows of {}), {} held-out "
             "tokens; {} in {:.1f} s\n",
             data.documents(), data.valid_documents(), data.train_tokens(), data.windows(),
             args.ctx, data.valid_tokens(), cached ? "read from the token cache" : "tokenized",
             tokenize_timer.Seconds());
  const double params = static_cast<double>(state.model.params().size());
  fmt::print(stderr, "model: {:.2f} M parameters, dim {}, {} layers, {} heads ({} kv), ffn {}\n",
             params / 1e6, c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.ffn_dim);
  const int64_t tokens_per_step = args.batch * args.accumulate * args.ctx;
  Timer timer;
  const int64_t first = state.step;
  double loss_sum = 0;
  int64_t loss_n = 0;
  // On a terminal the evaluation lines are printed over the progress bar's line, which the
  // next update draws again below them.
  const bool terminal = isatty(fileno(stderr)) != 0;
  std::optional<Progress> progress;
  progress.emplace("train", options.steps - first, "steps");
  Status status = train::Train(&state, data, options, [&](const train::StepReport& r) {
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
  Metadata metadata = state.metadata;
  metadata.Set("slimlm.train.tokens",
               MetaValue::U64(static_cast<uint64_t>(state.step * tokens_per_step)));
  SLIMLM_RETURN_IF_ERROR(WriteGguf(train::ToWeightStore(state.model, metadata), args.out));
  const double seconds = timer.Seconds();
  const double tokens = static_cast<double>((state.step - first) * tokens_per_step);
  fmt::print(stderr,
             "wrote {}: {} steps in {}, {:.0f} tokens/s ({:.1f} GFLOP/s as 6 x {:.2f} M "
             "parameters x tokens/s)\n",
             args.out, state.step - first, Progress::FormatDuration(seconds), tokens / seconds,
             6.0 * params * tokens / seconds / 1e9, params / 1e6);
  return Status::Ok();
}

}  // namespace

CommandSpec TrainCommand() {
  return {"train", "Train a model on text: from a preset shape, a model, or a checkpoint",
          [](CLI::App* app) {
            auto a = std::make_shared<TrainArgs>();
            app->add_option("--data,-f", a->data,
                            "Training text (repeatable); documents are "
                            "separated by <|endoftext|> lines");
            app->add_option("-o,--out", a->out, "Output model (GGUF, f32)");
            app->add_option("--model,-m", a->model, "Start from this model");
            app->add_option("--preset", a->preset, "Start from this shape with random weights");
            app->add_option("--tokenizer", a->tokenizer,
                            "Tokenizer for --preset (or a model "
                            "without one)");
            app->add_option("--resume", a->resume, "Continue from this checkpoint");
            app->add_option("--dim", a->dim, "Override the preset's width");
            app->add_option("--layers", a->layers, "Override the preset's layer count");
            app->add_option("--heads", a->heads, "Override the preset's head count");
            app->add_option("--kv-heads", a->kv_heads, "Override the key/value head count");
            app->add_option("--ffn", a->ffn, "Override the feed-forward width");
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
            app->add_option("--valid-fraction", a->valid_fraction,
                            "Share of the documents held out")
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
            return [a] { return Train(*a); };
          }};
}

}  // namespace slimlm::tools
