#include "slimlm/prune/structured.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include <fmt/core.h>

#include "slimlm/eval/perplexity.h"
#include "slimlm/model/model.h"
#include "slimlm/prune/prune.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::prune {
namespace {

// Which heads, key/value groups and FFN channels each kept layer keeps, ascending.
struct LayerKeep {
  std::vector<int64_t> heads;   // Query heads, group by group (the order GQA needs).
  std::vector<int64_t> groups;  // Key/value heads.
  std::vector<int64_t> ffn;     // FFN channels.
};

// Indices of the `keep` highest scores, ascending (ties: the earlier index stays).
std::vector<int64_t> TopIndices(const std::vector<double>& score, int64_t keep) {
  std::vector<int64_t> index(score.size());
  std::iota(index.begin(), index.end(), 0);
  std::stable_sort(index.begin(), index.end(),
                   [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  index.resize(static_cast<size_t>(keep));
  std::sort(index.begin(), index.end());
  return index;
}

// The (kv groups, heads per group) kept: kv' * g' nearest the requested head count, at least one
// head removed; ties go to keeping whole groups (larger g'), which shrinks the KV cache too.
Result<std::pair<int64_t, int64_t>> HeadShape(const ModelConfig& c, double ratio) {
  const int64_t group = c.n_heads / c.n_kv_heads;
  const double want = static_cast<double>(c.n_heads) * (1.0 - ratio);
  std::pair<int64_t, int64_t> best{0, 0};
  double best_gap = 0;
  for (int64_t g = group; g >= 1; --g) {
    for (int64_t kv = c.n_kv_heads; kv >= 1; --kv) {
      if (kv * g >= c.n_heads) continue;
      const double gap = std::fabs(static_cast<double>(kv * g) - want);
      if (best.first == 0 || gap < best_gap - 1e-9) {
        best = {kv, g};
        best_gap = gap;
      }
    }
  }
  if (best.first == 0) {
    return InvalidArgumentError("heads={:g}: the model has a single head; none can be removed",
                                ratio);
  }
  return best;
}

Result<std::vector<float>> MatrixF32(const WeightStore& store, const std::string& name) {
  const StoredTensor* t = store.Find(name);
  if (t == nullptr) return CorruptError("{}: missing tensor '{}'", store.source_path, name);
  return TensorF32(*t);
}

// sum over rows of w[r][c]^2 for each column c.   w: (rows, cols)
std::vector<double> ColumnNorms2(const std::vector<float>& w, int64_t cols) {
  std::vector<double> norm(static_cast<size_t>(cols), 0.0);
  for (size_t i = 0; i < w.size(); ++i) norm[i % cols] += double{w[i]} * w[i];
  return norm;
}

// A copy of t keeping the listed rows (index runs of `run` rows each) or, with by_column, the
// listed columns: the bytes are moved as they are (float types only).
void AddSelected(WeightStore* out, const std::string& name, const StoredTensor& t,
                 const std::vector<int64_t>& keep, int64_t run, bool by_column) {
  const size_t elem = t.dtype == DType::kF32 ? 4 : 2;
  const int64_t rows = t.shape.rank() == 2 ? t.shape[0] : 1, cols = t.shape.Cols();
  const auto kept = static_cast<int64_t>(keep.size()) * run;
  const bool vector = t.shape.rank() == 1;
  Shape shape = vector ? Shape{kept} : by_column ? Shape{rows, kept} : Shape{kept, cols};
  uint8_t* dst = out->AddOwned(name, t.dtype, shape);
  if (by_column) {
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* src = t.data + r * cols * elem;
      for (size_t k = 0; k < keep.size(); ++k) {
        std::memcpy(dst, src + keep[k] * run * elem, run * elem);
        dst += run * elem;
      }
    }
    return;
  }
  // Rows of a matrix, or elements of a vector (a bias follows its matrix's rows).
  const size_t unit = vector ? elem : cols * elem;
  for (int64_t k : keep) {
    std::memcpy(dst, t.data + k * run * unit, run * unit);
    dst += run * unit;
  }
}

// The store without the listed layers (borrowed, renumbered): the model with a layer skipped.
WeightStore WithoutLayers(const WeightStore& store, const ModelConfig& c,
                          const std::vector<int64_t>& removed) {
  WeightStore view;
  view.metadata() = store.metadata();
  view.metadata().Set(std::string(ArchitectureName(c.arch)) + ".block_count",
                      MetaValue::U32(static_cast<uint32_t>(c.n_layers - removed.size())));
  std::vector<int64_t> new_index(static_cast<size_t>(c.n_layers), -1);
  for (int64_t l = 0, next = 0; l < c.n_layers; ++l) {
    if (std::find(removed.begin(), removed.end(), l) == removed.end()) new_index[l] = next++;
  }
  for (const StoredTensor& t : store.tensors()) {
    std::string name = t.name;
    const int64_t l = LayerOf(name);
    if (l >= 0) {
      if (l >= c.n_layers || new_index[l] < 0) continue;
      name = fmt::format("blk.{}{}", new_index[l], name.substr(name.find('.', 4)));
    }
    view.AddBorrowed(name, t.dtype, t.shape, t.data, t.owner);
  }
  view.source_path = store.source_path;
  view.source_format = store.source_format;
  return view;
}

// Loss rise per layer when it alone is skipped, on the first chunks of the calibration text.
Result<std::vector<double>> LayerLossRise(const WeightStore& store, const ModelConfig& c,
                                          const StructuredOptions& options,
                                          FunctionRef<void()> step) {
  eval::PerplexityOptions po;
  po.n_ctx = options.calibration.n_ctx;
  po.max_chunks = options.layer_score_chunks;
  po.n_threads = options.calibration.n_threads;
  auto nll = [&](WeightStore view) -> Result<double> {
    SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::FromStore(std::move(view), false));
    SLIMLM_ASSIGN_OR_RETURN(
        eval::PerplexityResult r,
        eval::ComputePerplexity(*model, options.calib_tokens, po, [](int64_t, int64_t) {}));
    step();
    return r.nll;
  };
  SLIMLM_ASSIGN_OR_RETURN(double base, nll(WithoutLayers(store, c, {})));
  std::vector<double> rise(static_cast<size_t>(c.n_layers));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    SLIMLM_ASSIGN_OR_RETURN(double without, nll(WithoutLayers(store, c, {l})));
    rise[l] = without - base;
  }
  return rise;
}

