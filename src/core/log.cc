#include "slimlm/core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>

namespace slimlm {
namespace {

LogLevel InitialLevel() {
  LogLevel level = LogLevel::kWarning;
  if (const char* env = std::getenv("SLIMLM_LOG_LEVEL")) ParseLogLevel(env, &level);
  return level;
}

std::atomic<LogLevel>& Level() {
  static std::atomic<LogLevel> level{InitialLevel()};
  return level;
}

}  // namespace

LogLevel GetLogLevel() { return Level().load(std::memory_order_relaxed); }
void SetLogLevel(LogLevel level) { Level().store(level, std::memory_order_relaxed); }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  static const std::pair<std::string_view, LogLevel> kLevels[] = {
      {"debug", LogLevel::kDebug},  {"info", LogLevel::kInfo},   {"warning", LogLevel::kWarning},
      {"warn", LogLevel::kWarning}, {"error", LogLevel::kError}, {"off", LogLevel::kOff}};
  for (const auto& [name, value] : kLevels) {
    if (text == name) {
      *level = value;
      return true;
    }
  }
  return false;
}

void LogLine(LogLevel level, std::string_view message) {
  static std::mutex mu;
  const char* tag = level == LogLevel::kDebug     ? "debug"
                    : level == LogLevel::kInfo    ? "info"
                    : level == LogLevel::kWarning ? "warning"
                                                  : "error";
  std::string line = fmt::format("{}: {}\n", tag, message);
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace slimlm
