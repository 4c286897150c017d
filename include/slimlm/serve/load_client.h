// A load generator for an OpenAI-compatible server: concurrent clients sending streaming
// requests, timing each token as it arrives. Used by the server's tests and by
// bench/serve_load (the latency and throughput figures of docs/serving.md).
#ifndef SLIMLM_SERVE_LOAD_CLIENT_H_
#define SLIMLM_SERVE_LOAD_CLIENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slimlm/core/status.h"

namespace slimlm::serve {

struct LoadTestOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string api_key;
  int clients = 1;   // Concurrent clients, each sending one request after another.
  int requests = 1;  // Per client.
  std::string prompt = "Once upon a time";
  int64_t max_tokens = 64;
  bool ignore_eos = true;  // Every request generates max_tokens.
  double temperature = 0;
  bool chat = false;  // /v1/chat/completions with the prompt as one user message.
  double timeout_seconds = 300;
};

struct RequestTiming {
  bool ok = false;
  std::string error;  // HTTP status and body, or the transport error.
  std::string text;
  std::string finish_reason;
  int64_t completion_tokens = 0;  // From the usage chunk.
  double ttft = 0;                // Seconds from sending to the first text.
  double e2e = 0;                 // Seconds from sending to [DONE].
  std::vector<double> itl;        // Seconds between text chunks.
};

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};
// Nearest-rank percentiles; all zero for no values.
Percentiles ComputePercentiles(std::vector<double> values);

struct LoadReport {
  int64_t ok = 0;
  int64_t failed = 0;
  int64_t completion_tokens = 0;
  double seconds = 0;                   // Wall time of the whole run.
  double tokens_per_second = 0;         // completion_tokens / seconds
  Percentiles ttft, itl, e2e;           // Seconds.
  std::vector<RequestTiming> requests;  // Client by client, in order.
};

// Runs the load; an error only when no client could connect at all.
Result<LoadReport> RunLoad(const LoadTestOptions& options);
// The figures (not the texts), times in milliseconds.
nlohmann::json LoadReportJson(const LoadReport& report);

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_LOAD_CLIENT_H_
