#include "slimlm/serve/serve_metrics.h"

#include <algorithm>

namespace slimlm::serve {
namespace {

using monitor::ExponentialBuckets;

// Latencies from 1 ms to about 80 s; token counts from 1 to 32768.
std::vector<double> SecondsBuckets() { return ExponentialBuckets(0.001, 2.0, 17); }
std::vector<double> TokenBuckets() { return ExponentialBuckets(1, 2.0, 16); }

}  // namespace

ServeMetrics::ServeMetrics(monitor::Registry& r, const std::string& model_name)
    : registry_(r),
      labels_({{"model_name", model_name}}),
      running_(
          r.GetGauge("slimlm_num_requests_running", "Requests decoding or prefilling.", labels_)),
      waiting_(r.GetGauge("slimlm_num_requests_waiting", "Requests queued.", labels_)),
      kv_usage_(r.GetGauge("slimlm_kv_cache_usage_ratio",
                           "Fraction of KV-cache blocks held by live requests (0 to 1).", labels_)),
      bandwidth_(r.GetGauge("slimlm_memory_bandwidth_bytes_per_second",
                            "Achieved memory bandwidth of engine steps (weights and KV cache "
                            "read), over the time since the last scrape, busy time only.",
                            labels_)),
      weight_gauge_(
          r.GetGauge("slimlm_model_weight_bytes", "Bytes of the model's weights as run.", labels_)),
      kv_gauge_(r.GetGauge("slimlm_kv_cache_bytes", "Bytes of the KV-cache pool.", labels_)),
      prompt_tokens_(r.GetCounter("slimlm_prompt_tokens_total",
                                  "Prompt tokens prefilled (not counting those reused from "
                                  "the prefix cache).",
                                  labels_)),
      generation_tokens_(
          r.GetCounter("slimlm_generation_tokens_total", "Tokens generated.", labels_)),
      prefix_queries_(r.GetCounter("slimlm_prefix_cache_queries_total",
                                   "Prompt tokens looked up in the prefix cache.", labels_)),
      prefix_hits_(r.GetCounter("slimlm_prefix_cache_hits_total",
                                "Prompt tokens found in the prefix cache.", labels_)),
      preemptions_(r.GetCounter("slimlm_num_preemptions_total",
                                "Requests preempted (KV blocks freed, recomputed later).",
                                labels_)),
      ttft_(r.GetHistogram("slimlm_time_to_first_token_seconds",
                           "Seconds from a request's arrival to its first generated token.",
                           SecondsBuckets(), labels_)),
      itl_(r.GetHistogram("slimlm_inter_token_latency_seconds",
                          "Seconds between a request's successive generated tokens.",
                          SecondsBuckets(), labels_)),
      e2e_(r.GetHistogram("slimlm_e2e_request_latency_seconds",
                          "Seconds from a request's arrival to its end.", SecondsBuckets(),
                          labels_)),
      queue_(r.GetHistogram("slimlm_request_queue_time_seconds",
                            "Seconds a request waited before it was first scheduled.",
                            SecondsBuckets(), labels_)),
      prefill_(r.GetHistogram("slimlm_request_prefill_time_seconds",
                              "Seconds from a request's first scheduling to its first token.",
                              SecondsBuckets(), labels_)),
      decode_(r.GetHistogram("slimlm_request_decode_time_seconds",
                             "Seconds from a request's first token to its end.", SecondsBuckets(),
                             labels_)),
      iteration_tokens_(r.GetHistogram("slimlm_iteration_tokens",
                                       "Tokens computed by one engine step.", TokenBuckets(),
                                       labels_)),
      prompt_len_(r.GetHistogram("slimlm_request_prompt_tokens", "Prompt tokens per request.",
                                 TokenBuckets(), labels_)),
      generation_len_(r.GetHistogram("slimlm_request_generation_tokens",
                                     "Generated tokens per request.", TokenBuckets(), labels_)) {
  // Every finish reason from the start, so that rates work before the first of each.
  for (FinishReason reason : {FinishReason::kStop, FinishReason::kLength, FinishReason::kTimeout,
                              FinishReason::kCancelled}) {
    monitor::Labels l = labels_;
    l.emplace_back("finished_reason", std::string(FinishReasonName(reason)));
    finished_[static_cast<size_t>(reason)] =
        &r.GetCounter("slimlm_request_success_total", "Requests finished, by reason.", l);
  }
  r.OnCollect([this] {
    // The bandwidth over the window since the last scrape; kept when no step ran meanwhile.
    const double bytes = window_bytes_.exchange(0);
    const double seconds = window_seconds_.exchange(0);
    if (seconds > 0) bandwidth_.Set(bytes / seconds);
  });
}

void ServeMetrics::SetMemory(double weight_bytes, double kv_bytes, double kv_row_bytes) {
  weight_bytes_ = weight_bytes;
  kv_row_bytes_ = kv_row_bytes;
  weight_gauge_.Set(weight_bytes);
  kv_gauge_.Set(kv_bytes);
}

void ServeMetrics::OnQueue(const SchedulerStats& s) {
  running_.Set(static_cast<double>(s.running));
  waiting_.Set(static_cast<double>(s.waiting));
  kv_usage_.Set(s.kv_usage);
  prompt_tokens_.Add(static_cast<double>(s.prompt_tokens - last_.prompt_tokens));
  generation_tokens_.Add(static_cast<double>(s.generation_tokens - last_.generation_tokens));
  prefix_queries_.Add(static_cast<double>(s.prefix_queries - last_.prefix_queries));
  prefix_hits_.Add(static_cast<double>(s.prefix_hits - last_.prefix_hits));
  preemptions_.Add(static_cast<double>(s.preemptions - last_.preemptions));
  last_ = s;
}

void ServeMetrics::OnStep(const SchedulerStats& s, double seconds) {
  const bool stepped = s.steps != last_.steps;
  OnQueue(s);
  if (!stepped) return;
  iteration_tokens_.Observe(static_cast<double>(s.last_step_tokens));
  // A step reads every weight once and, per token, its sequence's cached rows.
  window_bytes_.fetch_add(weight_bytes_ + static_cast<double>(s.last_step_kv_rows) * kv_row_bytes_);
  window_seconds_.fetch_add(seconds);
}

void ServeMetrics::OnProfile(const OpProfile& profile) {
  for (const OpStats& op : profile.stats()) {
    auto it = std::find_if(ops_.begin(), ops_.end(),
                           [&](const OpSeries& s) { return s.name == op.name; });
    if (it == ops_.end()) {
      monitor::Labels l = labels_;
      l.emplace_back("op", op.name);
      ops_.push_back(
          {op.name,
           &registry_.GetCounter("slimlm_op_seconds_total", "Engine time by operation (--profile).",
                                 l),
           &registry_.GetCounter("slimlm_op_bytes_total",
                                 "Bytes read and written by operation (--profile).", l),
           &registry_.GetCounter("slimlm_op_operations_total",
                                 "Arithmetic operations by operation (--profile).", l),
           &registry_.GetCounter("slimlm_op_calls_total", "Calls by operation (--profile).", l),
           OpStats{op.name}});
      it = std::prev(ops_.end());
    }
    it->seconds->Add(op.seconds - it->last.seconds);
    it->bytes->Add(op.bytes - it->last.bytes);
    it->ops->Add(op.ops - it->last.ops);
    it->calls->Add(static_cast<double>(op.calls - it->last.calls));
    it->last = op;
  }
}

void ServeMetrics::OnFirstToken(double seconds) { ttft_.Observe(seconds); }
void ServeMetrics::OnNextToken(double seconds) { itl_.Observe(seconds); }

void ServeMetrics::OnFinish(const Event& last, double e2e) {
  if (monitor::Counter* c = finished_[static_cast<size_t>(last.finish)]; c != nullptr) c->Add();
  e2e_.Observe(e2e);
  queue_.Observe(last.queue_seconds);
  prefill_.Observe(last.prefill_seconds);
  decode_.Observe(last.decode_seconds);
  prompt_len_.Observe(static_cast<double>(last.prompt_tokens));
  generation_len_.Observe(static_cast<double>(last.completion_tokens));
}

}  // namespace slimlm::serve
