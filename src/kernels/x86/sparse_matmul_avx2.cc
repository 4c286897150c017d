// AVX2 products of f16_nm weights (50% N:M-sparse f16, quant_blocks.h) with f32 activations, on
// the file layout (see sparse_matmul_avx512.cc for why it is not packed).
//
// A block goes by mask bytes: each covers 8 elements of which 4 are kept, whose values are 4
// consecutive f16. They are widened to 4 floats (the upper 4 lanes zero) and vpermps places them
// at their positions with an index from a 256-entry table, the dropped positions taking a zero
// lane. Then one FMA per byte and token. Decoding (1 token) streams 4 rows at once; several
// tokens take tiles of 1 row x up to 4 tokens, each block expanded once per tile.
//
// Every output is the same two sums (even and odd mask bytes, block by block) and one horizontal
// add, whatever the tile, so results do not depend on how tokens are batched or rows split.
// Loops over registers carry "#pragma GCC unroll" so that arrays of vectors stay in registers.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/x86/kernels_x86.h"
#include "kernels/x86/vec_math_avx2.h"
#include "slimlm/core/check.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::avx2 {
namespace {

constexpr int kDecodeRows = 4;  // Rows per tile for 1 token.
constexpr int kTileTokens = 4;  // Tokens per tile of one row: 4 x 2 accumulators.
constexpr int kZeroLane = 4;    // A lane of the widened values that is always zero.

// kExpand[byte][i]: which of the byte's kept values (0..3, in position order) element i takes,
// or kZeroLane where bit i is clear or is past the 4th set bit (an invalid byte).
constexpr std::array<std::array<int32_t, 8>, 256> MakeExpandTable() {
  std::array<std::array<int32_t, 8>, 256> table{};
  for (int byte = 0; byte < 256; ++byte) {
    int slot = 0;
    for (int i = 0; i < 8; ++i) {
      table[byte][i] = kZeroLane;
      if ((byte >> i) & 1) {
        if (slot < 4) table[byte][i] = slot;
        ++slot;
      }
    }
  }
  return table;
}
alignas(32) constexpr std::array<std::array<int32_t, 8>, 256> kExpand = MakeExpandTable();

// The 8 elements of one mask byte: its 4 f16 values at p placed where its bits are set.
inline __m256 ExpandByte(const uint8_t* p, uint32_t byte) {
  const __m128 v = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  const __m256i idx = _mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand[byte].data()));
  return _mm256_permutevar8x32_ps(_mm256_zextps128_ps256(v), idx);
}

// y[t * ldy + r] for RT rows from w (rows w_row_bytes apart, nb blocks each) and TT tokens of x
// (rows x_stride floats apart).
template <int RT, int TT>
void Tile(const uint8_t* w, size_t w_row_bytes, int64_t nb, const float* x, int64_t x_stride,
          float* y, int64_t ldy) {
  __m256 acc[2][RT][TT];
#pragma GCC unroll 8
  for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) acc[h][r][t] = _mm256_setzero_ps();
    }
  }
  // The next RT rows are fetched into L2 while these are multiplied (see sparse_matmul_avx512.cc).
  const uint8_t* next = w + RT * w_row_bytes;
  constexpr int kAheadLines = (RT * static_cast<int>(sizeof(BlockF16NM)) + 63) / 64;
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int l = 0; l < kAheadLines; ++l) {
      _mm_prefetch(reinterpret_cast<const char*>(next + b * RT * sizeof(BlockF16NM) + 64 * l),
                   _MM_HINT_T1);
    }
    // Row by row, byte by byte: one expanded byte of weights at a time stays in a register
    // (16 of them, of which the accumulators take 2 RT TT).
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
      const uint8_t* block = w + r * w_row_bytes + static_cast<size_t>(b) * sizeof(BlockF16NM);
      uint32_t mask;
      std::memcpy(&mask, block, sizeof(mask));
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const __m256 wq = ExpandByte(block + 4 + 8 * q, (mask >> (8 * q)) & 0xffu);
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
          const __m256 xv = _mm256_loadu_ps(x + t * x_stride + b * kF16NMBlockSize + 8 * q);
          acc[q & 1][r][t] = _mm256_fmadd_ps(wq, xv, acc[q & 1][r][t]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < TT; ++t) {
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
      y[t * ldy + r] = ReduceAdd(_mm256_add_ps(acc[0][r][t], acc[1][r][t]));
    }
  }
}

using TileFn = void (*)(const uint8_t* w, size_t w_row_bytes, int64_t nb, const float* x,
                        int64_t x_stride, float* y, int64_t ldy);

template <size_t... I>
constexpr std::array<TileFn, sizeof...(I)> Tiles(std::index_sequence<I...>) {
  return {Tile<1, static_cast<int>(I) + 1>...};
}

}  // namespace

void SparseMatMul(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                  int64_t n_tokens, int64_t r0, int64_t r1) {
  SLIMLM_DCHECK(!w.packed && w.cols % kF16NMBlockSize == 0);
  static constexpr auto kTiles = Tiles(std::make_index_sequence<kTileTokens>());
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  const int64_t nb = w.cols / kF16NMBlockSize;
  int64_t r = r0;
  if (n_tokens == 1) {
    for (; r + kDecodeRows <= r1; r += kDecodeRows) {
      Tile<kDecodeRows, 1>(data + static_cast<size_t>(r) * w.row_bytes, w.row_bytes, nb, x,
                           x_stride, y + r, ldy);
    }
  }
  // Rows outside, tokens inside: a row stays in L1 while the token tiles go over it.
  for (; r < r1; ++r) {
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTileTokens) {
      const int64_t tt = std::min<int64_t>(kTileTokens, n_tokens - t0);
      kTiles[tt - 1](data + static_cast<size_t>(r) * w.row_bytes, w.row_bytes, nb,
                     x + t0 * x_stride, x_stride, y + t0 * ldy + r, ldy);
    }
  }
}

}  // namespace slimlm::kernels::avx2
