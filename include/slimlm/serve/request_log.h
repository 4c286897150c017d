// The request log: one line per finished request (id, model, route, tokens, queue / prefill /
// decode / end-to-end times, finish reason), as JSON or as text, to a file or stderr.
// Thread-safe: each line is one write.
#ifndef SLIMLM_SERVE_REQUEST_LOG_H_
#define SLIMLM_SERVE_REQUEST_LOG_H_

#include <cstdio>
#include <mutex>
#include <string>

#include "slimlm/core/status.h"
#include "slimlm/serve/scheduler.h"

namespace slimlm::serve {

enum class LogFormat { kJson, kText };
Result<LogFormat> ParseLogFormat(const std::string& name);  // "json" or "text"

struct RequestRecord {
  std::string id;     // "cmpl-7"
  std::string model;  // The served model's name.
  std::string route;  // "/v1/completions"
  bool stream = false;
  Event last;  // The request's last event: tokens, phase times, finish reason.
  double e2e_seconds = 0;
};

class RequestLog {
 public:
  // `path`: a file (appended to) or "-" for stderr.
  static Result<std::unique_ptr<RequestLog>> Open(const std::string& path, LogFormat format);
  ~RequestLog();
  void Write(const RequestRecord& r);
  // The line Write writes (without its newline).
  static std::string Format(const RequestRecord& r, LogFormat format);

 private:
  RequestLog(std::FILE* file, bool owned, LogFormat format)
      : file_(file), owned_(owned), format_(format) {}
  std::mutex mu_;
  std::FILE* file_;
  bool owned_;
  LogFormat format_;
};

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_REQUEST_LOG_H_