Status CheckTarget(const ModelConfig& c, const StructuredTarget& t) {
  if (t.layers >= c.n_layers) {
    return InvalidArgumentError("layers={} would remove every layer: the model has {}", t.layers,
                                c.n_layers);
  }
  if (t.heads == 0 && t.ffn == 0 && t.layers == 0) {
    return InvalidArgumentError("--structured removes nothing: give heads=R, ffn=R or layers=N");
  }
  return Status::Ok();
}

}  // namespace

std::string StructuredTarget::ToString() const {
  std::vector<std::string> parts;
  if (heads > 0) parts.push_back(fmt::format("heads={:g}", heads));
  if (ffn > 0) parts.push_back(fmt::format("ffn={:g}", ffn));
  if (layers > 0) parts.push_back(fmt::format("layers={}", layers));
  std::string s;
  for (const std::string& p : parts) s += (s.empty() ? "" : ",") + p;
  return s;
}

Result<StructuredTarget> ParseStructured(std::string_view text) {
  StructuredTarget t;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string_view part = text.substr(start, comma - start);
    start = comma + 1;
    const size_t eq = part.find('=');
    const std::string_view key = part.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (eq == std::string_view::npos || value.empty() || *end != '\0' || !std::isfinite(v)) {
      return InvalidArgumentError(
          "--structured: '{}' is not heads=R, ffn=R or layers=N (such as heads=0.25,ffn=0.25)",
          part);
    }
    if (key == "heads" || key == "ffn") {
      if (!(v >= 0.0 && v < 1.0)) {
        return InvalidArgumentError("--structured: {}={} is outside [0, 1): it would remove {}",
                                    key, value, v >= 1.0 ? "all of them" : "a negative share");
      }
      (key == "heads" ? t.heads : t.ffn) = v;
    } else if (key == "layers") {
      if (v < 0 || v != std::floor(v) || v > 1e6) {
        return InvalidArgumentError("--structured: layers={} is not a count of layers", value);
      }
      t.layers = static_cast<int64_t>(v);
    } else {
      return InvalidArgumentError("--structured: unknown part '{}' (heads, ffn or layers)", key);
    }
  }
  return t;
}

