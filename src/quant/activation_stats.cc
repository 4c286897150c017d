#include "slimlm/quant/activation_stats.h"

#include <algorithm>

namespace slimlm::quant {

void ActivationStatistics::Watch(const Linear& linear, std::string name, bool gram) {
  const auto cols = static_cast<size_t>(linear.matrix.cols);
  Entry& e = entries_[&linear];
  e.name = std::move(name);
  e.x2.assign(cols, 0.0);
  e.gram.assign(gram ? cols * cols : 0, 0.0);
  e.tokens = 0;
}

const ActivationStatistics::Entry* ActivationStatistics::Find(const Linear& linear) const {
  auto it = entries_.find(&linear);
  return it == entries_.end() ? nullptr : &it->second;
}

void ActivationStatistics::Observe(const Linear& w, const float* x, int64_t n_tokens) {
  auto it = entries_.find(&w);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  const auto cols = static_cast<int64_t>(e.x2.size());
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = x + t * cols;
    for (int64_t c = 0; c < cols; ++c) e.x2[c] += static_cast<double>(row[c]) * row[c];
  }
  e.tokens += n_tokens;
  if (e.gram.empty()) return;
  // The upper triangle of this step's x^T x in floats (a step is at most a few hundred tokens),
  // row by row as axpy updates that vectorize, then added to the doubles and mirrored.
  scratch_.assign(static_cast<size_t>(cols * cols), 0.0f);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = x + t * cols;
    for (int64_t i = 0; i < cols; ++i) {
      const float xi = row[i];
      if (xi == 0.0f) continue;
      float* g = scratch_.data() + i * cols;
      for (int64_t j = i; j < cols; ++j) g[j] += xi * row[j];
    }
  }
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = i; j < cols; ++j) {
      const double v = scratch_[i * cols + j];
      e.gram[i * cols + j] += v;
      if (j != i) e.gram[j * cols + i] += v;
    }
  }
}

Result<int64_t> RunCalibration(const Model& model, std::span<const int32_t> tokens,
                               const CalibrationOptions& options, ActivationObserver* observer,
                               FunctionRef<void(int64_t, int64_t)> progress) {
  const int64_t n_ctx = options.n_ctx;
  if (n_ctx < 2) return InvalidArgumentError("calibration chunks need at least 2 tokens");
  const int64_t whole = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (whole < 1) {
    return InvalidArgumentError(
        "the calibration text has {} tokens, shorter than one context of {}", tokens.size(), n_ctx);
  }
  const int64_t chunks = options.max_chunks > 0 ? std::min(whole, options.max_chunks) : whole;
  ContextOptions o;
  o.n_ctx = n_ctx;
  o.n_threads = options.n_threads;
  o.observer = observer;
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::Create(model, o));
  progress(0, chunks);
  for (int64_t c = 0; c < chunks; ++c) {
    ctx->Reset();
    SLIMLM_RETURN_IF_ERROR(
        ctx->Eval(tokens.subspan(static_cast<size_t>(c * n_ctx), static_cast<size_t>(n_ctx))));
    progress(c + 1, chunks);
  }
  return chunks * n_ctx;
}

}  // namespace slimlm::quant
