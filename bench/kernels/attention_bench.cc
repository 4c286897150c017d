// Attention kernels at decode shapes, one thread: GB/s of keys and values read per call.
//
// Shapes of tinyllama: head_dim 64, 8 query heads per key/value head, each head's cached rows
// contiguous as in slimlm's head-major cache (2 MiB pages requested, as the context does).
// "cold" runs go through the heads of 32 layers x 4 heads in turn (128 MB for n_kv = 4096 in
// f16, past the last-level cache), as a decode step does; "hot" runs repeat one head, whose keys
// and values then come from the caches where they fit.
//
//   build/bench/bench/kernels_attention_bench --benchmark_filter=4096
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
  }
#endif
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
