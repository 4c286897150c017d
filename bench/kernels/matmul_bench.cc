// Dense matrix products of quantized weights for 1 to 16 tokens, one thread: how close the
// batched products of a decode step (one token per sequence) get to the int8 peak that
// `slimlm hw` measures; and for 256 tokens, a prompt's step. "hot" runs repeat one matrix, which
// then comes from the caches (a 2048 x 2048 q4_0 matrix is 2.4 MB: the last-level cache), isolating
// the arithmetic; "cold" runs go through copies of the matrix, 256 MB or more in all, as a decode
// step goes through a model's matrices from memory. Shapes are tinyllama's: (2048, 2048) attention
// projections, (5632, 2048) feed-forward gate and up, (2048, 5632) feed-forward down.
//
// GOP (per second) counts 2 operations (a multiply and an add) per weight and token, as `slimlm hw`
// and `--profile` do.
//
//   build/bench/bench/kernels_matmul_bench --benchmark_filter='avx512/q4_0'
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
  const int64_t rows = state.range(0), cols = state.range(1), tokens = state.range(2);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  MatrixCopies w(table, type, rows, cols, cold, [&](int64_t, std::span<float> row) {
    for (float& v : row) v = uniform(rng);
  });
  std::vector<float> row(static_cast<size_t>(cols));
  const size_t act_bytes = table.activation_row_bytes(type, cols);
  std::vector<uint8_t> act(act_bytes * static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    for (float& v : row) v = uniform(rng);
    table.convert_activation(type, row.data(), act.data() + t * act_bytes, cols);
  }
  std::vector<float> y(static_cast<size_t>(rows * tokens));
  for (auto _ : state) {
    table.matmul(w.Next(), act.data(), act_bytes, y.data(), rows, tokens, 0, rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  // Shown as GOP=N/s.
  state.counters["GOP"] = benchmark::Counter(
      2e-9 * static_cast<double>(rows * cols * tokens) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

void Register(Isa isa) {
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
    for (bool cold : {false, true}) {
      const std::string name = "MatMul/" + std::string(IsaName(isa)) + "/" +
                               std::string(DTypeName(type)) + (cold ? "/cold" : "/hot");
      auto* b = benchmark::RegisterBenchmark(name.c_str(), Run, isa, type, cold);
      b->ArgNames({"rows", "cols", "tokens"});
      for (int64_t tokens : {1, 2, 4, 8, 12, 16}) b->Args({2048, 2048, tokens});
      // A prompt's step of 256 tokens (`--step-tokens`' default), from the caches.
      if (!cold) b->Args({2048, 2048, 256});
      if (cold) {
        for (int64_t tokens : {1, 8, 16}) b->Args({5632, 2048, tokens})->Args({2048, 5632, tokens});
        // 110m's: attention projections, feed-forward gate/up and down.
        for (int64_t tokens : {1, 8, 16}) {
          b->Args({768, 768, tokens})->Args({2048, 768, tokens})->Args({768, 2048, tokens});
        }
      }
      b->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace slimlm::kernels

int main(int argc, char** argv) {
  for (slimlm::kernels::Isa isa : slimlm::kernels::SupportedIsas()) {
    if (isa != slimlm::kernels::Isa::kScalar) slimlm::kernels::Register(isa);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
