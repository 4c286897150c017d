// The order in which the SIMD paths run their tiles over the packed layouts, shared by all of
// them: which (tokens x row groups) tile shapes cover a product, and the dispatch by weight type.
// The tiles themselves are the path's. Templates over the path only, so each path's file
// instantiates them with its own instruction set. A path provides:
//   kFloatTile: tokens per float tile in prefill;
//   template <DType T, int TT, int G> Step(w, x, x_stride, y, ldy, r1, g, t0): the float tile of
//     TT tokens from t0 over row groups [g, g + G), every row one sequential sum;
//   Int8MatMul(q4, w, x, x_row_bytes, y, ldy, n_tokens, r0, r1): q4_0 (q4) or q8_0 weights;
//   KQuantMatMul(w, x, x_row_bytes, y, ldy, n_tokens, r0, r1): q4_k or q6_k weights (w.dtype).
//   SparseMatMul(w, x, x_stride, y, ldy, n_tokens, r0, r1): f16_nm weights in the file layout
//     (w.packed false: the type has no packed form), f32 activations.
// Quantized weights take the int8 activation rows of int8_activations.h.
#ifndef SLIMLM_KERNELS_PACKED_MATMUL_SCHEDULE_H_
#define SLIMLM_KERNELS_PACKED_MATMUL_SCHEDULE_H_

#include <cstddef>
#include <cstdint>

#include "kernels/packed/packed_layout.h"
#include "slimlm/core/cpu_features.h"
#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels::packed {

// Tiles of this many tokens or more fetch their weights ahead themselves: at that much arithmetic
// per byte the hardware prefetchers fall behind, and memory waits add to the arithmetic instead
// of hiding under it. With 1 or 2 tokens it depends on the CPU. On an AMD EPYC the prefetchers
// kept up and extra prefetches only cost (cold 2048 x 2048 at 2 tokens, AVX-512 q4_0: 76 -> 92 us
// with them). On an Intel Xeon with AMX they did not, and fetching ahead gained:
// cold 2048 x 2048 at 1 / 2 tokens, AVX-512, 1 thread: q4_0 160-169 -> 153-156 us and 189-195 ->
// 154, q8_0 318-321 -> 266 and 346-348 -> 278-292; `slimlm bench` tg at 1 thread, 110m q4_0
// 205-239 -> 307 tokens/s, tinyllama q8_0 11.9-12.1 -> 13.6-14.0. So small tiles fetch ahead on
// Intel CPUs only.
inline constexpr int kPrefetchFromTokens = 3;
// Read once at start-up, so that the tiles test a plain flag.
inline const bool kPrefetchSmallTiles = GetCpuFeatures().intel;
// How far ahead, and into L2: an L1 prefetch holds one of the few L1 miss buffers until its
// line arrives, which capped q8_0's stream. bench/kernels/matmul_bench, cold 2048 x 2048 at 8
// tokens, AVX-512: q4_0 340 -> 199 us, q8_0 363 -> 203, q4_k 363 -> 243, q6_k 493 -> 293; AVX2
// q4_0 590 -> 560.
inline constexpr size_t kPrefetchBytes = 6144;

// In a tile of TT tokens, fetches the `bytes` bytes kPrefetchBytes past a record into L2.
// Prefetches never fault, so reading past the end of the matrix is harmless.
template <int TT>
inline void PrefetchAhead(const uint8_t* record, size_t bytes) {
  if (TT >= kPrefetchFromTokens || kPrefetchSmallTiles) {
    for (size_t l = 0; l < bytes; l += 64) __builtin_prefetch(record + kPrefetchBytes + l, 0, 2);
  }
}

