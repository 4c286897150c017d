// slimlm prune: remove weights a model does not need. Unstructured or N:M sparsity
// (--sparsity / --pattern, by magnitude, Wanda or SparseGPT) keeps the shape and zeroes weights,
// stored dense or, for 50% N:M patterns, compactly (--type f16_nm); --structured removes whole
// heads, FFN channels and layers and writes a smaller dense model.
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/hash.h"
#include "slimlm/core/progress.h"
#include "slimlm/core/timer.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/prune/prune.h"
#include "slimlm/prune/structured.h"
#include "slimlm/quant/quantize.h"
#include "slimlm/tensor/quant_blocks.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct PruneArgs {
  std::string in;
  std::string out;
  std::string method;
  double sparsity = std::nan("");  // NaN: not given.
  std::string pattern;
  std::string structured;
  std::string type;
  CalibrationArgs calib{"", 256, 64};
  int64_t block = 128;
  double damp = 0.01;
  std::string tokenizer;
  int threads = 0;
};

// The calibration text's tokens, by the model's own tokenizer; an error, before any work starts,
// when they do not fill one chunk.
Result<std::vector<int32_t>> CalibrationTokens(const WeightStore& store,
                                               const CalibrationArgs& calib, uint64_t* hash) {
  SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(calib.text));
  *hash = HashBytes(text.data(), text.size());
  auto tokenizer = Tokenizer::FromMetadata(store.metadata());
  if (!tokenizer.ok()) return tokenizer.status().WithContext(store.source_path);
  std::vector<int32_t> tokens =
      (*tokenizer)->Encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (static_cast<int64_t>(tokens.size()) < calib.ctx) {
    return InvalidArgumentError(
        "{}: the calibration text has {} tokens, shorter than one chunk of {} (--calib-ctx)",
        calib.text, tokens.size(), calib.ctx);
  }
  return tokens;
}

// The type pruned matrices are written in: --type, else the input's float type (f16 for a
// quantized input).
Result<DType> OutputType(const PruneArgs& args, const WeightStore& store,
                         const prune::SparsityTarget& target) {
  if (args.type.empty()) {
    const StoredTensor* t = store.Find("blk.0.attn_q.weight");
    const bool is_float = t != nullptr && (t->dtype == DType::kF32 || t->dtype == DType::kF16 ||
                                           t->dtype == DType::kBF16);
    return is_float ? t->dtype : DType::kF16;
  }
  std::optional<DType> type = ParseDType(args.type);
  if (type == DType::kF16NM) {
    if (!target.is_pattern() || 2 * target.n != target.m || target.m > 8) {
      return InvalidArgumentError(
          "--type f16_nm stores 50% N:M patterns (1:2, 2:4, 4:8); the target is {}",
          target.ToString());
    }
    return *type;
  }
  if (type != DType::kF32 && type != DType::kF16 && type != DType::kBF16) {
    return InvalidArgumentError(
        "--type '{}' is not f32, f16, bf16 or f16_nm (quantize the pruned model afterwards)",
        args.type);
  }
  return *type;
}

void SetCalibrationKeys(Metadata* md, const PruneArgs& args, uint64_t hash, int64_t tokens) {
  md->Set("slimlm.prune.calibration_source", MetaValue::String(args.calib.text));
  md->Set("slimlm.prune.calibration_hash", MetaValue::String(fmt::format("{:016x}", hash)));
  md->Set("slimlm.prune.calibration_tokens", MetaValue::U64(static_cast<uint64_t>(tokens)));
  md->Set("slimlm.prune.calibration_ctx", MetaValue::U32(static_cast<uint32_t>(args.calib.ctx)));
}

quant::CalibrationOptions Calibration(const PruneArgs& args) {
  quant::CalibrationOptions c;
  c.n_ctx = args.calib.ctx;
  c.max_chunks = args.calib.chunks;
  c.n_threads = ResolveThreads(args.threads);
  return c;
}

