#include "slimlm/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include <fmt/core.h>

namespace slimlm {

Progress::Progress(std::string label, int64_t total, std::string unit, Mode mode, FILE* out)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)), mode_(mode), out_(out) {
  if (mode_ == Mode::kAuto) mode_ = ::isatty(::fileno(out_)) ? Mode::kTerminal : Mode::kPlain;
}

Progress::~Progress() { Finish(); }

std::string Progress::FormatDuration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?:??";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string Progress::FormatLine(const std::string& label, int64_t done, int64_t total,
                                 const std::string& unit, double elapsed, int bar_width) {
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  std::string unit_text = unit.empty() ? "" : " " + unit;
  std::string line = label;
  if (total > 0) {
    double frac = std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0);
    if (bar_width > 0) {
      int filled = static_cast<int>(frac * bar_width);
      line += " [" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "]";
    }
    line += fmt::format(" {:3.0f}% {}/{}{}", frac * 100.0, done, total, unit_text);
  } else {
    line += fmt::format(" {}{}", done, unit_text);
  }
  line += fmt::format(" {:.1f}{}/s", rate, unit.empty() ? "" : " " + unit);
  if (total > 0 && rate > 0 && done < total) {
    line += " ETA " + FormatDuration(static_cast<double>(total - done) / rate);
  } else {
    line += " in " + FormatDuration(elapsed);
  }
  return line;
}

void Progress::Update(int64_t done) {
  done_ = done;
  double now = timer_.Seconds();
  double interval = mode_ == Mode::kTerminal ? 0.1 : 5.0;
  if (now - last_draw_ >= interval) {
    last_draw_ = now;
    Draw(false);
  }
}

void Progress::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void Progress::Draw(bool final_line) {
  if (mode_ == Mode::kQuiet) return;
  std::string line =
      FormatLine(label_, done_, total_, unit_, timer_.Seconds(), mode_ == Mode::kTerminal ? 30 : 0);
  if (mode_ == Mode::kTerminal) {
    fmt::print(out_, "\r\033[K{}{}", line, final_line ? "\n" : "");
  } else {
    fmt::print(out_, "{}\n", line);
  }
  std::fflush(out_);
}

}  // namespace slimlm
