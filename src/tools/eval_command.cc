// slimlm eval: accuracy measured the way the community measures it. `eval ppl` is perplexity by
// llama-perplexity's chunked method, with its standard error and bits per byte of text.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/core/file.h"
#include "slimlm/core/progress.h"
#include "slimlm/eval/choice.h"
#include "slimlm/eval/kl_divergence.h"
#include "slimlm/eval/perplexity.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/profile_report.h"

namespace slimlm::tools {
namespace {

struct PplArgs {
  std::string model;
  std::string ref;                     // eval kld: the reference model,
  std::string ref_logits;              //   or its saved log-probabilities;
  std::string save_logits;             //   where to save the reference's.
  std::string tasks;                   // eval choice: the JSONL items.
  std::vector<std::string> templates;  // eval choice: prompt templates with {context}.
  std::string data;
  std::string tokenizer;
  int64_t n_ctx = 512;
  int64_t chunks = 0;
  int64_t n_batch = 256;
  int threads = 0;
  std::string kv_type = "f16";
  bool json = false;
  bool profile = false;
  mutable OpProfile op_profile;  // Filled by the forward passes when --profile is set.
};

eval::PerplexityOptions ChunkOptionsFrom(const PplArgs& args, DType kv_type) {
  eval::PerplexityOptions options;
  options.n_ctx = args.n_ctx;
  options.max_chunks = args.chunks;
  options.n_batch = args.n_batch;
  options.n_threads = ResolveThreads(args.threads);
  options.kv_type_k = options.kv_type_v = kv_type;
  if (args.profile) options.profile = &args.op_profile;
  return options;
}

// A progress bar made at the first report, so that bad input gives its error line alone.
class ChunkProgress {
 public:
  explicit ChunkProgress(std::string label) : label_(std::move(label)) {}
  void operator()(int64_t done, int64_t total) {
    if (!progress_) progress_.emplace(label_, total, "chunks");
    progress_->Update(done);
  }
  // Ends the bar before results are printed.
  void Finish() { progress_.reset(); }

 private:
  std::string label_;
  std::optional<Progress> progress_;
};

Status Perplexity(const PplArgs& args) {
  SLIMLM_ASSIGN_OR_RETURN(DType kv_type, ParseKvType(args.kv_type));
  SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(args.data));
  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.model, args.tokenizer, true));
  const int64_t trained = model->config().context_length;
  if (trained > 0 && args.n_ctx > trained) {
    fmt::print(stderr,
               "warning: -c {} exceeds the model's trained context of {}: the figure measures "
               "the model past what it was trained for\n",
               args.n_ctx, trained);
  }
  SLIMLM_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, eval::TokenizeText(*model, text));
  const eval::PerplexityOptions options = ChunkOptionsFrom(args, kv_type);
  // The bar ends (its last line printed) before the results are.
  Result<eval::PerplexityResult> result = [&] {
    ChunkProgress progress("eval ppl");
    return eval::ComputePerplexity(*model, tokens, options,
                                   [&](int64_t done, int64_t total) { progress(done, total); });
  }();
  if (!result.ok()) return result.status().WithContext(args.data);
  const eval::PerplexityResult& r = *result;
  if (args.json) {
    nlohmann::json j = {
        {"model", args.model},
        {"data", args.data},
        {"n_ctx", r.n_ctx},
        {"chunks", r.chunks},
        {"text_tokens", r.text_tokens},
        {"scored_tokens", r.scored_tokens},
        {"scored_bytes", r.scored_bytes},
        {"nll", r.nll},
        {"ppl", r.ppl},
        {"ppl_stderr", r.ppl_stderr},
        {"bits_per_byte", r.bits_per_byte},
        {"running_ppl", r.running_ppl},
        {"kv_type", DTypeName(kv_type)},
    };
    fmt::print("{}\n", j.dump(2));
    return Status::Ok();
  }
  fmt::print(
      "perplexity: {} chunks of {} tokens from {} ({} tokens); the second half of each "
      "scored: {} tokens, {} bytes of text\n",
      r.chunks, r.n_ctx, args.data, r.text_tokens, r.scored_tokens, r.scored_bytes);
  std::string running;
  for (size_t i = 0; i < r.running_ppl.size(); ++i) {
    running += fmt::format("[{}]{:.4f},", i + 1, r.running_ppl[i]);
  }
  fmt::print("{}\n", running);
  fmt::print("Final estimate: PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_stderr);
  fmt::print("nll {:.4f} nats/token; {:.4f} bits per byte of text\n", r.nll, r.bits_per_byte);
  return Status::Ok();
}

