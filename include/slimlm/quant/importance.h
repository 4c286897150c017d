// Importance statistics for quantization (the idea behind llama.cpp's imatrix and AWQ): how
// strongly each input channel of each weight matrix is driven on calibration text. The error
// a rounded weight causes in a product is (w - w') x, so its expected square over the text is
// (w - w')^2 E[x^2]: rounding that minimizes the sum weighted by E[x^2] of each weight's input
// channel minimizes the output error, not the weight error.
#ifndef SLIMLM_QUANT_IMPORTANCE_H_
#define SLIMLM_QUANT_IMPORTANCE_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/model/model.h"
#include "slimlm/quant/activation_stats.h"

namespace slimlm::quant {

struct ImportanceStats {
  // Weight matrix name -> mean of x^2 per input channel (its columns) over the calibration tokens.
  std::map<std::string, std::vector<float>> mean_x2;
  int64_t tokens = 0;        // Calibration tokens the means are over.
  std::string source;        // The calibration text's file name,
  uint64_t source_hash = 0;  // and the hash of its bytes (core/hash.h).

  const std::vector<float>* Find(const std::string& name) const;
};

// Runs the model over the tokenized calibration text in chunks and collects the statistics.
// Memory: the model, one context, and one double per input channel of each matrix.
Result<ImportanceStats> CollectImportance(const Model& model, std::span<const int32_t> tokens,
                                          const CalibrationOptions& options,
                                          FunctionRef<void(int64_t, int64_t)> progress);

// Saved as a GGUF file: one f32 tensor "<matrix name>" of its columns' mean x^2, the token
// count in slimlm.importance.tokens and the text in slimlm.importance.{source,source_hash}.
Status SaveImportance(const ImportanceStats& stats, const std::string& path);
Result<ImportanceStats> LoadImportance(const std::string& path);

// Quantizes one row of n values (whole blocks) to q4_0 or q8_0 choosing each block's scale to
// minimize sum over the block of importance[i] (x[i] - dequantized[i])^2 (the block's f16 scale
// as stored); with all importances equal it still searches, so it is never worse than the plain
// rounding by that measure. q4_k and q6_k fit their sub-block scales (and mins) with the same
// weights, times each weight's magnitude (see QuantizeRowQ4_KRef).
void QuantizeRowWeighted(DType type, const float* x, const float* importance, void* out, int64_t n);

}  // namespace slimlm::quant

#endif  // SLIMLM_QUANT_IMPORTANCE_H_
