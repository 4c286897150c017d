// The scalar reference kernels: plain loops that are the specification of every operation.
// Their signatures are those of KernelTable (kernels.h).
#ifndef SLIMLM_KERNELS_REF_REF_KERNELS_H_
#define SLIMLM_KERNELS_REF_REF_KERNELS_H_

#include <cstddef>
#include <cstdint>

#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels::ref {

void MatMulF32(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
               float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1);
void MatMulF16(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
               float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1);
void MatMulBF16(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1);
void MatMulQ8_0(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1);
void MatMulQ4_0(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1);
void QuantizeQ8_0(const float* x, void* out, int64_t n);

void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps);
void Rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos,
          const float* sin, RopePairing pairing);
void Softmax(float* x, int64_t n);
void SiluGate(const float* gate, const float* up, float* out, int64_t n);
void Attention(const float* q, const float* k, const float* v, int64_t kv_stride, int64_t n_kv,
               int64_t head_dim, float scale, float* scores, float* out);

// The table of references.
const KernelTable& Table();

}  // namespace slimlm::kernels::ref

#endif  // SLIMLM_KERNELS_REF_REF_KERNELS_H_
