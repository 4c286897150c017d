// AMX tiles for the q4_0 and q8_0 products of several tokens: all that the AMX path changes in
// the AVX-512 one.
//
// One tile product (TDPBSUD) multiplies the int8 activations of up to 16 tokens in a 32-column
// block (tile A: a row per token, read in place from the activation rows) by the block's 16
// weight rows (tile B: 8 x 64 bytes, the packed record's quads as they are: VNNI order, four
// columns of the 16 rows per 64 bytes) into tokens x 16 exact int32 sums. q8_0 records are
// loaded from the matrix; q4_0 codes are first unpacked to bytes. One such product replaces 8
// vpdpbusd per token. The epilogue is the AVX-512 tile's: the exact sum less the weights' offset
// times the activations' sum, converted, times (weight scale * activation scale), added in block
// order. So every result equals the AVX-512 path's bit for bit, and a sequence's tokens do not
// depend on whether it was decoded alone (1 token: the AVX-512 tile) or in a batch.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/packed/matmul_schedule.h"
#include "kernels/packed/packed_layout.h"
#include "kernels/x86/kernels_x86.h"

namespace slimlm::kernels::amx {
namespace {

using packed::kPackRows;

// Tokens per tile: the rows of tiles A and C.
constexpr int kMaxTokens = 16;
// Fewer tokens go to the AVX-512 tiles. A tile product is cheap, but storing its sums (2 cycles
// per token row) and scaling them per block are not, and the tile unit runs its loads, products
// and stores one after another: bench/kernels/matmul_bench, cold 2048 x 2048, 1 thread, AMX
// against AVX-512: q4_0 0.92x at 8 tokens, 1.03x at 9, 1.19x at 12, 1.25-1.35x at 16; q8_0
// 0.98x, 1.04x, 1.16x, 1.2-1.27x.
constexpr int64_t kFromTokens = 9;

// The tile configuration (palette 1): tiles 0 and 1 hold the sums of even and odd blocks
// (tokens x 16 int32), 2 and 3 their activations (tokens x 32 bytes), 4 and 5 their weights
// (8 x 64 bytes). Consecutive blocks use the two sets in turn, so a block's loads need not wait
// for the previous block's sums to be stored.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

void ConfigureTiles(int tokens) {
  TileConfig c;
  for (int p = 0; p < 2; ++p) {
    c.rows[p] = static_cast<uint8_t>(tokens);
    c.bytes_per_row[p] = 64;
    c.rows[2 + p] = static_cast<uint8_t>(tokens);
    c.bytes_per_row[2 + p] = 32;
    c.rows[4 + p] = 8;
    c.bytes_per_row[4 + p] = 64;
  }
  _tile_loadconfig(&c);
}

// Blocks per stage of a group's pipeline (see Tile).
constexpr int kStage = 4;

// Per thread: two stages' unpacked q4_0 codes and stored sums, and the activations' offset
// corrections.
struct Scratch {
  alignas(64) uint8_t codes[2][kStage][512];
  alignas(64) int32_t sums[2][kStage][kMaxTokens * 16];
  std::vector<float> offsets;
};

thread_local Scratch scratch;

// sums = activations (tokens x 32 bytes, rows `a_stride` apart) . weights (a 512-byte record of
// quads), on tile set P. The tile numbers are part of the instructions, hence the two branches.
template <int P>
inline void TileProduct(const void* a, size_t a_stride, const void* w, int32_t* sums) {
  if constexpr (P == 0) {
    _tile_loadd(2, a, a_stride);
    _tile_loadd(4, w, 64);
    _tile_zero(0);
    _tile_dpbsud(0, 2, 4);
    _tile_stored(0, sums, 64);
  } else {
    _tile_loadd(3, a, a_stride);
    _tile_loadd(5, w, 64);
    _tile_zero(1);
    _tile_dpbsud(1, 3, 5);
    _tile_stored(1, sums, 64);
  }
}

// The offset corrections of tokens [0, TT) of x as floats, block-major (offsets[b * TT + t]):
// the weights' offset (q4_0 8, q8_0 128) times each block's activation sum. Integers below 2^20,
// so exact, as is their subtraction from an exact sum below 2^21.
void PrepareOffsets(const uint8_t* x, size_t x_row_bytes, int tt, int64_t k, int shift,
                    float* offsets) {
  const int64_t nb = k / 32;
  for (int t = 0; t < tt; ++t) {
    const uint8_t* sums = x + static_cast<size_t>(t) * x_row_bytes + k + nb * 4;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t s;
      std::memcpy(&s, sums + b * 4, sizeof(s));
      offsets[b * tt + t] = static_cast<float>(s * (1 << shift));
    }
  }
}

// Unpacks blocks [b0, b1) of a q4_0 group into quads of byte codes: pair p's low nibbles are
// quad p's codes, its high nibbles quad p + 4's.
inline void UnpackCodes(const uint8_t* group, int64_t b0, int64_t b1, uint8_t (*codes)[512]) {
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* rec = group + static_cast<size_t>(b) * packed::kQ4Record;
    uint8_t* u = codes[b - b0];
    for (int p = 0; p < 4; ++p) {
      const __m512i v = _mm512_loadu_si512(rec + p * 64);
      _mm512_store_si512(u + p * 64, _mm512_and_si512(v, low4));
      _mm512_store_si512(u + (p + 4) * 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
    }
  }
}

// Tile products of blocks [b0, b1) of a group into sums[b - b0], alternating the two tile sets.
template <bool kQ4, int TT>
[[gnu::always_inline]] inline void MultiplyStage(const uint8_t* group, int64_t b0, int64_t b1,
                                                 const uint8_t* x, size_t x_row_bytes,
                                                 const uint8_t (*codes)[512],
                                                 int32_t (*sums)[kMaxTokens * 16]) {
  constexpr size_t kRecord = kQ4 ? packed::kQ4Record : packed::kQ8Record;
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* rec = group + static_cast<size_t>(b) * kRecord;
    packed::PrefetchAhead<TT>(rec, kRecord);
    const void* weights = kQ4 ? static_cast<const void*>(codes[b - b0]) : rec;
    if ((b - b0) % 2 == 0) {
      TileProduct<0>(x + b * 32, x_row_bytes, weights, sums[b - b0]);
    } else {
      TileProduct<1>(x + b * 32, x_row_bytes, weights, sums[b - b0]);
    }
  }
}

