#include "slimlm/quant/importance.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <fmt/core.h>

#include "slimlm/formats/gguf.h"
#include "slimlm/model/context.h"
#include "slimlm/quant/activation_stats.h"
#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::quant {
namespace {

// Watches every matrix the forward pass multiplies, under its tensor name.
void WatchAll(const Model& model, ActivationStatistics* stats) {
  for (size_t i = 0; i < model.layers().size(); ++i) {
    const LayerWeights& l = model.layers()[i];
    const std::pair<const Linear*, const char*> named[] = {
        {&l.wq, "attn_q"},      {&l.wk, "attn_k"},       {&l.wv, "attn_v"},
        {&l.wo, "attn_output"}, {&l.w_gate, "ffn_gate"}, {&l.w_up, "ffn_up"},
        {&l.w_down, "ffn_down"}};
    for (const auto& [linear, suffix] : named) {
      stats->Watch(*linear, fmt::format("blk.{}.{}.weight", i, suffix), false);
    }
  }
  stats->Watch(
      model.output(),
      model.store().Find("output.weight") != nullptr ? "output.weight" : "token_embd.weight",
      false);
}

// The weighted error of one block quantized with scale d (as stored, f16), and its codes.
template <bool kQ4>
double BlockError(const float* x, const float* w, float d, int8_t* codes) {
  constexpr int kMax = kQ4 ? 15 : 127;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  double err = 0;
  for (int i = 0; i < 32; ++i) {
    int q;
    if constexpr (kQ4) {
      q = std::clamp(static_cast<int>(x[i] * id + 8.5f), 0, kMax);
    } else {
      q = std::clamp(static_cast<int>(std::lround(x[i] * id)), -kMax, kMax);
    }
    codes[i] = static_cast<int8_t>(q);
    const float back = kQ4 ? d * static_cast<float>(q - 8) : d * static_cast<float>(q);
    const double e = static_cast<double>(x[i]) - back;
    err += static_cast<double>(w[i]) * e * e;
  }
  return err;
}

template <bool kQ4>
void QuantizeBlock(const float* x, const float* importance, uint8_t* out) {
  // Weights: the channels' mean x^2, floored so that no weight is ignored entirely.
  float w[32];
  double mean = 0;
  for (int i = 0; i < 32; ++i) mean += importance[i];
  mean /= 32;
  for (int i = 0; i < 32; ++i)
    w[i] = static_cast<float>(std::max<double>(importance[i], 1e-3 * mean + 1e-12));
  float amax = 0, max = 0;
  for (int i = 0; i < 32; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  // Candidates around the plain scale (q4_0: the largest magnitude at code 0, i.e. -8, as GGML
  // does, or at +7; q8_0: at +-127), stored as f16 as the block will hold them.
  int8_t codes[32], best_codes[32] = {};  // Zeroed only to quiet GCC: the first candidate sets it.
  uint16_t best_d = 0;
  double best = -1;
  const float bases[2] = {kQ4 ? max / -8.0f : amax / 127.0f, kQ4 ? max / 7.0f : amax / 127.0f};
  for (float base : bases) {
    for (int k = -12; k <= 12; ++k) {
      const uint16_t dh = F32ToF16(base * (1.0f + 0.015f * static_cast<float>(k)));
      const double err = BlockError<kQ4>(x, w, F16ToF32(dh), codes);
      if (best < 0 || err < best) {
        best = err;
        best_d = dh;
        std::memcpy(best_codes, codes, sizeof(codes));
      }
    }
  }
  std::memcpy(out, &best_d, 2);
  if constexpr (kQ4) {
    for (int i = 0; i < 16; ++i) {
      out[2 + i] = static_cast<uint8_t>(best_codes[i] | (best_codes[i + 16] << 4));
    }
  } else {
    std::memcpy(out + 2, best_codes, 32);
  }
}

}  // namespace

const std::vector<float>* ImportanceStats::Find(const std::string& name) const {
  auto it = mean_x2.find(name);
  return it == mean_x2.end() ? nullptr : &it->second;
}

Result<ImportanceStats> CollectImportance(const Model& model, std::span<const int32_t> tokens,
                                          const CalibrationOptions& options,
                                          FunctionRef<void(int64_t, int64_t)> progress) {
  ActivationStatistics collector;
  WatchAll(model, &collector);
  SLIMLM_RETURN_IF_ERROR(RunCalibration(model, tokens, options, &collector, progress).status());
  ImportanceStats stats;
  for (const auto& [linear, e] : collector.entries()) {
    std::vector<float>& mean = stats.mean_x2[e.name];
    mean.resize(e.x2.size());
    for (size_t c = 0; c < e.x2.size(); ++c) {
      mean[c] = e.tokens > 0 ? static_cast<float>(e.x2[c] / static_cast<double>(e.tokens)) : 0;
    }
    stats.tokens = std::max(stats.tokens, e.tokens);
  }
  return stats;
}

Status SaveImportance(const ImportanceStats& stats, const std::string& path) {
  WeightStore store;
  store.metadata().Set("general.architecture", MetaValue::String("slimlm-importance"));
  store.metadata().Set("slimlm.importance.tokens",
                       MetaValue::U64(static_cast<uint64_t>(stats.tokens)));
  store.metadata().Set("slimlm.importance.source", MetaValue::String(stats.source));
  store.metadata().Set("slimlm.importance.source_hash",
                       MetaValue::String(fmt::format("{:016x}", stats.source_hash)));
  for (const auto& [name, mean] : stats.mean_x2) {
    uint8_t* data = store.AddOwned(name, DType::kF32, Shape{static_cast<int64_t>(mean.size())});
    std::memcpy(data, mean.data(), mean.size() * sizeof(float));
  }
  return WriteGguf(store, path);
}

Result<ImportanceStats> LoadImportance(const std::string& path) {
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, ReadGguf(path));
  if (store.metadata().GetString("general.architecture") != "slimlm-importance") {
    return InvalidArgumentError("{}: not a statistics file written by --save-stats", path);
  }
  ImportanceStats stats;
  stats.tokens = store.metadata().GetInt("slimlm.importance.tokens").value_or(0);
  stats.source = store.metadata().GetString("slimlm.importance.source").value_or("");
  stats.source_hash = std::strtoull(
      store.metadata().GetString("slimlm.importance.source_hash").value_or("0").c_str(), nullptr,
      16);
  for (const StoredTensor& t : store.tensors()) {
    if (t.dtype != DType::kF32 || t.shape.rank() != 1) {
      return CorruptError("{}: tensor '{}' is not an f32 vector", path, t.name);
    }
    const float* v = reinterpret_cast<const float*>(t.data);
    stats.mean_x2[t.name].assign(v, v + t.shape[0]);
  }
  return stats;
}

void QuantizeRowWeighted(DType type, const float* x, const float* importance, void* out,
                         int64_t n) {
  if (type == DType::kQ4_K) {
    QuantizeRowQ4_KRef(x, static_cast<BlockQ4_K*>(out), n, importance);
    return;
  }
  if (type == DType::kQ6_K) {
    QuantizeRowQ6_KRef(x, static_cast<BlockQ6_K*>(out), n, importance);
    return;
  }
  uint8_t* o = static_cast<uint8_t*>(out);
  const bool q4 = type == DType::kQ4_0;
  const size_t block_bytes = q4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  for (int64_t b = 0; b < n / 32; ++b) {
    if (q4) {
      QuantizeBlock<true>(x + 32 * b, importance + 32 * b, o + b * block_bytes);
    } else {
      QuantizeBlock<false>(x + 32 * b, importance + 32 * b, o + b * block_bytes);
    }
  }
}

}  // namespace slimlm::quant
