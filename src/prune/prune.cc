#include "slimlm/prune/prune.h"

#include <array>
#include <cmath>
#include <map>
#include <memory>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/model/config.h"
#include "slimlm/model/model.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::prune {
namespace {

constexpr std::array<const char*, 7> kMatrixSuffixes = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

// The product whose input a matrix multiplies: q, k and v share the attention input, gate and up
// the FFN input, so their statistics are collected once.
const Linear& InputOwner(const LayerWeights& l, std::string_view suffix) {
  if (suffix == "attn_q" || suffix == "attn_k" || suffix == "attn_v") return l.wq;
  if (suffix == "attn_output") return l.wo;
  if (suffix == "ffn_gate" || suffix == "ffn_up") return l.w_gate;
  return l.w_down;
}

// Layer `layer`'s input statistics, measured on the model up to and including it.
Result<quant::ActivationStatistics> MeasureLayer(const WeightStore& store, int64_t layer,
                                                 const PruneOptions& options,
                                                 std::unique_ptr<Model>* model) {
  SLIMLM_ASSIGN_OR_RETURN(*model, Model::FromStore(TruncatedView(store, layer + 1), false));
  const LayerWeights& l = (*model)->layers()[static_cast<size_t>(layer)];
  const bool gram = options.method == PruneMethod::kSparseGpt;
  quant::ActivationStatistics stats;
  for (const char* suffix : {"attn_q", "attn_output", "ffn_gate", "ffn_down"}) {
    stats.Watch(InputOwner(l, suffix), suffix, gram);
  }
  SLIMLM_RETURN_IF_ERROR(quant::RunCalibration(**model, options.calib_tokens, options.calibration,
                                               &stats, [](int64_t, int64_t) {})
                             .status());
  return stats;
}

// Prunes w: (rows, cols) by the method, given its input statistics (null for magnitude) and,
// for SparseGPT, the factor of their Gram matrix.
Status PruneMatrix(float* w, int64_t rows, int64_t cols, const PruneOptions& options,
                   const quant::ActivationStatistics::Entry* input, const SparseGptFactor* factor,
                   ThreadPool* pool) {
  const size_t n = static_cast<size_t>(rows * cols);
  switch (options.method) {
    case PruneMethod::kMagnitude: {
      std::vector<float> score(n);
      for (size_t i = 0; i < n; ++i) score[i] = std::fabs(w[i]);
      PruneByScore(score.data(), rows, cols, options.target, MaskScope::kMatrix, w);
      return Status::Ok();
    }
    case PruneMethod::kWanda: {
      std::vector<float> norm(static_cast<size_t>(cols)), score(n);
      for (int64_t c = 0; c < cols; ++c) norm[c] = static_cast<float>(std::sqrt(input->x2[c]));
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c)
          score[r * cols + c] = std::fabs(w[r * cols + c]) * norm[c];
      }
      PruneByScore(score.data(), rows, cols, options.target, MaskScope::kRow, w);
      return Status::Ok();
    }
    case PruneMethod::kSparseGpt: {
      SparseGptOptions o;
      o.target = options.target;
      o.block_size = options.block_size;
      o.damp = options.damp;
      return SparseGpt(w, rows, *factor, o, pool);
    }
  }
  return InternalError("unknown pruning method");
}

}  // namespace

std::string_view PruneMethodName(PruneMethod method) {
  switch (method) {
    case PruneMethod::kMagnitude:
      return "magnitude";
    case PruneMethod::kWanda:
      return "wanda";
    case PruneMethod::kSparseGpt:
      return "sparsegpt";
  }
  return "unknown";
}

std::optional<PruneMethod> ParsePruneMethod(std::string_view name) {
  for (PruneMethod m : {PruneMethod::kMagnitude, PruneMethod::kWanda, PruneMethod::kSparseGpt}) {
    if (name == PruneMethodName(m)) return m;
  }
  return std::nullopt;
}

int64_t LayerOf(std::string_view name) {
  if (!name.starts_with("blk.")) return -1;
  int64_t layer = 0;
  size_t i = 4;
  // At most 9 digits: no model has a billion layers, and the value cannot overflow.
  for (; i < name.size() && i < 13 && name[i] >= '0' && name[i] <= '9'; ++i) {
    layer = layer * 10 + (name[i] - '0');
  }
  return i > 4 && i < name.size() && name[i] == '.' ? layer : -1;
}

bool IsPrunableMatrix(std::string_view name) {
  const int64_t layer = LayerOf(name);
  if (layer < 0) return false;
  const std::string_view rest = name.substr(name.find('.', 4) + 1);
  for (const char* suffix : kMatrixSuffixes) {
    if (rest == std::string(suffix) + ".weight") return true;
  }
  return false;
}

