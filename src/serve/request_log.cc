#include "slimlm/serve/request_log.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace slimlm::serve {
namespace {

// UTC, to the millisecond: 2026-11-26T14:05:35.123Z
std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, ms);
}

}  // namespace

Result<LogFormat> ParseLogFormat(const std::string& name) {
  if (name == "json") return LogFormat::kJson;
  if (name == "text") return LogFormat::kText;
  return InvalidArgumentError("unknown log format \"{}\" (json or text)", name);
}

Result<std::unique_ptr<RequestLog>> RequestLog::Open(const std::string& path, LogFormat format) {
  if (path == "-") return std::unique_ptr<RequestLog>(new RequestLog(stderr, false, format));
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr)
    return IoError("{}: cannot open the request log: {}", path, std::strerror(errno));
  return std::unique_ptr<RequestLog>(new RequestLog(f, true, format));
}

RequestLog::~RequestLog() {
  if (owned_) std::fclose(file_);
}

std::string RequestLog::Format(const RequestRecord& r, LogFormat format) {
  const Event& e = r.last;
  if (format == LogFormat::kText) {
    return fmt::format(
        "{} {} {} {}{} prompt={} cached={} completion={} queue={:.3f}s prefill={:.3f}s "
        "decode={:.3f}s e2e={:.3f}s finish={}",
        Timestamp(), r.id, r.model, r.route, r.stream ? " stream" : "", e.prompt_tokens,
        e.cached_tokens, e.completion_tokens, e.queue_seconds, e.prefill_seconds, e.decode_seconds,
        r.e2e_seconds, FinishReasonName(e.finish));
  }
  return nlohmann::json{{"time", Timestamp()},
                        {"id", r.id},
                        {"model", r.model},
                        {"route", r.route},
                        {"stream", r.stream},
                        {"prompt_tokens", e.prompt_tokens},
                        {"cached_tokens", e.cached_tokens},
                        {"completion_tokens", e.completion_tokens},
                        {"queue_seconds", e.queue_seconds},
                        {"prefill_seconds", e.prefill_seconds},
                        {"decode_seconds", e.decode_seconds},
                        {"e2e_seconds", r.e2e_seconds},
                        {"finish_reason", FinishReasonName(e.finish)}}
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void RequestLog::Write(const RequestRecord& r) {
  const std::string line = Format(r, format_) + "\n";
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

}  // namespace slimlm::serve
