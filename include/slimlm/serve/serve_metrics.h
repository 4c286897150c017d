// The server's metrics (../shared/DESIGN.md §6, mirroring vLLM's): request and token counters,
// latency histograms, KV-cache and prefix-cache figures, preemptions, and the model's memory and
// achieved bandwidth. Updated by the engine thread (atomics only, no lock per token); read by
// GET /metrics through the Registry. Every series carries the model name as its label.
#ifndef SLIMLM_SERVE_SERVE_METRICS_H_
#define SLIMLM_SERVE_SERVE_METRICS_H_

#include <array>
#include <atomic>
#include <string>
#include <vector>

#include "slimlm/core/op_profile.h"

#include "slimlm/monitor/metrics.h"
#include "slimlm/serve/scheduler.h"

namespace slimlm::serve {

class ServeMetrics {
 public:
  ServeMetrics(monitor::Registry& registry, const std::string& model_name);

  // The memory figures, once the engine exists: `weight_bytes`, the model's weights as run;
  // `kv_bytes`, the KV pool; `kv_row_bytes`, one cached position in every layer (keys and
  // values), for the bandwidth estimate. Before the engine thread starts.
  void SetMemory(double weight_bytes, double kv_bytes, double kv_row_bytes);

  // After an engine step that took `seconds`, with the scheduler's figures after it.
  void OnStep(const SchedulerStats& stats, double seconds);
  // Scheduler figures without a step (a request queued or cancelled while idle).
  void OnQueue(const SchedulerStats& stats);
  void OnFirstToken(double seconds_since_submit);
  void OnNextToken(double seconds_since_last);
  // A request's last event; `e2e` from submission.
  void OnFinish(const Event& last, double e2e);
  // The engine's cumulative operation profile (serve --profile), after a step: its growth goes
  // to slimlm_op_seconds_total, slimlm_op_bytes_total, slimlm_op_operations_total and
  // slimlm_op_calls_total, labelled by operation (names from the engine, a fixed set).
  void OnProfile(const OpProfile& profile);

 private:
  monitor::Registry& registry_;
  monitor::Labels labels_;
  monitor::Gauge &running_, &waiting_, &kv_usage_, &bandwidth_, &weight_gauge_, &kv_gauge_;
  monitor::Counter &prompt_tokens_, &generation_tokens_, &prefix_queries_, &prefix_hits_,
      &preemptions_;
  monitor::Histogram &ttft_, &itl_, &e2e_, &queue_, &prefill_, &decode_, &iteration_tokens_;
  monitor::Histogram &prompt_len_, &generation_len_;
  double weight_bytes_ = 0, kv_row_bytes_ = 0;
  SchedulerStats last_;
  // Bytes moved and busy seconds since the bandwidth gauge was last set.
  std::atomic<double> window_bytes_{0}, window_seconds_{0};
  struct OpSeries {
    std::string name;
    monitor::Counter *seconds, *bytes, *ops, *calls;
    OpStats last;
  };
  std::vector<OpSeries> ops_;  // Engine thread only.
  // slimlm_request_success_total by FinishReason (none for kNone).
  std::array<monitor::Counter*, 5> finished_{};
};

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_SERVE_METRICS_H_
