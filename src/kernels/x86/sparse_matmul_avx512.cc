// AVX-512 products of f16_nm weights (50% N:M-sparse f16, quant_blocks.h) with f32 activations,
// on the file layout: decoding is bound by memory, and the blocks already hold a row's kept
// values next to each other, so packing would buy nothing.
//
// Per block, the 16 kept f16 values are widened to f32 and placed at their positions by
// vexpandps: each 16-bit half of the mask has exactly 8 bits set (two mask bytes of 4), so the
// first 8 values fill elements 0-15 and the last 8 elements 16-31, zeros elsewhere. Then one FMA
// per half and token. Decoding (1 token) streams 4 rows at once, which gives 8 independent
// chains of FMAs; several tokens take tiles of 2 rows x up to 4 tokens, each block expanded once
// per tile and used for every token of it.
//
// Every output is the same two sums (first and second half of each block, block by block) and
// one horizontal add, whatever the tile, so results do not depend on how tokens are batched or
// rows split.
// Loops over registers carry "#pragma GCC unroll" so that arrays of vectors stay in registers.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "kernels/x86/kernels_x86.h"
#include "slimlm/core/check.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::avx512 {
namespace {

constexpr int kDecodeRows = 4;  // Rows per tile for 1 token.
constexpr int kTileRows = 2;    // Rows per tile for several tokens.
constexpr int kTileTokens = 4;  // Tokens per tile: 2 x 4 x 2 accumulators, 4 expanded halves.

// The 32 values of the f16_nm block at p, zeros where the mask is clear: elements 0-15 in lo,
// 16-31 in hi. An invalid mask (a half with more than 8 bits) expands zeros past the 8th value;
// nothing outside the block is read.
inline void ExpandBlock(const uint8_t* p, __m512* lo, __m512* hi) {
  uint32_t mask;
  std::memcpy(&mask, p, sizeof(mask));
  const __m256 v0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 4)));
  const __m256 v1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 20)));
  *lo = _mm512_maskz_expand_ps(static_cast<__mmask16>(mask), _mm512_zextps256_ps512(v0));
  *hi = _mm512_maskz_expand_ps(static_cast<__mmask16>(mask >> 16), _mm512_zextps256_ps512(v1));
}

// The sum of the 16 lanes. (_mm512_reduce_add_ps and the casts to narrower vectors use
// "undefined" placeholder operands, which GCC 12 before 12.3 reports as used uninitialized once
// inlined, GCC bug 105593; vextractf32x8 has none.)
inline float ReduceAdd(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_extractf32x8_ps(v, 0), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[t * ldy + r] for RT rows from w (rows w_row_bytes apart, nb blocks each) and TT tokens of x
// (rows x_stride floats apart).
template <int RT, int TT>
void Tile(const uint8_t* w, size_t w_row_bytes, int64_t nb, const float* x, int64_t x_stride,
          float* y, int64_t ldy) {
  __m512 acc_lo[RT][TT], acc_hi[RT][TT];
#pragma GCC unroll 8
  for (int r = 0; r < RT; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) acc_lo[r][t] = acc_hi[r][t] = _mm512_setzero_ps();
  }
  // The next RT rows follow these in memory: they are fetched into L2 while these are
  // multiplied, RT blocks' worth per step so that they arrive in order. Rows of a few KB are too
  // short for the hardware prefetchers to pick up each one's stream in time (one Zen 4 core, a
  // 2048 x 2048 product from DRAM: 0.54 ms without, 0.24 ms with). Not into L1: with long rows
  // (5632 columns) a tile ahead no longer fits beside the activations, and it was slower.
  const uint8_t* next = w + RT * w_row_bytes;
  constexpr int kAheadLines = (RT * static_cast<int>(sizeof(BlockF16NM)) + 63) / 64;
  for (int64_t b = 0; b < nb; ++b) {
#pragma GCC unroll 8
    for (int l = 0; l < kAheadLines; ++l) {
      _mm_prefetch(reinterpret_cast<const char*>(next + b * RT * sizeof(BlockF16NM) + 64 * l),
                   _MM_HINT_T1);
    }
    __m512 lo[RT], hi[RT];
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
      ExpandBlock(w + r * w_row_bytes + static_cast<size_t>(b) * sizeof(BlockF16NM), &lo[r],
                  &hi[r]);
    }
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
      const float* xb = x + t * x_stride + b * kF16NMBlockSize;
      const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
#pragma GCC unroll 8
      for (int r = 0; r < RT; ++r) {
        acc_lo[r][t] = _mm512_fmadd_ps(lo[r], x0, acc_lo[r][t]);
        acc_hi[r][t] = _mm512_fmadd_ps(hi[r], x1, acc_hi[r][t]);
      }
    }
  }
#pragma GCC unroll 8
  for (int t = 0; t < TT; ++t) {
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
      y[t * ldy + r] = ReduceAdd(_mm512_add_ps(acc_lo[r][t], acc_hi[r][t]));
    }
  }
}

using TileFn = void (*)(const uint8_t* w, size_t w_row_bytes, int64_t nb, const float* x,
                        int64_t x_stride, float* y, int64_t ldy);

// Tiles of RT rows for 1..kTileTokens tokens, indexed by count - 1.
template <int RT, size_t... I>
constexpr std::array<TileFn, sizeof...(I)> Tiles(std::index_sequence<I...>) {
  return {Tile<RT, static_cast<int>(I) + 1>...};
}

}  // namespace

void SparseMatMul(const Matrix& w, const float* x, int64_t x_stride, float* y, int64_t ldy,
                  int64_t n_tokens, int64_t r0, int64_t r1) {
  SLIMLM_DCHECK(!w.packed && w.cols % kF16NMBlockSize == 0);
  static constexpr auto kPairs = Tiles<kTileRows>(std::make_index_sequence<kTileTokens>());
  static constexpr auto kSingles = Tiles<1>(std::make_index_sequence<kTileTokens>());
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  const int64_t nb = w.cols / kF16NMBlockSize;
  // Rows outside, tokens inside: a tile's rows stay in L1 while the token tiles go over them.
  auto run = [&](const auto& tiles, int64_t r) {
    for (int64_t t0 = 0; t0 < n_tokens; t0 += kTileTokens) {
      const int64_t tt = std::min<int64_t>(kTileTokens, n_tokens - t0);
      tiles[tt - 1](data + static_cast<size_t>(r) * w.row_bytes, w.row_bytes, nb, x + t0 * x_stride,
                    x_stride, y + t0 * ldy + r, ldy);
    }
  };
  int64_t r = r0;
  if (n_tokens == 1) {
    for (; r + kDecodeRows <= r1; r += kDecodeRows) {
      Tile<kDecodeRows, 1>(data + static_cast<size_t>(r) * w.row_bytes, w.row_bytes, nb, x,
                           x_stride, y + r, ldy);
    }
  } else {
    for (; r + kTileRows <= r1; r += kTileRows) run(kPairs, r);
  }
  for (; r < r1; ++r) run(kSingles, r);
}

}  // namespace slimlm::kernels::avx512
