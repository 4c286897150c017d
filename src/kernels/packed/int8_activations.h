// The activation rows that packed 8-bit weights multiply (see packed_layout.h).
//
// One row of k values (k a multiple of 32), 64-byte aligned in size:
//   int8 q[k]        the values quantized per 32-element block exactly as q8_0 does
//                    (d = max|x| / 127, q = round-half-away(x / d))
//   float d[k / 32]  each block's scale, rounded through f16 as q8_0 stores it
//   int32 s[k / 32]  each block's sum of q, to correct for offset-coded weights:
//                    sum (w + o) q = sum w q + o s
//   int32 h[k / 32]  each block's sum of its first 16 q (q6_k's sub-blocks are 16 wide; the
//                    second half's sum is s - h)
// Products therefore equal the reference's (GGML q8_0 activations) up to f32 summation order.
#ifndef SLIMLM_KERNELS_PACKED_INT8_ACTIVATIONS_H_
#define SLIMLM_KERNELS_PACKED_INT8_ACTIVATIONS_H_

#include <cstddef>
#include <cstdint>

namespace slimlm::kernels::packed {

inline size_t Int8ActivationRowBytes(int64_t k) {
  const size_t bytes = static_cast<size_t>(k) + static_cast<size_t>(k / 32) * 12;
  return (bytes + 63) / 64 * 64;
}

struct Int8ActivationRow {
  const int8_t* q;
  const float* d;
  const int32_t* s;
  const int32_t* h;
};

inline Int8ActivationRow ViewInt8Activations(const void* row, int64_t k) {
  const uint8_t* p = static_cast<const uint8_t*>(row);
  return {reinterpret_cast<const int8_t*>(p), reinterpret_cast<const float*>(p + k),
          reinterpret_cast<const int32_t*>(p + k + (k / 32) * 4),
          reinterpret_cast<const int32_t*>(p + k + (k / 32) * 8)};
}

// Scalar conversion, the specification of the SIMD ones: x: (k,) f32 -> out.
void QuantizeInt8ActivationsScalar(const float* x, void* out, int64_t k);

}  // namespace slimlm::kernels::packed

#endif  // SLIMLM_KERNELS_PACKED_INT8_ACTIVATIONS_H_