Status PruneSparse(const PruneArgs& args, WeightStore store, const prune::SparsityTarget& target) {
  prune::PruneOptions o;
  std::optional<prune::PruneMethod> method = prune::ParsePruneMethod(args.method);
  if (!method) {
    return InvalidArgumentError("--method '{}' is not magnitude, wanda or sparsegpt", args.method);
  }
  o.method = *method;
  o.target = target;
  SLIMLM_ASSIGN_OR_RETURN(DType final_type, OutputType(args, store, target));
  if (final_type == DType::kF16NM) {
    for (const StoredTensor& t : store.tensors()) {
      if (prune::IsPrunableMatrix(t.name) && !IsRowLengthValid(DType::kF16NM, t.shape.Cols())) {
        return InvalidArgumentError(
            "--type f16_nm stores rows in blocks of 32 weights; {} has rows of {}: store it as "
            "f16",
            t.name, t.shape.Cols());
      }
    }
  }
  // Compact storage comes last: layers are measured on the dense f16 form of what is kept.
  o.output_type = final_type == DType::kF16NM ? DType::kF16 : final_type;
  o.block_size = args.block;
  o.damp = args.damp;
  o.n_threads = ResolveThreads(args.threads);
  o.calibration = Calibration(args);
  std::vector<int32_t> tokens;
  uint64_t calib_hash = 0;
  if (prune::NeedsCalibration(o.method)) {
    if (args.calib.text.empty()) {
      return InvalidArgumentError("--method {} needs calibration text: --calib FILE", args.method);
    }
    SLIMLM_ASSIGN_OR_RETURN(tokens, CalibrationTokens(store, args.calib, &calib_hash));
    o.calib_tokens = tokens;
  } else if (!args.calib.text.empty()) {
    return InvalidArgumentError("--method magnitude uses no calibration text: drop --calib");
  }
  const uint64_t source_hash = quant::ContentHash(store);
  Timer timer;
  Result<prune::PruneReport> report = [&] {
    std::optional<Progress> progress;
    return prune::PruneModel(&store, o, [&](int64_t done, int64_t total) {
      if (!progress) progress.emplace("prune", total, "layers");
      progress->Update(done);
    });
  }();
  if (!report.ok()) return report.status().WithContext(args.in);
  if (final_type == DType::kF16NM) {
    for (const prune::PrunedTensor& p : report->tensors) {
      const StoredTensor* t = store.Find(p.name);
      const int64_t rows = t->shape[0], cols = t->shape.Cols();
      std::vector<float> row(static_cast<size_t>(cols));
      std::vector<uint8_t> packed(static_cast<size_t>(rows) * RowBytes(DType::kF16NM, cols));
      for (int64_t r = 0; r < rows; ++r) {
        RowToF32(t->dtype, t->data + r * RowBytes(t->dtype, cols), row.data(), cols);
        RowFromF32(DType::kF16NM, row.data(), packed.data() + r * RowBytes(DType::kF16NM, cols),
                   cols);
      }
      uint8_t* out = store.Replace(p.name, DType::kF16NM, t->shape);
      std::copy(packed.begin(), packed.end(), out);
    }
  }
  Metadata& md = store.metadata();
  md.Set("slimlm.prune.method", MetaValue::String(std::string(prune::PruneMethodName(o.method))));
  md.Set("slimlm.prune.pattern", MetaValue::String(target.PatternName()));
  md.Set("slimlm.prune.sparsity", MetaValue::F32(static_cast<float>(target.sparsity)));
  md.Set("slimlm.prune.source", MetaValue::String(args.in));
  md.Set("slimlm.prune.source_hash", MetaValue::String(fmt::format("{:016x}", source_hash)));
  md.Set("slimlm.prune.tool_version", MetaValue::String(fmt::format("slimlm {}", kSlimlmVersion)));
  if (o.method == prune::PruneMethod::kSparseGpt) {
    md.Set("slimlm.prune.sparsegpt_block", MetaValue::U32(static_cast<uint32_t>(args.block)));
    md.Set("slimlm.prune.sparsegpt_damp", MetaValue::F32(static_cast<float>(args.damp)));
  }
  if (!tokens.empty()) SetCalibrationKeys(&md, args, calib_hash, report->calib_tokens);
  SLIMLM_RETURN_IF_ERROR(WriteGguf(store, args.out));
  fmt::print("pruned {} -> {} by {} to {} in {:.1f} s: {} of {} block weights are zero ({:.2f}%)\n",
             args.in, args.out, prune::PruneMethodName(o.method), target.ToString(),
             timer.Seconds(), report->zeros, report->elements,
             100.0 * static_cast<double>(report->zeros) / static_cast<double>(report->elements));
  if (report->calib_tokens > 0) {
    fmt::print("calibration: {} tokens of {} per layer, in chunks of {}\n", report->calib_tokens,
               args.calib.text, args.calib.ctx);
  }
  fmt::print("pruned matrices stored as {}; file {}\n", DTypeName(final_type),
             FormatBytes(static_cast<double>(DiskBytes(args.out))));
  return Status::Ok();
}

