#include "slimlm/model/presets.h"

#include <cmath>
#include <functional>

#include <fmt/core.h>

#include "slimlm/core/hash.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {
namespace {

ModelPreset MakePreset(std::string name, std::string description, Architecture arch, int64_t dim,
                       int64_t n_layers, int64_t n_heads, int64_t n_kv_heads, int64_t ffn_dim,
                       int64_t n_vocab, int64_t ctx, bool tied) {
  ModelPreset p;
  p.name = std::move(name);
  p.description = std::move(description);
  ModelConfig& c = p.config;
  c.arch = arch;
  c.dim = dim;
  c.n_layers = n_layers;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = dim / n_heads;
  c.ffn_dim = ffn_dim;
  c.n_vocab = n_vocab;
  c.context_length = ctx;
  c.rope_dim = c.head_dim;
  c.norm_eps = arch == Architecture::kLlama ? 1e-5f : 1e-6f;
  c.rope_theta = arch == Architecture::kLlama ? 10000.0f : 1000000.0f;
  c.rope_pairing =
      arch == Architecture::kLlama ? kernels::RopePairing::kAdjacent : kernels::RopePairing::kHalf;
  p.tied_embeddings = tied;
  return p;
}

// SplitMix64: a tiny, fast generator; quality is ample for random weights.
struct SplitMix64 {
  uint64_t state;
  uint64_t Next() {
    const uint64_t z = Mix64(state);
    state += kGoldenGamma;
    return z;
  }
  // Uniform in [-1, 1).
  float Symmetric() {
    return static_cast<float>(static_cast<double>(Next() >> 11) * 0x1p-52 - 1.0);
  }
};

uint64_t HashName(const std::string& name, uint64_t seed) {
  uint64_t h = 1469598103934665603ull ^ seed;  // FNV-1a over the name, mixed with the seed.
  for (unsigned char ch : name) h = (h ^ ch) * 1099511628211ull;
  return h;
}

struct TensorPlan {
  std::string name;
  Shape shape;
  DType type;
  float fill;  // Constant value (norm weights); NaN: random.
};

// The output matrix decides every logit, so 4-bit models keep it at more bits, as llama.cpp's
// default mixes do: q8_0 beside q4_0, q6_k beside q4_k.
DType OutputType(DType type) {
  if (type == DType::kQ4_0) return DType::kQ8_0;
  if (type == DType::kQ4_K) return DType::kQ6_K;
  return type;
}

std::vector<TensorPlan> PlanTensors(const ModelPreset& p, DType type) {
  const ModelConfig& c = p.config;
  const float kRandom = std::nanf("");
  std::vector<TensorPlan> plan;
  // A tied embedding is the output matrix too, and takes its type.
  plan.push_back({"token_embd.weight", Shape{c.n_vocab, c.dim},
                  p.tied_embeddings ? OutputType(type) : type, kRandom});
  plan.push_back({"output_norm.weight", Shape{c.dim}, DType::kF32, 1.0f});
  if (!p.tied_embeddings) {
    plan.push_back({"output.weight", Shape{c.n_vocab, c.dim}, OutputType(type), kRandom});
  }
  for (int64_t i = 0; i < c.n_layers; ++i) {
    auto n = [i](const char* s) { return fmt::format("blk.{}.{}", i, s); };
    plan.push_back({n("attn_norm.weight"), Shape{c.dim}, DType::kF32, 1.0f});
    plan.push_back({n("attn_q.weight"), Shape{c.q_dim(), c.dim}, type, kRandom});
    plan.push_back({n("attn_k.weight"), Shape{c.kv_dim(), c.dim}, type, kRandom});
    plan.push_back({n("attn_v.weight"), Shape{c.kv_dim(), c.dim}, type, kRandom});
    if (c.arch == Architecture::kQwen2) {
      plan.push_back({n("attn_q.bias"), Shape{c.q_dim()}, DType::kF32, kRandom});
      plan.push_back({n("attn_k.bias"), Shape{c.kv_dim()}, DType::kF32, kRandom});
      plan.push_back({n("attn_v.bias"), Shape{c.kv_dim()}, DType::kF32, kRandom});
    }
    if (c.arch == Architecture::kQwen3) {
      plan.push_back({n("attn_q_norm.weight"), Shape{c.head_dim}, DType::kF32, 1.0f});
      plan.push_back({n("attn_k_norm.weight"), Shape{c.head_dim}, DType::kF32, 1.0f});
    }
    plan.push_back({n("attn_output.weight"), Shape{c.dim, c.q_dim()}, type, kRandom});
    plan.push_back({n("ffn_norm.weight"), Shape{c.dim}, DType::kF32, 1.0f});
    plan.push_back({n("ffn_gate.weight"), Shape{c.ffn_dim, c.dim}, type, kRandom});
    plan.push_back({n("ffn_up.weight"), Shape{c.ffn_dim, c.dim}, type, kRandom});
    plan.push_back({n("ffn_down.weight"), Shape{c.dim, c.ffn_dim}, type, kRandom});
  }
  return plan;
}

// Fills one tensor: uniform weights with standard deviation 0.02 (GPT-2's initialization
// scale), or a constant.
void FillTensor(const TensorPlan& t, uint64_t seed, uint8_t* dst) {
  const int64_t cols = t.shape.Cols();
  const size_t row_bytes = RowBytes(t.type, cols);
  const float amplitude = 0.02f * std::sqrt(3.0f);
  SplitMix64 rng{HashName(t.name, seed)};
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < t.shape.Rows(); ++r) {
    for (float& x : row) x = std::isnan(t.fill) ? amplitude * rng.Symmetric() : t.fill;
    RowFromF32(t.type, row.data(), dst + static_cast<size_t>(r) * row_bytes, cols);
  }
}

}  // namespace