void AddProfileFlag(CLI::App* app, PplArgs* args) {
  app->add_flag("--profile", args->profile,
                "Time, bytes and operations per operation type of the forward passes (both "
                "models' for kld --ref), on stderr");
}

// Runs a subcommand, then prints its operation profile (stderr: the results on stdout stay
// whole).
Status WithProfile(const PplArgs& args, Status (*command)(const PplArgs&), const char* title) {
  SLIMLM_RETURN_IF_ERROR(command(args));
  if (!args.profile) return Status::Ok();
  SLIMLM_ASSIGN_OR_RETURN(ProfileLimits limits, MeasureProfileLimits(ResolveThreads(args.threads)));
  fmt::print(stderr, "{}", FormatProfile(title, args.op_profile, limits));
  return Status::Ok();
}

// Options shared by the subcommands that score chunks of a text.
void AddChunkOptions(CLI::App* app, PplArgs* args) {
  app->add_option("model", args->model, "Model: GGUF file, HF folder or llama2.c .bin");
  app->add_option("-m,--model", args->model, "The model (instead of the positional)");
  app->add_option("--data,-f", args->data, "Text file to score")->required();
  app->add_option("-c,--ctx-size", args->n_ctx,
                  "Tokens per chunk; the second half of each is scored")
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 20))
      ->capture_default_str();
  app->add_option("--chunks", args->chunks, "Chunks to score at most (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("-b,--batch-size", args->n_batch, "Tokens per forward step")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
      ->capture_default_str();
  app->add_option("--kv-type", args->kv_type, "KV cache type: f32, f16 or q8_0")
      ->capture_default_str();
  AddThreadsOption(app, &args->threads);
  AddTokenizerOption(app, &args->tokenizer);
  app->add_flag("--json", args->json, "Print the result as JSON");
  AddProfileFlag(app, args);
}

Status KlDivergence(const PplArgs& args) {
  if (!args.ref.empty() && !args.ref_logits.empty()) {
    return InvalidArgumentError("eval kld: give --ref or --ref-logits, not both");
  }
  const bool save_only = args.ref.empty() && args.ref_logits.empty();
  if (save_only && args.save_logits.empty()) {
    return InvalidArgumentError(
        "eval kld: no reference: give --ref MODEL, --ref-logits FILE, or --save-logits FILE to "
        "save this model's log-probabilities as a reference");
  }
  if (!args.ref_logits.empty() && !args.save_logits.empty()) {
    return InvalidArgumentError(
        "eval kld: --save-logits saves a reference model's; with "
        "--ref-logits there is none");
  }
  SLIMLM_ASSIGN_OR_RETURN(DType kv_type, ParseKvType(args.kv_type));
  SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(args.data));
  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.model, args.tokenizer, true));
  SLIMLM_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, eval::TokenizeText(*model, text));
  const eval::PerplexityOptions options = ChunkOptionsFrom(args, kv_type);
  ChunkProgress progress("eval kld");
  auto report = [&](int64_t done, int64_t total) { progress(done, total); };
  if (save_only) {
    Result<int64_t> saved =
        eval::SaveReferenceLogits(*model, tokens, options, args.save_logits, report);
    if (!saved.ok()) return saved.status().WithContext(args.data);
    progress.Finish();
    fmt::print("saved the log-probabilities of {} over {} chunks of {} tokens to {}\n", args.model,
               *saved, args.n_ctx, args.save_logits);
    return Status::Ok();
  }
  Result<eval::KlDivergenceResult> result = InternalError("unreachable");
  if (!args.ref_logits.empty()) {
    result = eval::ComputeKlDivergence(*model, args.ref_logits, tokens, options, report);
  } else {
    SLIMLM_ASSIGN_OR_RETURN(auto reference, LoadModelForCommand(args.ref, args.tokenizer, true));
    SLIMLM_ASSIGN_OR_RETURN(std::vector<int32_t> ref_tokens, eval::TokenizeText(*reference, text));
    if (tokens != ref_tokens) {
      return InvalidArgumentError(
          "{} and {} tokenize the text differently: KL divergence compares models with one "
          "vocabulary",
          args.model, args.ref);
    }
    result =
        eval::ComputeKlDivergence(*model, *reference, tokens, options, report, args.save_logits);
  }
  progress.Finish();
  if (!result.ok()) {
    // Errors about the saved log-probabilities name their file; the others concern the text.
    const Status& status = result.status();
    const bool about_logits =
        !args.ref_logits.empty() && status.message().starts_with(args.ref_logits);
    return about_logits ? status : status.WithContext(args.data);
  }
  const std::string ref_name = args.ref.empty() ? args.ref_logits : args.ref;
  const eval::KlDivergenceResult& r = *result;
  if (args.json) {
    nlohmann::json j = {
        {"model", args.model},
        {"reference", ref_name},
        {"data", args.data},
        {"n_ctx", args.n_ctx},
        {"chunks", r.chunks},
        {"positions", r.positions},
        {"kld_mean", r.kld_mean},
        {"kld_stderr", r.kld_stderr},
        {"kld_median", r.kld_median},
        {"kld_p90", r.kld_p90},
        {"kld_p99", r.kld_p99},
        {"kld_p99_9", r.kld_p999},
        {"kld_max", r.kld_max},
        {"top1_agreement", r.top1_agreement},
        {"ppl_reference", r.ppl_reference},
        {"ppl_model", r.ppl_model},
        {"delta_ppl", r.delta_ppl},
        {"delta_ppl_stderr", r.delta_ppl_stderr},
    };
    fmt::print("{}\n", j.dump(2));
    return Status::Ok();
  }
  fmt::print("KL divergence of {} from {}: {} chunks of {} tokens, {} positions scored\n",
             args.model, ref_name, r.chunks, args.n_ctx, r.positions);
  fmt::print("Mean    KLD: {:.6f} +/- {:.6f}\n", r.kld_mean, r.kld_stderr);
  fmt::print(
      "Maximum KLD: {:.6f}\n99.9%   KLD: {:.6f}\n99.0%   KLD: {:.6f}\n90.0%   KLD: "
      "{:.6f}\nMedian  KLD: {:.6f}\n",
      r.kld_max, r.kld_p999, r.kld_p99, r.kld_p90, r.kld_median);
  fmt::print("Same top token: {:.3f}%\n", 100.0 * r.top1_agreement);
  fmt::print("PPL: reference {:.4f}, model {:.4f}, difference {:+.4f} +/- {:.4f} ({:+.3f}%)\n",
             r.ppl_reference, r.ppl_model, r.delta_ppl, r.delta_ppl_stderr,
             100.0 * r.delta_ppl / r.ppl_reference);
  return Status::Ok();
}

