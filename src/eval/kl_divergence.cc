#include "slimlm/eval/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "eval/chunks.h"

namespace slimlm::eval {
namespace {

// log softmax of logits into out, in double.
void LogSoftmax(std::span<const float> logits, std::vector<double>& out) {
  out.resize(logits.size());
  float max = logits[0];
  for (float l : logits) max = std::max(max, l);
  double sum = 0.0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  const double log_z = std::log(sum) + max;
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_z;
}

double Percentile(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(at);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - static_cast<double>(lo));
}

}  // namespace

Result<KlDivergenceResult> ComputeKlDivergence(const Model& model, const Model& reference,
                                               std::span<const int32_t> tokens,
                                               const PerplexityOptions& options,
                                               FunctionRef<void(int64_t, int64_t)> progress) {
  const int64_t n_vocab = model.config().n_vocab;
  if (reference.config().n_vocab != n_vocab) {
    return InvalidArgumentError("the reference has {} tokens in its vocabulary, the model {}",
                                reference.config().n_vocab, n_vocab);
  }
  KlDivergenceResult r;
  SLIMLM_ASSIGN_OR_RETURN(r.chunks, CountChunks(static_cast<int64_t>(tokens.size()), options.n_ctx,
                                                options.max_chunks));
  const ChunkSetup setup{options.n_ctx, options.n_batch, options.n_threads, options.kv_type_k,
                         options.kv_type_v};
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<ChunkScorer> ref_scorer,
                          ChunkScorer::Create(reference, setup));
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<ChunkScorer> scorer, ChunkScorer::Create(model, setup));
  const int64_t per_chunk = scorer->scored_per_chunk();
  const int64_t first = options.n_ctx / 2;
  // The reference's log-probabilities of one chunk's scored positions (per_chunk x n_vocab).
  std::vector<double> ref_logp(static_cast<size_t>(per_chunk * n_vocab));
  std::vector<int32_t> ref_top(static_cast<size_t>(per_chunk));
  std::vector<double> ref_nll(static_cast<size_t>(per_chunk));
  std::vector<double> klds, logp;
  double nll_ref = 0, nll_model = 0, diff_sum = 0, diff2_sum = 0;
  int64_t same_top = 0;
  progress(0, r.chunks);
  for (int64_t c = 0; c < r.chunks; ++c) {
    SLIMLM_RETURN_IF_ERROR(
        ref_scorer->Score(tokens, c, [&](int64_t j, std::span<const float> logits, int32_t t) {
          const size_t i = static_cast<size_t>(j - first);
          LogSoftmax(logits, logp);
          std::copy(logp.begin(), logp.end(), ref_logp.begin() + i * n_vocab);
          ref_top[i] =
              static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
          ref_nll[i] = -logp[static_cast<size_t>(t)];
        }));
    SLIMLM_RETURN_IF_ERROR(
        scorer->Score(tokens, c, [&](int64_t j, std::span<const float> logits, int32_t t) {
          const size_t i = static_cast<size_t>(j - first);
          LogSoftmax(logits, logp);
          const double* p = &ref_logp[i * n_vocab];
          double kld = 0;
          for (int64_t v = 0; v < n_vocab; ++v) kld += std::exp(p[v]) * (p[v] - logp[v]);
          klds.push_back(std::max(kld, 0.0));  // Rounding can leave -1e-17 for equal models.
          const int32_t top =
              static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
          same_top += top == ref_top[i] ? 1 : 0;
          const double nll = -logp[static_cast<size_t>(t)];
          nll_model += nll;
          nll_ref += ref_nll[i];
          diff_sum += nll - ref_nll[i];
          diff2_sum += (nll - ref_nll[i]) * (nll - ref_nll[i]);
        }));
    progress(c + 1, r.chunks);
  }
  const double n = static_cast<double>(klds.size());
  r.positions = static_cast<int64_t>(klds.size());
  double sum = 0, sum2 = 0;
  for (double k : klds) {
    sum += k;
    sum2 += k * k;
  }
  r.kld_mean = sum / n;
  r.kld_stderr = n > 1 ? std::sqrt(std::max(0.0, sum2 / n - r.kld_mean * r.kld_mean) / (n - 1)) : 0;
  std::sort(klds.begin(), klds.end());
  r.kld_median = Percentile(klds, 0.5);
  r.kld_p90 = Percentile(klds, 0.9);
  r.kld_p99 = Percentile(klds, 0.99);
  r.kld_p999 = Percentile(klds, 0.999);
  r.kld_max = klds.back();
  r.top1_agreement = static_cast<double>(same_top) / n;
  r.ppl_reference = std::exp(nll_ref / n);
  r.ppl_model = std::exp(nll_model / n);
  r.delta_ppl = r.ppl_model - r.ppl_reference;
  // The difference of the mean nlls has the paired differences' standard error; carried to the
  // ppl difference by the derivative of exp at the model's mean nll.
  const double mean_diff = diff_sum / n;
  const double diff_var = std::max(0.0, diff2_sum / n - mean_diff * mean_diff);
  r.delta_ppl_stderr = n > 1 ? std::sqrt(diff_var / (n - 1)) * r.ppl_model : 0;
  return r;
}

}  // namespace slimlm::eval
