#include "slimlm/tensor/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "slimlm/core/check.h"
#include "slimlm/tensor/half.h"

namespace slimlm {

void QuantizeRowQ8_0Ref(const float* x, BlockQ8_0* y, int64_t n) {
  SLIMLM_DCHECK(n % kQ8_0BlockSize == 0);
  for (int64_t b = 0; b < n / kQ8_0BlockSize; ++b) {
    const float* xb = x + b * kQ8_0BlockSize;
    float amax = 0.0f;
    for (int i = 0; i < kQ8_0BlockSize; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = F32ToF16(d);
    for (int i = 0; i < kQ8_0BlockSize; ++i) {
      y[b].qs[i] = static_cast<int8_t>(std::roundf(xb[i] * id));
    }
  }
}

void QuantizeRowQ4_0Ref(const float* x, BlockQ4_0* y, int64_t n) {
  SLIMLM_DCHECK(n % kQ4_0BlockSize == 0);
  for (int64_t b = 0; b < n / kQ4_0BlockSize; ++b) {
    const float* xb = x + b * kQ4_0BlockSize;
    // The value of largest magnitude maps to code 0 (that is, -8 * d), keeping its sign, so the
    // asymmetric 4-bit range [-8, 7] is used where it matters most.
    float amax = 0.0f;
    float max = 0.0f;
    for (int i = 0; i < kQ4_0BlockSize; ++i) {
      if (amax < std::fabs(xb[i])) {
        amax = std::fabs(xb[i]);
        max = xb[i];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = F32ToF16(d);
    constexpr int kHalf = kQ4_0BlockSize / 2;
    for (int j = 0; j < kHalf; ++j) {
      const float x0 = xb[j] * id;
      const float x1 = xb[kHalf + j] * id;
      const int q0 = std::min(15, static_cast<int>(static_cast<int8_t>(x0 + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<int8_t>(x1 + 8.5f)));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void DequantizeRowQ8_0Ref(const BlockQ8_0* x, float* y, int64_t n) {
  SLIMLM_DCHECK(n % kQ8_0BlockSize == 0);
  for (int64_t b = 0; b < n / kQ8_0BlockSize; ++b) {
    const float d = F16ToF32(x[b].d);
    for (int i = 0; i < kQ8_0BlockSize; ++i) y[b * kQ8_0BlockSize + i] = d * x[b].qs[i];
  }
}

void DequantizeRowQ4_0Ref(const BlockQ4_0* x, float* y, int64_t n) {
  SLIMLM_DCHECK(n % kQ4_0BlockSize == 0);
  constexpr int kHalf = kQ4_0BlockSize / 2;
  for (int64_t b = 0; b < n / kQ4_0BlockSize; ++b) {
    const float d = F16ToF32(x[b].d);
    float* yb = y + b * kQ4_0BlockSize;
    for (int j = 0; j < kHalf; ++j) {
      yb[j] = d * ((x[b].qs[j] & 0x0f) - 8);
      yb[j + kHalf] = d * ((x[b].qs[j] >> 4) - 8);
    }
  }
}

void RowToF32(DType type, const void* row, float* out, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16: {
      const uint16_t* h = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) out[i] = F16ToF32(h[i]);
      return;
    }
    case DType::kBF16: {
      const uint16_t* h = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) out[i] = BF16ToF32(h[i]);
      return;
    }
    case DType::kQ8_0:
      DequantizeRowQ8_0Ref(static_cast<const BlockQ8_0*>(row), out, n);
      return;
    case DType::kQ4_0:
      DequantizeRowQ4_0Ref(static_cast<const BlockQ4_0*>(row), out, n);
      return;
    case DType::kQ4_K:
      DequantizeRowQ4_KRef(static_cast<const BlockQ4_K*>(row), out, n);
      return;
    case DType::kQ6_K:
      DequantizeRowQ6_KRef(static_cast<const BlockQ6_K*>(row), out, n);
      return;
    case DType::kF16NM:
      ExpandRowF16NMRef(static_cast<const BlockF16NM*>(row), out, n);
      return;
  }
  SLIMLM_CHECK(false) << "RowToF32: unhandled dtype";
}

void RowFromF32(DType type, const float* row, void* out, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kF16: {
      uint16_t* h = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) h[i] = F32ToF16(row[i]);
      return;
    }
    case DType::kBF16: {
      uint16_t* h = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) h[i] = F32ToBF16(row[i]);
      return;
    }
    case DType::kQ8_0:
      QuantizeRowQ8_0Ref(row, static_cast<BlockQ8_0*>(out), n);
      return;
    case DType::kQ4_0:
      QuantizeRowQ4_0Ref(row, static_cast<BlockQ4_0*>(out), n);
      return;
    case DType::kQ4_K:
      QuantizeRowQ4_KRef(row, static_cast<BlockQ4_K*>(out), n);
      return;
    case DType::kQ6_K:
      QuantizeRowQ6_KRef(row, static_cast<BlockQ6_K*>(out), n);
      return;
    case DType::kF16NM:
      CompressRowF16NMRef(row, static_cast<BlockF16NM*>(out), n);
      return;
  }
  SLIMLM_CHECK(false) << "RowFromF32: unhandled dtype";
}

}  // namespace slimlm
