#include "slimlm/eval/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "eval/chunks.h"
#include "eval/reference_logits.h"

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

ChunkSetup SetupOf(const PerplexityOptions& options) {
  return {options.n_ctx,     options.n_batch,   options.n_threads,
          options.kv_type_k, options.kv_type_v, options.profile};
}

// The comparison, with the reference's figures for chunk c from `reference_chunk`.
Result<KlDivergenceResult> Compare(
    const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& options,
    int64_t chunks, FunctionRef<Status(int64_t c, ReferenceChunk* out)> reference_chunk,
    FunctionRef<void(int64_t, int64_t)> progress) {
  const int64_t n_vocab = model.config().n_vocab;
  KlDivergenceResult r;
  r.chunks = chunks;
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<ChunkScorer> scorer,
                          ChunkScorer::Create(model, SetupOf(options)));
  const int64_t first = options.n_ctx / 2;
  ReferenceChunk ref;
  std::vector<double> klds, logp;
  double nll_ref = 0, nll_model = 0, diff_sum = 0, diff2_sum = 0;
  int64_t same_top = 0;
  progress(0, r.chunks);
  for (int64_t c = 0; c < r.chunks; ++c) {
    SLIMLM_RETURN_IF_ERROR(reference_chunk(c, &ref));
    SLIMLM_RETURN_IF_ERROR(
        scorer->Score(tokens, c, [&](int64_t j, std::span<const float> logits, int32_t t) {
          const size_t i = static_cast<size_t>(j - first);
          LogSoftmax(logits, logp);
          const double* p = &ref.logp[i * n_vocab];
          double kld = 0;
          for (int64_t v = 0; v < n_vocab; ++v) kld += std::exp(p[v]) * (p[v] - logp[v]);
          klds.push_back(std::max(kld, 0.0));  // Rounding can leave -1e-17 for equal models.
          const int32_t top =
              static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
          same_top += top == ref.top[i] ? 1 : 0;
          const double nll = -logp[static_cast<size_t>(t)];
          nll_model += nll;
          nll_ref += ref.nll[i];
          diff_sum += nll - ref.nll[i];
          diff2_sum += (nll - ref.nll[i]) * (nll - ref.nll[i]);
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

// Scores the reference model's chunks into ReferenceChunk form.
class ReferenceScorer {
 public:
  static Result<ReferenceScorer> Create(const Model& reference, const PerplexityOptions& options) {
    SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<ChunkScorer> scorer,
                            ChunkScorer::Create(reference, SetupOf(options)));
    return ReferenceScorer(std::move(scorer), reference.config().n_vocab, options.n_ctx / 2);
  }
  Status Score(std::span<const int32_t> tokens, int64_t c, ReferenceChunk* out) {
    const int64_t per_chunk = scorer_->scored_per_chunk();
    out->logp.resize(static_cast<size_t>(per_chunk * n_vocab_));
    out->top.resize(static_cast<size_t>(per_chunk));
    out->nll.resize(static_cast<size_t>(per_chunk));
    return scorer_->Score(tokens, c, [&](int64_t j, std::span<const float> logits, int32_t t) {
      const size_t i = static_cast<size_t>(j - first_);
      LogSoftmax(logits, logp_);
      std::copy(logp_.begin(), logp_.end(), out->logp.begin() + i * n_vocab_);
      out->top[i] =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      out->nll[i] = -logp_[static_cast<size_t>(t)];
    });
  }

 private:
  ReferenceScorer(std::unique_ptr<ChunkScorer> scorer, int64_t n_vocab, int64_t first)
      : scorer_(std::move(scorer)), n_vocab_(n_vocab), first_(first) {}
  std::unique_ptr<ChunkScorer> scorer_;
  int64_t n_vocab_, first_;
  std::vector<double> logp_;
};

}  // namespace

Result<KlDivergenceResult> ComputeKlDivergence(const Model& model, const Model& reference,
                                               std::span<const int32_t> tokens,
                                               const PerplexityOptions& options,
                                               FunctionRef<void(int64_t, int64_t)> progress,
                                               const std::string& save_logits) {
  const int64_t n_vocab = model.config().n_vocab;
  if (reference.config().n_vocab != n_vocab) {
    return InvalidArgumentError("the reference has {} tokens in its vocabulary, the model {}",
                                reference.config().n_vocab, n_vocab);
  }
  SLIMLM_ASSIGN_OR_RETURN(int64_t chunks, CountChunks(static_cast<int64_t>(tokens.size()),
                                                      options.n_ctx, options.max_chunks));
  SLIMLM_ASSIGN_OR_RETURN(ReferenceScorer ref_scorer, ReferenceScorer::Create(reference, options));
  std::unique_ptr<ReferenceLogitsWriter> writer;
  if (!save_logits.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(
        writer, ReferenceLogitsWriter::Create(save_logits, n_vocab, options.n_ctx, tokens, chunks));
  }
  SLIMLM_ASSIGN_OR_RETURN(KlDivergenceResult r,
                          Compare(
                              model, tokens, options, chunks,
                              [&](int64_t c, ReferenceChunk* out) -> Status {
                                SLIMLM_RETURN_IF_ERROR(ref_scorer.Score(tokens, c, out));
                                return writer ? writer->Append(*out) : Status::Ok();
                              },
                              progress));
  if (writer) SLIMLM_RETURN_IF_ERROR(writer->Commit());
  return r;
}

Result<KlDivergenceResult> ComputeKlDivergence(const Model& model, const std::string& ref_logits,
                                               std::span<const int32_t> tokens,
                                               const PerplexityOptions& options,
                                               FunctionRef<void(int64_t, int64_t)> progress) {
  SLIMLM_ASSIGN_OR_RETURN(int64_t chunks, CountChunks(static_cast<int64_t>(tokens.size()),
                                                      options.n_ctx, options.max_chunks));
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<ReferenceLogitsReader> reader,
                          ReferenceLogitsReader::Open(ref_logits, model.config().n_vocab,
                                                      options.n_ctx, tokens, chunks));
  return Compare(
      model, tokens, options, chunks,
      [&](int64_t c, ReferenceChunk* out) { return reader->Read(c, tokens, out); }, progress);
}

Result<int64_t> SaveReferenceLogits(const Model& reference, std::span<const int32_t> tokens,
                                    const PerplexityOptions& options, const std::string& path,
                                    FunctionRef<void(int64_t, int64_t)> progress) {
  SLIMLM_ASSIGN_OR_RETURN(int64_t chunks, CountChunks(static_cast<int64_t>(tokens.size()),
                                                      options.n_ctx, options.max_chunks));
  SLIMLM_ASSIGN_OR_RETURN(ReferenceScorer ref_scorer, ReferenceScorer::Create(reference, options));
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<ReferenceLogitsWriter> writer,
                          ReferenceLogitsWriter::Create(path, reference.config().n_vocab,
                                                        options.n_ctx, tokens, chunks));
  ReferenceChunk chunk;
  progress(0, chunks);
  for (int64_t c = 0; c < chunks; ++c) {
    SLIMLM_RETURN_IF_ERROR(ref_scorer.Score(tokens, c, &chunk));
    SLIMLM_RETURN_IF_ERROR(writer->Append(chunk));
    progress(c + 1, chunks);
  }
  SLIMLM_RETURN_IF_ERROR(writer->Commit());
  return chunks;
}

}  // namespace slimlm::eval