Status Choice(const PplArgs& args) {
  SLIMLM_ASSIGN_OR_RETURN(DType kv_type, ParseKvType(args.kv_type));
  SLIMLM_ASSIGN_OR_RETURN(std::vector<eval::ChoiceItem> items, eval::ReadChoiceTasks(args.tasks));
  std::vector<std::string> templates = args.templates;
  if (templates.empty()) templates.push_back("{context}");
  for (const std::string& t : templates) {
    SLIMLM_RETURN_IF_ERROR(eval::ApplyTemplate(t, "").status());
  }
  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.model, args.tokenizer, true));
  eval::ChoiceOptions options;
  options.n_batch = args.n_batch;
  options.n_threads = ResolveThreads(args.threads);
  options.kv_type = kv_type;
  if (args.profile) options.profile = &args.op_profile;
  Result<std::vector<eval::TemplateScore>> result = [&] {
    std::optional<Progress> progress;
    return eval::ScoreChoices(*model, items, templates, options, [&](int64_t done, int64_t total) {
      if (!progress) progress.emplace("eval choice", total, "items");
      progress->Update(done);
    });
  }();
  if (!result.ok()) return result.status().WithContext(args.tasks);
  const std::vector<eval::TemplateScore>& scores = *result;
  // Paired comparison with the first template: items only one of the two gets right.
  auto only_right = [&](const eval::TemplateScore& a, const eval::TemplateScore& b) {
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      n += a.picks[i] == items[i].label && b.picks[i] != items[i].label ? 1 : 0;
    }
    return n;
  };
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const eval::TemplateScore& s : scores) {
      out.push_back({{"template", s.tmpl},
                     {"items", s.items},
                     {"acc", s.acc},
                     {"acc_stderr", s.acc_stderr},
                     {"acc_norm", s.acc_norm},
                     {"acc_norm_stderr", s.acc_norm_stderr},
                     {"only_this_right_vs_first", only_right(s, scores[0])},
                     {"only_first_right_vs_this", only_right(scores[0], s)},
                     {"picks", s.picks}});
    }
    fmt::print("{}\n", out.dump(2));
    return Status::Ok();
  }
  fmt::print("{} items from {}, {} choices each on average\n", items.size(), args.tasks, [&] {
    size_t n = 0;
    for (const eval::ChoiceItem& i : items) n += i.choices.size();
    return static_cast<double>(n) / static_cast<double>(items.size());
  }());
  fmt::print("{:>3}  {:>17}  {:>17}  {:>13}  template\n", "#", "acc", "acc_norm", "vs #1 (+/-)");
  for (size_t t = 0; t < scores.size(); ++t) {
    const eval::TemplateScore& s = scores[t];
    const std::string versus =
        t == 0 ? "" : fmt::format("+{} / -{}", only_right(s, scores[0]), only_right(scores[0], s));
    std::string shown = s.tmpl;
    for (size_t at; (at = shown.find('\n')) != std::string::npos;) shown.replace(at, 1, "\\n");
    fmt::print("{:>3}  {:>8.4f} ± {:.4f}  {:>8.4f} ± {:.4f}  {:>13}  {}\n", t + 1, s.acc,
               s.acc_stderr, s.acc_norm, s.acc_norm_stderr, versus, shown);
  }
  fmt::print(
      "acc: the choice with the highest log-likelihood; acc_norm: per byte of the choice. "
      "vs #1: items this template gets right and #1 wrong / the reverse.\n");
  return Status::Ok();
}

}  // namespace

