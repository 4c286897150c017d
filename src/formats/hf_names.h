// Tensor names: Hugging Face Llama/Qwen names <-> GGUF names, and the canonical GGUF order.
#ifndef SLIMLM_SRC_FORMATS_HF_NAMES_H_
#define SLIMLM_SRC_FORMATS_HF_NAMES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace slimlm::formats_internal {

// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"; nullopt when unknown.
std::optional<std::string> HfToGgufTensorName(std::string_view hf_name);
// The inverse; nullopt for GGUF names that HF Llama/Qwen models do not have.
std::optional<std::string> GgufToHfTensorName(std::string_view gguf_name);
// Tensors an HF checkpoint may carry that are not weights (rotary_emb.inv_freq buffers).
bool IsIgnoredHfTensor(std::string_view hf_name);
// A sort key giving llama.cpp's order: token_embd, output_norm, output, then each block's
// attention, norm and feed-forward tensors; unknown names sort last.
uint64_t GgufTensorOrderKey(std::string_view gguf_name);

}  // namespace slimlm::formats_internal

#endif  // SLIMLM_SRC_FORMATS_HF_NAMES_H_
