// The tile loop that the SIMD attention paths share: for each tile of positions, the path's
// scores, its online-softmax update of each head (running maximum m, running sum l, output
// rescaled to the new maximum), and its weighted sum of values; then the division by l.
// Attention is one tile of n_kv positions; flash attention tiles of the path's kFlashTile.
//
// With a paged cache (AttentionArgs::blocks) a tile spans blocks: the path scores and sums each
// run of rows that lie together in memory (a block, or the part of one in the tile) into its
// place in the tile, and the softmax runs once per tile. Restarting the tile at every block would
// pay the softmax, its rescaling of the output and the paths' set-up once per 16 positions, which
// at decode lengths cost more than the arithmetic. Runs start at multiples of the path's kLanes
// within the tile when block_rows is a multiple of kLanes (a path's score vectors then never
// straddle two runs); other block sizes fall back to one tile per block.
//
// Everything here is a template over the path, so each path's file instantiates it with its own
// instruction set and nothing compiled for one ISA is shared with another. A path provides:
//   kLanes, kFlashTile;
//   Supported(DType); TileScores(a, t0, n, s, s_stride); TileValues(a, t0, n, s, s_stride);
//   TileSoftmax(s, n, m, l, out, head_dim); ScaleRow(x, n, factor).
// TileScores and TileValues see contiguous rows (a.blocks unset); TileScores writes -inf to the
// lanes of its last vector past n, which a later run of the same tile overwrites.
#ifndef SLIMLM_KERNELS_ATTENTION_TILES_H_
#define SLIMLM_KERNELS_ATTENTION_TILES_H_

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels {

// Rows between the runs being read and those being fetched, when runs are short (blocks of a
// paged cache): the paths' own prefetches stop at the end of a run, and the hardware's at the
// end of a page of blocks, so the next blocks are fetched here.
inline constexpr int64_t kRunPrefetchRows = 64;
// Runs up to this long get the prefetch above; longer ones are left to the paths.
inline constexpr int64_t kShortRun = 64;

// Positions of a cache as runs of rows contiguous in memory, from position p on.
class KvRuns {
 public:
  KvRuns(const AttentionArgs& a, int64_t p) : blocks_(a.blocks), block_rows_(a.block_rows) {
    if (blocks_ == nullptr) {
      offset_ = p;
    } else {
      block_ = p / block_rows_;
      offset_ = p - block_ * block_rows_;
    }
  }
  // The row (in k and v) of the current position; only for a position below n_kv.
  size_t row() const {
    if (blocks_ == nullptr) return static_cast<size_t>(offset_);
    return static_cast<size_t>(blocks_[block_]) * static_cast<size_t>(block_rows_) +
           static_cast<size_t>(offset_);
  }
  // Rows that follow the current one contiguously (itself included), at most `most`.
  int64_t Contiguous(int64_t most) const {
    return blocks_ == nullptr ? most : std::min(most, block_rows_ - offset_);
  }
  void Advance(int64_t n) {
    offset_ += n;
    if (blocks_ == nullptr) return;
    while (offset_ >= block_rows_) {
      offset_ -= block_rows_;
      ++block_;
    }
  }

 private:
  const int32_t* blocks_;
  int64_t block_rows_;
  int64_t block_ = 0;
  int64_t offset_ = 0;
};

// Fetches the cache lines of n rows of a stream of positions (stopping at n_kv) into the cache.
inline void PrefetchRuns(const void* base, size_t stride, size_t bytes, KvRuns& runs,
                         int64_t& position, int64_t n, int64_t n_kv) {
  n = std::min(n, n_kv - position);
  while (n > 0) {
    const int64_t count = runs.Contiguous(n);
    const char* row = static_cast<const char*>(base) + runs.row() * stride;
    for (int64_t r = 0; r < count; ++r, row += stride) {
      for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(row + offset);
      __builtin_prefetch(row + bytes - 1);
    }
    runs.Advance(count);
    position += count;
    n -= count;
  }
}

// Calls fn(args, offset) for each run of positions [t0, t0 + n): args addresses the run as
// contiguous rows [0, args.n_kv), offset is the run's first position minus t0. With short runs,
// the rows kRunPrefetchRows ahead of each run in the stream `which` (0: keys, 1: values) are
// fetched first.
template <class Fn>
void ForEachRun(const AttentionArgs& a, int64_t t0, int64_t n, int which, Fn fn) {
  AttentionArgs run = a;
  run.blocks = nullptr;
  if (a.blocks == nullptr) {
    run.n_kv = n;
    run.k = static_cast<const uint8_t*>(a.k) + static_cast<size_t>(t0) * a.k_stride;
    run.v = static_cast<const uint8_t*>(a.v) + static_cast<size_t>(t0) * a.v_stride;
    fn(run, int64_t{0});
    return;
  }
  const bool prefetch = a.block_rows <= kShortRun;
  const void* base = which == 0 ? a.k : a.v;
  const size_t stride = which == 0 ? a.k_stride : a.v_stride;
  const size_t bytes = RowBytes(which == 0 ? a.k_type : a.v_type, a.head_dim);
  KvRuns runs(a, t0);
  int64_t ahead = std::min(t0 + kRunPrefetchRows, a.n_kv);
  KvRuns fetch(a, ahead);
  for (int64_t i = 0; i < n;) {
    const int64_t count = runs.Contiguous(n - i);
    if (prefetch) PrefetchRuns(base, stride, bytes, fetch, ahead, count, a.n_kv);
    const size_t row = runs.row();
    run.n_kv = count;
    run.k = static_cast<const uint8_t*>(a.k) + row * a.k_stride;
    run.v = static_cast<const uint8_t*>(a.v) + row * a.v_stride;
    fn(run, i);
    runs.Advance(count);
    i += count;
  }
}

// The weights of q8_0 value rows with the rows' block scales folded in, so that a path's value
// loop only widens codes: w[(g * blocks + b) * w_stride + t] = p[g * p_stride + t] times row t's
// scale of block b, for each head g, each of the head_dim / 32 blocks b and rows t < n of v;
// w_stride is n rounded up to kLanes. fold(rows, count, b, p, w, w_head) writes one vector of
// kLanes rows (count of them valid) of block b for every head, heads w_head floats apart. The
// weights live in per-thread scratch that grows on first use.
template <int kLanes, class Fold>
const float* FoldScales(const AttentionArgs& a, const uint8_t* v, int64_t n, const float* p,
                        int64_t* w_stride, Fold fold) {
  const int64_t blocks = a.head_dim / 32;
  *w_stride = (n + kLanes - 1) / kLanes * kLanes;
  static thread_local std::vector<float> w;
  const size_t size = static_cast<size_t>(a.group * blocks * *w_stride);
  if (w.size() < size) w.resize(size);
  for (int64_t t = 0; t < n; t += kLanes) {
    const int64_t count = std::min<int64_t>(kLanes, n - t);
    for (int64_t b = 0; b < blocks; ++b) {
      fold(v + static_cast<size_t>(t) * a.v_stride, count, b, p + t, w.data() + b * *w_stride + t,
           blocks * *w_stride);
    }
  }
  return w.data();
}

// Scratch: scores (group, s_stride) with s_stride the tile rounded up to kLanes, then the
// running maximum and sum of each head.
template <class Path>
void AttendByTiles(const AttentionArgs& a, int64_t tile) {
  const int64_t group = a.group, head_dim = a.head_dim;
  std::memset(a.out, 0, static_cast<size_t>(group * head_dim) * sizeof(float));
  if (a.n_kv <= 0) return;
  // Block sizes that would put a run's scores across vectors go block by block.
  if (a.blocks != nullptr && a.block_rows % Path::kLanes != 0) tile = std::min(tile, a.block_rows);
  const int64_t s_stride =
      (std::min(tile, a.n_kv) + Path::kLanes - 1) / Path::kLanes * Path::kLanes;
  float* s = a.scratch;
  float* m = s + group * s_stride;
  float* l = m + group;
  for (int64_t g = 0; g < group; ++g) {
    m[g] = -std::numeric_limits<float>::infinity();
    l[g] = 0.0f;
  }
  for (int64_t t0 = 0; t0 < a.n_kv;) {
    int64_t n = std::min(tile, a.n_kv - t0);
    // A tile of a paged cache with blocks of odd sizes stays inside one block.
    if (a.blocks != nullptr && a.block_rows % Path::kLanes != 0) {
      n = std::min(n, a.block_rows - t0 % a.block_rows);
    }
    ForEachRun(a, t0, n, 0, [&](const AttentionArgs& run, int64_t offset) {
      Path::TileScores(run, 0, run.n_kv, s + offset, s_stride);
    });
    for (int64_t g = 0; g < group; ++g) {
      Path::TileSoftmax(s + g * s_stride, n, m + g, l + g, a.out + g * head_dim, head_dim);
    }
    ForEachRun(a, t0, n, 1, [&](const AttentionArgs& run, int64_t offset) {
      Path::TileValues(run, 0, run.n_kv, s + offset, s_stride);
    });
    t0 += n;
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
