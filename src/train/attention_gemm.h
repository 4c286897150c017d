// Causal grouped-query attention of training (the semantics of AttentionForward/Backward in
// slimlm/train/ops.h) computed per head as matrix products on the packed f32 kernels:
//   S = scale Q K^T, P = causal softmax(S), O = P V;
//   dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(P dP)), dQ = scale dS K, dK = scale dS^T Q.
// The full n x n products are computed and the causal mask applied to them: twice the
// arithmetic of the triangle, but at the kernels' speed rather than a scalar loop's.
#ifndef SLIMLM_TRAIN_ATTENTION_GEMM_H_
#define SLIMLM_TRAIN_ATTENTION_GEMM_H_

#include <cstdint>

#include "slimlm/kernels/kernels.h"

namespace slimlm::train {

void AttentionForwardGemm(const kernels::KernelTable& k, const float* q, const float* kk,
                          const float* v, float* out, float* probs, int64_t n, int64_t heads,
                          int64_t kv, int64_t hd);
void AttentionBackwardGemm(const kernels::KernelTable& k, const float* q, const float* kk,
                           const float* v, const float* probs, const float* dout, float* dq,
                           float* dk, float* dv, int64_t n, int64_t heads, int64_t kv, int64_t hd);

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_ATTENTION_GEMM_H_
