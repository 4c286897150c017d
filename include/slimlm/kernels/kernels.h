// The operations of the forward pass, behind a dispatch table chosen once at start-up.
//
// Every operation has a scalar reference in src/kernels/ref/ that is the specification; fast
// paths for an instruction set fill the same table and are tested against the reference.
// Kernels take pointers and sizes: they never allocate, throw or log; callers own all buffers.
// A matrix product covers a range of output rows so that callers can split rows across threads.
#ifndef SLIMLM_KERNELS_KERNELS_H_
#define SLIMLM_KERNELS_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/tensor/dtype.h"

namespace slimlm::kernels {

// kAmx is the AVX-512 path whose int8 products of several tokens run on AMX tiles.
enum class Isa { kScalar, kAvx2, kAvx512, kAmx, kNeon };

// "scalar", "avx2", "avx512", "amx", "neon".
std::string_view IsaName(Isa isa);
std::optional<Isa> ParseIsa(std::string_view name);

// How RoPE pairs the dimensions of a head it rotates together.
enum class RopePairing {
  kAdjacent,  // (2i, 2i+1): llama2.c, GGUF Llama ("normal" mode in GGML).
  kHalf,      // (i, i + rot_dim/2): HF rotate_half, GPT-NeoX, Qwen ("neox" mode in GGML).
};

// A weight matrix as a kernel path multiplies it: the file's rows, or the path's packed layout
// (made once at load time by KernelTable::pack).
struct Matrix {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  size_t row_bytes = 0;  // For the file layout: bytes between rows.
  bool packed = false;
};

// Arguments of attention for the `group` query heads that share one key/value head (grouped-query
// attention), at one query position, over cached positions [0, n_kv) (causal masking is the
// caller's choice of n_kv).
struct AttentionArgs {
  const float* q = nullptr;  // (group, head_dim) f32
  int64_t group = 1;
  int64_t head_dim = 0;
  // n_kv rows of keys (values), k_stride (v_stride) bytes apart; each holds head_dim values of
  // k_type (v_type): f32, f16, or q8_0 blocks (head_dim a multiple of 32).
  const void* k = nullptr;
  const void* v = nullptr;
  DType k_type = DType::kF32;
  DType v_type = DType::kF32;
  size_t k_stride = 0;
  size_t v_stride = 0;
  int64_t n_kv = 0;
  // A paged cache (blocks of block_rows positions anywhere in a pool): when `blocks` is set,
  // position p is row blocks[p / block_rows] * block_rows + p % block_rows of k and v; else row p.
  const int32_t* blocks = nullptr;
  int64_t block_rows = 0;
  float scale = 1.0f;        // Multiplies q.k before the softmax (1/sqrt(head_dim)).
  float* out = nullptr;      // (group, head_dim) f32
  float* scratch = nullptr;  // AttentionScratchFloats(group, head_dim, n_kv) floats
};

// Scratch floats any attention kernel may use for these sizes.
int64_t AttentionScratchFloats(int64_t group, int64_t head_dim, int64_t n_kv);

struct KernelTable {
  Isa isa = Isa::kScalar;

  // --- Matrix products: y[t, r] = sum_k w[r, k] * x[t, k] ---
  // Rows per packed group; callers split output rows across threads in multiples of it.
  int64_t row_block = 1;
  // Bytes of a (rows, cols) matrix of `dtype` in this path's packed layout; 0 when the path
  // multiplies the file layout as it is (always so for f16_nm, in every path: matmul takes it
  // with Matrix::packed false while other types of the same path are packed).
  size_t (*packed_bytes)(DType dtype, int64_t rows, int64_t cols) = nullptr;
  // Packs the groups of rows [r0, r1) (r0 a multiple of row_block) of a file-layout matrix
  // w: (rows, cols), rows w_row_bytes apart, into out (packed_bytes bytes, shared by all calls).
  void (*pack)(DType dtype, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols,
               int64_t r0, int64_t r1, void* out) = nullptr;
  // Bytes of one activation row of k elements prepared for weights of `weight` type.
  size_t (*activation_row_bytes)(DType weight, int64_t k) = nullptr;
  // Prepares x: (k,) f32 for a product with weights of `weight` type (quantized weights take
  // activations quantized to 8 bits per 32-element block; the others, f16_nm included, f32).
  void (*convert_activation)(DType weight, const float* x, void* out, int64_t k) = nullptr;
  // For output rows r in [r0, r1) (r0 a multiple of row_block) and tokens t in [0, n_tokens):
  //   x: n_tokens activation rows, x_row_bytes apart
  //   y: (n_tokens, ldy) f32; only columns [r0, r1) are written
  void (*matmul)(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
                 int64_t n_tokens, int64_t r0, int64_t r1) = nullptr;

  // --- Rows ---
  // Converts x: (n,) f32 to `type` (f32, f16, bf16, q8_0), as RowFromF32 does (the KV cache).
  void (*from_f32)(DType type, const float* x, void* out, int64_t n) = nullptr;

  // y = x / sqrt(mean(x^2) + eps) * w.   x, w, y: (n,); y may alias x.
  void (*rms_norm)(const float* x, const float* w, float* y, int64_t n, float eps) = nullptr;

  // Rotates the first rot_dim dimensions of each of n_heads heads in place.
  //   x: (n_heads, head_dim); cos, sin: (rot_dim / 2,) for this position, entry i for pair i.
  void (*rope)(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos,
               const float* sin, RopePairing pairing) = nullptr;

  // x = softmax(x) in place, numerically stable.   x: (n,)
  void (*softmax)(float* x, int64_t n) = nullptr;

  // out = silu(gate) * up, elementwise (SwiGLU).   gate, up, out: (n,); out may alias either.
  void (*silu_gate)(const float* gate, const float* up, float* out, int64_t n) = nullptr;

  // Attention with every score of the row materialized (scores, softmax, weighted sum).
  void (*attention)(const AttentionArgs& args) = nullptr;
  // The same result by tiles of positions with an online softmax (flash attention).
  void (*flash_attention)(const AttentionArgs& args) = nullptr;
};

// The table in use: the best path this CPU supports, or the one $SLIMLM_ISA names
// (scalar|avx2|avx512|amx|neon). Chosen on first call; an unsupported $SLIMLM_ISA falls back to the
// best supported path with a warning.
const KernelTable& Kernels();
// A specific path; an error when this CPU or build does not support it.
Result<const KernelTable*> KernelsFor(Isa isa);
// The paths this CPU and build support, best last.
std::vector<Isa> SupportedIsas();

}  // namespace slimlm::kernels

#endif  // SLIMLM_KERNELS_KERNELS_H_
