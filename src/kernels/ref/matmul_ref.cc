// Reference matrix products. Plain f32 accumulation in index order; quantized weights use the
// integer dot product of GGML's q8_0 activations (sum of int8 * int8 per block, scaled by both
// block scales), so fast paths and llama.cpp compute the same thing. K-quant weights take the
// same per-32 activations (llama.cpp uses one scale per 256; per 32 is at least as precise).
// f16_nm weights (50% N:M-sparse) take f32 activations like the float types.
#include <cstring>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::ref {
namespace {

using RowMatMulFn = void (*)(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes,
                             int64_t k, float* y, int64_t ldy, int64_t n_tokens, int64_t r0,
                             int64_t r1);

// Applies dot(w_row, x_row) over the row and token ranges with a per-type row dot product.
template <typename RowDot>
void ForEachOutput(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, float* y,
                   int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1, RowDot row_dot) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  const uint8_t* xb = static_cast<const uint8_t*>(x);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const uint8_t* x_row = xb + static_cast<size_t>(t) * x_row_bytes;
    for (int64_t r = r0; r < r1; ++r) {
      y[t * ldy + r] = row_dot(wb + static_cast<size_t>(r) * w_row_bytes, x_row);
    }
  }
}

void MatMulF32(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
               float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  ForEachOutput(w, w_row_bytes, x, x_row_bytes, y, ldy, n_tokens, r0, r1,
                [k](const uint8_t* wr, const uint8_t* xr) {
                  const float* a = reinterpret_cast<const float*>(wr);
                  const float* b = reinterpret_cast<const float*>(xr);
                  float sum = 0.0f;
                  for (int64_t i = 0; i < k; ++i) sum += a[i] * b[i];
                  return sum;
                });
}

// f16 and bf16 weights: each element widened to f32, then the f32 product.
template <float (*Widen)(uint16_t)>
void MatMulWidened(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                   float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  ForEachOutput(w, w_row_bytes, x, x_row_bytes, y, ldy, n_tokens, r0, r1,
                [k](const uint8_t* wr, const uint8_t* xr) {
                  const uint16_t* a = reinterpret_cast<const uint16_t*>(wr);
                  const float* b = reinterpret_cast<const float*>(xr);
                  float sum = 0.0f;
                  for (int64_t i = 0; i < k; ++i) sum += Widen(a[i]) * b[i];
                  return sum;
                });
}

void MatMulF16(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
               float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  MatMulWidened<F16ToF32>(w, w_row_bytes, x, x_row_bytes, k, y, ldy, n_tokens, r0, r1);
}

void MatMulBF16(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  MatMulWidened<BF16ToF32>(w, w_row_bytes, x, x_row_bytes, k, y, ldy, n_tokens, r0, r1);
}

void MatMulQ8_0(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  const int64_t n_blocks = k / kQ8_0BlockSize;
  ForEachOutput(w, w_row_bytes, x, x_row_bytes, y, ldy, n_tokens, r0, r1,
                [n_blocks](const uint8_t* wr, const uint8_t* xr) {
                  const BlockQ8_0* a = reinterpret_cast<const BlockQ8_0*>(wr);
                  const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(xr);
                  float sum = 0.0f;
                  for (int64_t j = 0; j < n_blocks; ++j) {
                    int32_t sumi = 0;
                    for (int i = 0; i < kQ8_0BlockSize; ++i) sumi += a[j].qs[i] * b[j].qs[i];
                    sum += static_cast<float>(sumi) * (F16ToF32(a[j].d) * F16ToF32(b[j].d));
                  }
                  return sum;
                });
}

void MatMulQ4_0(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  const int64_t n_blocks = k / kQ4_0BlockSize;
  constexpr int kHalf = kQ4_0BlockSize / 2;
  ForEachOutput(w, w_row_bytes, x, x_row_bytes, y, ldy, n_tokens, r0, r1,
                [n_blocks](const uint8_t* wr, const uint8_t* xr) {
                  const BlockQ4_0* a = reinterpret_cast<const BlockQ4_0*>(wr);
                  const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(xr);
                  float sum = 0.0f;
                  for (int64_t j = 0; j < n_blocks; ++j) {
                    int32_t sumi = 0;
                    for (int i = 0; i < kHalf; ++i) {
                      sumi += ((a[j].qs[i] & 0x0f) - 8) * b[j].qs[i];
                      sumi += ((a[j].qs[i] >> 4) - 8) * b[j].qs[i + kHalf];
                    }
                    sum += static_cast<float>(sumi) * (F16ToF32(a[j].d) * F16ToF32(b[j].d));
                  }
                  return sum;
                });
}

