// The memory and speed model of a run, from a layout and the machine's limits, before anything
// runs (docs/optimize.md explains each term and how close it comes to `slimlm bench`).
//
// Memory is what the process holds resident:
//   - the weights as the kernels read them: each matrix's packed copy where the kernel path
//     packs (in one huge-page buffer), else its pages of the mapped file; the norms as f32;
//   - the token embedding's rows, read from the mapped file as tokens need them: the kernel maps
//     a 64 KiB window of the file around each row it faults in, so a run that has seen T tokens
//     holds about the windows T random rows touch (all of it, in time, for a long-running server);
//   - the KV cache of every sequence, and its scratch buffers (activations of one step of n_batch
//     tokens, attention scratch per thread, logits);
//   - the runtime: the binary and libraries (measured) and the tokenizer.
// Decode speed: each token reads every weight matrix once and the KV cache up to its position,
// so tokens/s = bandwidth / bytes per token, scaled by the fraction of that bound each weight
// type's kernel reaches (measured, docs/performance.md). Prefill: multiply-adds per token over the
// compute peak of the unit each type runs on (FP32 FMA or int8 dot products), scaled likewise.
#ifndef SLIMLM_PLAN_ESTIMATE_H_
#define SLIMLM_PLAN_ESTIMATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "slimlm/plan/layout.h"
#include "slimlm/plan/machine.h"

namespace slimlm::plan {

struct Workload {
  int64_t ctx = 0;        // KV-cache positions per sequence; 0: the model's context length.
  int64_t batch = 1;      // Sequences, each with its own KV cache and scratch.
  int64_t n_batch = 256;  // Tokens per forward step (ContextOptions' default).
  DType kv_type = DType::kF16;
  bool all_logits = false;  // Logits of every token of a step (perplexity).
  // Tokens whose embedding rows the run has read; 0: ctx * batch.
  int64_t tokens_seen = 0;
  int64_t n_gen = 128;  // Generated tokens of the tg figure, from an empty cache (as bench -n).
};

struct MemoryPart {
  std::string name;    // "weights q4_k", "token embedding", "KV cache", ...
  std::string detail;  // How it was counted.
  double bytes = 0;
};

struct RunEstimate {
  int64_t ctx = 0;
  std::vector<MemoryPart> parts;
  double total_bytes = 0;    // Everything resident: the process's peak.
  double runtime_bytes = 0;  // The binary and libraries, in total_bytes.
  double model_bytes() const { return total_bytes - runtime_bytes; }
  double weight_bytes_per_token = 0;
  double kv_bytes_per_token = 0;  // At the tg figure's average position.
  double tg_bound = 0;            // bandwidth / bytes per token, tokens/s.
  double tg = 0;                  // Expected tokens/s generating n_gen tokens.
  double tg_full_ctx = 0;         // Expected tokens/s with the cache full (ctx positions).
  double pp = 0;                  // Expected prompt tokens/s (a prompt of ctx tokens).
  bool cache_resident = false;    // The weights fit in the last-level cache.
};

// The fraction of the bandwidth bound decode reaches with matrices of this type, and the fraction
// of its unit's peak prefill reaches.
double DecodeEfficiency(DType type);
double PrefillEfficiency(DType type);

Result<RunEstimate> EstimateRun(const ModelLayout& layout, const Workload& workload,
                                const MachineLimits& machine);

// The largest context (a multiple of 256, at most the model's) whose estimate at this batch
// fits `memory_bytes` of model memory (total less runtime); 0 when none does.
int64_t LargestContext(const ModelLayout& layout, Workload workload, const MachineLimits& machine,
                       double memory_bytes);
// The largest batch at the workload's context that fits; 0 when none does.
int64_t LargestBatch(const ModelLayout& layout, Workload workload, const MachineLimits& machine,
                     double memory_bytes);

}  // namespace slimlm::plan

#endif  // SLIMLM_PLAN_ESTIMATE_H_
