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
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "slimlm/core/aligned_bytes.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels {
namespace {

constexpr size_t kColdBytes = size_t{256} << 20;

// `copies` copies of a (rows, cols) 2:4-pruned matrix of `type` as `table` multiplies it,
// `stride` bytes apart.
struct Weights {
  AlignedBytes bytes;
  size_t stride = 0;
  size_t matrix_bytes = 0;  // Read per product.
  int64_t copies = 0;
  Matrix matrix;
};

Weights MakeWeights(const KernelTable& table, DType type, int64_t rows, int64_t cols, bool cold) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  const size_t row_bytes = RowBytes(type, cols);
  std::vector<uint8_t> file(row_bytes * static_cast<size_t>(rows));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) row[c] = (c % 4 == r % 3 || c % 4 == 3) ? uniform(rng) : 0;
    RowFromF32(type, row.data(), file.data() + r * row_bytes, cols);
  }
  Weights w;
  const size_t packed = table.packed_bytes(type, rows, cols);
  w.matrix_bytes = packed != 0 ? packed : file.size();
  w.stride = (w.matrix_bytes + 4095) / 4096 * 4096;
  w.copies = cold ? static_cast<int64_t>((kColdBytes + w.stride - 1) / w.stride) : 1;
  w.bytes = AlignedBytes(w.stride * static_cast<size_t>(w.copies));
  w.matrix = Matrix{type, rows, cols, w.bytes.data(), row_bytes, packed != 0};
  if (packed != 0) {
    table.pack(type, file.data(), row_bytes, rows, cols, 0, rows, w.bytes.data());
  } else {
    std::memcpy(w.bytes.data(), file.data(), file.size());
  }
  for (int64_t i = 1; i < w.copies; ++i) {
    std::memcpy(w.bytes.data() + i * w.stride, w.bytes.data(), w.matrix_bytes);
  }
  return w;
}

void Run(benchmark::State& state, Isa isa, DType type, bool cold) {
  const KernelTable& table = **KernelsFor(isa);
  const int64_t rows = state.range(0), cols = state.range(1);
  Weights w = MakeWeights(table, type, rows, cols, cold);
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  std::vector<uint8_t> act(table.activation_row_bytes(type, cols));
  table.convert_activation(type, x.data(), act.data(), cols);
  int64_t next = 0;
  for (auto _ : state) {
    Matrix m = w.matrix;
    m.data = w.bytes.data() + static_cast<size_t>(next++ % w.copies) * w.stride;
    table.matmul(m, act.data(), act.size(), y.data(), rows, 1, 0, rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.matrix_bytes));
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
