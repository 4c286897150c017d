// The hyperparameters of a Llama-family model, read from GGUF-style metadata (see
// formats/metadata.h), whatever file format the model came from.
#ifndef SLIMLM_MODEL_CONFIG_H_
#define SLIMLM_MODEL_CONFIG_H_

#include <cstdint>
#include <string>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/kernels/kernels.h"

namespace slimlm {

enum class Architecture {
  kLlama,  // Llama 2/3, TinyLlama, Mistral, SmolLM, llama2.c models.
  kQwen2,  // Llama with biases on q, k and v.
  kQwen3,  // Llama with RMSNorm on each q and k head (QK-norm).
};

// "llama", "qwen2", "qwen3" (GGUF's general.architecture values).
std::string_view ArchitectureName(Architecture arch);

enum class RopeScalingType {
  kNone,
  kLinear,  // Positions divided by factor.
  kYarn,    // NTK-by-parts interpolation with attention temperature (YaRN).
  kLlama3,  // Llama 3.1's per-frequency smoothing between original and scaled frequencies.
};

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  float factor = 1.0f;
  int64_t original_context = 0;   // Context the model was trained with before scaling.
  float low_freq_factor = 1.0f;   // Llama 3.
  float high_freq_factor = 4.0f;  // Llama 3.
  float beta_fast = 32.0f;        // YaRN.
  float beta_slow = 1.0f;         // YaRN.
  float attn_factor = 1.0f;       // YaRN: extra multiplier of the attention temperature.
};

struct ModelConfig {
  Architecture arch = Architecture::kLlama;
  int64_t n_vocab = 0;
  int64_t dim = 0;  // Width of the residual stream (embedding length).
  int64_t n_layers = 0;
  int64_t n_heads = 0;     // Query heads.
  int64_t n_kv_heads = 0;  // Key/value heads (grouped-query attention when < n_heads).
  int64_t head_dim = 0;    // Dimension of each head (usually dim / n_heads).
  int64_t ffn_dim = 0;     // Hidden width of the SwiGLU feed-forward block.
  int64_t context_length = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  int64_t rope_dim = 0;  // Dimensions of each head that RoPE rotates (<= head_dim).
  kernels::RopePairing rope_pairing = kernels::RopePairing::kAdjacent;
  RopeScaling rope_scaling;

  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }

  // Reads general.architecture and the {arch}.* keys. `n_vocab_hint` (the rows of the embedding
  // table) is used when {arch}.vocab_size is absent. Errors start with `source`.
  static Result<ModelConfig> FromMetadata(const Metadata& metadata, int64_t n_vocab_hint,
                                          const std::string& source);
  // Writes the config back as GGUF keys (the inverse of FromMetadata).
  void ToMetadata(Metadata* metadata) const;
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_CONFIG_H_
