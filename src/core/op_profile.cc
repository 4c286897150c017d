#include "slimlm/core/op_profile.h"

namespace slimlm {

void OpProfile::Add(std::string_view name, double seconds, double bytes, double ops) {
  for (OpStats& s : stats_) {
    if (s.name == name) {
      ++s.calls;
      s.seconds += seconds;
      s.bytes += bytes;
      s.ops += ops;
      return;
    }
  }
  stats_.push_back({std::string(name), 1, seconds, bytes, ops});
}

double OpProfile::TotalSeconds() const {
  double total = 0.0;
  for (const OpStats& s : stats_) total += s.seconds;
  return total;
}

}  // namespace slimlm
