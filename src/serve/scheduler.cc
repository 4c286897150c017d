#include "slimlm/serve/scheduler.h"

#include <algorithm>

#include "slimlm/model/tokenizer.h"

namespace slimlm::serve {

using Clock = std::chrono::steady_clock;

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kTimeout:
      return "timeout";
  }
  return "";
}

struct Scheduler::Live {
  Live(int64_t request_id, Request r, int64_t n_vocab, const Tokenizer* tokenizer)
      : id(request_id), request(std::move(r)), sampler(request.sampling, n_vocab) {
    tokens = request.prompt;
    for (int32_t t : request.prompt) sampler.Accept(t);
    if (tokenizer != nullptr) {
      decoder.emplace(*tokenizer);
      // The completion continues the prompt: its first word keeps its leading space.
      for (int32_t t : request.prompt) decoder->Add(t);
    }
    for (const std::string& s : request.stop) hold_back = std::max(hold_back, s.size());
    if (request.timeout_seconds > 0) {
      deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(request.timeout_seconds));
    }
  }

  int64_t id;
  Request request;
  std::vector<int32_t> tokens;  // The prompt, then every generated token.
  int64_t computed = 0;         // Positions whose keys and values are in the cache.
  int64_t generated = 0;
  int64_t cached = 0;  // Prompt positions the prefix cache gave, at the last admission.
  bool in_pool = false;
  Sampler sampler;
  std::optional<StreamingDecoder> decoder;
  std::string text;      // The completion so far.
  size_t emitted = 0;    // Of `text`, bytes already returned in events.
  size_t hold_back = 0;  // Bytes kept back while a stop string could still be completing.
  std::optional<Clock::time_point> deadline;
  Clock::time_point submitted = Clock::now();
  std::optional<Clock::time_point> admitted;     // First admission.
  std::optional<Clock::time_point> first_token;  // First generated token.
  FinishReason finish = FinishReason::kNone;
};

Scheduler::Scheduler(const Model& model, const SchedulerOptions& options,
                     std::unique_ptr<Engine> engine, KvBlockPool pool)
    : model_(model), options_(options), engine_(std::move(engine)), pool_(std::move(pool)) {}

Scheduler::~Scheduler() = default;

Result<std::unique_ptr<Scheduler>> Scheduler::Create(const Model& model,
                                                     const SchedulerOptions& options) {
  SchedulerOptions o = options;
  if (o.max_step_tokens <= 0 || o.max_running <= 0 || o.max_waiting < 0 || o.block_size <= 0) {
    return InvalidArgumentError(
        "scheduler limits must be positive: step tokens {}, running {}, block size {}",
        o.max_step_tokens, o.max_running, o.block_size);
  }
  const int64_t model_ctx = model.config().context_length;
  if (o.max_context < 0) return InvalidArgumentError("context {} is negative", o.max_context);
  o.max_context = o.max_context > 0 ? std::min(o.max_context, model_ctx) : model_ctx;
  const int64_t ctx = o.max_context;
  if (o.n_blocks <= 0) o.n_blocks = o.max_running * ((ctx + o.block_size - 1) / o.block_size);
  SLIMLM_ASSIGN_OR_RETURN(KvBlockPool pool, KvBlockPool::Create(o.n_blocks, o.block_size));
  EngineOptions e;
  e.n_blocks = o.n_blocks;
  e.block_size = o.block_size;
  e.max_step_tokens = o.max_step_tokens;
  e.n_threads = o.n_threads;
  e.kv_type_k = e.kv_type_v = o.kv_type;
  e.max_positions = ctx;
  e.profile = o.profile;
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(model, e));
  std::unique_ptr<Scheduler> s(new Scheduler(model, o, std::move(engine), std::move(pool)));
  // A step has logits for at most one token of each running request (its last).
  s->logits_.assign(
      static_cast<size_t>(std::min(o.max_step_tokens, o.max_running) * model.config().n_vocab),
      0.0f);
  return s;
}

Result<int64_t> Scheduler::Submit(Request request) {
  const int64_t n = static_cast<int64_t>(request.prompt.size());
  const int64_t ctx = options_.max_context;
  const int64_t pool_positions = options_.n_blocks * options_.block_size;
  if (n == 0) return InvalidArgumentError("the prompt is empty");
  if (n >= std::min(ctx, pool_positions)) {
    return InvalidArgumentError("the prompt has {} tokens; the context holds {}", n,
                                std::min(ctx, pool_positions));
  }
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= model_.config().n_vocab) {
      return InvalidArgumentError("token id {} is outside the vocabulary", t);
    }
  }
  if (request.max_tokens < 1) {
    return InvalidArgumentError("max_tokens must be at least 1, got {}", request.max_tokens);
  }
  SLIMLM_RETURN_IF_ERROR(request.sampling.Validate());
  if (static_cast<int64_t>(waiting_.size()) >= options_.max_waiting) {
    return ResourceExhaustedError("the queue is full: {} requests are waiting", waiting_.size());
  }
  const int64_t id = next_id_++;
  live_[id] =
      std::make_unique<Live>(id, std::move(request), model_.config().n_vocab, model_.tokenizer());
  waiting_.push_back(id);
  return id;
}