Result<WeightStore> PruneStructured(const WeightStore& store, const StructuredOptions& options,
                                    StructuredReport* report,
                                    FunctionRef<void(int64_t, int64_t)> progress) {
  const std::string& source = store.source_path;
  const StoredTensor* embd = store.Find("token_embd.weight");
  if (embd == nullptr) return CorruptError("{}: missing tensor 'token_embd.weight'", source);
  SLIMLM_ASSIGN_OR_RETURN(ModelConfig c,
                          ModelConfig::FromMetadata(store.metadata(), embd->shape[0], source));
  const StructuredTarget& target = options.target;
  SLIMLM_RETURN_IF_ERROR(CheckTarget(c, target));
  for (const StoredTensor& t : store.tensors()) {
    if (t.name.starts_with("blk.") && t.dtype != DType::kF32 && t.dtype != DType::kF16 &&
        t.dtype != DType::kBF16) {
      return UnsupportedError(
          "{}: tensor '{}' is {}: structured pruning needs f32, f16 or bf16 weights (prune "
          "first, then quantize)",
          source, t.name, DTypeName(t.dtype));
    }
  }
  ModelConfig after = c;
  if (target.heads > 0) {
    SLIMLM_ASSIGN_OR_RETURN(auto shape, HeadShape(c, target.heads));
    after.n_kv_heads = shape.first;
    after.n_heads = shape.first * shape.second;
  }
  if (target.ffn > 0) {
    const int64_t multiple = std::min(options.ffn_multiple, c.ffn_dim);
    const double want = static_cast<double>(c.ffn_dim) * (1.0 - target.ffn) / multiple;
    after.ffn_dim = std::max<int64_t>(1, std::llround(want)) * multiple;
    if (after.ffn_dim >= c.ffn_dim) {
      return InvalidArgumentError(
          "ffn={:g} removes no channel of {} once the kept width is rounded to a multiple of {}",
          target.ffn, c.ffn_dim, multiple);
    }
  }
  after.n_layers = c.n_layers - target.layers;
  const int64_t chunks_total = std::min<int64_t>(
      options.calibration.max_chunks > 0 ? options.calibration.max_chunks : INT64_MAX,
      static_cast<int64_t>(options.calib_tokens.size()) /
          std::max<int64_t>(1, options.calibration.n_ctx));
  const int64_t steps = chunks_total + (target.layers > 0 ? c.n_layers + 1 : 0);
  int64_t done = 0;
  progress(0, steps);

  // One pass over the dense model: the inputs of each attention output and FFN down matrix.
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> dense,
                          Model::FromStore(TruncatedView(store, c.n_layers), false));
  quant::ActivationStatistics stats;
  for (const LayerWeights& l : dense->layers()) {
    stats.Watch(l.wo, "attn_output", false);
    stats.Watch(l.w_down, "ffn_down", false);
  }
  SLIMLM_ASSIGN_OR_RETURN(
      report->calib_tokens,
      quant::RunCalibration(*dense, options.calib_tokens, options.calibration, &stats,
                            [&](int64_t d, int64_t) { progress(done = d, steps); }));
  if (target.layers > 0) {
    SLIMLM_ASSIGN_OR_RETURN(report->layer_loss_rise,
                            LayerLossRise(store, c, options, [&] { progress(++done, steps); }));
    report->removed_layers = TopIndices(
        [&] {
          std::vector<double> neg(report->layer_loss_rise);
          for (double& v : neg) v = -v;
          return neg;
        }(),
        target.layers);
  }

  WeightStore out;
  out.metadata() = store.metadata();
  after.ToMetadata(&out.metadata());
  for (const StoredTensor& t : store.tensors()) {
    if (LayerOf(t.name) < 0) out.AddBorrowed(t.name, t.dtype, t.shape, t.data, t.owner);
  }
  const int64_t group = c.n_heads / c.n_kv_heads, new_group = after.n_heads / after.n_kv_heads;
  for (int64_t l = 0, li = 0; l < c.n_layers; ++l) {
    if (std::find(report->removed_layers.begin(), report->removed_layers.end(), l) !=
        report->removed_layers.end()) {
      continue;
    }
    const LayerWeights& lw = dense->layers()[static_cast<size_t>(l)];
    LayerKeep keep;
    // Heads: each dimension's share of the output, summed per head and per group.
    SLIMLM_ASSIGN_OR_RETURN(std::vector<float> wo,
                            MatrixF32(store, fmt::format("blk.{}.attn_output.weight", l)));
    const std::vector<double> wo_norm = ColumnNorms2(wo, c.q_dim());
    const std::vector<double>& o_x2 = stats.Find(lw.wo)->x2;
    std::vector<double> head_score(static_cast<size_t>(c.n_heads), 0.0);
    for (int64_t d = 0; d < c.q_dim(); ++d) head_score[d / c.head_dim] += o_x2[d] * wo_norm[d];
    std::vector<double> group_score(static_cast<size_t>(c.n_kv_heads), 0.0);
    for (int64_t h = 0; h < c.n_heads; ++h) group_score[h / group] += head_score[h];
    keep.groups = TopIndices(group_score, after.n_kv_heads);
    for (int64_t k : keep.groups) {
      std::vector<double> in_group(head_score.begin() + k * group,
                                   head_score.begin() + (k + 1) * group);
      for (int64_t j : TopIndices(in_group, new_group)) keep.heads.push_back(k * group + j);
    }
    // FFN channels.
    SLIMLM_ASSIGN_OR_RETURN(std::vector<float> down,
                            MatrixF32(store, fmt::format("blk.{}.ffn_down.weight", l)));
    const std::vector<double> down_norm = ColumnNorms2(down, c.ffn_dim);
    const std::vector<double>& h_x2 = stats.Find(lw.w_down)->x2;
    std::vector<double> ffn_score(static_cast<size_t>(c.ffn_dim));
    for (int64_t j = 0; j < c.ffn_dim; ++j) ffn_score[j] = h_x2[j] * down_norm[j];
    keep.ffn = TopIndices(ffn_score, after.ffn_dim);

    const std::string prefix = fmt::format("blk.{}.", l);
    for (const StoredTensor& t : store.tensors()) {
      if (!t.name.starts_with(prefix)) continue;
      const std::string part = t.name.substr(prefix.size());
      const std::string name = fmt::format("blk.{}.{}", li, part);
      if (part == "attn_q.weight" || part == "attn_q.bias") {
        AddSelected(&out, name, t, keep.heads, c.head_dim, false);
      } else if (part == "attn_k.weight" || part == "attn_k.bias" || part == "attn_v.weight" ||
                 part == "attn_v.bias") {
        AddSelected(&out, name, t, keep.groups, c.head_dim, false);
      } else if (part == "attn_output.weight") {
        AddSelected(&out, name, t, keep.heads, c.head_dim, true);
      } else if (part == "ffn_gate.weight" || part == "ffn_up.weight") {
        AddSelected(&out, name, t, keep.ffn, 1, false);
      } else if (part == "ffn_down.weight") {
        AddSelected(&out, name, t, keep.ffn, 1, true);
      } else {
        out.AddBorrowed(name, t.dtype, t.shape, t.data, t.owner);
      }
    }
    ++li;
  }
  report->before = c;
  report->after = after;
  out.source_path = store.source_path;
  out.source_format = store.source_format;
  return out;
}

}  // namespace slimlm::prune