std::vector<float> TensorF32(const StoredTensor& t) {
  const int64_t cols = t.shape.Cols();
  const int64_t rows = cols > 0 ? t.shape.NumElements() / cols : 0;
  const size_t row_bytes = RowBytes(t.dtype, cols);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    RowToF32(t.dtype, t.data + r * row_bytes, w.data() + r * cols, cols);
  }
  return w;
}

std::vector<std::string> PrunableMatrices(int64_t layer) {
  std::vector<std::string> names;
  for (const char* suffix : kMatrixSuffixes) {
    names.push_back(fmt::format("blk.{}.{}.weight", layer, suffix));
  }
  return names;
}

WeightStore TruncatedView(const WeightStore& store, int64_t n_layers) {
  WeightStore view;
  view.metadata() = store.metadata();
  const std::string arch = store.metadata().GetString("general.architecture").value_or("llama");
  view.metadata().Set(arch + ".block_count", MetaValue::U32(static_cast<uint32_t>(n_layers)));
  for (const StoredTensor& t : store.tensors()) {
    if (LayerOf(t.name) >= n_layers) continue;
    view.AddBorrowed(t.name, t.dtype, t.shape, t.data, t.owner);
  }
  view.source_path = store.source_path;
  view.source_format = store.source_format;
  return view;
}

Result<PruneReport> PruneModel(WeightStore* store, const PruneOptions& options,
                               FunctionRef<void(int64_t, int64_t)> progress) {
  const std::string& source = store->source_path;
  const StoredTensor* embd = store->Find("token_embd.weight");
  if (embd == nullptr) return CorruptError("{}: missing tensor 'token_embd.weight'", source);
  SLIMLM_ASSIGN_OR_RETURN(ModelConfig config,
                          ModelConfig::FromMetadata(store->metadata(), embd->shape[0], source));
  if (NeedsCalibration(options.method) && options.calib_tokens.empty()) {
    return InvalidArgumentError("--method {} needs calibration text (--calib FILE)",
                                PruneMethodName(options.method));
  }
  // Check every matrix before the first is touched.
  for (int64_t l = 0; l < config.n_layers; ++l) {
    for (const std::string& name : PrunableMatrices(l)) {
      const StoredTensor* t = store->Find(name);
      if (t == nullptr) return CorruptError("{}: missing tensor '{}'", source, name);
      SLIMLM_RETURN_IF_ERROR(CheckPatternFits(options.target, t->shape.Cols(), name));
    }
  }
  ThreadPool pool(std::max(1, options.n_threads));
  PruneReport report;
  progress(0, config.n_layers);
  for (int64_t l = 0; l < config.n_layers; ++l) {
    std::unique_ptr<Model> model;
    std::optional<quant::ActivationStatistics> stats;
    std::map<const quant::ActivationStatistics::Entry*, SparseGptFactor> factors;
    if (NeedsCalibration(options.method)) {
      auto measured = MeasureLayer(*store, l, options, &model);
      if (!measured.ok()) return measured.status();
      stats = std::move(*measured);
    }
    for (size_t i = 0; i < kMatrixSuffixes.size(); ++i) {
      const std::string name = fmt::format("blk.{}.{}.weight", l, kMatrixSuffixes[i]);
      const StoredTensor* t = store->Find(name);
      const int64_t rows = t->shape[0], cols = t->shape.Cols();
      std::vector<float> w = TensorF32(*t);
      const quant::ActivationStatistics::Entry* input =
          stats
              ? stats->Find(InputOwner(model->layers()[static_cast<size_t>(l)], kMatrixSuffixes[i]))
              : nullptr;
      if (input != nullptr) report.calib_tokens = input->tokens;
      const SparseGptFactor* factor = nullptr;
      if (options.method == PruneMethod::kSparseGpt) {
        // One factor per input: q, k and v share theirs, as do gate and up.
        auto it = factors.find(input);
        if (it == factors.end()) {
          auto f = FactorGram(input->gram, cols, options.damp, &pool);
          if (!f.ok()) return f.status().WithContext(name);
          it = factors.emplace(input, std::move(*f)).first;
        }
        factor = &it->second;
      }
      Status s = PruneMatrix(w.data(), rows, cols, options, input, factor, &pool);
      if (!s.ok()) return s.WithContext(name);
      const Shape shape = t->shape;
      // The input's mapped pages of this matrix are read and done with: do not keep them
      // resident beside its pruned copy.
      ReleaseMappedPages(t->data, t->nbytes);
      uint8_t* out = store->Replace(name, options.output_type, shape);
      const size_t out_row_bytes = RowBytes(options.output_type, cols);
      for (int64_t r = 0; r < rows; ++r) {
        RowFromF32(options.output_type, w.data() + r * cols, out + r * out_row_bytes, cols);
      }
      PrunedTensor p{name, rows * cols, CountZeros(w.data(), rows * cols)};
      report.elements += p.elements;
      report.zeros += p.zeros;
      report.tensors.push_back(std::move(p));
    }
    progress(l + 1, config.n_layers);
  }
  return report;
}

}  // namespace slimlm::prune