void Scheduler::Cancel(int64_t id) {
  auto it = live_.find(id);
  if (it == live_.end() || it->second->finish != FinishReason::kNone) return;
  Finish(id, FinishReason::kCancelled);
}

void Scheduler::Finish(int64_t id, FinishReason reason) {
  Live& live = *live_.at(id);
  live.finish = reason;
  if (live.in_pool) pool_.FreeSequence(id);
  live.in_pool = false;
  std::erase(running_, id);
  std::erase(waiting_, id);
  if (live.decoder) live.text += live.decoder->Flush();
  Event e;
  e.id = id;
  e.text = live.text.substr(live.emitted);
  e.finish = reason;
  e.prompt_tokens = static_cast<int64_t>(live.request.prompt.size());
  e.completion_tokens = live.generated;
  e.cached_tokens = live.cached;
  // A phase not reached lasts until the end: a request cancelled while queued spent all its
  // time in the queue.
  const Clock::time_point now = Clock::now();
  const Clock::time_point admitted = live.admitted.value_or(now);
  const Clock::time_point first = live.first_token.value_or(now);
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  e.queue_seconds = seconds(admitted - live.submitted);
  e.prefill_seconds = seconds(std::max(first, admitted) - admitted);
  e.decode_seconds = seconds(now - std::max(first, admitted));
  finished_.push_back(std::move(e));
}

void Scheduler::Preempt(int64_t id) {
  Live& live = *live_.at(id);
  pool_.FreeSequence(id);
  live.in_pool = false;
  live.computed = 0;
  std::erase(running_, id);
  waiting_.push_front(id);
  ++stats_.preemptions;
}

void Scheduler::Admit() {
  while (!waiting_.empty() && static_cast<int64_t>(running_.size()) < options_.max_running) {
    const int64_t id = waiting_.front();
    Live& live = *live_.at(id);
    // A request waits while there are no blocks for its first chunk (a prefix may need none).
    const PrefixMatch match =
        options_.prefix_cache ? pool_.MatchPrefix(live.tokens) : PrefixMatch{};
    const int64_t needed_blocks =
        (static_cast<int64_t>(live.tokens.size()) - match.n_tokens + options_.block_size - 1) /
        options_.block_size;
    if (pool_.FreeBlocks() - match.n_evictable < std::min<int64_t>(needed_blocks, 1)) return;
    waiting_.pop_front();
    if (options_.prefix_cache) {
      Result<int64_t> reused = pool_.AddSequenceWithPrefix(id, live.tokens);
      SLIMLM_CHECK(reused.ok()) << reused.status().ToString();
      live.computed = *reused;
    } else {
      SLIMLM_CHECK(pool_.AddSequence(id).ok());
      live.computed = 0;
    }
    live.cached =
        std::min<int64_t>(live.computed, static_cast<int64_t>(live.request.prompt.size()));
    live.in_pool = true;
    if (!live.admitted) live.admitted = Clock::now();
    running_.push_back(id);
  }
}

void Scheduler::Accept(Live& live, int32_t token) {
  live.tokens.push_back(token);
  live.sampler.Accept(token);
  if (live.generated == 0) live.first_token = Clock::now();
  ++live.generated;
  ++stats_.generation_tokens;
  const Tokenizer* tokenizer = model_.tokenizer();
  const bool eos = tokenizer != nullptr && token == tokenizer->eos_id() && !live.request.ignore_eos;
  if (!eos && live.decoder) live.text += live.decoder->Add(token);
  for (const std::string& stop : live.request.stop) {
    if (stop.empty()) continue;
    // A new match ends in the new text; what was emitted lies at least hold_back bytes (the
    // longest stop string) before the end, so the search can start there.
    const size_t at = live.text.find(stop, live.emitted);
    if (at != std::string::npos) {
      live.text.resize(at);
      live.decoder.reset();  // Nothing held back belongs to the completion any more.
      return FinishWithToken(live, FinishReason::kStop);
    }
  }
  if (eos) return FinishWithToken(live, FinishReason::kStop);
  if (live.generated >= live.request.max_tokens) {
    return FinishWithToken(live, FinishReason::kLength);
  }
  const int64_t limit = std::min(options_.max_context, options_.n_blocks * options_.block_size);
  if (static_cast<int64_t>(live.tokens.size()) >= limit) {
    return FinishWithToken(live, FinishReason::kLength);
  }
}

void Scheduler::FinishWithToken(Live& live, FinishReason reason) {
  Finish(live.id, reason);
  finished_.back().new_tokens = 1;
}