// q4_k: sub-block j of super-block s meets activation block 8 s + j:
//   d_a (d sc sum q a - dmin m sum a).
void MatMulQ4_K(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  const int64_t n_super = k / kQK_K;
  ForEachOutput(w, w_row_bytes, x, x_row_bytes, y, ldy, n_tokens, r0, r1,
                [n_super](const uint8_t* wr, const uint8_t* xr) {
                  const BlockQ4_K* a = reinterpret_cast<const BlockQ4_K*>(wr);
                  const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(xr);
                  float sum = 0.0f;
                  for (int64_t s = 0; s < n_super; ++s) {
                    const float d = F16ToF32(a[s].d), dmin = F16ToF32(a[s].dmin);
                    for (int j = 0; j < 8; ++j) {
                      const BlockQ8_0& xb = b[s * 8 + j];
                      uint8_t sc, m;
                      Q4_KScaleMin(a[s].scales, j, &sc, &m);
                      const uint8_t* q = a[s].qs + 32 * (j / 2);
                      const int shift = (j % 2) * 4;
                      int32_t sumi = 0, suma = 0;
                      for (int l = 0; l < 32; ++l) {
                        sumi += ((q[l] >> shift) & 0x0f) * xb.qs[l];
                        suma += xb.qs[l];
                      }
                      sum += F16ToF32(xb.d) *
                             (d * static_cast<float>(sc) * static_cast<float>(sumi) -
                              dmin * static_cast<float>(m) * static_cast<float>(suma));
                    }
                  }
                  return sum;
                });
}

// q6_k: activation block b spans sub-blocks 2 b and 2 b + 1 of 16 weights:
//   d_a d (sc0 sum (q - 32) a + sc1 sum (q - 32) a), the bracket in integers.
void MatMulQ6_K(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  const int64_t n_super = k / kQK_K;
  ForEachOutput(w, w_row_bytes, x, x_row_bytes, y, ldy, n_tokens, r0, r1,
                [n_super](const uint8_t* wr, const uint8_t* xr) {
                  const BlockQ6_K* a = reinterpret_cast<const BlockQ6_K*>(wr);
                  const BlockQ8_0* b = reinterpret_cast<const BlockQ8_0*>(xr);
                  float sum = 0.0f;
                  for (int64_t s = 0; s < n_super; ++s) {
                    const float d = F16ToF32(a[s].d);
                    for (int j = 0; j < 8; ++j) {
                      const BlockQ8_0& xb = b[s * 8 + j];
                      int32_t sumi = 0;
                      for (int half = 0; half < 2; ++half) {
                        int32_t part = 0;
                        for (int l = 0; l < 16; ++l) {
                          const int e = 32 * j + 16 * half + l;
                          part += (Q6_KCode(a[s], e) - 32) * xb.qs[16 * half + l];
                        }
                        sumi += a[s].scales[2 * j + half] * part;
                      }
                      sum += F16ToF32(xb.d) * d * static_cast<float>(sumi);
                    }
                  }
                  return sum;
                });
}

// f16_nm: each block expanded to its 32 f32 values (zeros where the mask is clear), then the
// f32 product in index order: the dense product of the expanded row, whose zero terms leave an
// f32 sum unchanged (for finite activations).
void MatMulF16NM(const void* w, size_t w_row_bytes, const void* x, size_t x_row_bytes, int64_t k,
                 float* y, int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  const int64_t n_blocks = k / kF16NMBlockSize;
  ForEachOutput(w, w_row_bytes, x, x_row_bytes, y, ldy, n_tokens, r0, r1,
                [n_blocks](const uint8_t* wr, const uint8_t* xr) {
                  const float* b = reinterpret_cast<const float*>(xr);
                  float sum = 0.0f;
                  for (int64_t j = 0; j < n_blocks; ++j) {
                    BlockF16NM block;
                    std::memcpy(&block, wr + j * sizeof(BlockF16NM), sizeof(block));
                    float a[kF16NMBlockSize];
                    ExpandRowF16NMRef(&block, a, kF16NMBlockSize);
                    const float* xb = b + j * kF16NMBlockSize;
                    for (int i = 0; i < kF16NMBlockSize; ++i) sum += a[i] * xb[i];
                  }
                  return sum;
                });
}

}  // namespace

size_t ActivationRowBytes(DType weight, int64_t k) {
  return Traits(weight).quantized ? RowBytes(DType::kQ8_0, k)
                                  : static_cast<size_t>(k) * sizeof(float);
}

void ConvertActivation(DType weight, const float* x, void* out, int64_t k) {
  if (Traits(weight).quantized) {
    QuantizeRowQ8_0Ref(x, static_cast<BlockQ8_0*>(out), k);
  } else {
    std::memcpy(out, x, static_cast<size_t>(k) * sizeof(float));
  }
}

void MatMul(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
            int64_t n_tokens, int64_t r0, int64_t r1) {
  RowMatMulFn fn = nullptr;
  switch (w.dtype) {
    case DType::kF32:
      fn = MatMulF32;
      break;
    case DType::kF16:
      fn = MatMulF16;
      break;
    case DType::kBF16:
      fn = MatMulBF16;
      break;
    case DType::kQ8_0:
      fn = MatMulQ8_0;
      break;
    case DType::kQ4_0:
      fn = MatMulQ4_0;
      break;
    case DType::kQ4_K:
      fn = MatMulQ4_K;
      break;
    case DType::kQ6_K:
      fn = MatMulQ6_K;
      break;
    case DType::kF16NM:
      fn = MatMulF16NM;
      break;
  }
  fn(w.data, w.row_bytes, x, x_row_bytes, w.cols, y, ldy, n_tokens, r0, r1);
}

}  // namespace slimlm::kernels::ref
