// Leveled logging to stderr. Thread-safe: each call writes one whole line.
//
//   SLIMLM_LOG(kInfo, "loaded {} tensors from {}", n, path);
//
// The level comes from SLIMLM_LOG_LEVEL (debug, info, warning, error; default warning), or
// SetLogLevel. Kernels never log (STYLE.md rule 4).
#ifndef SLIMLM_CORE_LOG_H_
#define SLIMLM_CORE_LOG_H_

#include <string_view>
#include <utility>

#include <fmt/core.h>

namespace slimlm {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

LogLevel GetLogLevel();
void SetLogLevel(LogLevel level);
// Parses "debug", "info", "warning", "error" or "off"; false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* level);

void LogLine(LogLevel level, std::string_view message);

}  // namespace slimlm

#define SLIMLM_LOG(level, ...)                                                  \
  do {                                                                          \
    if (::slimlm::LogLevel::level >= ::slimlm::GetLogLevel())                   \
      ::slimlm::LogLine(::slimlm::LogLevel::level, ::fmt::format(__VA_ARGS__)); \
  } while (0)

#endif  // SLIMLM_CORE_LOG_H_
