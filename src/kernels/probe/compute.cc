// Peak arithmetic throughput: FP32 fused multiply-add and int8 dot products.
//
// Every thread runs independent accumulator chains, enough of them to cover the instruction's
// latency on every issue port (a Zen 4 or Skylake-X core keeps about 8 FMAs in flight). The
// accumulators start from distinct values: identical chains would be merged by the compiler.
// Inputs that do not depend on an accumulator pass through an empty asm statement each
// iteration, so the compiler can neither hoist nor merge the work built on them.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/probe/probe_internal.h"
#include "slimlm/core/cpu_features.h"
#include "slimlm/core/timer.h"
#include "slimlm/kernels/probe.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace slimlm::kernels {
namespace {

using probe::ComputeKernel;

// --- FP32 multiply-add. Each step maps acc to acc * 0.999999 + 1e-6, which stays near 1. ---

uint64_t FmaPortable(int64_t iters) {
  float acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = 1.0f + 0.01f * static_cast<float>(i);
  float a = 0.999999f, b = 1e-6f;
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 16; ++i) acc[i] = acc[i] * a + b;
  }
  float sum = 0.0f;
  for (float v : acc) sum += v;
  uint32_t bits;
  std::memcpy(&bits, &sum, sizeof(bits));
  return bits;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) uint64_t FmaAvx512(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(1.0f + 0.01f * static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999999f);
  const __m512 b = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  for (int i = 1; i < 16; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  // Through memory: GCC 12 warns falsely inside _mm512_reduce_add_ps.
  float lanes[16];
  _mm512_storeu_ps(lanes, acc[0]);
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return static_cast<uint64_t>(sum * 1e6f);
}

__attribute__((target("avx2,fma"))) uint64_t FmaAvx2(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(1.0f + 0.01f * static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999999f);
  const __m256 b = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  for (int i = 1; i < 12; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, acc[0]);
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return static_cast<uint64_t>(sum * 1e6f);
}
#endif

// --- int8 dot products: unsigned 8-bit times signed 8-bit, summed into 32-bit lanes. ---

uint64_t Int8Portable(int64_t iters) {
  uint8_t a[64];
  int8_t b[64];
  int32_t acc[16];
  for (int i = 0; i < 64; ++i) {
    a[i] = static_cast<uint8_t>(i * 7 + 1);
    b[i] = static_cast<int8_t>(i * 5 - 100);
  }
  for (int i = 0; i < 16; ++i) acc[i] = i;
  for (int64_t it = 0; it < iters; ++it) {
    // Makes the compiler reload a and b: the products cannot be computed once and reused.
    __asm__ volatile("" : : "r"(a), "r"(b) : "memory");
    for (int i = 0; i < 64; ++i) {
      acc[i % 16] = static_cast<int32_t>(static_cast<uint32_t>(acc[i % 16]) +
                                         static_cast<uint32_t>(a[i] * b[i]));
    }
  }
  uint64_t sum = 0;
  for (int32_t v : acc) sum += static_cast<uint32_t>(v);
  return sum;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512vnni"))) uint64_t Int8Avx512Vnni(int64_t iters) {
  __m512i acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3);
  const __m512i b = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  for (int i = 1; i < 16; ++i) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
  int32_t lanes[16];
  _mm512_storeu_si512(lanes, acc[0]);
  return static_cast<uint32_t>(lanes[0] ^ lanes[15]);
}

__attribute__((target("avx2,avxvnni"))) uint64_t Int8AvxVnni(int64_t iters) {
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi8(3);
  const __m256i b = _mm256_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], a, b);
  }
  for (int i = 1; i < 12; ++i) acc[0] = _mm256_add_epi32(acc[0], acc[i]);
  return static_cast<uint32_t>(_mm256_extract_epi32(acc[0], 0));
}

__attribute__((target("avx2"))) uint64_t Int8Avx2(int64_t iters) {
  __m256i acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi8(3);
  const __m256i b = _mm256_set1_epi8(-2);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      __m256i ai = a;
      __asm__ volatile("" : "+x"(ai));  // A fresh operand per chain: nothing to hoist or merge.
      const __m256i pairs = _mm256_maddubs_epi16(ai, b);
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(pairs, ones));
    }
  }
  for (int i = 1; i < 8; ++i) acc[0] = _mm256_add_epi32(acc[0], acc[i]);
  return static_cast<uint32_t>(_mm256_extract_epi32(acc[0], 0));
}
#endif

// Iterations for one thread to run about `seconds`, from short timed runs.
int64_t Calibrate(const ComputeKernel& kernel, double seconds) {
  int64_t iters = 256;
  while (true) {
    Timer timer;
    probe::Consume(kernel.run(iters));
    const double elapsed = timer.Seconds();
    if (elapsed >= seconds / 8 || iters >= (int64_t{1} << 40)) {
      const double scale = seconds / std::max(elapsed, 1e-9);
      return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(iters) * scale));
    }
    iters *= 4;
  }
}

}  // namespace

std::vector<ComputeKernel> probe::FmaKernels() {
  std::vector<ComputeKernel> kernels;
#if defined(__x86_64__)
  const CpuFeatures& f = GetCpuFeatures();
  if (f.avx512f) kernels.push_back({FmaAvx512, 16.0 * 16 * 2, "avx512 512-bit fma, 16 chains"});
  if (f.avx2 && f.fma) kernels.push_back({FmaAvx2, 12.0 * 8 * 2, "avx2 256-bit fma, 12 chains"});
#endif
  kernels.push_back({FmaPortable, 16.0 * 2, "C++ multiply-add, 16 chains"});
  return kernels;
}

std::vector<ComputeKernel> probe::Int8Kernels() {
  std::vector<ComputeKernel> kernels;
#if defined(__x86_64__)
  const CpuFeatures& f = GetCpuFeatures();
  if (f.avx512vnni) {
    kernels.push_back({Int8Avx512Vnni, 16.0 * 64 * 2, "avx512-vnni vpdpbusd, 16 chains"});
  }
  if (f.avxvnni) kernels.push_back({Int8AvxVnni, 12.0 * 32 * 2, "avx-vnni vpdpbusd, 12 chains"});
  if (f.avx2) {
    kernels.push_back({Int8Avx2, 8.0 * 32 * 2, "avx2 vpmaddubsw + vpmaddwd, 8 chains"});
  }
#endif
  kernels.push_back({Int8Portable, 64.0 * 2, "C++ int8 multiply-add"});
  return kernels;
}

ProbeStats probe::MeasureCompute(const ComputeKernel& kernel, ThreadPool& pool, double seconds,
                                 int reps) {
  SLIMLM_CHECK(reps >= 1) << "reps " << reps;
  const int64_t iters = Calibrate(kernel, seconds);
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    const double elapsed = RunOnEveryThread(pool, [&](int) { Consume(kernel.run(iters)); });
    const double ops = kernel.ops_per_iter * static_cast<double>(iters) * pool.size();
    rates.push_back(ops / elapsed / 1e9);
  }
  return SummarizeRates(std::move(rates), pool.size());
}

std::string_view FmaMethod() { return probe::FmaKernels().front().name; }
std::string_view Int8Method() { return probe::Int8Kernels().front().name; }

ProbeStats MeasureFmaThroughput(ThreadPool& pool, double seconds, int reps) {
  return probe::MeasureCompute(probe::FmaKernels().front(), pool, seconds, reps);
}

ProbeStats MeasureInt8Throughput(ThreadPool& pool, double seconds, int reps) {
  return probe::MeasureCompute(probe::Int8Kernels().front(), pool, seconds, reps);
}

}  // namespace slimlm::kernels
