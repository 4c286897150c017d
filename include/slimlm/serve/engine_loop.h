// The engine thread of the server: one thread owns the Scheduler and steps it whenever there is
// work; HTTP threads submit requests and read their events through a RequestStream each.
//
// Submit hands the request to the engine thread and waits for the scheduler's answer (the id,
// or why it was refused), which comes before the next step: a request could not start sooner.
// Cancel (a client that left, a shutdown) reaches the scheduler before the next step too, so the
// request's KV blocks are freed at once.
#ifndef SLIMLM_SERVE_ENGINE_LOOP_H_
#define SLIMLM_SERVE_ENGINE_LOOP_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/serve/scheduler.h"
#include "slimlm/serve/serve_metrics.h"

namespace slimlm::serve {

class EngineLoop;

// What one request's client receives, in order. Thread-safe.
class RequestStream {
 public:
  // Waits up to `timeout` for events and moves out those that arrived (maybe none). The last
  // one has a finish reason; after it, `failed()` tells whether the engine broke down.
  std::vector<Event> Wait(std::chrono::milliseconds timeout);
  bool finished() const;
  // The engine's error when it failed mid-request (the request ends, cancelled).
  Status failed() const;
  // Asks the engine to end this request (its client left); idempotent.
  void Cancel();
  int64_t id() const { return id_; }

 private:
  friend class EngineLoop;
  void Push(Event e);
  void Fail(Status s);

  EngineLoop* loop_ = nullptr;
  int64_t id_ = 0;
  // Engine thread only (set before the stream is handed over): for the latency metrics.
  std::chrono::steady_clock::time_point submitted_;
  std::chrono::steady_clock::time_point last_token_;
  bool any_token_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool finished_ = false;
  bool cancel_sent_ = false;
  Status failure_ = Status::Ok();
};

struct EngineLoopStats {
  SchedulerStats scheduler;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;  // Held by live requests.
  int64_t in_flight = 0;       // Submitted and not finished.
  int64_t cancelled = 0;       // Requests ended by Cancel (clients that left, shutdown).
};

class EngineLoop {
 public:
  // Creates the scheduler (see SchedulerOptions) and starts the engine thread. `metrics`, when
  // set, must outlive the loop; the engine thread updates it, with the operation profile too
  // when options.profile is set (which the loop then owns the use of).
  static Result<std::unique_ptr<EngineLoop>> Start(const Model& model,
                                                   const SchedulerOptions& options,
                                                   ServeMetrics* metrics = nullptr);
  ~EngineLoop();  // Stop().

  // Queues a request: its stream, or the scheduler's refusal (kInvalidArgument for a bad
  // request, kResourceExhausted when the queue is full, kFailedPrecondition once stopping).
  Result<std::shared_ptr<RequestStream>> Submit(Request request);
  // Cancels every request in flight (each stream ends with kCancelled).
  void CancelAll();
  // Cancels every request, ends the engine thread and waits for it. Idempotent.
  void Stop();
  EngineLoopStats stats() const;

 private:
  friend class RequestStream;
  struct Pending {
    Request request;
    std::shared_ptr<RequestStream> stream;
    std::promise<Status> accepted;
  };
  EngineLoop(std::unique_ptr<Scheduler> scheduler, ServeMetrics* metrics, const OpProfile* profile);
  // The metrics of a step's events, as they are delivered.
  void Measure(RequestStream& stream, const Event& e);
  void Run();
  void RequestCancel(int64_t id);
  // Publishes the scheduler's figures, `cancelled` more requests cancelled.
  void PublishStats(int64_t cancelled = 0);

  std::unique_ptr<Scheduler> scheduler_;
  ServeMetrics* metrics_;
  const OpProfile* profile_;  // The scheduler's (SchedulerOptions::profile), or null.
  mutable std::mutex mu_;     // Guards what follows, up to the thread.
  std::condition_variable cv_;
  std::vector<Pending> pending_;
  std::vector<int64_t> cancels_;
  bool cancel_all_ = false;
  bool stopping_ = false;
  EngineLoopStats stats_;
  std::thread thread_;
  // Engine thread only.
  std::map<int64_t, std::shared_ptr<RequestStream>> streams_;
};

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_ENGINE_LOOP_H_
