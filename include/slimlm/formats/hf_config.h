// Hugging Face config.json <-> GGUF metadata keys. See docs/formats/safetensors.md.
//
// model_type llama and mistral map to GGUF architecture "llama"; qwen2 and qwen3 keep their
// names. With {arch} the GGUF architecture, config.json fields become:
//
//   max_position_embeddings   {arch}.context_length                      u32
//   hidden_size               {arch}.embedding_length                    u32
//   intermediate_size         {arch}.feed_forward_length                 u32
//   num_hidden_layers         {arch}.block_count                         u32
//   num_attention_heads       {arch}.attention.head_count                u32
//   num_key_value_heads       {arch}.attention.head_count_kv             u32 (default: heads)
//   head_dim                  {arch}.rope.dimension_count                u32 (default:
//   hidden/heads)
//                             and, only when config.json has it,
//                             {arch}.attention.key_length / value_length u32
//   rms_norm_eps              {arch}.attention.layer_norm_rms_epsilon    f32
//   rope_theta                {arch}.rope.freq_base                      f32 (default 10000)
//   vocab_size                {arch}.vocab_size                          u32
//   bos_token_id, eos_token_id  tokenizer.ggml.bos_token_id / eos_token_id  u32 (first of a list)
//   rope_scaling:             {arch}.rope.scaling.type                   string: linear, dynamic,
//                                                                        yarn or llama3
//     factor                  {arch}.rope.scaling.factor                 f32
//     original_max_position_embeddings
//                             {arch}.rope.scaling.original_context_length  u32
//     low_freq_factor         slimlm.rope.scaling.low_freq_factor        f32 (llama3 only; GGUF
//     high_freq_factor        slimlm.rope.scaling.high_freq_factor       f32  has no key for them)
//
// rope_scaling "dynamic" (NTK scaling that changes with the sequence length) has no GGUF
// equivalent: it is recorded as type "dynamic" with its factor, and the model layer decides
// whether it supports it. yarn's beta_fast / beta_slow / attention_factor are not kept (the
// defaults apply). tie_word_embeddings, attention_bias and torch_dtype are not keys: tying is the
// absence of output.weight, biases are tensors, and the dtype is each tensor's. hidden_act must
// be "silu"; sliding-window settings (Mistral, Qwen2) are ignored.
#ifndef SLIMLM_FORMATS_HF_CONFIG_H_
#define SLIMLM_FORMATS_HF_CONFIG_H_

#include <optional>
#include <string>
#include <string_view>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm {

// What config.json says beyond the GGUF keys.
struct HfConfigInfo {
  std::string architecture;                 // GGUF architecture: llama, qwen2, qwen3.
  std::string model_type;                   // As written: llama, mistral, qwen2, qwen3.
  std::optional<bool> tie_word_embeddings;  // Absent when config.json does not say.
};

// Parses config.json text and appends the GGUF keys above to `out`. `path` names the file in
// errors: missing or mistyped fields, unsupported model_type / hidden_act / rope_scaling type.
Result<HfConfigInfo> HfConfigToMetadata(std::string_view json_text, const std::string& path,
                                        Metadata* out);

// Builds config.json text from a store's metadata and tensors (tie_word_embeddings is true when
// output.weight is absent; attention_bias when blk.0.attn_q.bias exists; torch_dtype from
// token_embd.weight). Fails for architectures other than llama, qwen2 and qwen3, or when a
// required key is missing.
Result<std::string> HfConfigFromStore(const WeightStore& store);

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_HF_CONFIG_H_
