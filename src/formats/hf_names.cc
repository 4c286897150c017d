#include "formats/hf_names.h"

#include <charconv>
#include <string>

namespace slimlm::formats_internal {
namespace {

struct NamePair {
  std::string_view hf;
  std::string_view gguf;
};

constexpr NamePair kGlobalNames[] = {{"model.embed_tokens.weight", "token_embd.weight"},
                                     {"model.norm.weight", "output_norm.weight"},
                                     {"lm_head.weight", "output.weight"}};

// Per-layer suffixes after "model.layers.N." and "blk.N.", in llama.cpp's tensor order.
constexpr NamePair kLayerNames[] = {
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"input_layernorm.weight", "attn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
};

// Splits "<prefix>N.<suffix>" into N and suffix. N must be canonical decimal (no sign, no
// leading zero) so that names map one to one.
bool SplitLayer(std::string_view name, std::string_view prefix, int* layer,
                std::string_view* suffix) {
  if (!name.starts_with(prefix)) return false;
  name.remove_prefix(prefix.size());
  size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 6) return false;
  if (name[0] == '0' && dot > 1) return false;
  auto [end, ec] = std::from_chars(name.data(), name.data() + dot, *layer);
  if (ec != std::errc() || end != name.data() + dot) return false;
  *suffix = name.substr(dot + 1);
  return true;
}

std::optional<std::string> MapName(std::string_view name, bool hf_to_gguf) {
  for (const NamePair& p : kGlobalNames) {
    if (name == (hf_to_gguf ? p.hf : p.gguf)) return std::string(hf_to_gguf ? p.gguf : p.hf);
  }
  int layer = 0;
  std::string_view suffix;
  if (!SplitLayer(name, hf_to_gguf ? "model.layers." : "blk.", &layer, &suffix)) {
    return std::nullopt;
  }
  for (const NamePair& p : kLayerNames) {
    if (suffix == (hf_to_gguf ? p.hf : p.gguf)) {
      return (hf_to_gguf ? "blk." : "model.layers.") + std::to_string(layer) + "." +
             std::string(hf_to_gguf ? p.gguf : p.hf);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> HfToGgufTensorName(std::string_view hf_name) {
  return MapName(hf_name, true);
}

std::optional<std::string> GgufToHfTensorName(std::string_view gguf_name) {
  return MapName(gguf_name, false);
}

bool IsIgnoredHfTensor(std::string_view hf_name) {
  return hf_name.ends_with(".rotary_emb.inv_freq");
}

uint64_t GgufTensorOrderKey(std::string_view gguf_name) {
  constexpr uint64_t kPerLayer = 64;
  for (size_t i = 0; i < std::size(kGlobalNames); ++i) {
    if (gguf_name == kGlobalNames[i].gguf) return i;
  }
  int layer = 0;
  std::string_view suffix;
  if (SplitLayer(gguf_name, "blk.", &layer, &suffix)) {
    for (size_t i = 0; i < std::size(kLayerNames); ++i) {
      if (suffix == kLayerNames[i].gguf) return (static_cast<uint64_t>(layer) + 1) * kPerLayer + i;
    }
  }
  return UINT64_MAX;
}

}  // namespace slimlm::formats_internal
