#include "slimlm/model/config.h"

#include <algorithm>
#include <cmath>

#include "slimlm/core/log.h"
#include "slimlm/formats/rope_pairing.h"

namespace slimlm {
namespace {

// Reads "{arch}.{suffix}" as a positive integer; `required` decides between error and default.
Result<int64_t> ReadCount(const Metadata& md, const std::string& arch, const char* suffix,
                          const std::string& source, std::optional<int64_t> fallback) {
  std::string key = arch + "." + suffix;
  const MetaValue* v = md.Find(key);
  if (v == nullptr) {
    if (fallback) return *fallback;
    return CorruptError("{}: missing metadata key '{}'", source, key);
  }
  std::optional<int64_t> n = v->AsInt();
  if (!n) {
    return CorruptError("{}: key '{}' is a {}, expected an integer", source, key,
                        MetaTypeName(v->type()));
  }
  if (*n <= 0 || *n > (int64_t{1} << 32)) {
    return CorruptError("{}: key '{}' has implausible value {}", source, key, *n);
  }
  return *n;
}

Result<float> ReadFloat(const Metadata& md, const std::string& key, const std::string& source,
                        float fallback) {
  const MetaValue* v = md.Find(key);
  if (v == nullptr) return fallback;
  std::optional<double> d = v->AsDouble();
  if (!d || !std::isfinite(*d)) {
    return CorruptError("{}: key '{}' is not a finite number", source, key);
  }
  return static_cast<float>(*d);
}

Status ReadRopeScaling(const Metadata& md, const std::string& arch, const std::string& source,
                       ModelConfig* c) {
  const std::string prefix = arch + ".rope.scaling.";
  RopeScaling& s = c->rope_scaling;
  std::string type = md.GetString(prefix + "type").value_or("none");
  SLIMLM_ASSIGN_OR_RETURN(s.factor, ReadFloat(md, prefix + "factor", source, 1.0f));
  // Older GGUF files give a linear factor as {arch}.rope.scale_linear.
  if (md.Has(arch + ".rope.scale_linear") && type == "none") {
    type = "linear";
    SLIMLM_ASSIGN_OR_RETURN(s.factor, ReadFloat(md, arch + ".rope.scale_linear", source, 1.0f));
  }
  if (type == "dynamic") {
    // Dynamic NTK scaling changes nothing within the original context, and past it would
    // re-rotate keys already in the cache; run it unscaled and say so.
    SLIMLM_LOG(kWarning, "{}: RoPE scaling 'dynamic' is applied as no scaling", source);
    type = "none";
  }
  static const std::pair<const char*, RopeScalingType> kTypes[] = {
      {"none", RopeScalingType::kNone},
      {"linear", RopeScalingType::kLinear},
      {"yarn", RopeScalingType::kYarn},
      {"llama3", RopeScalingType::kLlama3}};
  auto it = std::find_if(std::begin(kTypes), std::end(kTypes),
                         [&](const auto& entry) { return type == entry.first; });
  if (it == std::end(kTypes)) {
    return UnsupportedError("{}: unsupported RoPE scaling type '{}'", source, type);
  }
  s.type = it->second;
  if (s.type != RopeScalingType::kNone && !(s.factor > 0.0f)) {
    return CorruptError("{}: RoPE scaling factor {} is not positive", source, s.factor);
  }
  SLIMLM_ASSIGN_OR_RETURN(
      s.original_context,
      ReadCount(md, arch, "rope.scaling.original_context_length", source, c->context_length));
  // GGUF has no keys for Llama 3's smoothing bounds (llama.cpp stores the resulting per-pair
  // factors as the tensor rope_freqs.weight instead); HF folders give them as slimlm.* keys.
  SLIMLM_ASSIGN_OR_RETURN(s.low_freq_factor,
                          ReadFloat(md, "slimlm.rope.scaling.low_freq_factor", source, 1));
  SLIMLM_ASSIGN_OR_RETURN(s.high_freq_factor,
                          ReadFloat(md, "slimlm.rope.scaling.high_freq_factor", source, 4));
  if (s.type == RopeScalingType::kLlama3 && !(s.high_freq_factor > s.low_freq_factor)) {
    return CorruptError("{}: Llama 3 RoPE scaling needs high_freq_factor > low_freq_factor",
                        source);
  }
  SLIMLM_ASSIGN_OR_RETURN(s.beta_fast, ReadFloat(md, prefix + "yarn_beta_fast", source, 32));
  SLIMLM_ASSIGN_OR_RETURN(s.beta_slow, ReadFloat(md, prefix + "yarn_beta_slow", source, 1));
  SLIMLM_ASSIGN_OR_RETURN(s.attn_factor, ReadFloat(md, prefix + "attn_factor", source, 1));
  return Status::Ok();
}

}  // namespace

std::string_view ArchitectureName(Architecture arch) {
  switch (arch) {
    case Architecture::kLlama:
      return "llama";
    case Architecture::kQwen2:
      return "qwen2";
    case Architecture::kQwen3:
      return "qwen3";
  }
  return "unknown";
}

Result<ModelConfig> ModelConfig::FromMetadata(const Metadata& md, int64_t n_vocab_hint,
                                              const std::string& source) {
  std::optional<std::string> arch = md.GetString("general.architecture");
  if (!arch) return CorruptError("{}: missing metadata key 'general.architecture'", source);
  ModelConfig c;
  if (*arch == "llama") {
    c.arch = Architecture::kLlama;
  } else if (*arch == "qwen2") {
    c.arch = Architecture::kQwen2;
  } else if (*arch == "qwen3") {
    c.arch = Architecture::kQwen3;
  } else {
    return UnsupportedError("{}: unsupported architecture '{}' (slimlm runs llama, qwen2, qwen3)",
                            source, *arch);
  }
  const std::string& a = *arch;
  SLIMLM_ASSIGN_OR_RETURN(c.dim, ReadCount(md, a, "embedding_length", source, std::nullopt));
  SLIMLM_ASSIGN_OR_RETURN(c.n_layers, ReadCount(md, a, "block_count", source, std::nullopt));
  SLIMLM_ASSIGN_OR_RETURN(c.n_heads,
                          ReadCount(md, a, "attention.head_count", source, std::nullopt));
  SLIMLM_ASSIGN_OR_RETURN(c.n_kv_heads,
                          ReadCount(md, a, "attention.head_count_kv", source, c.n_heads));
  SLIMLM_ASSIGN_OR_RETURN(c.ffn_dim, ReadCount(md, a, "feed_forward_length", source, std::nullopt));
  SLIMLM_ASSIGN_OR_RETURN(c.context_length, ReadCount(md, a, "context_length", source, 2048));
  if (c.dim % c.n_heads != 0 && !md.Has(a + ".attention.key_length")) {
    return CorruptError("{}: embedding length {} is not a multiple of the head count {}", source,
                        c.dim, c.n_heads);
  }
  SLIMLM_ASSIGN_OR_RETURN(c.head_dim,
                          ReadCount(md, a, "attention.key_length", source, c.dim / c.n_heads));
  SLIMLM_ASSIGN_OR_RETURN(int64_t value_dim,
                          ReadCount(md, a, "attention.value_length", source, c.head_dim));
  if (value_dim != c.head_dim) {
    return UnsupportedError("{}: key length {} differs from value length {}", source, c.head_dim,
                            value_dim);
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return CorruptError("{}: head count {} is not a multiple of the key/value head count {}",
                        source, c.n_heads, c.n_kv_heads);
  }
  std::optional<int64_t> vocab_fallback;
  if (n_vocab_hint > 0) vocab_fallback = n_vocab_hint;
  SLIMLM_ASSIGN_OR_RETURN(c.n_vocab, ReadCount(md, a, "vocab_size", source, vocab_fallback));
  SLIMLM_ASSIGN_OR_RETURN(c.rope_dim, ReadCount(md, a, "rope.dimension_count", source, c.head_dim));
  if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    return CorruptError("{}: RoPE dimension count {} does not fit head dimension {}", source,
                        c.rope_dim, c.head_dim);
  }
  SLIMLM_ASSIGN_OR_RETURN(c.norm_eps,
                          ReadFloat(md, a + ".attention.layer_norm_rms_epsilon", source, 1e-5f));
  SLIMLM_ASSIGN_OR_RETURN(c.rope_theta, ReadFloat(md, a + ".rope.freq_base", source, 10000.0f));
  if (!(c.norm_eps >= 0.0f) || !(c.rope_theta > 0.0f)) {
    return CorruptError("{}: bad norm epsilon {} or RoPE base {}", source, c.norm_eps,
                        c.rope_theta);
  }
  // GGUF Llama weights pair adjacent dimensions and Qwen pairs halves; an HF Llama folder keeps
  // HF's (half) row order and says so in its metadata (see formats/rope_pairing.h).
  const bool adjacent =
      ArchitectureUsesAdjacentPairingInGguf(a) && StoredRopePairing(md) == RopePairing::kAdjacent;
  c.rope_pairing = adjacent ? kernels::RopePairing::kAdjacent : kernels::RopePairing::kHalf;
  SLIMLM_RETURN_IF_ERROR(ReadRopeScaling(md, a, source, &c));
  return c;
}

void ModelConfig::ToMetadata(Metadata* md) const {
  const std::string a(ArchitectureName(arch));
  auto u32 = [](int64_t v) { return MetaValue::U32(static_cast<uint32_t>(v)); };
  md->Set("general.architecture", MetaValue::String(a));
  md->Set(a + ".vocab_size", u32(n_vocab));
  md->Set(a + ".context_length", u32(context_length));
  md->Set(a + ".embedding_length", u32(dim));
  md->Set(a + ".block_count", u32(n_layers));
  md->Set(a + ".feed_forward_length", u32(ffn_dim));
  md->Set(a + ".attention.head_count", u32(n_heads));
  md->Set(a + ".attention.head_count_kv", u32(n_kv_heads));
  if (head_dim * n_heads != dim) {
    md->Set(a + ".attention.key_length", u32(head_dim));
    md->Set(a + ".attention.value_length", u32(head_dim));
  }
  md->Set(a + ".rope.dimension_count", u32(rope_dim));
  md->Set(a + ".rope.freq_base", MetaValue::F32(rope_theta));
  md->Set(a + ".attention.layer_norm_rms_epsilon", MetaValue::F32(norm_eps));
}

}  // namespace slimlm
