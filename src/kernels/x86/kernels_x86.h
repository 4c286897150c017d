// The x86 fast paths: functions of the AVX2, AVX-512 and AMX kernel tables. Each is defined in a
// file compiled with its instruction set's flags (src/kernels/CMakeLists.txt) and only called after
// CPUID has confirmed the set (src/kernels/dispatch.cc).
#ifndef SLIMLM_KERNELS_X86_KERNELS_X86_H_
#define SLIMLM_KERNELS_X86_KERNELS_X86_H_

#include <cstddef>
#include <cstdint>

#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels {

namespace avx512 {
// Requires AVX-512 F, BW, VL, DQ and VNNI.
const KernelTable& Table();
size_t PackedBytes(DType dtype, int64_t rows, int64_t cols);
void Pack(DType dtype, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t r0,
          int64_t r1, void* out);
size_t ActivationRowBytes(DType weight, int64_t k);
void ConvertActivation(DType weight, const float* x, void* out, int64_t k);
void MatMul(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
            int64_t n_tokens, int64_t r0, int64_t r1);
// f16_nm weights in the file layout times f32 activations x: n_tokens rows, x_stride floats
// apart (sparse_matmul_avx512.cc); MatMul's contract otherwise.
void SparseMatMul(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                  int64_t n_tokens, int64_t r0, int64_t r1);
}  // namespace avx512

namespace amx {
// The AVX-512 table, whose q4_0 and q8_0 products of several tokens run on AMX tiles; requires
// what avx512 does plus AMX-INT8 granted to the process (CpuFeatures::amx_int8). Same packing,
// same results bit for bit (matmul_amx.cc).
const KernelTable& Table();
void MatMul(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
            int64_t n_tokens, int64_t r0, int64_t r1);
}  // namespace amx

namespace avx2 {
// Requires AVX2, FMA and F16C.
const KernelTable& Table();
size_t PackedBytes(DType dtype, int64_t rows, int64_t cols);
void Pack(DType dtype, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t r0,
          int64_t r1, void* out);
size_t ActivationRowBytes(DType weight, int64_t k);
void ConvertActivation(DType weight, const float* x, void* out, int64_t k);
void MatMul(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
            int64_t n_tokens, int64_t r0, int64_t r1);
// f16_nm weights in the file layout times f32 activations x: n_tokens rows, x_stride floats
// apart (sparse_matmul_avx2.cc); MatMul's contract otherwise.
void SparseMatMul(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                  int64_t n_tokens, int64_t r0, int64_t r1);
}  // namespace avx2

}  // namespace slimlm::kernels

#endif  // SLIMLM_KERNELS_X86_KERNELS_X86_H_
