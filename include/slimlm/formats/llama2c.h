// llama2.c checkpoints (Karpathy's run.c format). See docs/formats/llama2c.md.
//
// Three layouts, all little-endian:
//   - legacy (version 0): 7 x i32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
//     vocab_size, seq_len; a negative vocab_size means a separate classifier follows), then f32
//     arrays: token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final,
//     freq_cis_real, freq_cis_imag (unused RoPE tables), [wcls].
//   - version 1: u32 magic 0x616b3432 ("ak42"), i32 version, the 7 x i32, u8 shared_classifier,
//     zero padding to 256 bytes, then f32: rms_att, rms_ffn, rms_final, token_embedding, wq, wk,
//     wv, wo, w1, w2, w3, [wcls].
//   - version 2: as version 1 plus i32 group_size after the flag; norms stay f32, every matrix
//     (token_embedding, then per layer wq..w3, [wcls]) is int8 values followed by one f32 scale
//     per group_size values (x = q * scale). These are dequantized into owned f32 tensors, since
//     the grouping (64 values, f32 scale) matches no GGUF type exactly.
//
// The store uses GGUF names and keys (architecture "llama", adjacent RoPE pairing, eps 1e-5,
// freq_base 10000). Legacy and version-1 tensors borrow from the memory map (each layer a slice
// of the per-layer arrays). A shared classifier means no output.weight tensor: the model ties it
// to token_embd.weight.
#ifndef SLIMLM_FORMATS_LLAMA2C_H_
#define SLIMLM_FORMATS_LLAMA2C_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm {

inline constexpr uint32_t kLlama2cMagic = 0x616b3432;  // "ak42" read as a little-endian u32.

// Reads the checkpoint's weights and hyperparameters (no tokenizer: see LoadModel). The file size
// must match the header exactly; the error names both sizes.
Result<WeightStore> ReadLlama2c(const std::string& path);

// The same over bytes in memory; `owner` keeps them alive for borrowed tensors (may be null).
Result<WeightStore> ParseLlama2c(std::span<const uint8_t> bytes, const std::string& name,
                                 std::shared_ptr<const void> owner);

// The tokenizer beside a checkpoint: "tokenizer.bin" in its folder, else the first (by name)
// "tok*.bin" such as tok512.bin; an empty string when there is none.
std::string FindLlama2cTokenizer(const std::string& checkpoint_path);

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_LLAMA2C_H_
