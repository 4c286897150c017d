// Attention kernels at decode shapes, one thread: GB/s of keys and values read per call.
//
// Shapes of tinyllama: head_dim 64, 8 query heads per key/value head (group 8; 110m's group 1
// too), each head's cached rows contiguous (2 MiB pages requested, as the context does). "cold"
// runs go through the heads of 32 layers x 4 heads in turn (128 MB for n_kv = 4096 in f16, past
// the last-level cache; at short n_kv the heads still fit in it), as a decode step does; "hot"
// runs repeat one head, whose keys and values then come from the caches where they fit.
// PagedStep: a batched decode step's attention through the block tables of a paged pool (below).
//
//   build/bench/bench/kernels_attention_bench --benchmark_filter=4096
//   build/bench/bench/kernels_attention_bench --benchmark_filter=PagedStep
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/core/aligned_bytes.h"
#include "slimlm/core/cpu_features.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/tensor/quant_blocks.h"
#if defined(__x86_64__)
#include "kernels/x86/attention_x86.h"
#endif

namespace slimlm::kernels {
namespace {

constexpr int64_t kHeadDim = 64, kLayers = 32, kKvHeads = 4;

struct Cache {
  AlignedBytes k, v;
  size_t head_bytes;  // One head's n_kv rows.
};

Cache MakeCache(DType type, int64_t n_kv, int64_t heads) {
  Cache c;
  const size_t row_bytes = RowBytes(type, kHeadDim);
  c.head_bytes = row_bytes * static_cast<size_t>(n_kv);
  c.k = AlignedBytes(c.head_bytes * heads);
  c.v = AlignedBytes(c.head_bytes * heads);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> row(kHeadDim);
  for (size_t r = 0; r < c.k.size() / row_bytes; ++r) {
    for (float& x : row) x = uniform(rng);
    RowFromF32(type, row.data(), c.k.data() + r * row_bytes, kHeadDim);
    for (float& x : row) x = uniform(rng);
    RowFromF32(type, row.data(), c.v.data() + r * row_bytes, kHeadDim);
  }
  return c;
}

void Run(benchmark::State& state, void (*attention)(const AttentionArgs&), DType type, bool cold) {
  const int64_t n_kv = state.range(0), group = state.range(1);
  const int64_t heads = cold ? kLayers * kKvHeads : 1;
  const Cache cache = MakeCache(type, n_kv, heads);
  std::vector<float> q(group * kHeadDim, 0.1f), out(group * kHeadDim);
  std::vector<float> scratch(static_cast<size_t>(AttentionScratchFloats(group, kHeadDim, n_kv)));
  AttentionArgs a;
  a.q = q.data();
  a.group = group;
  a.head_dim = kHeadDim;
  a.k_type = a.v_type = type;
  a.k_stride = a.v_stride = RowBytes(type, kHeadDim);
  a.n_kv = n_kv;
  a.scale = 0.125f;
  a.out = out.data();
  a.scratch = scratch.data();
  int64_t next = 0;
  for (auto _ : state) {
    const size_t offset = static_cast<size_t>(next++ % heads) * cache.head_bytes;
    a.k = cache.k.data() + offset;
    a.v = cache.v.data() + offset;
    attention(a);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<int64_t>(cache.head_bytes));
}

void Register(const std::string& path, void (*attention)(const AttentionArgs&)) {
  for (DType type : {DType::kF16, DType::kQ8_0, DType::kF32}) {
    for (bool cold : {true, false}) {
      const std::string name =
          "Attention/" + path + "/" + std::string(DTypeName(type)) + (cold ? "/cold" : "/hot");
      benchmark::RegisterBenchmark(name.c_str(), Run, attention, type, cold)
          ->ArgNames({"n_kv", "group"})
          ->Args({512, 8})
          ->Args({4096, 8})
          ->Args({160, 1})
          ->Args({512, 1})
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

// A decode step's attention as the batched engine runs it, for a head alone (110m: 12 layers x 12
// heads, head_dim 64, f16 or q8_0): `seqs` sequences of n_kv positions each, every (layer, head)
// its own region of the pool (room for `seqs` sequences of 2048 positions, in blocks of 16 rows),
// each sequence's positions found through its block table. "together": each sequence's blocks
// follow one another, as prefill takes them; "scattered": sequences take blocks in turn, as
// decoding grows them together. One iteration is one layer: every (sequence, head) task, a token's
// heads in turn as the engine orders them. GB/s of keys and values read, to set beside the
// contiguous runs above: the same kernel, reading short runs of rows from all over the pool.
void RunPaged(benchmark::State& state, void (*attention)(const AttentionArgs&), DType type,
              bool scattered) {
  constexpr int64_t kLayers110m = 12, kHeads110m = 12, kBlockRows = 16;
  const int64_t n_kv = state.range(0), seqs = state.range(1);
  const int64_t blocks_per_seq = (n_kv + kBlockRows - 1) / kBlockRows;
  const int64_t pool_blocks = seqs * (2048 / kBlockRows);
  const size_t row_bytes = RowBytes(type, kHeadDim);
  const size_t region = static_cast<size_t>(pool_blocks * kBlockRows) * row_bytes;
  AlignedBytes k(region * kLayers110m * kHeads110m), v(region * kLayers110m * kHeads110m);
  // f16 1.0039 (q8_0: scales 1.0586, codes 60): finite scores and values.
  std::memset(k.data(), 0x3c, k.size());
  std::memset(v.data(), 0x3c, v.size());
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(seqs));
  int32_t next_block = 0;
  for (int64_t b = 0; b < blocks_per_seq; ++b) {
    for (int64_t sq = 0; sq < seqs; ++sq) {
      tables[sq].push_back(scattered ? next_block++
                                     : static_cast<int32_t>(sq * blocks_per_seq + b));
    }
  }
  std::vector<float> q(kHeadDim, 0.1f), out(kHeadDim);
  std::vector<float> scratch(static_cast<size_t>(AttentionScratchFloats(1, kHeadDim, n_kv)));
  AttentionArgs a;
  a.q = q.data();
  a.group = 1;
  a.head_dim = kHeadDim;
  a.k_type = a.v_type = type;
  a.k_stride = a.v_stride = row_bytes;
  a.n_kv = n_kv;
  a.block_rows = kBlockRows;
  a.scale = 0.125f;
  a.out = out.data();
  a.scratch = scratch.data();
  const int64_t tasks = seqs * kHeads110m;
  int64_t layer = 0;
  for (auto _ : state) {
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t sq = task / kHeads110m, h = task % kHeads110m;
      const size_t offset = static_cast<size_t>(layer * kHeads110m + h) * region;
      a.k = k.data() + offset;
      a.v = v.data() + offset;
      a.blocks = tables[sq].data();
      attention(a);
      benchmark::DoNotOptimize(out.data());
    }
    layer = (layer + 1) % kLayers110m;
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * tasks * n_kv * 2 * static_cast<int64_t>(row_bytes));
}

void RegisterPaged(const std::string& path, void (*attention)(const AttentionArgs&)) {
  for (DType type : {DType::kF16, DType::kQ8_0}) {
    for (bool scattered : {false, true}) {
      const std::string name = "PagedStep/" + path + "/" + std::string(DTypeName(type)) + "/" +
                               (scattered ? "scattered" : "together");
      benchmark::RegisterBenchmark(name.c_str(), RunPaged, attention, type, scattered)
          ->ArgNames({"n_kv", "seqs"})
          ->Args({160, 16})
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace slimlm::kernels

int main(int argc, char** argv) {
  using namespace slimlm::kernels;
  Register("ref", ref::Attention);
  Register("ref_flash", ref::FlashAttention);
#if defined(__x86_64__)
  const slimlm::CpuFeatures& f = slimlm::GetCpuFeatures();
  if (f.avx2 && f.fma && f.f16c) {
    Register("avx2", avx2::Attention);
    Register("avx2_flash", avx2::FlashAttention);
  }
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq) {
    Register("avx512", avx512::Attention);
    Register("avx512_flash", avx512::FlashAttention);
    RegisterPaged("avx512_flash", avx512::FlashAttention);
  }
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
