// The machine limits the estimates divide by (DESIGN.md §4): read bandwidth and compute peaks at
// the thread count a run will use, the last-level cache, and what the runtime itself keeps
// resident. Measured with quick probes (about a second) or read from `slimlm hw --json`.
#ifndef SLIMLM_PLAN_MACHINE_H_
#define SLIMLM_PLAN_MACHINE_H_

#include <cstdint>
#include <string>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm::plan {

struct MachineLimits {
  int threads = 1;
  double bandwidth_gbs = 0;  // Read bandwidth at `threads`.
  double fma_gflops = 0;     // FP32 FMA peak at `threads`.
  double int8_gops = 0;      // Int8 dot-product peak at `threads`.
  uint64_t llc_bytes = 0;    // Last-level data cache (0: unknown).
  // Resident memory of a slimlm process before it loads a model: the binary and its libraries.
  uint64_t runtime_bytes = 0;
  // Bytes of a mapped file the kernel maps in at one page fault: 64 KiB of fault-around, or a
  // whole large folio (up to 2 MiB on recent kernels).
  double fault_window_bytes = 64 * 1024;
  std::string source;  // "quick probes", or the hw JSON file's path.
};

// Quick probes at `threads` (1 or more): 256 MiB read 3 times, short compute runs.
Result<MachineLimits> MeasureMachine(int threads);

// The figures of `slimlm hw --json` (written by --json-file): the 1-thread ones for threads == 1,
// else the all-threads ones, which must have been measured at `threads`.
Result<MachineLimits> MachineFromHwJson(const std::string& path, int threads);

// Measures machine->fault_window_bytes on the model's token embedding, just mapped and not yet
// read: touches a few bytes far apart and counts what became resident. Leaves the default when
// it cannot tell (no /proc, an embedding under 1 MiB).
void MeasureFaultWindow(const WeightStore& store, MachineLimits* machine);

// This process's resident memory now, as the runtime part of an estimate (call it before
// loading any model).
uint64_t RuntimeResidentBytes();

}  // namespace slimlm::plan

#endif  // SLIMLM_PLAN_MACHINE_H_