// accf[t] += (sums - offset) * (weight scales * activation scale), blocks [b0, b1) in order.
template <bool kQ4, int TT>
[[gnu::always_inline]] inline void ScaleStage(const uint8_t* group, int64_t b0, int64_t b1,
                                              int64_t k, const uint8_t* x, size_t x_row_bytes,
                                              const float* offsets,
                                              const int32_t (*sums)[kMaxTokens * 16],
                                              __m512 (&accf)[TT]) {
  constexpr size_t kRecord = kQ4 ? packed::kQ4Record : packed::kQ8Record;
  constexpr int kScales = kQ4 ? 256 : 512;
  for (int64_t b = b0; b < b1; ++b) {
    const uint8_t* rec = group + static_cast<size_t>(b) * kRecord;
    const __m512 ws =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec + kScales)));
    const int32_t* block_sums = sums[b - b0];
    const uint8_t* scales = x + k + b * 4;
#pragma GCC unroll 16
    for (int t = 0; t < TT; ++t) {
      float da;
      std::memcpy(&da, scales + static_cast<size_t>(t) * x_row_bytes, sizeof(da));
      const __m512 exact = _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_load_si512(block_sums + t * 16)),
                                         _mm512_set1_ps(offsets[b * TT + t]));
      accf[t] = _mm512_fmadd_ps(exact, _mm512_mul_ps(ws, _mm512_set1_ps(da)), accf[t]);
    }
  }
}

// y[TT tokens, 16 rows] of one group; the tiles are configured for TT tokens.
//
// A tile's sums reach vector registers only through memory, and reading them right after the tile
// store (or a tile load right after the unpacking stores) stalls. So a group goes by stages of
// kStage blocks in a pipeline (measured on q8_0 at 16 tokens from L2: 107 cycles per block and
// group with stages of 1 block, 87 with 4): while the tiles multiply stage i (codes unpacked during
// stage i - 1), stage i + 1's codes are unpacked and stage i - 1's sums scaled, each stage's
// buffers written a whole stage before they are read.
template <bool kQ4, int TT>
void Tile(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes,
          const float* offsets, float* y, int64_t ldy, __mmask16 mask) {
  Scratch& s = scratch;
  __m512 accf[TT];
#pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) accf[t] = _mm512_setzero_ps();
  const int64_t nb = k / 32;
  const int64_t stages = (nb + kStage - 1) / kStage;
  auto end = [nb](int64_t i) { return std::min(nb, (i + 1) * kStage); };
  if constexpr (kQ4) UnpackCodes(group, 0, end(0), s.codes[0]);
  for (int64_t i = 0; i < stages; ++i) {
    if constexpr (kQ4) {
      if (i + 1 < stages) UnpackCodes(group, (i + 1) * kStage, end(i + 1), s.codes[(i + 1) % 2]);
    }
    MultiplyStage<kQ4, TT>(group, i * kStage, end(i), x, x_row_bytes, s.codes[i % 2],
                           s.sums[i % 2]);
    if (i > 0) {
      ScaleStage<kQ4, TT>(group, (i - 1) * kStage, i * kStage, k, x, x_row_bytes, offsets,
                          s.sums[(i - 1) % 2], accf);
    }
  }
  ScaleStage<kQ4, TT>(group, (stages - 1) * kStage, nb, k, x, x_row_bytes, offsets,
                      s.sums[(stages - 1) % 2], accf);
#pragma GCC unroll 16
  for (int t = 0; t < TT; ++t) _mm512_mask_storeu_ps(y + t * ldy, mask, accf[t]);
}

