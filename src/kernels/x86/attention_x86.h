// Attention fast paths for x86: AVX2 (with FMA and F16C) and AVX-512 (F, BW, VL, DQ).
//
// Both compute what ref::Attention computes, for keys and values of type f32, f16 or q8_0 (other
// types go to the reference), any head_dim and n_kv, and any group. They read each key and value
// row once for all `group` query heads. Attention materializes the scores of all n_kv positions
// (group * round_up(n_kv, lanes) + 2 * group scratch floats); FlashAttention goes by tiles of 256
// positions with an online softmax (256 * group + 2 * group scratch floats, whatever n_kv). Both
// stay within AttentionScratchFloats(group, head_dim, n_kv). Call only on a CPU with the
// instruction set (GetCpuFeatures()).
#ifndef SLIMLM_KERNELS_X86_ATTENTION_X86_H_
#define SLIMLM_KERNELS_X86_ATTENTION_X86_H_

#include <cstdint>

#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels::avx2 {

void Attention(const AttentionArgs& args);
void FlashAttention(const AttentionArgs& args);
// y = exp(x) elementwise with the vector exp of vec_math_avx2.h.   x, y: (n,); y may alias x.
void ExpRow(const float* x, float* y, int64_t n);

}  // namespace slimlm::kernels::avx2

namespace slimlm::kernels::avx512 {

void Attention(const AttentionArgs& args);
void FlashAttention(const AttentionArgs& args);
// y = exp(x) elementwise with the vector exp of vec_math_avx512.h.   x, y: (n,); y may alias x.
void ExpRow(const float* x, float* y, int64_t n);

}  // namespace slimlm::kernels::avx512

#endif  // SLIMLM_KERNELS_X86_ATTENTION_X86_H_
