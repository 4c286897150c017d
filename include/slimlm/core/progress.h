// Progress of a long task, for humans.
//
// On a terminal: one line redrawn in place, "label [#####.....] 45% 123/270 tok 12.3 tok/s
// ETA 0:12". Elsewhere (a pipe, a log file, CI): a plain line at most every few seconds and at
// the end, so logs stay short. Quiet mode prints nothing. Not thread-safe: update from one thread.
#ifndef SLIMLM_CORE_PROGRESS_H_
#define SLIMLM_CORE_PROGRESS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "slimlm/core/timer.h"

namespace slimlm {

class Progress {
 public:
  enum class Mode { kAuto, kTerminal, kPlain, kQuiet };

  // total may be 0 when unknown (no bar, no ETA). unit names what is counted ("tok", "MiB").
  Progress(std::string label, int64_t total, std::string unit = "", Mode mode = Mode::kAuto,
           FILE* out = stderr);
  ~Progress();  // Calls Finish() if not yet done.

  void Update(int64_t done);
  void Add(int64_t delta) { Update(done_ + delta); }
  void Finish();

  // Formats seconds as "m:ss" or "h:mm:ss".
  static std::string FormatDuration(double seconds);
  // The text of one progress line (no carriage return), exposed for tests.
  static std::string FormatLine(const std::string& label, int64_t done, int64_t total,
                                const std::string& unit, double elapsed_seconds, int bar_width);

 private:
  void Draw(bool final_line);

  std::string label_;
  int64_t total_;
  std::string unit_;
  Mode mode_;
  FILE* out_;
  int64_t done_ = 0;
  Timer timer_;
  double last_draw_ = -1e9;
  bool finished_ = false;
};

}  // namespace slimlm

#endif  // SLIMLM_CORE_PROGRESS_H_