Status Scheduler::Step(std::vector<Event>* events) {
  ++stats_.steps;
  const auto now = Clock::now();
  for (const auto& [id, live] : live_) {
    if (live->finish == FinishReason::kNone && live->deadline && now >= *live->deadline) {
      Finish(id, FinishReason::kTimeout);
    }
  }
  Admit();
  // Plan the step: decodes first (one token each), then prompt chunks, within the budget.
  struct Part {
    int64_t id;
    int64_t count;  // Tokens from live.computed on.
  };
  std::vector<Part> parts;
  int64_t budget = options_.max_step_tokens;
  auto remaining = [&](int64_t id) {
    const Live& l = *live_.at(id);
    return static_cast<int64_t>(l.tokens.size()) - l.computed;
  };
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    const int64_t id = running_[i];
    if (remaining(id) != 1) {
      ++i;
      continue;
    }
    if (pool_.AppendSlots(id, 1).ok()) {
      parts.push_back({id, 1});
      --budget;
      ++i;
      continue;
    }
    // No block for this decode: free the most recently admitted request (this one, if it is
    // the newest) and try again.
    // The victim comes after running_[i], so it has no part in this step yet.
    const int64_t victim = running_.back();
    Preempt(victim);
    if (victim == id) continue;  // running_[i] is now the next request.
  }
  for (const int64_t id : running_) {
    if (budget <= 0) break;
    const int64_t left = remaining(id);
    if (left <= 1) continue;
    // As much of the prompt as the budget and the free blocks allow.
    const int64_t room = static_cast<int64_t>(pool_.BlockTable(id).size()) * options_.block_size -
                         pool_.Length(id) + pool_.FreeBlocks() * options_.block_size;
    const int64_t take = std::min({left, budget, room});
    if (take <= 0) continue;
    SLIMLM_CHECK(pool_.AppendSlots(id, take).ok());
    parts.push_back({id, take});
    budget -= take;
  }
  if (parts.empty()) {
    // Nothing fits: every running request waits for blocks the others hold. Free the newest
    // (its work is redone later) so that the oldest can go on; a lone request that cannot grow
    // has reached the pool's end.
    if (running_.size() > 1) {
      Preempt(running_.back());
    } else if (running_.size() == 1) {
      Finish(running_.front(), FinishReason::kLength);
    }
  } else {
    // Reused from step to step, so that a decode step allocates nothing here.
    std::vector<StepToken>& step = step_tokens_;
    std::vector<std::span<const int32_t>>& tables = step_tables_;
    std::vector<int64_t>& owners = step_owners_;  // Of the tokens with logits, in order.
    step.clear();
    tables.clear();
    owners.clear();
    for (const Part& p : parts) {
      Live& l = *live_.at(p.id);
      const int32_t seq = static_cast<int32_t>(tables.size());
      tables.push_back(pool_.BlockTable(p.id));
      for (int64_t k = 0; k < p.count; ++k) {
        const int64_t pos = l.computed + k;
        const bool last = pos + 1 == static_cast<int64_t>(l.tokens.size());
        step.push_back({l.tokens[static_cast<size_t>(pos)], pos, seq, last});
        if (last) owners.push_back(p.id);
      }
    }
    SLIMLM_CHECK(owners.size() * static_cast<size_t>(model_.config().n_vocab) <= logits_.size());
    SLIMLM_RETURN_IF_ERROR(engine_->Step(step, tables, logits_.data()));
    stats_.last_step_tokens = static_cast<int64_t>(step.size());
    stats_.last_step_kv_rows = 0;
    for (const StepToken& t : step) stats_.last_step_kv_rows += t.pos + 1;
    for (const Part& p : parts) {
      Live& l = *live_.at(p.id);
      SLIMLM_RETURN_IF_ERROR(
          pool_.CommitTokens(p.id, std::span(l.tokens).subspan(static_cast<size_t>(l.computed),
                                                               static_cast<size_t>(p.count))));
      if (p.count > 1 || l.generated == 0) stats_.prompt_tokens += p.count;
      l.computed += p.count;
    }
    const int64_t n_vocab = model_.config().n_vocab;
    for (size_t i = 0; i < owners.size(); ++i) {
      Live& l = *live_.at(owners[i]);
      if (l.finish != FinishReason::kNone) continue;
      const std::span<const float> row(logits_.data() + i * static_cast<size_t>(n_vocab),
                                       static_cast<size_t>(n_vocab));
      Accept(l, l.sampler.Sample(row));
      if (l.finish != FinishReason::kNone) continue;
      // Text that can no longer become part of a stop string goes out now.
      const size_t ready = l.text.size() > l.hold_back ? l.text.size() - l.hold_back : 0;
      Event e;
      e.id = l.id;
      e.new_tokens = 1;
      if (ready > l.emitted) {
        e.text = l.text.substr(l.emitted, ready - l.emitted);
        l.emitted = ready;
      }
      events->push_back(std::move(e));
    }
  }
  for (Event& e : finished_) {
    live_.erase(e.id);
    events->push_back(std::move(e));
  }
  finished_.clear();
  return Status::Ok();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s = stats_;
  s.running = static_cast<int64_t>(running_.size());
  s.waiting = static_cast<int64_t>(waiting_.size());
  s.kv_usage = pool_.Usage();
  s.prefix_queries = pool_.prefix_stats().queries;
  s.prefix_hits = pool_.prefix_stats().hits;
  return s;
}

}  // namespace slimlm::serve
