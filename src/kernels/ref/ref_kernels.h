// The scalar reference kernels: plain loops that are the specification of every operation.
// The reference multiplies the file layout of weights (no packing).
#ifndef SLIMLM_KERNELS_REF_REF_KERNELS_H_
#define SLIMLM_KERNELS_REF_REF_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels::ref {

// Activations for the reference: f32 rows, or q8_0 blocks for quantized weights.
size_t ActivationRowBytes(DType weight, int64_t k);
void ConvertActivation(DType weight, const float* x, void* out, int64_t k);
void MatMul(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
            int64_t n_tokens, int64_t r0, int64_t r1);

void FromF32(DType type, const float* x, void* out, int64_t n);
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps);
void Rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos,
          const float* sin, RopePairing pairing);
void Softmax(float* x, int64_t n);
void SiluGate(const float* gate, const float* up, float* out, int64_t n);
// Attention (attention_ref.cc). Attention materializes every score, using group * n_kv +
// head_dim scratch floats; FlashAttention goes by tiles of 64 positions with an online softmax,
// using 64 * group + head_dim + 2 * group scratch floats whatever n_kv.
void Attention(const AttentionArgs& args);
void FlashAttention(const AttentionArgs& args);

// The table of references.
const KernelTable& Table();

}  // namespace slimlm::kernels::ref

#endif  // SLIMLM_KERNELS_REF_REF_KERNELS_H_
