// Statistics of the inputs of weight products over calibration text, the measurements that
// importance-weighted quantization and pruning (Wanda, SparseGPT, structured scores) rest on.
#ifndef SLIMLM_QUANT_ACTIVATION_STATS_H_
#define SLIMLM_QUANT_ACTIVATION_STATS_H_

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/model/context.h"
#include "slimlm/model/model.h"

namespace slimlm::quant {

struct CalibrationOptions {
  int64_t n_ctx = 512;     // Tokens per chunk of calibration text.
  int64_t max_chunks = 0;  // 0: all whole chunks.
  int n_threads = 0;
};

// Sums, for each watched weight matrix, x^2 per input channel and optionally x x^T (the Gram
// matrix, cols x cols) over every token the forward pass multiplies it with. Observe runs on the
// thread of Eval; sums are doubles so that long texts lose nothing to rounding.
class ActivationStatistics : public ActivationObserver {
 public:
  struct Entry {
    std::string name;
    std::vector<double> x2;    // (cols): sum over tokens of x[c]^2.
    std::vector<double> gram;  // (cols, cols) row-major: sum of x x^T; empty unless asked for.
    int64_t tokens = 0;
  };

  // Watches the products with `linear`, reported under `name`; `gram` adds the Gram matrix.
  void Watch(const Linear& linear, std::string name, bool gram);
  // Null when `linear` is not watched.
  const Entry* Find(const Linear& linear) const;
  const std::map<const Linear*, Entry>& entries() const { return entries_; }

  void Observe(const Linear& w, const float* x, int64_t n_tokens) override;

 private:
  std::map<const Linear*, Entry> entries_;
  std::vector<float> scratch_;  // One call's Gram matrix in floats, added to the doubles.
};

// Runs the model over the tokens in whole chunks of n_ctx (at most max_chunks) with `observer`
// seeing every weight product; returns the tokens run. Errors: text shorter than one chunk.
Result<int64_t> RunCalibration(const Model& model, std::span<const int32_t> tokens,
                               const CalibrationOptions& options, ActivationObserver* observer,
                               FunctionRef<void(int64_t, int64_t)> progress);

}  // namespace slimlm::quant

#endif  // SLIMLM_QUANT_ACTIVATION_STATS_H_
