// The compression plans `slimlm optimize` tries on a model, each with the layout it would have
// (for the estimates) and the slimlm command that produces it.
#ifndef SLIMLM_PLAN_CANDIDATES_H_
#define SLIMLM_PLAN_CANDIDATES_H_

#include <string>
#include <vector>

#include "slimlm/formats/weight_store.h"
#include "slimlm/plan/layout.h"

namespace slimlm::plan {

struct Candidate {
  enum class Kind { kSource, kQuantize, kPrune };
  Kind kind = Kind::kSource;
  std::string name;  // "q4_k", "q4_k calibrated", "sparsegpt 2:4 f16_nm", "q8_0, kv q8_0"
  // The file it makes; candidates differing only in kv_type share it.
  std::string model_key;        // "q4_k-cal", "sparsegpt-2-4"
  DType type = DType::kF16;     // Quantization target, or the pruned matrices' storage.
  bool calibrated = false;      // quantize --calib (importance-weighted rounding).
  std::string method;           // Pruning method.
  std::string pattern;          // N:M pattern.
  DType kv_type = DType::kF16;  // KV cache type at run time.
  ModelLayout layout;

  // The slimlm arguments (after the program name) that write this candidate's model from
  // `source` to `out`; empty for the source itself. `calib` is the calibration text.
  std::vector<std::string> ProduceArgs(const std::string& source, const std::string& out,
                                       const std::string& calib, int64_t calib_ctx,
                                       int64_t calib_chunks) const;
};

struct CandidateOptions {
  bool calibrated = true;  // Add calibrated quantization and calibrated pruning.
  bool prune = true;       // Add N:M pruning stored as f16_nm.
  bool kv_q8 = true;       // Add a q8_0 KV cache beside the f16 one.
  // Quantization types to try; empty: f16, bf16, q8_0, q6_k, q4_k and q4_0.
  std::vector<DType> types;
};

// The source as it is, then every quantization type it can be written in (f16, bf16, q8_0,
// q6_k, q4_k, q4_0; calibrated variants of q4_0, q4_k), 2:4 pruning by Wanda and SparseGPT
// stored as f16_nm, each with an f16 and (when the head dimension allows) a q8_0 KV cache.
// Types the source cannot be written in (it is quantized already, or lower precision) are left
// out.
std::vector<Candidate> BuildCandidates(const ModelLayout& layout, const WeightStore& store,
                                       const CandidateOptions& options);

}  // namespace slimlm::plan

#endif  // SLIMLM_PLAN_CANDIDATES_H_
