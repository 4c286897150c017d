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

enum class Isa { kScalar, kAvx2, kAvx512, kNeon };

// "scalar", "avx2", "avx512", "neon".
std::string_view IsaName(Isa isa);
std::optional<Isa> ParseIsa(std::string_view name);

// How RoPE pairs the dimensions of a head it rotates together.
enum class RopePairing {
  kAdjacent,  // (2i, 2i+1): llama2.c, GGUF Llama ("normal" mode in GGML).
  kHalf,      // (i, i + rot_dim/2): HF rotate_half, GPT-NeoX, Qwen ("neox" mode in GGML).
};

// y[t, r] = sum_k w[r, k] * x[t, k] for output rows r in [r0, r1) and tokens t in [0, n_tokens).
//   w: (rows, k) in the weight's dtype, rows w_row_bytes apart
//   x: (n_tokens, k) in ActivationType(weight dtype), rows x_row_bytes apart
//   y: (n_tokens, ldy) f32; only columns [r0, r1) are written
using MatMulFn = void (*)(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes,
                          int64_t k, float* y, int64_t ldy, int64_t n_tokens, int64_t r0,
                          int64_t r1);

// Converts one activation row x: (n,) f32 to a weight's activation type (a copy for f32).
using ConvertActivationFn = void (*)(const float* x, void* out, int64_t n);

struct KernelTable {
  Isa isa = Isa::kScalar;

  // Indexed through MatMul(dtype) / ConvertActivation(dtype) below.
  MatMulFn matmul_f32 = nullptr;
  MatMulFn matmul_f16 = nullptr;
  MatMulFn matmul_bf16 = nullptr;
  MatMulFn matmul_q8_0 = nullptr;
  MatMulFn matmul_q4_0 = nullptr;
  // f32 -> q8_0 blocks, for the quantized weight types.
  ConvertActivationFn quantize_q8_0 = nullptr;

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

  // One query head attending over n_kv cached positions (causal masking is the caller's choice
  // of n_kv).
  //   q: (head_dim,) f32
  //   k, v: n_kv rows of (head_dim,) f32, kv_stride floats apart (the cache interleaves heads)
  //   scores: (n_kv,) scratch
  //   out: (head_dim,)
  void (*attention)(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_kv,
                    int64_t head_dim, float scale, float* scores, float* out) = nullptr;

  MatMulFn MatMul(DType weight) const;
};

// The type activations must be converted to before a matrix product with `weight`:
// f32 for f32 / f16 / bf16 weights (converted in the kernel), q8_0 for quantized weights.
DType ActivationType(DType weight);
// Converts one activation row for `weight` with the table's converter.
void ConvertActivation(const KernelTable& table, DType weight, const float* x, void* out,
                       int64_t n);

// The table in use: the best path this CPU supports, or the one $SLIMLM_ISA names
// (scalar|avx2|avx512|neon). Chosen on first call; an unsupported $SLIMLM_ISA falls back to the
// best supported path with a warning.
const KernelTable& Kernels();
// A specific path; an error when this CPU or build does not support it.
Result<const KernelTable*> KernelsFor(Isa isa);
// The paths this CPU and build support, best last.
std::vector<Isa> SupportedIsas();

}  // namespace slimlm::kernels

#endif  // SLIMLM_KERNELS_KERNELS_H_
