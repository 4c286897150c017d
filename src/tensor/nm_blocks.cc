// The f16_nm block format (quant_blocks.h): conversions to and from f32, the specification of
// the kernels that multiply it.
#include <bit>
#include <cmath>
#include <cstring>

#include "slimlm/core/check.h"
#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {
namespace {

constexpr int kKeptPerGroup = kF16NMGroup / 2;

// The keep bits of one aligned group of 8 values g: its nonzeros, padded with its first zero
// positions, or its 4 largest magnitudes when it has more than 4 nonzeros.
uint8_t KeepBits(const float* g) {
  int nonzero = 0;
  for (int i = 0; i < kF16NMGroup; ++i) nonzero += g[i] != 0.0f;
  unsigned keep = 0;
  if (nonzero <= kKeptPerGroup) {
    for (int i = 0; i < kF16NMGroup; ++i) keep |= (g[i] != 0.0f ? 1u : 0u) << i;
    for (int i = 0; i < kF16NMGroup && std::popcount(keep) < kKeptPerGroup; ++i) keep |= 1u << i;
    return static_cast<uint8_t>(keep);
  }
  // Strictly larger wins, so the earlier position keeps its place on ties.
  for (int n = 0; n < kKeptPerGroup; ++n) {
    int best = -1;
    for (int i = 0; i < kF16NMGroup; ++i) {
      if ((keep >> i) & 1u) continue;
      if (best < 0 || std::fabs(g[i]) > std::fabs(g[best])) best = i;
    }
    keep |= 1u << best;
  }
  return static_cast<uint8_t>(keep);
}

}  // namespace

void CompressRowF16NMRef(const float* x, BlockF16NM* y, int64_t n) {
  SLIMLM_DCHECK(n % kF16NMBlockSize == 0);
  for (int64_t b = 0; b < n / kF16NMBlockSize; ++b) {
    const float* xb = x + b * kF16NMBlockSize;
    BlockF16NM& out = y[b];
    out.mask = 0;
    int slot = 0;
    for (int g = 0; g < kF16NMBlockSize / kF16NMGroup; ++g) {
      const uint8_t keep = KeepBits(xb + g * kF16NMGroup);
      out.mask |= static_cast<uint32_t>(keep) << (g * kF16NMGroup);
      for (int i = 0; i < kF16NMGroup; ++i) {
        if ((keep >> i) & 1) out.vals[slot++] = F32ToF16(xb[g * kF16NMGroup + i]);
      }
    }
  }
}

void ExpandRowF16NMRef(const BlockF16NM* x, float* y, int64_t n) {
  SLIMLM_DCHECK(n % kF16NMBlockSize == 0);
  for (int64_t b = 0; b < n / kF16NMBlockSize; ++b) {
    float* yb = y + b * kF16NMBlockSize;
    for (int g = 0; g < kF16NMBlockSize / kF16NMGroup; ++g) {
      const unsigned keep = (x[b].mask >> (g * kF16NMGroup)) & 0xffu;
      // The j-th kept element of group g is vals[4 g + j]; bits past the 4th (an invalid mask)
      // read as zeros, so no mask makes this read outside the block.
      int j = 0;
      for (int i = 0; i < kF16NMGroup; ++i) {
        float v = 0.0f;
        if ((keep >> i) & 1u) {
          if (j < kKeptPerGroup) v = F16ToF32(x[b].vals[g * kKeptPerGroup + j]);
          ++j;
        }
        yb[g * kF16NMGroup + i] = v;
      }
    }
  }
}

bool IsRowNMHalfSparse(const float* x, int64_t n) {
  for (int64_t g = 0; g < n; g += kF16NMGroup) {
    int nonzero = 0;
    for (int64_t i = g; i < n && i < g + kF16NMGroup; ++i) nonzero += x[i] != 0.0f;
    if (nonzero > kKeptPerGroup) return false;
  }
  return true;
}

bool IsF16NMRowValid(const BlockF16NM* x, int64_t n) {
  for (int64_t b = 0; b < n / kF16NMBlockSize; ++b) {
    for (int g = 0; g < kF16NMBlockSize / kF16NMGroup; ++g) {
      if (std::popcount((x[b].mask >> (g * kF16NMGroup)) & 0xffu) != kKeptPerGroup) return false;
    }
  }
  return true;
}

}  // namespace slimlm
