// Matrix-vector products (decoding: 1 token) of 50% N:M-sparse weights, one thread: dense f16
// (packed, as a model packs it) against f16_nm (the file layout, which is never packed), the
// same pruned weights through the same kernel table. Bytes processed are the weight bytes read
// per product (f16: 2 per weight; f16_nm: 36 per 32), so GB/s compare how close each gets to the
// memory bandwidth, and the time per product how much a decoded token gains.
//
// "cold" runs go through copies of the matrix, 256 MB or more in all (past the last-level
// cache), as a decode step goes through a model's matrices; "hot" runs repeat one matrix, which
// then comes from the caches where it fits. Shapes are tinyllama's: (2048, 2048) for attention
// projections, (5632, 2048) for the feed-forward gate and up.
//
//   build/bench/bench/kernels_sparse_matmul_bench --benchmark_filter=cold
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "matrix_copies.h"
#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels {
namespace {

void Run(benchmark::State& state, Isa isa, DType type, bool cold) {
  const KernelTable& table = **KernelsFor(isa);
  const int64_t rows = state.range(0), cols = state.range(1);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  // 2:4-pruned: in each group of 4 columns, one that moves with the row and the last are kept.
  MatrixCopies w(table, type, rows, cols, cold, [&](int64_t r, std::span<float> row) {
    for (size_t c = 0; c < row.size(); ++c) {
      row[c] = (static_cast<int64_t>(c) % 4 == r % 3 || c % 4 == 3) ? uniform(rng) : 0.0f;
    }
  });
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  std::vector<uint8_t> act(table.activation_row_bytes(type, cols));
  table.convert_activation(type, x.data(), act.data(), cols);
  for (auto _ : state) {
    table.matmul(w.Next(), act.data(), act.size(), y.data(), rows, 1, 0, rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.matrix_bytes()));
}

void Register(Isa isa) {
  for (DType type : {DType::kF16, DType::kF16NM}) {
    for (bool cold : {true, false}) {
      const std::string name = "MatVec/" + std::string(IsaName(isa)) + "/" +
                               std::string(DTypeName(type)) + (cold ? "/cold" : "/hot");
      benchmark::RegisterBenchmark(name.c_str(), Run, isa, type, cold)
          ->Args({2048, 2048})
          ->Args({5632, 2048})
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace slimlm::kernels

int main(int argc, char** argv) {
  for (slimlm::kernels::Isa isa : slimlm::kernels::SupportedIsas()) {
    slimlm::kernels::Register(isa);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
