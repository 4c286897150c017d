// Continuous batching: the scheduler that feeds one batched Engine from many requests.
//
// Each Step packs, within a budget of tokens, first one decode token of every running request,
// then chunks of prompts (the rest of a prompt being prefilled, then waiting requests in
// arrival order), so a long prompt never stalls the decodes beside it. KV blocks come from a
// KvBlockPool: a new request reuses the cached blocks of a shared prompt prefix; when the pool
// runs out, the most recently admitted request is preempted (its blocks freed, its prompt plus
// what it generated queued again at the front, recomputed when blocks free up). A finished,
// cancelled or timed-out request frees its blocks at once.
//
// Not thread-safe: one thread submits, cancels and steps (the server's engine thread).
#ifndef SLIMLM_SERVE_SCHEDULER_H_
#define SLIMLM_SERVE_SCHEDULER_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/model/engine.h"
#include "slimlm/model/sampler.h"
#include "slimlm/serve/kv_block_pool.h"

namespace slimlm::serve {

struct SchedulerOptions {
  int64_t max_step_tokens = 256;  // Token budget of one engine step.
  int64_t max_running = 64;       // Requests decoding or prefilling at once.
  int64_t max_waiting = 256;      // Queued requests; Submit refuses more.
  // Positions one request may reach (prompt and completion); 0 or more than the model's: the
  // model's context length.
  int64_t max_context = 0;
  int64_t n_blocks = 0;  // KV pool blocks; 0: enough for max_running requests of max_context.
  int64_t block_size = 16;
  int n_threads = 0;
  DType kv_type = DType::kF16;
  bool prefix_cache = true;
  OpProfile* profile = nullptr;  // When set, every engine operation adds its figures here.
};

struct Request {
  std::vector<int32_t> prompt;  // Token ids, BOS included when the model wants one.
  int64_t max_tokens = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;  // Generation stops before any of these strings.
  bool ignore_eos = false;
  double timeout_seconds = 0;  // 0: none.
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kTimeout };
// "stop", "length", "cancelled", "timeout" ("" for kNone).
std::string_view FinishReasonName(FinishReason reason);

// What a step did for one request.
struct Event {
  int64_t id = 0;
  std::string text;        // New text since the last event (complete UTF-8 characters).
  int64_t new_tokens = 0;  // Tokens generated in this step (0 or 1).
  FinishReason finish = FinishReason::kNone;
  int64_t prompt_tokens = 0;      // With finish: the prompt's tokens.
  int64_t completion_tokens = 0;  // With finish: tokens generated in all.
  int64_t cached_tokens = 0;      // With finish: prompt positions reused from the prefix cache.
  // With finish: seconds queued (submission to first admission), prefilling (to the first
  // generated token) and decoding (to the end).
  double queue_seconds = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

struct SchedulerStats {
  int64_t running = 0;
  int64_t waiting = 0;
  double kv_usage = 0;  // Fraction of KV blocks held by live requests.
  int64_t preemptions = 0;
  int64_t prefix_queries = 0;  // Prompt tokens looked up.
  int64_t prefix_hits = 0;     // Of those, reused.
  int64_t prompt_tokens = 0;   // Computed by prefill (not reused).
  int64_t generation_tokens = 0;
  int64_t steps = 0;
  int64_t last_step_tokens = 0;   // Tokens the last engine step computed.
  int64_t last_step_kv_rows = 0;  // Cached positions its attention read, summed over tokens.
};

class Scheduler {
 public:
  static Result<std::unique_ptr<Scheduler>> Create(const Model& model,
                                                   const SchedulerOptions& options);
  ~Scheduler();

  // Queues a request and returns its id. kResourceExhausted when the queue is full (the server
  // answers 429); kInvalidArgument for an empty prompt, one longer than the model's context or
  // the pool, a token outside the vocabulary, max_tokens < 1 or bad sampling parameters.
  Result<int64_t> Submit(Request request);
  // Finishes a request now (a client that left): its blocks are freed at once; its last event
  // comes from the next Step. Unknown or finished ids are ignored.
  void Cancel(int64_t id);
  // Runs one engine step (nothing when idle) and appends what happened to `events`.
  Status Step(std::vector<Event>* events);
  bool Idle() const { return running_.empty() && waiting_.empty() && finished_.empty(); }
  SchedulerStats stats() const;
  const Engine& engine() const { return *engine_; }
  const KvBlockPool& pool() const { return pool_; }

 private:
  struct Live;
  Scheduler(const Model& model, const SchedulerOptions& options, std::unique_ptr<Engine> engine,
            KvBlockPool pool);
  // Moves a running request back to the front of the queue, its generated tokens appended to
  // what must be prefilled again.
  void Preempt(int64_t id);
  // Frees the request's blocks and queues its last event.
  void Finish(int64_t id, FinishReason reason);
  // Admits waiting requests while there is room: a sequence in the pool, prefix reused.
  void Admit();
  // After a token is generated: its text, stop strings, EOS, max_tokens.
  void Accept(Live& live, int32_t token);
  // Finish, from Accept: the last event also counts the token just generated.
  void FinishWithToken(Live& live, FinishReason reason);

  const Model& model_;
  SchedulerOptions options_;
  std::unique_ptr<Engine> engine_;
  KvBlockPool pool_;
  std::map<int64_t, std::unique_ptr<Live>> live_;  // Every request not yet reported finished.
  std::deque<int64_t> waiting_;
  std::vector<int64_t> running_;  // In admission order.
  std::vector<Event> finished_;   // Last events not yet returned by Step.
  std::vector<float> logits_;
  std::vector<StepToken> step_tokens_;  // The step being run.
  std::vector<std::span<const int32_t>> step_tables_;
  std::vector<int64_t> step_owners_;
  int64_t next_id_ = 1;
  SchedulerStats stats_;
};

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_SCHEDULER_H_
