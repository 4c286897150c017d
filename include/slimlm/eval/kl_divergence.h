// How far a model's next-token distributions are from a reference model's (its unquantized
// original, say), position by position, over the chunks llama-perplexity scores; the figures of
// `llama-perplexity --kl-divergence`: mean KL divergence with its standard error and
// percentiles, how often both put the same token first, and both perplexities.
#ifndef SLIMLM_EVAL_KL_DIVERGENCE_H_
#define SLIMLM_EVAL_KL_DIVERGENCE_H_

#include <cstdint>
#include <span>
#include <string>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/eval/perplexity.h"
#include "slimlm/model/model.h"

namespace slimlm::eval {

struct KlDivergenceResult {
  int64_t chunks = 0;
  int64_t positions = 0;  // Scored positions.
  double kld_mean = 0;    // Mean KL(reference || model), nats.
  double kld_stderr = 0;  // Standard error of the mean.
  double kld_median = 0, kld_p90 = 0, kld_p99 = 0, kld_p999 = 0, kld_max = 0;
  double top1_agreement = 0;  // Fraction of positions where both rank the same token first.
  double ppl_reference = 0, ppl_model = 0;
  double delta_ppl = 0;         // ppl_model - ppl_reference
  double delta_ppl_stderr = 0;  // Of the difference, from the paired per-token nll differences.
};

// Both models must share the vocabulary (same size); `tokens` come from TokenizeText of either.
// options.kv types apply to both. progress(chunks done, chunks). When save_logits is not empty,
// the reference's log-probabilities are also saved there for later runs.
Result<KlDivergenceResult> ComputeKlDivergence(const Model& model, const Model& reference,
                                               std::span<const int32_t> tokens,
                                               const PerplexityOptions& options,
                                               FunctionRef<void(int64_t, int64_t)> progress,
                                               const std::string& save_logits = "");

// The same against log-probabilities saved by an earlier run (SaveReferenceLogits or
// save_logits above) on the same tokens with the same n_ctx; the reference is not loaded. Its
// log-probabilities are stored to within 3e-4 nats (eval/reference_logits.h).
Result<KlDivergenceResult> ComputeKlDivergence(const Model& model, const std::string& ref_logits,
                                               std::span<const int32_t> tokens,
                                               const PerplexityOptions& options,
                                               FunctionRef<void(int64_t, int64_t)> progress);

// Saves the reference's log-probabilities over the chunks to `path` (atomically); returns the
// number of chunks saved.
Result<int64_t> SaveReferenceLogits(const Model& reference, std::span<const int32_t> tokens,
                                    const PerplexityOptions& options, const std::string& path,
                                    FunctionRef<void(int64_t, int64_t)> progress);

}  // namespace slimlm::eval

#endif  // SLIMLM_EVAL_KL_DIVERGENCE_H_
