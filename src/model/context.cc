#include "slimlm/model/context.h"

#include <algorithm>

namespace slimlm {

Context::Context(const ContextOptions& options, int64_t n_ctx, std::unique_ptr<Engine> engine)
    : options_(options), n_ctx_(n_ctx), engine_(std::move(engine)) {}

Context::~Context() = default;

Result<std::unique_ptr<Context>> Context::Create(const Model& model,
                                                 const ContextOptions& options) {
  const ModelConfig& c = model.config();
  int64_t n_ctx = options.n_ctx > 0 ? options.n_ctx : c.context_length;
  if (options.n_batch <= 0) {
    return InvalidArgumentError("batch size {} must be positive", options.n_batch);
  }
  if (n_ctx > (int64_t{1} << 24)) {
    return InvalidArgumentError("context size {} is too large", n_ctx);
  }
  ContextOptions o = options;
  o.n_batch = std::min(options.n_batch, n_ctx);
  EngineOptions e;
  e.n_blocks = 1;
  e.block_size = n_ctx;
  e.max_step_tokens = o.n_batch;
  e.n_threads = options.n_threads;
  e.kv_type_k = options.kv_type_k;
  e.kv_type_v = options.kv_type_v;
  e.flash_attention = options.flash_attention;
  e.profile = options.profile;
  e.observer = options.observer;
  Result<std::unique_ptr<Engine>> engine = Engine::Create(model, e);
  if (!engine.ok()) {
    if (engine.status().code() == StatusCode::kResourceExhausted) {
      return ResourceExhaustedError("out of memory allocating a context of {} positions", n_ctx);
    }
    return engine.status();
  }
  std::unique_ptr<Context> ctx(new Context(o, n_ctx, std::move(*engine)));
  try {
    ctx->step_.reserve(static_cast<size_t>(o.n_batch));
    ctx->logits_.assign(static_cast<size_t>((o.all_logits ? o.n_batch : 1) * c.n_vocab), 0.0f);
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory allocating a context of {} positions", n_ctx);
  }
  return ctx;
}

void Context::Truncate(int64_t n) { n_past_ = std::clamp<int64_t>(n, 0, n_past_); }

size_t Context::KvCacheBytes() const { return engine_->KvCacheBytes(); }

std::span<const float> Context::logits() const {
  const int64_t n_vocab = engine_->model().config().n_vocab;
  int64_t row = options_.all_logits ? std::max<int64_t>(0, last_eval_tokens_ - 1) : 0;
  return {logits_.data() + row * n_vocab, static_cast<size_t>(n_vocab)};
}

std::span<const float> Context::logits_at(int64_t i) const {
  SLIMLM_CHECK(options_.all_logits) << "logits_at needs ContextOptions::all_logits";
  SLIMLM_CHECK(i >= 0 && i < last_eval_tokens_) << "token " << i << " of " << last_eval_tokens_;
  const int64_t n_vocab = engine_->model().config().n_vocab;
  return {logits_.data() + i * n_vocab, static_cast<size_t>(n_vocab)};
}

Status Context::Eval(std::span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_vocab = engine_->model().config().n_vocab;
  if (n == 0) return InvalidArgumentError("nothing to evaluate: the token list is empty");
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) {
      return InvalidArgumentError("token id {} is outside the vocabulary [0, {})", t, n_vocab);
    }
  }
  if (n_past_ + n > n_ctx_) {
    return OutOfRangeError("{} tokens do not fit the context: {} of {} positions are used", n,
                           n_past_, n_ctx_);
  }
  if (options_.all_logits && n > options_.n_batch) {
    return InvalidArgumentError("at most {} tokens per call when keeping all logits, got {}",
                                options_.n_batch, n);
  }
  const std::span<const int32_t> table(&block_, 1);
  for (int64_t start = 0; start < n; start += options_.n_batch) {
    const int64_t chunk = std::min(options_.n_batch, n - start);
    step_.clear();
    for (int64_t t = 0; t < chunk; ++t) {
      // Logits of every token with all_logits, else of each step's last token (the last
      // step's are the ones kept).
      const bool logits = options_.all_logits || t == chunk - 1;
      step_.push_back({tokens[static_cast<size_t>(start + t)], n_past_ + t, 0, logits});
    }
    SLIMLM_RETURN_IF_ERROR(engine_->Step(step_, std::span(&table, 1), logits_.data()));
    n_past_ += chunk;
  }
  last_eval_tokens_ = n;
  return Status::Ok();
}

}  // namespace slimlm
