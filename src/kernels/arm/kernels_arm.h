// The ARM fast path: functions of the NEON kernel table (Advanced SIMD with the dot product
// instructions of Armv8.2, sdot). Each is defined in a file compiled for that target
// (src/kernels/CMakeLists.txt gives files named *neon*.cc -march=armv8.2-a+dotprod) and only
// called after the auxiliary vector has confirmed asimd and asimddp (src/kernels/dispatch.cc).
//
// Matrix products use the packed layouts of kernels/packed/ (q8_0 stored signed, kSigned8) and,
// for quantized weights, the int8 activation rows of kernels/packed/int8_activations.h.
// Attention handles keys and values of f32, f16 and q8_0 (other types go to the reference);
// Attention materializes all scores (group * round_up(n_kv, 4) + 2 * group scratch floats),
// FlashAttention goes by tiles of 256 positions (256 * group + 2 * group scratch floats whatever
// n_kv); both stay within AttentionScratchFloats(group, head_dim, n_kv).
#ifndef SLIMLM_KERNELS_ARM_KERNELS_ARM_H_
#define SLIMLM_KERNELS_ARM_KERNELS_ARM_H_

#include <cstddef>
#include <cstdint>

#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels::neon {

// Requires NEON (asimd) and the dot product instructions (asimddp).
const KernelTable& Table();

// Matrix products (matmul_neon.cc); see KernelTable for the contracts.
size_t PackedBytes(DType dtype, int64_t rows, int64_t cols);
void Pack(DType dtype, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t r0,
          int64_t r1, void* out);
size_t ActivationRowBytes(DType weight, int64_t k);
void ConvertActivation(DType weight, const float* x, void* out, int64_t k);
void MatMul(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
            int64_t n_tokens, int64_t r0, int64_t r1);

// Row operations (ops_neon.cc).
void FromF32(DType type, const float* x, void* out, int64_t n);
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps);
void Rope(float* x, int64_t n_heads, int64_t head_dim, int64_t rot_dim, const float* cos,
          const float* sin, RopePairing pairing);
void Softmax(float* x, int64_t n);
void SiluGate(const float* gate, const float* up, float* out, int64_t n);

// Attention (attention_neon.cc).
void Attention(const AttentionArgs& args);
void FlashAttention(const AttentionArgs& args);
// y = exp(x) elementwise with the vector exp of vec_math_neon.h.   x, y: (n,); y may alias x.
void ExpRow(const float* x, float* y, int64_t n);

}  // namespace slimlm::kernels::neon

#endif  // SLIMLM_KERNELS_ARM_KERNELS_ARM_H_