using TileFn = void (*)(const uint8_t* group, int64_t k, const uint8_t* x, size_t x_row_bytes,
                        const float* offsets, float* y, int64_t ldy, __mmask16 mask);

template <bool kQ4, size_t... I>
constexpr std::array<TileFn, sizeof...(I)> Tiles(std::index_sequence<I...>) {
  return {Tile<kQ4, static_cast<int>(I) + 1>...};
}

inline __mmask16 RowMask(int64_t valid) {
  return valid >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << valid) - 1);
}

// Tokens [t0, t1) in tiles of `tt` (t1 - t0 a multiple of it) over the groups of rows [r0, r1).
void RunTiles(TileFn tile, int tt, int shift, const Matrix& w, const uint8_t* x, size_t x_row_bytes,
              float* y, int64_t ldy, int64_t t0, int64_t t1, int64_t r0, int64_t r1) {
  const int64_t nb = w.cols / 32;
  std::vector<float>& offsets = scratch.offsets;
  offsets.resize(static_cast<size_t>((t1 - t0) * nb));
  for (int64_t t = t0; t < t1; t += tt) {
    PrepareOffsets(x + static_cast<size_t>(t) * x_row_bytes, x_row_bytes, tt, w.cols, shift,
                   offsets.data() + (t - t0) * nb);
  }
  ConfigureTiles(tt);
  const size_t group_bytes = packed::GroupBytes(w.dtype, w.cols);
  const uint8_t* data = static_cast<const uint8_t*>(w.data);
  for (int64_t g = r0 / kPackRows; g * kPackRows < r1; ++g) {
    const __mmask16 mask = RowMask(std::min<int64_t>(kPackRows, r1 - g * kPackRows));
    const uint8_t* group = data + static_cast<size_t>(g) * group_bytes;
    for (int64_t t = t0; t < t1; t += tt) {
      tile(group, w.cols, x + static_cast<size_t>(t) * x_row_bytes, x_row_bytes,
           offsets.data() + (t - t0) * nb, y + t * ldy + g * kPackRows, ldy, mask);
    }
  }
}

void Int8MatMul(bool q4, const Matrix& w, const uint8_t* x, size_t x_row_bytes, float* y,
                int64_t ldy, int64_t n_tokens, int64_t r0, int64_t r1) {
  static constexpr auto kQ8Tiles = Tiles<false>(std::make_index_sequence<kMaxTokens>());
  static constexpr auto kQ4Tiles = Tiles<true>(std::make_index_sequence<kMaxTokens>());
  const auto& tiles = q4 ? kQ4Tiles : kQ8Tiles;
  const int shift = q4 ? 3 : 7;  // Weights are stored as value + 8 (128).
  const int64_t chunk =
      std::max<int64_t>(kMaxTokens, static_cast<int64_t>(packed::kChunkBytes / x_row_bytes) /
                                        kMaxTokens * kMaxTokens);
  for (int64_t c0 = 0; c0 < n_tokens; c0 += chunk) {
    const int64_t c1 = std::min(n_tokens, c0 + chunk);
    // Whole tiles first, then the rest: the tile shapes change at most once per chunk.
    const int64_t whole = c0 + (c1 - c0) / kMaxTokens * kMaxTokens;
    if (whole > c0) {
      RunTiles(tiles[kMaxTokens - 1], kMaxTokens, shift, w, x, x_row_bytes, y, ldy, c0, whole, r0,
               r1);
    }
    if (c1 > whole) {
      const int rest = static_cast<int>(c1 - whole);
      RunTiles(tiles[rest - 1], rest, shift, w, x, x_row_bytes, y, ldy, whole, c1, r0, r1);
    }
  }
  // Returns the tile state to its initial one, which the OS then need not save.
  _tile_release();
}

}  // namespace

void MatMul(const Matrix& w, const void* x, size_t x_row_bytes, float* y, int64_t ldy,
            int64_t n_tokens, int64_t r0, int64_t r1) {
  const bool int8 = w.packed && (w.dtype == DType::kQ4_0 || w.dtype == DType::kQ8_0);
  if (!int8 || n_tokens < kFromTokens) {
    return avx512::MatMul(w, x, x_row_bytes, y, ldy, n_tokens, r0, r1);
  }
  Int8MatMul(w.dtype == DType::kQ4_0, w, static_cast<const uint8_t*>(x), x_row_bytes, y, ldy,
             n_tokens, r0, r1);
}

}  // namespace slimlm::kernels::amx
