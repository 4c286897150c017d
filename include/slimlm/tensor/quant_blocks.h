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

// K-quants: super-blocks of 256 weights, split into sub-blocks whose scales are themselves
// quantized against one f16 scale per super-block.
inline constexpr int kQK_K = 256;

// 8 sub-blocks of 32 weights as 4-bit codes q with a 6-bit scale sc and a 6-bit min m each:
// x = d * sc * q - dmin * m. Element e of the super-block sits in qs[32 (e / 64) + e % 32], in the
// low nibble when e % 64 < 32, else in the high nibble; it belongs to sub-block e / 32. The 8
// scales and 8 mins are packed into 12 bytes (see Q4_KScaleMin). 144 bytes, 4.5 bits per weight.
struct BlockQ4_K {
  uint16_t d;     // f16 bits
  uint16_t dmin;  // f16 bits
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "q4_k block must match GGUF");

// 16 sub-blocks of 16 weights as 6-bit codes q (0..63) with an int8 scale sc each:
// x = d * sc * (q - 32). Element e = 128 h + 32 s + l (h < 2, s < 4, l < 32) keeps its low 4 bits
// in ql[64 h + 32 (s % 2) + l] (low nibble for s < 2, high nibble otherwise) and its high 2 bits
// in bits 2 s, 2 s + 1 of qh[32 h + l]; its scale is scales[e / 16]. 210 bytes, 6.5625 bits per
// weight.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;  // f16 bits
};
static_assert(sizeof(BlockQ6_K) == 210, "q6_k block must match GGUF");

// 50% N:M-sparse f16 (slimlm's own type, id 1001): 32 weights of which exactly 4 of every
// aligned group of 8 are kept, which covers the 1:2, 2:4 and 4:8 patterns. Bit i of the
// little-endian mask is set when element i is kept; each of its 4 bytes has exactly 4 bits set.
// The 16 kept values follow as f16 in increasing position order, so byte g's values are
// vals[4 g .. 4 g + 3]; elements whose bit is clear are 0. 36 bytes, 9 bits per weight (f16 is
// 16): a decoded token reads 56% of the bytes of the dense f16 matrix.
// A mask byte with other than 4 bits set is invalid (see IsF16NMRowValid); kernels never read
// outside a block whatever its mask, but what they compute from an invalid one is unspecified.
inline constexpr int kF16NMBlockSize = 32;
inline constexpr int kF16NMGroup = 8;  // Elements per mask byte, of which half are kept.
struct BlockF16NM {
  uint32_t mask;
  uint16_t vals[kF16NMBlockSize / 2];  // f16 bits
};
static_assert(sizeof(BlockF16NM) == 36, "f16_nm block is a 4-byte mask and 16 f16 values");

// Scale and min of sub-block j (0..7) from a q4_k block's 12 packed bytes: the first four
// sub-blocks keep theirs in the low 6 bits of bytes j and j + 4; the last four keep their low
// 4 bits in the nibbles of byte j + 4 and their high 2 bits in the top bits of bytes j - 4
// (scale) and j (min).
void Q4_KScaleMin(const uint8_t* scales, int j, uint8_t* sc, uint8_t* m);

// Code (0..63) of element e (0..255) of a q6_k block, as the layout above places it.
inline int Q6_KCode(const BlockQ6_K& b, int e) {
  const int h = e / 128, s = (e % 128) / 32, l = e % 32;
  const int low = (b.ql[64 * h + 32 * (s % 2) + l] >> (s < 2 ? 0 : 4)) & 0x0f;
  const int high = (b.qh[32 * h + l] >> (2 * s)) & 3;
  return low | (high << 4);
}

// x: (n,) f32 -> y: n / 32 blocks. n must be a multiple of 32.
void QuantizeRowQ8_0Ref(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeRowQ4_0Ref(const float* x, BlockQ4_0* y, int64_t n);
// x: n / 32 blocks -> y: (n,) f32.
void DequantizeRowQ8_0Ref(const BlockQ8_0* x, float* y, int64_t n);
void DequantizeRowQ4_0Ref(const BlockQ4_0* x, float* y, int64_t n);

// x: (n,) f32 -> y: n / 256 blocks. `importance`, when not null, holds a weight per element
// (the mean squared activation of its input channel, see quant/importance.h): each sub-block's
// scale and min minimize the error weighted by it. Without it, larger weights count for more.
void QuantizeRowQ4_KRef(const float* x, BlockQ4_K* y, int64_t n, const float* importance = nullptr);
void QuantizeRowQ6_KRef(const float* x, BlockQ6_K* y, int64_t n, const float* importance = nullptr);
void DequantizeRowQ4_KRef(const BlockQ4_K* x, float* y, int64_t n);
void DequantizeRowQ6_KRef(const BlockQ6_K* x, float* y, int64_t n);

// x: (n,) f32 -> y: n / 32 f16_nm blocks; n must be a multiple of 32. In each aligned group of 8
// the nonzero elements are kept; a group with fewer than 4 keeps its first zero positions too
// (stored as zeros). A group with more than 4 nonzeros keeps the 4 of largest magnitude (the
// earlier position on ties) and DROPS THE OTHERS: callers are expected to pass rows pruned to an
// N:M pattern with N/M <= 1/2, which IsRowNMHalfSparse checks.
void CompressRowF16NMRef(const float* x, BlockF16NM* y, int64_t n);
// x: n / 32 f16_nm blocks -> y: (n,) f32, zeros where the mask is clear.
void ExpandRowF16NMRef(const BlockF16NM* x, float* y, int64_t n);
// True when every aligned group of 8 of x: (n,) has at most 4 nonzeros (a shorter last group
// too), so that f16_nm stores the row without dropping any weight.
bool IsRowNMHalfSparse(const float* x, int64_t n);
// True when every mask byte of the n / 32 blocks at x has exactly 4 bits set (for data read
// from a file, before kernels multiply it).
bool IsF16NMRowValid(const BlockF16NM* x, int64_t n);

// Converts one row of n elements of any type to f32 (exact for f16 / bf16 / quantized).
void RowToF32(DType type, const void* row, float* out, int64_t n);
// Converts one row of n f32 values to any type (rounding / quantizing as the type requires;
// f16_nm as CompressRowF16NMRef does, which drops weights of rows that are not N:M-sparse).
void RowFromF32(DType type, const float* row, void* out, int64_t n);

}  // namespace slimlm

#endif  // SLIMLM_TENSOR_QUANT_BLOCKS_H_