Status PruneStructured(const PruneArgs& args, const WeightStore& store) {
  if (!args.method.empty() || !args.type.empty()) {
    return InvalidArgumentError(
        "--structured scores heads, channels and layers by their activations: --method and "
        "--type apply to --sparsity and --pattern");
  }
  prune::StructuredOptions o;
  SLIMLM_ASSIGN_OR_RETURN(o.target, prune::ParseStructured(args.structured));
  if (args.calib.text.empty()) {
    return InvalidArgumentError("--structured needs calibration text: --calib FILE");
  }
  o.calibration = Calibration(args);
  uint64_t calib_hash = 0;
  SLIMLM_ASSIGN_OR_RETURN(std::vector<int32_t> tokens,
                          CalibrationTokens(store, args.calib, &calib_hash));
  o.calib_tokens = tokens;
  const uint64_t source_hash = quant::ContentHash(store);
  Timer timer;
  prune::StructuredReport report;
  Result<WeightStore> out = [&] {
    std::optional<Progress> progress;
    return prune::PruneStructured(store, o, &report, [&](int64_t done, int64_t total) {
      if (!progress) progress.emplace("score", total, "passes");
      progress->Update(done);
    });
  }();
  if (!out.ok()) return out.status().WithContext(args.in);
  Metadata& md = out->metadata();
  md.Set("slimlm.prune.method", MetaValue::String("structured"));
  md.Set("slimlm.prune.structured", MetaValue::String(o.target.ToString()));
  std::string removed;
  for (int64_t l : report.removed_layers)
    removed += (removed.empty() ? "" : ",") + std::to_string(l);
  if (!removed.empty()) md.Set("slimlm.prune.removed_layers", MetaValue::String(removed));
  md.Set("slimlm.prune.source", MetaValue::String(args.in));
  md.Set("slimlm.prune.source_hash", MetaValue::String(fmt::format("{:016x}", source_hash)));
  md.Set("slimlm.prune.tool_version", MetaValue::String(fmt::format("slimlm {}", kSlimlmVersion)));
  SetCalibrationKeys(&md, args, calib_hash, report.calib_tokens);
  SLIMLM_RETURN_IF_ERROR(WriteGguf(*out, args.out));
  const ModelConfig& b = report.before;
  const ModelConfig& a = report.after;
  fmt::print("pruned {} -> {} ({}) in {:.1f} s\n", args.in, args.out, o.target.ToString(),
             timer.Seconds());
  fmt::print("layers {} -> {}{}, heads {} -> {} (kv {} -> {}), ffn {} -> {}\n", b.n_layers,
             a.n_layers, removed.empty() ? "" : fmt::format(" (removed {})", removed), b.n_heads,
             a.n_heads, b.n_kv_heads, a.n_kv_heads, b.ffn_dim, a.ffn_dim);
  fmt::print("file {} -> {}, calibration {} tokens of {}\n",
             FormatBytes(static_cast<double>(DiskBytes(args.in))),
             FormatBytes(static_cast<double>(DiskBytes(args.out))), report.calib_tokens,
             args.calib.text);
  return Status::Ok();
}

Status Prune(PruneArgs args) {
  const int targets = !std::isnan(args.sparsity) + !args.pattern.empty() + !args.structured.empty();
  if (targets != 1) {
    return InvalidArgumentError(
        "give one target: --sparsity R (unstructured), --pattern N:M or --structured "
        "heads=R,ffn=R,layers=N");
  }
  std::error_code ec;
  if (std::filesystem::equivalent(args.in, args.out, ec)) {
    return InvalidArgumentError("the output {} is the input: write to another file", args.out);
  }
  SLIMLM_RETURN_IF_ERROR(CheckWritable(args.out));
  LoadOptions load;
  load.tokenizer_path = args.tokenizer;
  load.require_tokenizer = !args.calib.text.empty();
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, LoadModel(args.in, load));
  if (!args.structured.empty()) return PruneStructured(args, store);
  prune::SparsityTarget target;
  if (!args.pattern.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(target, prune::ParsePattern(args.pattern));
  } else {
    SLIMLM_ASSIGN_OR_RETURN(target, prune::UnstructuredTarget(args.sparsity));
  }
  if (args.method.empty()) args.method = "wanda";
  return PruneSparse(args, std::move(store), target);
}

}  // namespace

CommandSpec PruneCommand() {
  return {
      "prune",
      "Prune a model: unstructured or N:M sparsity (magnitude, Wanda, SparseGPT), or whole "
      "heads, FFN channels and layers (--structured) for a smaller dense model",
      [](CLI::App* app) {
        auto args = std::make_shared<PruneArgs>();
        app->add_option("in", args->in, "Input: GGUF file, HF folder or llama2.c .bin")->required();
        app->add_option("out", args->out, "Output GGUF file")->required();
        app->add_option("--method", args->method,
                        "magnitude (|w|), wanda (|w| times its input's norm, per output row) or "
                        "sparsegpt (second-order, with weight correction) [default: wanda]");
        app->add_option("--sparsity", args->sparsity,
                        "Fraction of each block matrix's weights to remove, in (0, 1)");
        app->add_option("--pattern", args->pattern,
                        "N:M: keep N of every M consecutive weights of a row (2:4, 4:8)");
        app->add_option("--structured", args->structured,
                        "Remove whole parts: heads=R,ffn=R (fractions per layer), layers=N");
        app->add_option("--type", args->type,
                        "Type of the pruned matrices: f32, f16, bf16, or f16_nm (compact 50% N:M: "
                        "values plus a mask, slimlm only) [default: the input's]");
        AddCalibrationOptions(app, &args->calib,
                              "Calibration text (wanda, sparsegpt, --structured)");
        app->add_option("--block", args->block, "SparseGPT's column block")
            ->check(CLI::Range(int64_t{1}, int64_t{1} << 16))
            ->capture_default_str();
        app->add_option("--damp", args->damp,
                        "SparseGPT's damping, a fraction of the mean Gram diagonal")
            ->check(CLI::Range(0.0, 1.0))
            ->capture_default_str();
        AddThreadsOption(app, &args->threads);
        AddTokenizerOption(app, &args->tokenizer);
        return [args] { return Prune(*args); };
      }};
}

}  // namespace slimlm::tools
