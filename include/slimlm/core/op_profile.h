// Time, bytes moved and floating-point (or integer) operations per kind of operation, collected
// by the forward pass when profiling is on (`--profile`). A profile only adds; it is read after
// the run. Not thread-safe: one profile per Context, updated from the thread that runs it.
#ifndef SLIMLM_CORE_OP_PROFILE_H_
#define SLIMLM_CORE_OP_PROFILE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slimlm {

struct OpStats {
  std::string name;  // "matmul q4_0", "attention", "rms_norm", ...
  int64_t calls = 0;
  double seconds = 0.0;
  double bytes = 0.0;  // Bytes read and written (weights, activations, KV cache).
  double ops = 0.0;    // Multiply-adds count as two operations.
};

class OpProfile {
 public:
  // Adds one call of `name` (a string that outlives the profile, usually a literal).
  void Add(std::string_view name, double seconds, double bytes, double ops);
  const std::vector<OpStats>& stats() const { return stats_; }
  double TotalSeconds() const;
  void Reset() { stats_.clear(); }

 private:
  std::vector<OpStats> stats_;
};

// Times a scope and adds it to a profile on destruction; does nothing when the profile is null.
class ScopedOp {
 public:
  ScopedOp(OpProfile* profile, std::string_view name, double bytes, double ops)
      : profile_(profile), name_(name), bytes_(bytes), ops_(ops) {
    if (profile_ != nullptr) start_ = std::chrono::steady_clock::now();
  }
  ~ScopedOp() {
    if (profile_ == nullptr) return;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    profile_->Add(name_, seconds, bytes_, ops_);
  }
  ScopedOp(const ScopedOp&) = delete;
  ScopedOp& operator=(const ScopedOp&) = delete;

 private:
  OpProfile* profile_;
  std::string_view name_;
  double bytes_;
  double ops_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace slimlm

#endif  // SLIMLM_CORE_OP_PROFILE_H_
