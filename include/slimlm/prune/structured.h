// Structured pruning: whole attention heads, FFN channels and layers leave the model, which
// becomes a genuinely smaller dense model (fewer bytes to read per token, so faster decoding)
// that every loader reads, since its config says the new sizes.
//
// Scores come from one calibration pass over the dense model:
//   FFN channel j of a layer:  E[h_j^2] * ||W_down[:, j]||^2, the expected squared contribution
//                              of the channel to the layer's output (h: the SwiGLU activation);
//   attention head:            the same sum over its dimensions of the attention output's input;
//   layer:                     the rise in loss on the calibration text when that layer alone is
//                              skipped (a layer whose removal costs least goes first).
// Every layer keeps the same number of heads and channels (uniform width, as Minitron prunes),
// so the result has one shape per layer and keeps kernel-friendly sizes. Heads are removed in a
// way that keeps grouped-query attention consistent: a layer keeps kv' of its key/value groups
// and g' query heads in each, with kv' * g' as close as possible to the requested count (whole
// groups first, which also shrinks the KV cache).
#ifndef SLIMLM_PRUNE_STRUCTURED_H_
#define SLIMLM_PRUNE_STRUCTURED_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/model/config.h"
#include "slimlm/quant/activation_stats.h"

namespace slimlm::prune {

struct StructuredTarget {
  double heads = 0.0;  // Fraction of each layer's attention heads to remove, in [0, 1).
  double ffn = 0.0;    // Fraction of each layer's FFN channels to remove, in [0, 1).
  int64_t layers = 0;  // Whole layers to remove.

  // "heads=0.25,ffn=0.25,layers=1" (the parts that are set).
  std::string ToString() const;
};

// Parses "heads=R,ffn=R,layers=N" (any subset, any order). Errors name the bad part.
Result<StructuredTarget> ParseStructured(std::string_view text);

struct StructuredOptions {
  StructuredTarget target;
  std::span<const int32_t> calib_tokens;  // Tokenized calibration text.
  quant::CalibrationOptions calibration;
  int64_t layer_score_chunks = 8;  // Chunks of calibration text each layer's loss is scored on.
  int64_t ffn_multiple = 32;       // The kept FFN width is a multiple of this (block sizes).
};

struct StructuredReport {
  ModelConfig before;
  ModelConfig after;
  std::vector<int64_t> removed_layers;  // Indices in the input model, ascending.
  std::vector<double> layer_loss_rise;  // Per input layer, nats per token (empty: not scored).
  int64_t calib_tokens = 0;
};

// Builds the smaller model from `store` (a Llama-family model whose block matrices are f32, f16
// or bf16). Tensors that keep their shape are borrowed from `store`, which must outlive the
// result. Errors: ratios that would remove every head or channel or every layer, quantized
// block matrices, calibration text shorter than the chunks asked for.
Result<WeightStore> PruneStructured(const WeightStore& store, const StructuredOptions& options,
                                    StructuredReport* report,
                                    FunctionRef<void(int64_t, int64_t)> progress);

}  // namespace slimlm::prune

#endif  // SLIMLM_PRUNE_STRUCTURED_H_
