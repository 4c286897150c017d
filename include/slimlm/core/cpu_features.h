// What the CPU can do, read once from CPUID (x86) or the auxiliary vector (ARM).
#ifndef SLIMLM_CORE_CPU_FEATURES_H_
#define SLIMLM_CORE_CPU_FEATURES_H_

#include <string>

namespace slimlm {

struct CpuFeatures {
  // x86-64
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avxvnni = false;
  // AMX tiles with int8 products, usable by this process: the CPU has them, the OS saves their
  // state, and (Linux) the process was granted the tile data state, which detection requests.
  bool amx_int8 = false;
  // The vendor string is "GenuineIntel": some tuning choices were measured to differ by vendor.
  bool intel = false;
  // ARM
  bool neon = false;
  bool dotprod = false;

  // The detected features, space-separated, e.g. "avx2 fma f16c avx512f ...".
  std::string ToString() const;
};

// Detected once, on first use; also checks that the OS saves the AVX / AVX-512 registers, and
// asks Linux for the AMX tile state where the CPU has it.
const CpuFeatures& GetCpuFeatures();

// The CPU's model name, e.g. "Intel(R) Xeon(R) ...", or "unknown".
std::string CpuModelName();

}  // namespace slimlm

#endif  // SLIMLM_CORE_CPU_FEATURES_H_
