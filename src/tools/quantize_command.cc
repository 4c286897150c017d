// slimlm quantize: a model to a smaller GGUF, tensor by tensor, with a per-type summary.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "slimlm/core/progress.h"
#include "slimlm/formats/model_file.h"
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
};

Status Quantize(const QuantizeArgs& args) {
  quant::QuantizeOptions options;
  std::optional<DType> type = ParseDType(args.type);
  if (!type) {
    return InvalidArgumentError("--type '{}' is not one of f16, bf16, q8_0, q4_0", args.type);
  }
  options.type = *type;
  for (const std::string& rule : args.keep) {
    SLIMLM_ASSIGN_OR_RETURN(quant::TensorTypeRule r, quant::ParseTensorTypeRule(rule));
    options.rules.push_back(std::move(r));
  }
  options.allow_requantize = args.allow_requantize;
  options.n_threads = ResolveThreads(args.threads);
  std::error_code ec;
  if (std::filesystem::equivalent(args.in, args.out, ec)) {
    return InvalidArgumentError("the output {} is the input: write to another file", args.out);
  }
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
      "Quantize a model to GGUF (f16, bf16, q8_0, q4_0), tensor by tensor, with mixed "
      "precision",
      [](CLI::App* app) {
        auto args = std::make_shared<QuantizeArgs>();
        app->add_option("in", args->in, "Input: GGUF file, HF folder or llama2.c .bin")->required();
        app->add_option("out", args->out, "Output GGUF file")->required();
        app->add_option("--type", args->type, "Target type: f16, bf16, q8_0, q4_0")->required();
        app->add_option("--keep-tensor", args->keep,
                        "REGEX=TYPE: tensors whose name matches get TYPE (first rule wins; "
                        "repeatable), e.g. 'blk\\.0\\..*=q8_0'");
        app->add_flag("--allow-requantize", args->allow_requantize,
                      "Accept already quantized matrices as input");
        AddThreadsOption(app, &args->threads);
        AddTokenizerOption(app, &args->tokenizer);
        return [args] { return Quantize(*args); };
      }};
}

}  // namespace slimlm::tools
