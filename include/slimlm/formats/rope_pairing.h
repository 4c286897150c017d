// RoPE pairing of q/k projection rows, and the permutation between the two conventions.
//
// RoPE rotates pairs of dimensions within each head. GGUF and llama2.c Llama weights pair
// adjacent dimensions (2i, 2i+1); Hugging Face Llama weights pair dimension i with
// i + head_dim/2 ("rotate half"), because HF's converter permuted the rows of q_proj and k_proj.
// Within each head of head_dim rows:
//
//   adjacent row 2i + j   <->   half row (head_dim/2) * j + i,   i < head_dim/2, j in {0, 1}
//
// Only the row order differs, so the permutation is exact for any dtype (a row of a quantized
// matrix is whole blocks). A store whose Llama q/k rows are in half order carries
// kRopePairingKey = "half" (see model_file.h). Qwen2/Qwen3 use half pairing in GGUF too and are
// never permuted.
#ifndef SLIMLM_FORMATS_ROPE_PAIRING_H_
#define SLIMLM_FORMATS_ROPE_PAIRING_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm {

enum class RopePairing { kAdjacent, kHalf };

// Metadata key marking a Llama store whose q/k rows are in HF (half) order; absent means
// adjacent.
inline constexpr std::string_view kRopePairingKey = "slimlm.rope.pairing";

// The store's pairing of q/k rows as the metadata says (kRopePairingKey).
RopePairing StoredRopePairing(const Metadata& metadata);

// True when the architecture's GGUF convention is adjacent pairing, so that HF folders permute
// its q/k rows (only "llama", which also covers Mistral).
bool ArchitectureUsesAdjacentPairingInGguf(std::string_view architecture);

// For a q or k projection named the GGUF way (blk.N.attn_q.weight / .bias, blk.N.attn_k.*), the
// number of heads its rows hold: {arch}.attention.head_count for q, head_count_kv (default
// head_count) for k. 0 for every other tensor; -1 for a q/k tensor when the metadata lacks the
// head count (callers that must permute report that as an error).
int64_t RopeHeadsOfTensor(const Metadata& metadata, std::string_view tensor_name);

// Reorders the rows of one q or k tensor, heads after heads.
//   src, dst: n_heads * head_dim rows of row_bytes each; dst must not overlap src.
// head_dim must be even.
void PermuteRopeRows(const uint8_t* src, uint8_t* dst, int64_t n_heads, int64_t head_dim,
                     size_t row_bytes, RopePairing from, RopePairing to);

// Permutes a q/k weight ({n_heads * head_dim, in}, any dtype) or bias ({n_heads * head_dim},
// f32/f16/bf16) into `out` (resized to t.nbytes). Fails with a message naming the tensor when
// the row count is not n_heads times an even head_dim, or a bias is quantized.
Status PermuteRopeTensor(const StoredTensor& t, int64_t n_heads, RopePairing from, RopePairing to,
                         std::vector<uint8_t>* out);

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_ROPE_PAIRING_H_
