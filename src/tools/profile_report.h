// `--profile`: the per-operation report of a run, set against this machine's measured limits.
#ifndef SLIMLM_TOOLS_PROFILE_REPORT_H_
#define SLIMLM_TOOLS_PROFILE_REPORT_H_

#include <cstdio>
#include <string>

#include "slimlm/core/op_profile.h"
#include "slimlm/core/status.h"

namespace slimlm::tools {

// The denominators of the report, measured at the run's thread count.
struct ProfileLimits {
  int threads = 1;
  double read_gbs = 0.0;    // Sustained read bandwidth.
  double fma_gflops = 0.0;  // Peak FP32 multiply-add throughput.
  double int8_gops = 0.0;   // Peak int8 dot-product throughput.
};

// Measures the limits quickly (about half a second).
Result<ProfileLimits> MeasureProfileLimits(int threads);

// A table: operation, calls, time and share, achieved GB/s and GOP/s, and each as a fraction
// of the bandwidth and of the compute peak (int8 peak for quantized matrix products, FP32 peak
// for the rest). `title` names the phase ("prompt", "generation").
std::string FormatProfile(const std::string& title, const OpProfile& profile,
                          const ProfileLimits& limits);

}  // namespace slimlm::tools

#endif  // SLIMLM_TOOLS_PROFILE_REPORT_H_
