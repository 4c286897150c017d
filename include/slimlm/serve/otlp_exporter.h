// OpenTelemetry export: one span per finished request, sent over OTLP/HTTP as JSON to a
// collector (--otlp-endpoint), with the GenAI semantic-convention attributes
// (gen_ai.operation.name, gen_ai.request.model, gen_ai.request.max_tokens, ...,
// gen_ai.usage.input_tokens, gen_ai.usage.output_tokens, gen_ai.response.finish_reasons).
//
// Off the hot path: Export only appends to a bounded queue (a full queue drops the span and
// counts it); one background thread sends batches with short timeouts, so a slow or dead
// collector never slows a request.
#ifndef SLIMLM_SERVE_OTLP_EXPORTER_H_
#define SLIMLM_SERVE_OTLP_EXPORTER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "slimlm/core/status.h"
#include "slimlm/serve/scheduler.h"

namespace slimlm::serve {

struct RequestSpan {
  std::string operation;  // "text_completion" or "chat"
  std::string model;
  std::string response_id;
  std::chrono::system_clock::time_point start, end;
  int64_t max_tokens = 0;
  double temperature = 0, top_p = 1;
  bool stream = false;
  Event last;  // Tokens, phase times, finish reason.
  bool error = false;
};

struct OtlpStats {
  int64_t exported = 0;  // Spans the collector accepted.
  int64_t dropped = 0;   // Spans lost: queue full, or the collector failed.
};

class OtlpExporter {
 public:
  // `endpoint`: the collector's base URL (http://host:4318); spans go to endpoint/v1/traces.
  static Result<std::unique_ptr<OtlpExporter>> Start(const std::string& endpoint,
                                                     const std::string& service_name);
  ~OtlpExporter();  // Sends what is queued (2 s at most), then stops.

  void Export(RequestSpan span);
  OtlpStats stats() const;

  // The OTLP/JSON body of these spans (ExportTraceServiceRequest).
  static nlohmann::json TracesJson(const std::vector<RequestSpan>& spans,
                                   const std::string& service_name);

 private:
  OtlpExporter(std::string host_url, std::string path, std::string service_name);
  void Run();

  const std::string host_url_, path_, service_name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestSpan> queue_;
  bool stopping_ = false;
  std::atomic<int64_t> exported_{0}, dropped_{0};
  std::thread thread_;
};

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_OTLP_EXPORTER_H_
