// Quantization of a whole model into a GGUF file, tensor by tensor.
//
// Which type each tensor gets (the plan): vectors (norms, biases) stay as they are; weight
// matrices take the target type, except that the matrix producing the logits (output.weight, or
// the token embedding when the output is tied to it) stays at 8 bits when the target has fewer,
// as llama.cpp's default mixes keep it at higher precision; `--keep-tensor REGEX=TYPE` rules,
// tried in order, override both. A matrix whose rows are not whole blocks of its type falls back
// to f16.
//
// The output is streamed: one tensor is converted at a time (its rows split across threads)
// and appended to the file, so peak memory is about the largest converted tensor, not the model.
#ifndef SLIMLM_QUANT_QUANTIZE_H_
#define SLIMLM_QUANT_QUANTIZE_H_

#include <cstdint>
#include <regex>
#include <string>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/quant/importance.h"
#include "slimlm/tensor/dtype.h"

namespace slimlm::quant {

// One --keep-tensor rule: tensors whose whole name matches `pattern` get `type`.
struct TensorTypeRule {
  std::string pattern;
  std::regex regex;
  DType type = DType::kF32;
};

// Parses "REGEX=TYPE" (the last '=' splits; TYPE one of f32, f16, bf16, q8_0, q4_0).
Result<TensorTypeRule> ParseTensorTypeRule(const std::string& text);

struct QuantizeOptions {
  DType type = DType::kQ8_0;  // Target: f16, bf16, q8_0 or q4_0.
  std::vector<TensorTypeRule> rules;
  // Quantized input matrices are refused unless this is set: quantizing twice adds the errors.
  bool allow_requantize = false;
  int n_threads = 0;  // 0: the physical cores.
  // When set, q4_0 and q8_0 matrices with statistics choose each block's scale to minimize the
  // importance-weighted error (see importance.h) instead of GGML's plain rounding.
  const ImportanceStats* importance = nullptr;
  std::string tool_version;  // Recorded as slimlm.quantize.tool_version.
};

struct TensorPlan {
  std::string name;
  Shape shape;
  DType from = DType::kF32;
  DType to = DType::kF32;
  std::string why;  // "target", "output at 8 bits", "rule <pattern>", "vector", "rows ..."
};

// The type of every tensor, in the store's order; errors for a target or rule type that cannot
// be written, or input already quantized (see allow_requantize) or below the target's precision.
Result<std::vector<TensorPlan>> PlanQuantization(const WeightStore& store,
                                                 const QuantizeOptions& options);

struct TypeTotals {
  DType type = DType::kF32;
  int64_t tensors = 0;
  int64_t elements = 0;
  uint64_t bytes = 0;
};

struct QuantizeSummary {
  std::vector<TypeTotals> by_type;    // Output types, largest byte count first.
  uint64_t bytes_in = 0;              // Tensor bytes of the input.
  uint64_t bytes_out = 0;             // Tensor bytes of the output.
  double matrix_bits_per_weight = 0;  // Over the rank-2 tensors of the output.
  uint64_t source_hash = 0;           // ContentHash of the input tensors.
  int64_t weighted_tensors = 0;       // Matrices quantized with importance statistics.
  double seconds = 0;
};

// A 64-bit hash (core/hash.h) of the tensors' names, types, shapes and bytes: it identifies the
// source of a quantized file in its metadata (slimlm.quantize.source_hash).
uint64_t ContentHash(const WeightStore& store);

// Plans, then writes `out_path` atomically (no file is left behind on failure). The output's
// metadata is the input's plus general.file_type and slimlm.quantize.* provenance keys: type,
// source, source_hash, tool_version and, with importance statistics, importance_tokens,
// calibration_source and calibration_hash.
// progress(bytes done, bytes total) over the input tensor bytes.
Result<QuantizeSummary> QuantizeToGguf(const WeightStore& store, const std::string& out_path,
                                       const QuantizeOptions& options,
                                       const std::string& source_name,
                                       FunctionRef<void(int64_t, int64_t)> progress);

}  // namespace slimlm::quant

#endif  // SLIMLM_QUANT_QUANTIZE_H_
