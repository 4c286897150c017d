// slimlm quantize: a model to a smaller GGUF, tensor by tensor, with a per-type summary.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/hash.h"
#include "slimlm/core/progress.h"
#include "slimlm/eval/perplexity.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/model/model.h"
#include "slimlm/quant/importance.h"
#include "slimlm/quant/quantize.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct QuantizeArgs {
  std::string in;
  std::string out;
  std::string type;
  std::vector<std::string> keep;
  std::string tokenizer;
  bool allow_requantize = false;
  int threads = 0;
  CalibrationArgs calib;
  std::string save_stats;  // Where to save the statistics collected from --calib.
  std::string stats;       // Statistics saved by an earlier --save-stats.
};

// The importance statistics of --calib (collected now) or --stats (read), or none.
Result<std::optional<quant::ImportanceStats>> Importance(const QuantizeArgs& args) {
  if (!args.calib.text.empty() && !args.stats.empty()) {
    return InvalidArgumentError("--calib and --stats: give one (statistics are collected or read)");
  }
  if (!args.save_stats.empty() && args.calib.text.empty()) {
    return InvalidArgumentError("--save-stats needs --calib: there is nothing to save");
  }
  if (!args.stats.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(quant::ImportanceStats stats, quant::LoadImportance(args.stats));
    return std::optional<quant::ImportanceStats>(std::move(stats));
  }
  if (args.calib.text.empty()) return std::optional<quant::ImportanceStats>();
  SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(args.calib.text));
  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.in, args.tokenizer, true));
  SLIMLM_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, eval::TokenizeText(*model, text));
  quant::CalibrationOptions options;
  options.n_ctx = args.calib.ctx;
  const int64_t trained = model->config().context_length;
  if (trained > 0 && options.n_ctx > trained) options.n_ctx = trained;
  options.max_chunks = args.calib.chunks;
  options.n_threads = ResolveThreads(args.threads);
  Result<quant::ImportanceStats> stats = [&] {
    std::optional<Progress> progress;
    return quant::CollectImportance(*model, tokens, options, [&](int64_t done, int64_t total) {
      if (!progress) progress.emplace("calibrate", total, "chunks");
      progress->Update(done);
    });
  }();
  if (!stats.ok()) return stats.status().WithContext(args.calib.text);
  stats->source = args.calib.text;
  stats->source_hash = HashBytes(text.data(), text.size());
  fmt::print(stderr, "calibration: {} tokens of {} in chunks of {}\n", stats->tokens,
             args.calib.text, options.n_ctx);
  if (!args.save_stats.empty()) {
    SLIMLM_RETURN_IF_ERROR(quant::SaveImportance(*stats, args.save_stats));
    fmt::print(stderr, "saved the statistics to {}\n", args.save_stats);
  }
  return std::optional<quant::ImportanceStats>(std::move(*stats));
}

Status Quantize(const QuantizeArgs& args) {
  quant::QuantizeOptions options;
  std::optional<DType> type = ParseDType(args.type);
  if (!type) {
    return InvalidArgumentError("--type '{}' is not one of f16, bf16, q8_0, q4_0, q4_k, q6_k",
                                args.type);
  }
  options.type = *type;
  for (const std::string& rule : args.keep) {
    SLIMLM_ASSIGN_OR_RETURN(quant::TensorTypeRule r, quant::ParseTensorTypeRule(rule));
    options.rules.push_back(std::move(r));
  }
  options.allow_requantize = args.allow_requantize;
  options.tool_version = fmt::format("slimlm {}", kSlimlmVersion);
  options.n_threads = ResolveThreads(args.threads);
  std::error_code ec;
  if (std::filesystem::equivalent(args.in, args.out, ec)) {
    return InvalidArgumentError("the output {} is the input: write to another file", args.out);
  }
  SLIMLM_ASSIGN_OR_RETURN(std::optional<quant::ImportanceStats> importance, Importance(args));
  if (importance) options.importance = &*importance;
  LoadOptions load;
  load.tokenizer_path = args.tokenizer;
  load.require_tokenizer = false;
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, LoadModel(args.in, load));
  Result<quant::QuantizeSummary> summary = [&] {
    std::optional<Progress> progress;
    return quant::QuantizeToGguf(store, args.out, options, args.in,
                                 [&](int64_t done, int64_t total) {
                                   if (!progress) progress.emplace("quantize", total >> 20, "MiB");
                                   progress->Update(done >> 20);
                                 });
  }();
  if (!summary.ok()) return summary.status().WithContext(args.in);
  const quant::QuantizeSummary& s = *summary;
  fmt::print(
      "quantized {} -> {} ({}) in {:.1f} s: {} -> {} ({:.1f}%), {:.2f} bits per weight "
      "over the matrices\n",
      args.in, args.out, DTypeName(options.type), s.seconds,
      FormatBytes(static_cast<double>(s.bytes_in)), FormatBytes(static_cast<double>(s.bytes_out)),
      100.0 * static_cast<double>(s.bytes_out) / static_cast<double>(s.bytes_in),
      s.matrix_bits_per_weight);
  if (importance) {
    fmt::print("{} matrices rounded by importance ({} calibration tokens)\n", s.weighted_tensors,
               importance->tokens);
  }
  fmt::print("{:<6} {:>8} {:>14} {:>12}\n", "type", "tensors", "weights", "bytes");
  for (const quant::TypeTotals& t : s.by_type) {
    fmt::print("{:<6} {:>8} {:>14} {:>12}\n", DTypeName(t.type), t.tensors, t.elements,
               FormatBytes(static_cast<double>(t.bytes)));
  }
  return Status::Ok();
}

}  // namespace

CommandSpec QuantizeCommand() {
  return {
      "quantize",
      "Quantize a model to GGUF (f16, bf16, q8_0, q4_0, q4_k, q6_k), tensor by tensor, with "
      "mixed precision",
      [](CLI::App* app) {
        auto args = std::make_shared<QuantizeArgs>();
        app->add_option("in", args->in, "Input: GGUF file, HF folder or llama2.c .bin")->required();
        app->add_option("out", args->out, "Output GGUF file")->required();
        app->add_option("--type", args->type,
                        "Target type: f16, bf16, q8_0, q4_0, q4_k (with q6_k where it "
                        "matters), q6_k")
            ->required();
        app->add_option("--keep-tensor", args->keep,
                        "REGEX=TYPE: tensors whose name matches get TYPE (first rule wins; "
                        "repeatable), e.g. 'blk\\.0\\..*=q8_0'");
        app->add_flag("--allow-requantize", args->allow_requantize,
                      "Accept already quantized matrices as input");
        AddCalibrationOptions(app, &args->calib,
                              "Calibration text: collect importance statistics and choose the "
                              "quantized blocks' scales to minimize the activation-weighted error");
        app->add_option("--save-stats", args->save_stats,
                        "Save the statistics collected from --calib (GGUF)");
        app->add_option("--stats", args->stats, "Use statistics saved by --save-stats");
        AddThreadsOption(app, &args->threads);
        AddTokenizerOption(app, &args->tokenizer);
        return [args] { return Quantize(*args); };
      }};
}

}  // namespace slimlm::tools