CommandSpec EvalCommand() {
  return {"eval",
          "Measure accuracy: perplexity (ppl), KL divergence from a reference (kld), "
          "multiple choice (choice)",
          [](CLI::App* app) {
            app->require_subcommand(1);
            auto ppl_args = std::make_shared<PplArgs>();
            CLI::App* ppl = app->add_subcommand(
                "ppl", "Perplexity over a text by llama-perplexity's chunked method (comparable)");
            AddChunkOptions(ppl, ppl_args.get());
            auto kld_args = std::make_shared<PplArgs>();
            CLI::App* kld = app->add_subcommand(
                "kld",
                "KL divergence of the model's next-token distributions from a reference model's, "
                "top-token agreement and both perplexities");
            AddChunkOptions(kld, kld_args.get());
            kld->add_option("--ref", kld_args->ref,
                            "The reference model (e.g. the unquantized original)");
            kld->add_option("--ref-logits", kld_args->ref_logits,
                            "The reference's log-probabilities saved by --save-logits (same "
                            "text and -c), instead of --ref");
            kld->add_option("--save-logits", kld_args->save_logits,
                            "Save the reference's log-probabilities (the model's when there is "
                            "no --ref) for later --ref-logits runs");
            auto choice_args = std::make_shared<PplArgs>();
            CLI::App* choice = app->add_subcommand(
                "choice",
                "Multiple-choice accuracy by log-likelihood (HellaSwag-style); several "
                "--template to compare prompts on the same items");
            choice->add_option("model", choice_args->model,
                               "Model: GGUF file, HF folder or llama2.c .bin");
            choice->add_option("-m,--model", choice_args->model,
                               "The model (instead of the positional)");
            choice
                ->add_option("--tasks", choice_args->tasks,
                             "JSON Lines: context (ctx, query), choices (endings), label "
                             "(gold, answer)")
                ->required();
            choice->add_option("--template", choice_args->templates,
                               "Prompt template with {context} (repeatable; default {context})");
            choice->add_option("-b,--batch-size", choice_args->n_batch, "Tokens per forward step")
                ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
                ->capture_default_str();
            choice->add_option("--kv-type", choice_args->kv_type, "KV cache type: f32, f16, q8_0")
                ->capture_default_str();
            AddThreadsOption(choice, &choice_args->threads);
            AddTokenizerOption(choice, &choice_args->tokenizer);
            choice->add_flag("--json", choice_args->json, "Print the result as JSON");
            AddProfileFlag(choice, choice_args.get());
            return [ppl, ppl_args, kld, kld_args, choice, choice_args]() -> Status {
              if (choice->parsed()) {
                if (choice_args->model.empty()) {
                  return InvalidArgumentError("eval choice: no model given");
                }
                return WithProfile(*choice_args, Choice, "eval choice");
              }
              if (ppl->parsed()) {
                if (ppl_args->model.empty()) {
                  return InvalidArgumentError("eval ppl: no model given");
                }
                return WithProfile(*ppl_args, Perplexity, "eval ppl");
              }
              if (kld->parsed()) {
                if (kld_args->model.empty()) {
                  return InvalidArgumentError("eval kld: no model given");
                }
                return WithProfile(*kld_args, KlDivergence, "eval kld");
              }
              return InvalidArgumentError("eval: name what to measure: ppl, kld or choice");
            };
          }};
}

}  // namespace slimlm::tools
