// Quantized block layouts, bit-identical to GGUF's, and their scalar reference routines.
//
// These routines are the specification of each format: fast paths elsewhere must reproduce
// them (dequantization exactly; quantization exactly, since files must match llama.cpp's).
#ifndef SLIMLM_TENSOR_QUANT_BLOCKS_H_
#define SLIMLM_TENSOR_QUANT_BLOCKS_H_

#include <cstddef>
#include <cstdint>

#include "slimlm/tensor/dtype.h"

namespace slimlm {

inline constexpr int kQ8_0BlockSize = 32;
inline constexpr int kQ4_0BlockSize = 32;

// 32 weights as int8 with one f16 scale: x[i] = d * qs[i]. 34 bytes, 8.5 bits per weight.
struct BlockQ8_0 {
  uint16_t d;  // f16 bits
  int8_t qs[kQ8_0BlockSize];
};
static_assert(sizeof(BlockQ8_0) == 34, "q8_0 block must match GGUF");

// 32 weights as 4-bit codes with one f16 scale: x[i] = d * (code - 8). Byte j holds element j
// in its low nibble and element j + 16 in its high nibble. 18 bytes, 4.5 bits per weight.
struct BlockQ4_0 {
  uint16_t d;  // f16 bits
  uint8_t qs[kQ4_0BlockSize / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "q4_0 block must match GGUF");

// x: (n,) f32 -> y: n / 32 blocks. n must be a multiple of 32.
void QuantizeRowQ8_0Ref(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeRowQ4_0Ref(const float* x, BlockQ4_0* y, int64_t n);
// x: n / 32 blocks -> y: (n,) f32.
void DequantizeRowQ8_0Ref(const BlockQ8_0* x, float* y, int64_t n);
void DequantizeRowQ4_0Ref(const BlockQ4_0* x, float* y, int64_t n);

// Converts one row of n elements of any type to f32 (exact for f16 / bf16 / quantized).
void RowToF32(DType type, const void* row, float* out, int64_t n);
// Converts one row of n f32 values to any type (rounding / quantizing as the type requires).
void RowFromF32(DType type, const float* row, void* out, int64_t n);

}  // namespace slimlm

#endif  // SLIMLM_TENSOR_QUANT_BLOCKS_H_
