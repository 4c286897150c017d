// slimlm bench: what a model costs per token, and running one test.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <random>

#include <fmt/core.h>

#include "slimlm/core/memory_usage.h"
#include "slimlm/core/timer.h"
#include "slimlm/model/context.h"
#include "tools/bench_common.h"

namespace slimlm::tools {
namespace {

// Bytes the kernels read for one matrix: its packed copy when there is one, else the file's.
double MatrixBytes(const Model& model, const Linear& linear) {
  const kernels::KernelTable& k = model.kernels();
  if (linear.matrix.packed && k.packed_bytes != nullptr) {
    const size_t packed =
        k.packed_bytes(linear.matrix.dtype, linear.matrix.rows, linear.matrix.cols);
    if (packed > 0) return static_cast<double>(packed);
  }
  return static_cast<double>(linear.weight.nbytes());
}

// "110M", "1.1B": parameters the way model names give them.
std::string ParamsLabel(int64_t n) {
  const double x = static_cast<double>(n);
  if (x >= 1e9) return fmt::format("{:.1f}B", x / 1e9);
  if (x >= 1e6) return fmt::format("{:.0f}M", x / 1e6);
  return fmt::format("{:.0f}K", x / 1e3);
}

// The type holding most of the matrix bytes, upper case like llama.cpp's file types ("Q4_0").
std::string DominantType(const Model& model) {
  std::map<DType, size_t> bytes;
  for (const StoredTensor& t : model.store().tensors()) {
    if (t.shape.rank() >= 2) bytes[t.dtype] += t.nbytes;
  }
  DType best = DType::kF32;
  size_t most = 0;
  for (const auto& [type, n] : bytes) {
    if (n > most) best = type, most = n;
  }
  std::string name(DTypeName(best));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

// llama-bench's statistics: the mean and the sample standard deviation (0 for one sample).
void MeanAndStddev(const std::vector<double>& v, double* mean, double* stddev) {
  double sum = 0;
  for (double x : v) sum += x;
  *mean = v.empty() ? 0.0 : sum / static_cast<double>(v.size());
  double squares = 0;
  for (double x : v) squares += (x - *mean) * (x - *mean);
  *stddev = v.size() > 1 ? std::sqrt(squares / static_cast<double>(v.size() - 1)) : 0.0;
}

}  // namespace

ModelCosts ComputeModelCosts(const Model& model, const std::string& filename) {
  const ModelConfig& c = model.config();
  ModelCosts costs;
  costs.filename = filename;
  costs.size = model.WeightBytes();
  costs.n_params = model.ParameterCount();
  costs.type = fmt::format("{} {} {}", ArchitectureName(c.arch), ParamsLabel(costs.n_params),
                           DominantType(model));
  costs.isa = std::string(kernels::IsaName(model.kernels().isa));
  costs.n_layers = c.n_layers;
  costs.kv_dim = c.kv_dim();
  double bytes = 0;
  for (const LayerWeights& l : model.layers()) {
    for (const Linear* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      bytes += MatrixBytes(model, *m);
      costs.layer_macs_per_token += static_cast<double>(m->matrix.rows * m->matrix.cols);
    }
  }
  const Linear& out = model.output();
  bytes += MatrixBytes(model, out);
  costs.output_macs_per_token = static_cast<double>(out.matrix.rows * out.matrix.cols);
  // Tied: the embedding row read for the input token is part of the output matrix.
  if (!model.tied_embeddings()) bytes += static_cast<double>(model.token_embd().row_bytes());
  // Norm weights and biases, f32 once loaded.
  for (const StoredTensor& t : model.store().tensors()) {
    if (t.shape.rank() == 1) bytes += 4.0 * static_cast<double>(t.shape.NumElements());
  }
  costs.weight_bytes_per_token = bytes;
  return costs;
}

double KvBytesPerToken(const ModelCosts& costs, const BenchTest& test) {
  const double row = static_cast<double>(RowBytes(test.type_k, costs.kv_dim) +
                                         RowBytes(test.type_v, costs.kv_dim));
  return row * static_cast<double>(costs.n_layers) *
         (static_cast<double>(test.n_depth) + static_cast<double>(test.n_gen + 1) / 2.0);
}

BenchRunner::BenchRunner(const Model& model, const ModelCosts& costs, const BenchArgs& args)
    : model_(model), costs_(costs), args_(args) {}

BenchRunner::~BenchRunner() = default;

Status BenchRunner::Init() {
  if (args_.probe_mib <= 0) return Status::Ok();
  ThreadPool pool(kernels::UsableCpuCount());
  SLIMLM_ASSIGN_OR_RETURN(probe_, kernels::ReadBandwidthProbe::Create(
                                      pool, static_cast<size_t>(args_.probe_mib) << 20));
  return Status::Ok();
}

double BenchRunner::ProbeBandwidth(int threads) {
  if (!probe_) return 0.0;
  std::unique_ptr<ThreadPool>& pool = probe_pools_[threads];
  if (!pool) pool = std::make_unique<ThreadPool>(threads);
  return probe_->Measure(*pool, args_.probe_reps).best;
}

Result<BenchRecord> BenchRunner::Run(const BenchTest& test,
                                     FunctionRef<void(int64_t, int64_t)> progress) {
  ContextOptions options;
  options.n_ctx = std::max<int64_t>(1, test.n_depth + test.n_prompt + test.n_gen);
  options.n_threads = test.threads;
  options.n_batch = test.n_batch;
  options.kv_type_k = test.type_k;
  options.kv_type_v = test.type_v;
  options.flash_attention = test.flash_attn;
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::Create(model_, options));
  // Random token ids, the same for every run of a test (llama-bench also feeds random tokens).
  std::mt19937_64 rng(args_.seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(model_.config().n_vocab) - 1);
  std::vector<int32_t> tokens(static_cast<size_t>(std::max(test.n_prompt, test.n_gen)));
  for (int32_t& t : tokens) t = pick(rng);
  // The depth is filled once, untimed; each run then starts from it (llama-bench's -d).
  if (test.n_depth > 0) {
    std::vector<int32_t> depth(static_cast<size_t>(test.n_depth));
    for (int32_t& t : depth) t = pick(rng);
    SLIMLM_RETURN_IF_ERROR(ctx->Eval(depth));
  }
  // One run: the whole prompt in one Eval (split into n_batch steps inside), or n_gen
  // single-token Evals, after the depth, as llama-bench's tg does.
  auto run = [&](int64_t n_gen) -> Result<double> {
    ctx->Truncate(test.n_depth);
    Timer timer;
    if (test.n_prompt > 0) {
      SLIMLM_RETURN_IF_ERROR(ctx->Eval(tokens));
    } else {
      for (int64_t i = 0; i < n_gen; ++i) {
        SLIMLM_RETURN_IF_ERROR(ctx->Eval(std::span<const int32_t>(&tokens[i], 1)));
      }
    }
    return timer.Seconds();
  };
  const int64_t total = args_.reps + (args_.no_warmup ? 0 : 1);
  if (!args_.no_warmup) {
    // As llama-bench: the whole prompt, or a single generated token. It pages the weights in.
    SLIMLM_RETURN_IF_ERROR(run(1).status());
    progress(1, total);
  }
  BenchRecord r;
  r.test = test;
  r.test_time = UtcNow();
  // Only the timed runs are profiled: not the depth's prefill, not the warm-up.
  if (args_.profile) ctx->set_profile(&r.profile);
  r.bw_before = ProbeBandwidth(test.threads);
  const double n_tokens = static_cast<double>(test.n_prompt + test.n_gen);
  for (int rep = 0; rep < args_.reps; ++rep) {
    SLIMLM_ASSIGN_OR_RETURN(double seconds, run(test.n_gen));
    r.samples_ns.push_back(seconds * 1e9);
    r.samples_ts.push_back(n_tokens / seconds);
    progress(total - args_.reps + rep + 1, total);
  }
  ctx->set_profile(nullptr);
  // Measured while this test's context still exists; the probe's buffer is not the model's.
  const int64_t probe_bytes = probe_ ? args_.probe_mib << 20 : 0;
  const MemoryUsage memory = ReadMemoryUsage();
  r.rss_bytes = std::max<int64_t>(0, memory.rss_bytes - probe_bytes);
  r.peak_rss_bytes = std::max<int64_t>(r.rss_bytes, memory.peak_rss_bytes - probe_bytes);
  r.bw_after = ProbeBandwidth(test.threads);
  MeanAndStddev(r.samples_ns, &r.avg_ns, &r.stddev_ns);
  MeanAndStddev(r.samples_ts, &r.avg_ts, &r.stddev_ts);
  // Logits come out for the last token of each Eval only: one output product per run in pp,
  // one per token in tg.
  const double macs = costs_.layer_macs_per_token * n_tokens +
                      costs_.output_macs_per_token * (test.n_prompt > 0 ? 1.0 : n_tokens);
  r.matmul_gflops = 2.0 * macs / (r.avg_ns * 1e-9) / 1e9;
  if (test.n_gen > 0) {
    r.bytes_per_token = costs_.weight_bytes_per_token + KvBytesPerToken(costs_, test);
    const double bw = 0.5 * (r.bw_before + r.bw_after) * 1e9;
    r.bound_ts = bw > 0 ? bw / r.bytes_per_token : 0.0;
  }
  return r;
}

}  // namespace slimlm::tools
