// GCC 12 reports libstdc++'s own std::regex internals (a std::function inside _StateT) as
// maybe used uninitialized once inlined; a known false positive, not this file's code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "slimlm/quant/quantize.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include <fmt/core.h>

#include "slimlm/core/hash.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/core/timer.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::quant {
namespace {

bool Writable(DType type) {
  return type == DType::kF32 || type == DType::kF16 || type == DType::kBF16 ||
         type == DType::kQ8_0 || type == DType::kQ4_0 || type == DType::kQ4_K ||
         type == DType::kQ6_K;
}

bool IsKQuant(DType type) { return type == DType::kQ4_K || type == DType::kQ6_K; }

// Where a matrix's rows are not whole blocks of its type: the type of about the same size with
// smaller blocks (q4_k -> q4_0, q6_k -> q8_0), else f16.
DType FallbackType(DType type, int64_t cols) {
  const DType smaller = type == DType::kQ4_K   ? DType::kQ4_0
                        : type == DType::kQ6_K ? DType::kQ8_0
                                               : DType::kF16;
  return IsRowLengthValid(smaller, cols) ? smaller : DType::kF16;
}

// Layer index of a "blk.N." tensor name; -1 for others.
int LayerOf(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  const size_t dot = name.find('.', 4);
  if (dot == std::string::npos) return -1;
  try {
    return std::stoi(name.substr(4, dot - 4));
  } catch (const std::exception&) {
    return -1;
  }
}

int LayerCount(const WeightStore& store) {
  int n = 0;
  for (const StoredTensor& t : store.tensors()) n = std::max(n, LayerOf(t.name) + 1);
  return n;
}

// The q4_k mix (llama.cpp's Q4_K_M idea): the value and down projections, whose errors reach
// the residual stream unattenuated, get 6 bits in the first and last eighth of the layers, where
// quantization hurts most, and in every third layer between.
bool WantsMoreBits(const std::string& name, int n_layers) {
  const bool v_or_down =
      name.find(".attn_v.") != std::string::npos || name.find(".ffn_down.") != std::string::npos;
  const int layer = LayerOf(name);
  if (!v_or_down || layer < 0 || n_layers <= 0) return false;
  const int eighth = n_layers / 8;
  return layer < eighth || layer >= n_layers - eighth || (layer - eighth) % 3 == 2;
}

double BitsPerWeight(DType type) {
  const DTypeTraits& t = Traits(type);
  return 8.0 * t.block_bytes / t.block_size;
}

// llama.cpp's general.file_type (enum llama_ftype) for the target.
uint32_t FileType(DType type) {
  switch (type) {
    case DType::kF32:
      return 0;
    case DType::kF16:
      return 1;
    case DType::kQ4_0:
      return 2;
    case DType::kQ8_0:
      return 7;
    case DType::kQ4_K:
      return 15;  // Q4_K_M: the mix of PlanQuantization.
    case DType::kQ6_K:
      return 18;
    case DType::kBF16:
      return 32;
    default:
      return 0;
  }
}

// The matrix that produces the logits: output.weight, or the token embedding tied to it.
std::string LogitsMatrix(const WeightStore& store) {
  return store.Find("output.weight") != nullptr ? "output.weight" : "token_embd.weight";
}

}  // namespace

Result<TensorTypeRule> ParseTensorTypeRule(const std::string& text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return InvalidArgumentError("--keep-tensor '{}' is not REGEX=TYPE", text);
  }
  TensorTypeRule rule;
  rule.pattern = text.substr(0, eq);
  const std::string type_name = text.substr(eq + 1);
  std::optional<DType> type = ParseDType(type_name);
  if (!type || !Writable(*type)) {
    return InvalidArgumentError(
        "--keep-tensor '{}': type '{}' is not one of f32, f16, bf16, "
        "q8_0, q4_0, q4_k, q6_k",
        text, type_name);
  }
  rule.type = *type;
  try {
    rule.regex = std::regex(rule.pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return InvalidArgumentError("--keep-tensor '{}': bad regular expression: {}", text, e.what());
  }
  return rule;
}

