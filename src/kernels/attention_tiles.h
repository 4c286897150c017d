// The tile loop that the SIMD attention paths share: for each tile of positions, the path's
// scores, its online-softmax update of each head (running maximum m, running sum l, output
// rescaled to the new maximum), and its weighted sum of values; then the division by l.
// Attention is one tile of n_kv positions; flash attention tiles of the path's kFlashTile. With a
// paged cache (AttentionArgs::blocks), the tiles restart at every block.
//
// Everything here is a template over the path, so each path's file instantiates it with its own
// instruction set and nothing compiled for one ISA is shared with another. A path provides:
//   kLanes, kFlashTile;
//   Supported(DType); TileScores(a, t0, n, s, s_stride); TileValues(a, t0, n, s, s_stride);
//   TileSoftmax(s, n, m, l, out, head_dim); ScaleRow(x, n, factor).
#ifndef SLIMLM_KERNELS_ATTENTION_TILES_H_
#define SLIMLM_KERNELS_ATTENTION_TILES_H_

#include <algorithm>
#include <cstring>
#include <limits>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels {

// Scratch: scores (group, s_stride) with s_stride the tile rounded up to kLanes, then the
// running maximum and sum of each head.
template <class Path>
void AttendByTiles(const AttentionArgs& a, int64_t tile) {
  const int64_t group = a.group, head_dim = a.head_dim;
  std::memset(a.out, 0, static_cast<size_t>(group * head_dim) * sizeof(float));
  if (a.n_kv <= 0) return;
  const int64_t s_stride =
      (std::min(tile, a.n_kv) + Path::kLanes - 1) / Path::kLanes * Path::kLanes;
  float* s = a.scratch;
  float* m = s + group * s_stride;
  float* l = m + group;
  for (int64_t g = 0; g < group; ++g) {
    m[g] = -std::numeric_limits<float>::infinity();
    l[g] = 0.0f;
  }
  // A paged cache is contiguous within each block: the tiles run block by block, each over
  // arguments that address the block as rows [0, n) (so the paths' prefetches stay inside it).
  const int64_t span = a.blocks != nullptr ? a.block_rows : a.n_kv;
  for (int64_t b0 = 0; b0 < a.n_kv; b0 += span) {
    AttentionArgs block = a;
    block.n_kv = std::min(span, a.n_kv - b0);
    if (a.blocks != nullptr) {
      const size_t row = static_cast<size_t>(a.blocks[b0 / span]) * static_cast<size_t>(span);
      block.k = static_cast<const uint8_t*>(a.k) + row * a.k_stride;
      block.v = static_cast<const uint8_t*>(a.v) + row * a.v_stride;
      block.blocks = nullptr;
    }
    for (int64_t t0 = 0; t0 < block.n_kv; t0 += tile) {
      const int64_t n = std::min(tile, block.n_kv - t0);
      Path::TileScores(block, t0, n, s, s_stride);
      for (int64_t g = 0; g < group; ++g) {
        Path::TileSoftmax(s + g * s_stride, n, m + g, l + g, a.out + g * head_dim, head_dim);
      }
      Path::TileValues(block, t0, n, s, s_stride);
    }
  }
  for (int64_t g = 0; g < group; ++g) Path::ScaleRow(a.out + g * head_dim, head_dim, 1.0f / l[g]);
}

// The two table entries; cache types the path does not read go to the reference.
template <class Path>
void AttentionByPath(const AttentionArgs& args) {
  if (!Path::Supported(args.k_type) || !Path::Supported(args.v_type)) return ref::Attention(args);
  AttendByTiles<Path>(args, std::max<int64_t>(args.n_kv, 1));
}

template <class Path>
void FlashAttentionByPath(const AttentionArgs& args) {
  if (!Path::Supported(args.k_type) || !Path::Supported(args.v_type)) {
    return ref::FlashAttention(args);
  }
  AttendByTiles<Path>(args, Path::kFlashTile);
}

}  // namespace slimlm::kernels

#endif  // SLIMLM_KERNELS_ATTENTION_TILES_H_
