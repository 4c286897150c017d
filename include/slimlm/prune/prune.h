// Unstructured and N:M pruning of a whole model: every weight matrix of the transformer blocks
// (attention q, k, v, output; FFN gate, up, down) loses the target share of its weights. The
// embedding and the output head stay dense, as in the published methods.
//
// Methods, by the score that decides which weights go:
//   magnitude  |w|, compared across the whole matrix;
//   wanda      |w| * ||x||, x the weight's input channel over the calibration text, compared
//              within each output row (Sun et al., 2023);
//   sparsegpt  the Optimal Brain Surgeon cost, with the remaining weights of each row corrected
//              to reconstruct its outputs on the calibration inputs (see sparsegpt.h).
// The calibrated methods go layer by layer: layer l's inputs are measured on the model whose
// layers before l are already pruned, so each layer corrects for the errors of those before it.
#ifndef SLIMLM_PRUNE_PRUNE_H_
#define SLIMLM_PRUNE_PRUNE_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/prune/sparsegpt.h"
#include "slimlm/prune/sparsity.h"
#include "slimlm/quant/activation_stats.h"

namespace slimlm::prune {

enum class PruneMethod { kMagnitude, kWanda, kSparseGpt };

// "magnitude", "wanda", "sparsegpt".
std::string_view PruneMethodName(PruneMethod method);
std::optional<PruneMethod> ParsePruneMethod(std::string_view name);
inline bool NeedsCalibration(PruneMethod method) { return method != PruneMethod::kMagnitude; }

struct PruneOptions {
  PruneMethod method = PruneMethod::kWanda;
  SparsityTarget target;
  // Type the pruned matrices are written in: f32, f16 or bf16 (the caller converts to a compact
  // sparse type afterwards if it wants one).
  DType output_type = DType::kF16;
  // Calibration text for wanda and sparsegpt, tokenized, and how to run it.
  std::span<const int32_t> calib_tokens;
  quant::CalibrationOptions calibration;
  int64_t block_size = 128;  // SparseGPT's column block.
  double damp = 0.01;        // SparseGPT's damping, as a fraction of the Gram diagonal's mean.
  int n_threads = 1;
};

struct PrunedTensor {
  std::string name;
  int64_t elements = 0;
  int64_t zeros = 0;
};

struct PruneReport {
  std::vector<PrunedTensor> tensors;  // In the order they were pruned.
  int64_t calib_tokens = 0;           // Tokens of calibration text per layer (0: none).
  int64_t elements = 0;               // Over the pruned matrices.
  int64_t zeros = 0;
};

// A tensor's values as f32, row after row (expanded or dequantized as its type requires).
std::vector<float> TensorF32(const StoredTensor& t);

// The names of the matrices of layer `layer` that pruning touches.
std::vector<std::string> PrunableMatrices(int64_t layer);
// True for the name of a matrix pruning touches ("blk.N.attn_q.weight", ...).
bool IsPrunableMatrix(std::string_view name);
// The layer of a "blk.N.*" tensor name; -1 for other names (and for malformed ones).
int64_t LayerOf(std::string_view name);

// Prunes the store's block matrices in place (each replaced by an owned tensor of
// options.output_type). The store must hold a Llama-family model whose matrices are float or
// quantized (quantized ones are expanded first). `progress(done, total)` counts layers.
// Errors: a pattern that does not divide a matrix's rows, calibration text shorter than one
// chunk, or no calibration text for a method that needs it. On error the store may be partly
// pruned; callers write nothing then.
Result<PruneReport> PruneModel(WeightStore* store, const PruneOptions& options,
                               FunctionRef<void(int64_t, int64_t)> progress);

// A store whose tensors are the given store's (borrowed, not copied) with only layers
// [0, n_layers) and block_count set to match: the model up to a layer, for measuring its
// inputs. The source must outlive the view.
WeightStore TruncatedView(const WeightStore& store, int64_t n_layers);

}  // namespace slimlm::prune

#endif  // SLIMLM_PRUNE_PRUNE_H_