Result<std::vector<TensorPlan>> PlanQuantization(const WeightStore& store,
                                                 const QuantizeOptions& options) {
  if (!Writable(options.type) || options.type == DType::kF32) {
    return InvalidArgumentError("--type {} is not one of f16, bf16, q8_0, q4_0, q4_k, q6_k",
                                DTypeName(options.type));
  }
  const std::string logits = LogitsMatrix(store);
  const int n_layers = LayerCount(store);
  std::vector<TensorPlan> plan;
  for (const StoredTensor& t : store.tensors()) {
    TensorPlan p{t.name, t.shape, t.dtype, t.dtype, "vector"};
    if (t.shape.rank() == 2) {
      const bool matrix_quantized = Traits(t.dtype).quantized;
      if (BitsPerWeight(t.dtype) < BitsPerWeight(options.type)) {
        return InvalidArgumentError(
            "tensor '{}' is already {} ({:.2f} bits per weight), below {} ({:.2f}): quantizing "
            "cannot bring the precision back",
            t.name, DTypeName(t.dtype), BitsPerWeight(t.dtype), DTypeName(options.type),
            BitsPerWeight(options.type));
      }
      if (matrix_quantized && !options.allow_requantize) {
        return InvalidArgumentError(
            "tensor '{}' is already {}: quantizing again adds a second rounding error; start "
            "from the f32/f16/bf16 model, or pass --allow-requantize",
            t.name, DTypeName(t.dtype));
      }
      p.to = options.type;
      p.why = "target";
      if (t.name == logits && BitsPerWeight(options.type) < BitsPerWeight(DType::kQ8_0)) {
        // The logits matrix at 8 bits, or at 6 in the k-quant mix.
        const bool six = options.type == DType::kQ4_K || options.type == DType::kQ6_K;
        p.to = six ? DType::kQ6_K : DType::kQ8_0;
        p.why = six ? "logits matrix at 6 bits" : "logits matrix at 8 bits";
      } else if (options.type == DType::kQ4_K && WantsMoreBits(t.name, n_layers)) {
        p.to = DType::kQ6_K;
        p.why = "v/down projection at 6 bits";
      }
      for (const TensorTypeRule& rule : options.rules) {
        if (std::regex_match(t.name, rule.regex)) {
          p.to = rule.type;
          p.why = "rule " + rule.pattern;
          break;
        }
      }
      if (!IsRowLengthValid(p.to, t.shape.Cols())) {
        p.why = fmt::format("rows of {} are not whole {} blocks", t.shape.Cols(), DTypeName(p.to));
        p.to = FallbackType(p.to, t.shape.Cols());
      }
    } else {
      // Vectors keep their type, and rules may name them too (e.g. to store norms in f16).
      for (const TensorTypeRule& rule : options.rules) {
        if (std::regex_match(t.name, rule.regex) && IsRowLengthValid(rule.type, t.shape.Cols())) {
          p.to = rule.type;
          p.why = "rule " + rule.pattern;
          break;
        }
      }
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

uint64_t ContentHash(const WeightStore& store) {
  uint64_t h = kHashSeed;
  auto mix_bytes = [&](const void* data, size_t n) { h = HashBytes(data, n, h); };
  for (const StoredTensor& t : store.tensors()) {
    mix_bytes(t.name.data(), t.name.size());
    const uint32_t type = static_cast<uint32_t>(t.dtype);
    mix_bytes(&type, sizeof(type));
    for (int i = 0; i < t.shape.rank(); ++i) {
      const int64_t d = t.shape[i];
      mix_bytes(&d, sizeof(d));
    }
    mix_bytes(t.data, t.nbytes);
  }
  return h;
}

Result<QuantizeSummary> QuantizeToGguf(const WeightStore& store, const std::string& out_path,
                                       const QuantizeOptions& options,
                                       const std::string& source_name,
                                       FunctionRef<void(int64_t, int64_t)> progress) {
  Timer timer;
  SLIMLM_ASSIGN_OR_RETURN(std::vector<TensorPlan> plan, PlanQuantization(store, options));
  QuantizeSummary summary;
  summary.source_hash = ContentHash(store);
  Metadata metadata = store.metadata();
  metadata.Set("general.file_type", MetaValue::U32(FileType(options.type)));
  metadata.Set("slimlm.quantize.type", MetaValue::String(std::string(DTypeName(options.type))));
  metadata.Set("slimlm.quantize.source", MetaValue::String(source_name));
  metadata.Set("slimlm.quantize.source_hash",
               MetaValue::String(fmt::format("{:016x}", summary.source_hash)));
  if (!options.tool_version.empty()) {
    metadata.Set("slimlm.quantize.tool_version", MetaValue::String(options.tool_version));
  }
  if (options.importance != nullptr) {
    const ImportanceStats& stats = *options.importance;
    metadata.Set("slimlm.quantize.importance_tokens",
                 MetaValue::U64(static_cast<uint64_t>(stats.tokens)));
    if (!stats.source.empty()) {
      metadata.Set("slimlm.quantize.calibration_source", MetaValue::String(stats.source));
      metadata.Set("slimlm.quantize.calibration_hash",
                   MetaValue::String(fmt::format("{:016x}", stats.source_hash)));
    }
  }
  std::vector<GgufTensorInfo> infos;
  for (const TensorPlan& p : plan) infos.push_back({p.name, p.to, p.shape});
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<GgufStreamWriter> writer,
                          GgufStreamWriter::Create(out_path, metadata, std::move(infos)));

  const int64_t total = static_cast<int64_t>(store.TotalTensorBytes());
  int64_t done = 0;
  progress(0, total);
  ThreadPool pool(options.n_threads > 0 ? options.n_threads : PhysicalCoreCount());
  std::vector<uint8_t> out;
  std::map<DType, TypeTotals> totals;
  double matrix_bits = 0, matrix_elements = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    const TensorPlan& p = plan[i];
    const StoredTensor& t = *store.Find(p.name);
    const uint64_t out_bytes = TensorBytes(p.to, p.shape);
    if (p.to == t.dtype) {
      SLIMLM_RETURN_IF_ERROR(writer->Append(t.data, t.nbytes));
    } else {
      out.resize(out_bytes);
      const int64_t rows = t.shape.Rows(), cols = t.shape.Cols();
      const size_t in_row = RowBytes(t.dtype, cols), out_row = RowBytes(p.to, cols);
      const std::vector<float>* importance =
          options.importance != nullptr &&
                  (p.to == DType::kQ4_0 || p.to == DType::kQ8_0 || IsKQuant(p.to))
              ? options.importance->Find(p.name)
              : nullptr;
      if (importance != nullptr && static_cast<int64_t>(importance->size()) != cols) {
        return InvalidArgumentError("the statistics of '{}' have {} channels, the tensor {}",
                                    p.name, importance->size(), cols);
      }
      if (importance != nullptr) ++summary.weighted_tensors;
      pool.ParallelFor(rows, [&](int64_t r0, int64_t r1, int) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
          RowToF32(t.dtype, t.data + static_cast<size_t>(r) * in_row, row.data(), cols);
          uint8_t* dst = out.data() + static_cast<size_t>(r) * out_row;
          if (importance != nullptr) {
            QuantizeRowWeighted(p.to, row.data(), importance->data(), dst, cols);
          } else {
            RowFromF32(p.to, row.data(), dst, cols);
          }
        }
      });
      SLIMLM_RETURN_IF_ERROR(writer->Append(out.data(), out_bytes));
    }
    TypeTotals& tt = totals[p.to];
    tt.type = p.to;
    tt.tensors += 1;
    tt.elements += p.shape.NumElements();
    tt.bytes += out_bytes;
    summary.bytes_in += t.nbytes;
    summary.bytes_out += out_bytes;
    if (p.shape.rank() == 2) {
      matrix_bits += 8.0 * static_cast<double>(out_bytes);
      matrix_elements += static_cast<double>(p.shape.NumElements());
    }
    done += static_cast<int64_t>(t.nbytes);
    progress(done, total);
  }
  SLIMLM_RETURN_IF_ERROR(writer->Finish());
  for (const auto& [type, tt] : totals) summary.by_type.push_back(tt);
  std::sort(summary.by_type.begin(), summary.by_type.end(),
            [](const TypeTotals& a, const TypeTotals& b) { return a.bytes > b.bytes; });
  summary.matrix_bits_per_weight = matrix_elements > 0 ? matrix_bits / matrix_elements : 0;
  summary.seconds = timer.Seconds();
  return summary;
}

}  // namespace slimlm::quant
