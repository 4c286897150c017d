// Row operations of the x86 paths (see kernels_x86.h for the tables).
#ifndef SLIMLM_KERNELS_X86_OPS_X86_H_
#define SLIMLM_KERNELS_X86_OPS_X86_H_

#include <cstdint>

#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels {

namespace avx512 {
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps);
void SiluGate(const float* gate, const float* up, float* out, int64_t n);
void Softmax(float* x, int64_t n);
void FromF32(DType type, const float* x, void* out, int64_t n);
}  // namespace avx512

namespace avx2 {
void RmsNorm(const float* x, const float* w, float* y, int64_t n, float eps);
void SiluGate(const float* gate, const float* up, float* out, int64_t n);
void Softmax(float* x, int64_t n);
void FromF32(DType type, const float* x, void* out, int64_t n);
}  // namespace avx2

}  // namespace slimlm::kernels

#endif  // SLIMLM_KERNELS_X86_OPS_X86_H_
