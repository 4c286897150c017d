#include "slimlm/plan/estimate.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/core.h>

#include "slimlm/kernels/kernels.h"

namespace slimlm::plan {
namespace {

// Each packed matrix starts on a 64-byte boundary of the packed buffer.
constexpr uint64_t kPackAlign = 64;
// The tokenizer's pieces, scores, lookup tables and the header pages it is read from, per entry
// of the vocabulary (fitted to the 32000-entry Llama vocabularies: 2.7 MiB).
constexpr double kTokenizerBytesPerEntry = 90;
// How much faster than the memory stream decode runs when every weight stays in the last-level
// cache (the bundled 6 M-parameter model).
constexpr double kCacheSpeedup = 2.0;

bool RunsOnIntegerUnits(DType type) {
  return type == DType::kQ8_0 || type == DType::kQ4_0 || type == DType::kQ4_K ||
         type == DType::kQ6_K;
}

// The bytes a matrix occupies while the model runs: its packed copy, or the mapped file's pages.
uint64_t ResidentMatrixBytes(const TensorInfo& t) {
  const kernels::KernelTable& k = kernels::Kernels();
  uint64_t bytes = k.packed_bytes(t.dtype, t.rows(), t.cols());
  if (bytes == 0) bytes = t.bytes();
  return (bytes + kPackAlign - 1) / kPackAlign * kPackAlign;
}

// Expected bytes of the embedding's windows that `tokens` random rows fault in.
double TouchedEmbeddingBytes(const TensorInfo& embd, double tokens, double window) {
  const double total = static_cast<double>(embd.bytes());
  const double windows = std::max(1.0, std::ceil(total / window));
  const double touched = windows * (1.0 - std::pow(1.0 - 1.0 / windows, tokens));
  return std::min(total, touched * window);
}

std::string Mib(double bytes) { return fmt::format("{:.2f} MiB", bytes / (1 << 20)); }

}  // namespace

double DecodeEfficiency(DType type) {
  switch (type) {
    case DType::kF32:
      return 0.85;
    case DType::kF16:
      return 0.78;
    case DType::kBF16:
      return 0.75;
    case DType::kQ8_0:
      return 0.87;
    case DType::kQ4_0:
      return 0.87;
    case DType::kQ4_K:
      return 0.83;
    case DType::kQ6_K:
      return 0.84;
    case DType::kF16NM:
      return 0.55;  // Decoding the masks costs compute the stream cannot hide.
    default:
      return 0.75;
  }
}

double PrefillEfficiency(DType type) {
  switch (type) {
    case DType::kF32:
      return 0.85;
    case DType::kF16:
      return 0.95;
    case DType::kBF16:
      return 0.85;
    case DType::kQ8_0:
      return 0.50;
    case DType::kQ4_0:
      return 0.49;
    case DType::kQ4_K:
      return 0.41;
    case DType::kQ6_K:
      return 0.38;
    case DType::kF16NM:
      return 0.50;
    default:
      return 0.5;
  }
}

Result<RunEstimate> EstimateRun(const ModelLayout& layout, const Workload& workload,
                                const MachineLimits& machine) {
  const ModelConfig& c = layout.config;
  RunEstimate e;
  e.ctx = workload.ctx > 0 ? workload.ctx : c.context_length;
  if (e.ctx <= 0 || workload.batch <= 0 || workload.n_batch <= 0) {
    return InvalidArgumentError("context {}, batch {} and step {} must be positive", e.ctx,
                                workload.batch, workload.n_batch);
  }
  if (!(machine.bandwidth_gbs > 0) || !(machine.fma_gflops > 0) || !(machine.int8_gops > 0)) {
    return InvalidArgumentError("the machine's limits are not known");
  }
  const kernels::KernelTable& k = kernels::Kernels();
  const double batch = static_cast<double>(workload.batch);

  // Weights, by type, and the decode and prefill cost of each matrix.
  std::map<DType, double> weights;
  const TensorInfo* embd = nullptr;
  double decode_seconds = 0;   // Per token, weights only.
  double prefill_seconds = 0;  // Per token.
  double vectors = 0;
  size_t max_activation_row = 0;
  for (const TensorInfo& t : layout.tensors) {
    switch (t.role) {
      case TensorRole::kEmbedding:
        embd = &t;
        if (!layout.tied_embeddings) break;
        [[fallthrough]];  // Tied: it is also the output matrix, packed like one.
      case TensorRole::kLayerMatrix:
      case TensorRole::kOutput: {
        const double bytes = static_cast<double>(ResidentMatrixBytes(t));
        weights[t.dtype] += bytes;
        e.weight_bytes_per_token += bytes;
        decode_seconds += bytes / (machine.bandwidth_gbs * 1e9 * DecodeEfficiency(t.dtype));
        const double peak = RunsOnIntegerUnits(t.dtype) ? machine.int8_gops : machine.fma_gflops;
        const double macs = static_cast<double>(t.rows()) * static_cast<double>(t.cols());
        // The output matrix runs once per step in prefill, not once per token.
        const bool output = t.role != TensorRole::kLayerMatrix;
        const double per_token = output ? 1.0 / static_cast<double>(workload.n_batch) : 1.0;
        prefill_seconds += per_token * 2.0 * macs / (peak * 1e9 * PrefillEfficiency(t.dtype));
        max_activation_row =
            std::max(max_activation_row, k.activation_row_bytes(t.dtype, t.cols()));
        break;
      }
      case TensorRole::kVector:
      case TensorRole::kOther:
        vectors += 4.0 * static_cast<double>(t.shape.NumElements());
        break;
    }
  }
  if (embd == nullptr) return InvalidArgumentError("{}: no token embedding", layout.source);
  for (const auto& [type, bytes] : weights) {
    e.parts.push_back({fmt::format("weights {}", DTypeName(type)),
                       "matrices as the kernels read them (packed copies where they pack)", bytes});
  }
  e.parts.push_back({"norms", "vectors, held as f32", vectors});
  e.weight_bytes_per_token += vectors;
  if (!layout.tied_embeddings)
    e.weight_bytes_per_token += static_cast<double>(RowBytes(embd->dtype, embd->cols()));

  const double seen = workload.tokens_seen > 0 ? static_cast<double>(workload.tokens_seen)
                                               : static_cast<double>(e.ctx) * batch;
  const double window = std::max(4096.0, machine.fault_window_bytes);
  const double embd_bytes = TouchedEmbeddingBytes(*embd, seen, window);
  e.parts.push_back(
      {"token embedding",
       fmt::format("rows read from the file as tokens need them: {:.0f} tokens "
                   "touch {} of {} ({:.0f} KiB mapped per fault)",
                   seen, Mib(embd_bytes), Mib(static_cast<double>(embd->bytes())), window / 1024),
       embd_bytes});

  // KV cache: keys and values of every layer at every position, per sequence.
  const double kv_row = static_cast<double>(RowBytes(workload.kv_type, c.head_dim));
  const double kv_per_position = 2.0 * static_cast<double>(c.n_layers * c.n_kv_heads) * kv_row;
  const double kv_bytes = kv_per_position * static_cast<double>(e.ctx) * batch;
  e.parts.push_back({"KV cache",
                     fmt::format("{} positions x {} sequence{}, {}", e.ctx, workload.batch,
                                 workload.batch == 1 ? "" : "s", DTypeName(workload.kv_type)),
                     kv_bytes});

  // Scratch: what Context::Create allocates for one step of b tokens.
  const int64_t b = std::min(workload.n_batch, e.ctx);
  const double floats_per_token =
      3.0 * static_cast<double>(c.dim) + 2.0 * static_cast<double>(c.q_dim()) +
      2.0 * static_cast<double>(c.kv_dim()) + 2.0 * static_cast<double>(c.ffn_dim) +
      static_cast<double>(c.rope_dim);
  const double attention = static_cast<double>(machine.threads) *
                           static_cast<double>(kernels::AttentionScratchFloats(
                               c.n_heads / std::max<int64_t>(1, c.n_kv_heads), c.head_dim, 0));
  const double logits =
      static_cast<double>(c.n_vocab) * static_cast<double>(workload.all_logits ? b : 1);
  const double scratch = (4.0 * (static_cast<double>(b) * floats_per_token + attention + logits) +
                          static_cast<double>(b) * static_cast<double>(max_activation_row)) *
                         batch;
  e.parts.push_back(
      {"activations", fmt::format("scratch for steps of {} tokens, per sequence", b), scratch});

  // The header is read whole at load, and stays mapped in windows.
  const double header = std::ceil(static_cast<double>(layout.header_bytes) / window) * window;
  e.parts.push_back({"file header",
                     fmt::format("metadata read at load, {} in {:.0f} KiB windows",
                                 Mib(static_cast<double>(layout.header_bytes)), window / 1024),
                     header});
  e.runtime_bytes = static_cast<double>(machine.runtime_bytes);
  const double tokenizer = kTokenizerBytesPerEntry * static_cast<double>(c.n_vocab);
  e.parts.push_back({"tokenizer", fmt::format("{} entries", c.n_vocab), tokenizer});
  e.parts.push_back({"runtime", "the binary and its libraries, measured", e.runtime_bytes});
  for (const MemoryPart& p : e.parts) e.total_bytes += p.bytes;

  // Decode: the weights, then the cache rows read at the average position of n_gen tokens.
  e.cache_resident = machine.llc_bytes > 0 &&
                     e.weight_bytes_per_token < 0.8 * static_cast<double>(machine.llc_bytes);
  if (e.cache_resident) decode_seconds /= kCacheSpeedup;
  const double bw = machine.bandwidth_gbs * 1e9;
  e.kv_bytes_per_token = kv_per_position * static_cast<double>(workload.n_gen + 1) / 2.0;
  e.tg_bound = bw / (e.weight_bytes_per_token + e.kv_bytes_per_token);
  e.tg = 1.0 / (decode_seconds + e.kv_bytes_per_token / bw);
  e.tg_full_ctx = 1.0 / (decode_seconds + kv_per_position * static_cast<double>(e.ctx) / bw);
  // Prefill: the products, plus attention over half the prompt on average (q.k and p.v).
  const double attention_flops = 4.0 * static_cast<double>(e.ctx) / 2.0 *
                                 static_cast<double>(c.q_dim()) * static_cast<double>(c.n_layers);
  e.pp = 1.0 / (prefill_seconds + attention_flops / (machine.fma_gflops * 1e9 * 0.5));
  return e;
}

int64_t LargestContext(const ModelLayout& layout, Workload workload, const MachineLimits& machine,
                       double memory_bytes) {
  int64_t best = 0;
  const int64_t limit = std::max<int64_t>(layout.config.context_length, 1);
  const int64_t step = std::min<int64_t>(256, limit);
  for (int64_t ctx = step; ctx <= limit; ctx += step) {
    workload.ctx = ctx;
    Result<RunEstimate> e = EstimateRun(layout, workload, machine);
    if (!e.ok() || e->model_bytes() > memory_bytes) break;
    best = ctx;
  }
  return best;
}

int64_t LargestBatch(const ModelLayout& layout, Workload workload, const MachineLimits& machine,
                     double memory_bytes) {
  int64_t best = 0;
  for (int64_t batch = 1; batch <= 4096; batch *= 2) {
    workload.batch = batch;
    Result<RunEstimate> e = EstimateRun(layout, workload, machine);
    if (!e.ok() || e->model_bytes() > memory_bytes) break;
    best = batch;
  }
  if (best == 0) return 0;
  // Refine between best and 2 * best.
  for (int64_t batch = best + 1; batch < 2 * best; ++batch) {
    workload.batch = batch;
    Result<RunEstimate> e = EstimateRun(layout, workload, machine);
    if (!e.ok() || e->model_bytes() > memory_bytes) break;
    best = batch;
  }
  return best;
}

}  // namespace slimlm::plan
