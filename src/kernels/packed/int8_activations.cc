#include "kernels/packed/int8_activations.h"

#include <cmath>
#include <cstring>

#include "slimlm/tensor/half.h"

namespace slimlm::kernels::packed {

void QuantizeInt8ActivationsScalar(const float* x, void* out, int64_t k) {
  uint8_t* p = static_cast<uint8_t*>(out);
  int8_t* q = reinterpret_cast<int8_t*>(p);
  float* d = reinterpret_cast<float*>(p + k);
  int32_t* s = reinterpret_cast<int32_t*>(p + k + (k / 32) * 4);
  int32_t* h = reinterpret_cast<int32_t*>(p + k + (k / 32) * 8);
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float scale = amax / 127.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    int32_t sum = 0, half = 0;
    for (int i = 0; i < 32; ++i) {
      const int v = static_cast<int>(std::roundf(xb[i] * inv));
      q[b * 32 + i] = static_cast<int8_t>(v);
      sum += v;
      if (i == 15) half = sum;
    }
    h[b] = half;
    d[b] = F16ToF32(F32ToF16(scale));
    s[b] = sum;
  }
}

}  // namespace slimlm::kernels::packed