const std::vector<ModelPreset>& ModelPresets() {
  static const std::vector<ModelPreset> presets = {
      MakePreset("tiny", "Llama, dim 64, 2 layers, 4 heads (2 kv), ffn 192, vocab 512",
                 Architecture::kLlama, 64, 2, 4, 2, 192, 512, 256, true),
      MakePreset("tiny-qwen2", "Qwen2 (QKV bias), dim 64, 2 layers, 4 heads (2 kv), vocab 512",
                 Architecture::kQwen2, 64, 2, 4, 2, 192, 512, 256, false),
      MakePreset("tiny-qwen3", "Qwen3 (QK norm), dim 64, 2 layers, 4 heads (2 kv), vocab 512",
                 Architecture::kQwen3, 64, 2, 4, 2, 192, 512, 256, true),
      MakePreset("110m", "Llama, dim 768, 12 layers, 12 heads, ffn 2048, vocab 32000",
                 Architecture::kLlama, 768, 12, 12, 12, 2048, 32000, 1024, true),
      MakePreset("tinyllama-1.1b",
                 "Llama, dim 2048, 22 layers, 32 heads (4 kv), ffn 5632, vocab 32000",
                 Architecture::kLlama, 2048, 22, 32, 4, 5632, 32000, 2048, false),
  };
  return presets;
}

Result<ModelPreset> FindPreset(const std::string& name) {
  std::string names;
  for (const ModelPreset& p : ModelPresets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  return InvalidArgumentError("unknown preset '{}' (one of: {})", name, names);
}

void AddSyntheticVocab(int64_t n_vocab, Metadata* md) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(fmt::format("<0x{:02X}>", b));
    types.push_back(6);
  }
  tokens.push_back("\xe2\x96\x81");  // "▁", the SentencePiece space.
  types.push_back(1);
  for (char ch = 33; ch < 127; ++ch) {
    tokens.push_back(std::string(1, ch));
    types.push_back(1);
  }
  while (static_cast<int64_t>(tokens.size()) < n_vocab) {
    tokens.push_back(fmt::format("<unused{}>", tokens.size()));
    types.push_back(5);
  }
  tokens.resize(static_cast<size_t>(n_vocab));
  types.resize(static_cast<size_t>(n_vocab));
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = -static_cast<float>(i);
  md->Set("tokenizer.ggml.model", MetaValue::String("llama"));
  md->Set("tokenizer.ggml.pre", MetaValue::String("default"));
  md->Set("tokenizer.ggml.tokens", MetaValue::StringArray(std::move(tokens)));
  md->Set("tokenizer.ggml.scores", MetaValue::F32Array(std::move(scores)));
  md->Set("tokenizer.ggml.token_type", MetaValue::I32Array(std::move(types)));
  md->Set("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
  md->Set("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
  md->Set("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));
  md->Set("tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
  md->Set("tokenizer.ggml.add_eos_token", MetaValue::Bool(false));
  md->Set("tokenizer.ggml.add_space_prefix", MetaValue::Bool(true));
}

Result<WeightStore> MakeRandomModel(const ModelPreset& preset_in, const InitOptions& options) {
  ModelPreset preset = preset_in;
  Metadata tokenizer;
  if (options.tokenizer != nullptr) {
    const MetaValue* tokens = options.tokenizer->Find("tokenizer.ggml.tokens");
    if (tokens == nullptr || tokens->array_size() == 0) {
      return InvalidArgumentError("the tokenizer has no tokens");
    }
    preset.config.n_vocab = static_cast<int64_t>(tokens->array_size());
    for (const auto& [key, value] : options.tokenizer->entries()) {
      if (key.rfind("tokenizer.", 0) == 0) tokenizer.Set(key, value);
    }
  } else {
    AddSyntheticVocab(preset.config.n_vocab, &tokenizer);
  }
  const int block = Traits(options.type).block_size;
  const ModelConfig& c = preset.config;
  if (c.dim % block != 0 || c.ffn_dim % block != 0 || c.q_dim() % block != 0) {
    return InvalidArgumentError("preset '{}' has widths that are not multiples of {}'s block of {}",
                                preset.name, DTypeName(options.type), block);
  }
  WeightStore store;
  store.source_path = "init:" + preset.name;
  store.source_format = "init";
  Metadata& md = store.metadata();
  md.Set("general.architecture", MetaValue::String(std::string(ArchitectureName(c.arch))));
  md.Set("general.name", MetaValue::String("slimlm-init-" + preset.name));
  c.ToMetadata(&md);
  md.Set("slimlm.init.random_weights", MetaValue::Bool(true));
  md.Set("slimlm.init.preset", MetaValue::String(preset.name));
  md.Set("slimlm.init.seed", MetaValue::U64(options.seed));
  for (const auto& [key, value] : tokenizer.entries()) md.Set(key, value);

  std::vector<TensorPlan> plan = PlanTensors(preset, options.type);
  std::vector<uint8_t*> buffers;
  try {
    for (const TensorPlan& t : plan) buffers.push_back(store.AddOwned(t.name, t.type, t.shape));
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("out of memory for the {} weights of preset '{}'",
                                  DTypeName(options.type), preset.name);
  }
  ThreadPool pool(options.n_threads > 0 ? options.n_threads : PhysicalCoreCount());
  pool.Run(static_cast<int64_t>(plan.size()), [&](int64_t i, int) {
    FillTensor(plan[static_cast<size_t>(i)], options.seed, buffers[static_cast<size_t>(i)]);
  });
  return store;
}

}  // namespace slimlm
