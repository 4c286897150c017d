// slimlm bench: prompt-processing (pp) and generation (tg) speed in the manner of llama-bench,
// each figure beside the memory bandwidth measured just before and after it.
//
// bench_options.cc turns the flags into a list of tests, bench_runner.cc runs one test,
// bench_report.cc prints Markdown and JSON records with llama-bench's field names.
#ifndef SLIMLM_TOOLS_BENCH_COMMON_H_
#define SLIMLM_TOOLS_BENCH_COMMON_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/op_profile.h"
#include "slimlm/core/status.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/kernels/probe.h"
#include "slimlm/model/model.h"
#include "slimlm/tensor/dtype.h"

namespace slimlm::tools {

// The flags as given: every list is comma-separated, as llama-bench takes them.
struct BenchArgs {
  std::string model;  // -m MODEL
  std::string n_prompt = "512";
  std::string n_gen = "128";
  std::string n_depth = "0";  // -d: cached positions before each test.
  std::string threads;        // Empty: the number of physical cores.
  std::string n_batch;        // Empty: ContextOptions' default.
  std::string type_k;         // Empty: ContextOptions' default.
  std::string type_v;
  std::string flash_attn;  // Empty: ContextOptions' default.
  int reps = 5;
  std::string output = "md";                            // md, json, jsonl
  bool json = false;                                    // Same as -o json.
  std::string json_file;                                // Also write the JSON records here.
  int64_t probe_mib = kernels::kQuickProbeBytes >> 20;  // Probe buffer; 0: no probes.
  int probe_reps = kernels::kQuickProbeReps;
  uint64_t seed = 42;
  bool profile = false;  // --profile: per-operation tables after each test.
  bool no_warmup = false;
  std::vector<std::string> extras;  // What CLI11 left: the model and llama-bench's -fa/-ctk/-ctv.
};

// One test: a prompt of n_prompt tokens (pp) or n_gen generated tokens (tg), never both.
struct BenchTest {
  int threads = 1;
  int64_t n_batch = 0;
  DType type_k = DType::kF32;
  DType type_v = DType::kF32;
  bool flash_attn = true;
  int64_t n_prompt = 0;
  int64_t n_gen = 0;
  int64_t n_depth = 0;  // Positions already in the KV cache when the test starts.

  // "pp512" or "tg128", with " @ d4096" at a depth (as llama-bench names them).
  std::string Name() const;
};

// Reads the model's place in the extras and llama-bench's multi-letter flags, checks every value
// and expands the lists into tests in llama-bench's order (parameters outermost, then the pp
// tests, then the tg tests). Errors are kInvalidArgument (usage).
Result<std::vector<BenchTest>> PlanBenchTests(BenchArgs& args);

// Checks the tests against the model: every KV-cache type fits its head dimension, and every
// prompt or generation fits its context.
Status CheckTestsFitModel(const Model& model, const std::vector<BenchTest>& tests);

// What a model reads and computes per token, for the bounds beside each figure.
struct ModelCosts {
  std::string filename;
  std::string type;   // llama-bench's model_type, e.g. "llama 110M F32".
  uint64_t size = 0;  // Bytes of all tensors.
  int64_t n_params = 0;
  std::string isa;
  // Weight bytes read per generated token: every matrix the forward pass multiplies (the packed
  // copy where the kernels pack), the norm vectors, one embedding row; the token embedding
  // counts whole only when it doubles as the output matrix.
  double weight_bytes_per_token = 0;
  // KV-cache bytes read per cached position and layer, keys plus values, for given types.
  int64_t n_layers = 0;
  int64_t kv_dim = 0;
  // Multiply-adds of the layers' matrices and of the output matrix, per token.
  double layer_macs_per_token = 0;
  double output_macs_per_token = 0;
};

ModelCosts ComputeModelCosts(const Model& model, const std::string& filename);

// KV-cache bytes a tg test reads per token on average: position p reads p + 1 cached rows of
// keys and values in every layer, so n_gen tokens after n_depth cached positions read
// n_depth + (n_gen + 1) / 2 rows on average.
double KvBytesPerToken(const ModelCosts& costs, const BenchTest& test);

// The measurements of one test.
struct BenchRecord {
  BenchTest test;
  std::string test_time;  // ISO 8601, UTC, when the test started.
  std::vector<double> samples_ns;
  std::vector<double> samples_ts;
  double avg_ns = 0, stddev_ns = 0, avg_ts = 0, stddev_ts = 0;
  // Read bandwidth at the test's thread count right before and after it (GB/s; 0: not probed).
  double bw_before = 0, bw_after = 0;
  double bytes_per_token = 0;  // tg: weights plus the average KV cache read.
  double bound_ts = 0;         // tg: mean(bw_before, bw_after) / bytes_per_token; 0: none.
  double matmul_gflops = 0;    // Achieved, counting the weight matrix products only.
  // Resident memory right after the timed runs (model, packed weights, this test's context),
  // less the bandwidth probe's buffer; 0: unknown.
  int64_t rss_bytes = 0;
  // The process's peak resident memory so far (loading included), less the probe's buffer; with
  // probes off (--probe-mib 0) exactly the peak a user would see. 0: unknown.
  int64_t peak_rss_bytes = 0;
  // The process's resident memory before the model was loaded: the binary and its libraries,
  // what any model costs on top of. 0: unknown.
  int64_t runtime_rss_bytes = 0;
  OpProfile profile;  // --profile: the operations of the timed runs.
};

// Runs tests on one model. Keeps one Context per test (reset between repetitions, as
// llama-bench clears its KV cache) and one bandwidth probe buffer for all of them.
class BenchRunner {
 public:
  BenchRunner(const Model& model, const ModelCosts& costs, const BenchArgs& args);
  ~BenchRunner();

  // Makes the probe buffer (when probes are on).
  Status Init();
  // A warm-up run (unless disabled), then args.reps timed runs; progress(done, total) after
  // each run.
  Result<BenchRecord> Run(const BenchTest& test, FunctionRef<void(int64_t, int64_t)> progress);

 private:
  double ProbeBandwidth(int threads);

  const Model& model_;
  const ModelCosts& costs_;
  const BenchArgs& args_;
  std::unique_ptr<kernels::ReadBandwidthProbe> probe_;
  std::map<int, std::unique_ptr<ThreadPool>> probe_pools_;
};

// Output.
std::string MarkdownHeader();
std::string MarkdownRow(const ModelCosts& costs, const BenchRecord& r);
nlohmann::json RecordJson(const ModelCosts& costs, const BenchRecord& r);

}  // namespace slimlm::tools

#endif  // SLIMLM_TOOLS_BENCH_COMMON_H_