// Many tokens (prefill) go by chunks of about this many bytes of activation rows, each chunk
// over all of the row groups: the chunk stays in L2 while the weights pass, where all the rows
// of a long step would be read from L3 again for every group (tinyllama q4_0, a step of 2000
// prompt tokens: the products went from 56% to 70% of the int8 peak at 2 threads, 63% to 71% at
// 1; a step of 256 tokens gains 3%). The weights of a thread's rows come from L3 again for each
// chunk instead, which is far less. Used by the AVX-512 and AMX int8 products; on AVX2, which is
// bound by its arithmetic, chunking measured no gain.
inline constexpr size_t kChunkBytes = size_t{256} << 10;

// Prefill: tiles of kFloatTile tokens per row group, so each weight load serves them all. Few
// tokens (decode): several row groups at once, so that one token still has independent chains
// of multiply-adds. Every row is summed in column order whatever the tile, so the results do not
// depend on how tokens are batched.
template <class Path, DType T>
void FloatMatMulBySteps(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                        int64_t n_tokens, int64_t r0, int64_t r1) {
  constexpr int kTile = Path::kFloatTile;
  const int64_t g0 = r0 / kPackRows, g1 = (r1 + kPackRows - 1) / kPackRows;
  if (n_tokens >= kTile) {
    for (int64_t g = g0; g < g1; ++g) {
      int64_t t0 = 0;
      for (; t0 + kTile <= n_tokens; t0 += kTile) {
        Path::template Step<T, kTile, 1>(w, x, x_stride, y, ldy, r1, g, t0);
      }
      for (; t0 < n_tokens; ++t0) Path::template Step<T, 1, 1>(w, x, x_stride, y, ldy, r1, g, t0);
    }
    return;
  }
  for (int64_t t0 = 0; t0 < n_tokens;) {
    const int64_t tt = n_tokens - t0 >= 2 ? 2 : 1;
    int64_t g = g0;
    if (tt == 2) {
      for (; g + 2 <= g1; g += 2) Path::template Step<T, 2, 2>(w, x, x_stride, y, ldy, r1, g, t0);
      for (; g < g1; ++g) Path::template Step<T, 2, 1>(w, x, x_stride, y, ldy, r1, g, t0);
    } else {
      for (; g + 4 <= g1; g += 4) Path::template Step<T, 1, 4>(w, x, x_stride, y, ldy, r1, g, t0);
      for (; g < g1; ++g) Path::template Step<T, 1, 1>(w, x, x_stride, y, ldy, r1, g, t0);
    }
    t0 += tt;
  }
}

// KernelTable::matmul of a path.
template <class Path>
void MatMulByPath(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
                  int64_t n_tokens, int64_t r0, int64_t r1) {
  const float* xf = static_cast<const float*>(x);
  const int64_t x_stride = static_cast<int64_t>(x_row_bytes / sizeof(float));
  switch (w.dtype) {
    case DType::kF32:
      return FloatMatMulBySteps<Path, DType::kF32>(w, xf, x_stride, y, ldy, n_tokens, r0, r1);
    case DType::kF16:
      return FloatMatMulBySteps<Path, DType::kF16>(w, xf, x_stride, y, ldy, n_tokens, r0, r1);
    case DType::kBF16:
      return FloatMatMulBySteps<Path, DType::kBF16>(w, xf, x_stride, y, ldy, n_tokens, r0, r1);
    case DType::kQ8_0:
    case DType::kQ4_0:
      return Path::Int8MatMul(w.dtype == DType::kQ4_0, w, static_cast<const uint8_t*>(x),
                              x_row_bytes, y, ldy, n_tokens, r0, r1);
    case DType::kQ4_K:
    case DType::kQ6_K:
      return Path::KQuantMatMul(w, static_cast<const uint8_t*>(x), x_row_bytes, y, ldy, n_tokens,
                                r0, r1);
    case DType::kF16NM:
      return Path::SparseMatMul(w, xf, x_stride, y, ldy, n_tokens, r0, r1);
  }
}

}  // namespace slimlm::kernels::packed

#endif  // SLIMLM_KERNELS_PACKED_MATMUL_SCHEDULE_H_
