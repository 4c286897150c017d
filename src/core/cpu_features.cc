#include "slimlm/core/cpu_features.h"

#include <fstream>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SLIMLM_X86 1
#endif
#if defined(SLIMLM_X86) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace slimlm {
namespace {

#ifdef SLIMLM_X86
uint64_t ReadXcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux keeps the 8 KB of AMX tile data out of a process's saved state until the process asks
// for it; a tile instruction before that faults.
bool RequestTileState() {
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

CpuFeatures Detect() {
  CpuFeatures f;
#ifdef SLIMLM_X86
  unsigned a, b, c, d;
  if (__get_cpuid(0, &a, &b, &c, &d)) {
    // The vendor string is in EBX, EDX, ECX: "Genu" "ineI" "ntel".
    f.intel = b == 0x756e6547 && d == 0x49656e69 && c == 0x6c65746e;
  }
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  f.sse42 = c & bit_SSE4_2;
  bool osxsave = c & bit_OSXSAVE;
  bool avx_hw = c & bit_AVX;
  f.fma = c & bit_FMA;
  f.f16c = c & bit_F16C;
  uint64_t xcr0 = osxsave ? ReadXcr0() : 0;
  bool os_avx = (xcr0 & 0x6) == 0x6;       // XMM and YMM state.
  bool os_avx512 = (xcr0 & 0xe6) == 0xe6;  // Plus opmask and ZMM state.
  f.avx = avx_hw && os_avx;
  f.fma = f.fma && os_avx;
  f.f16c = f.f16c && os_avx;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = os_avx && (b & bit_AVX2);
    f.avx512f = os_avx512 && (b & bit_AVX512F);
    f.avx512bw = f.avx512f && (b & bit_AVX512BW);
    f.avx512vl = f.avx512f && (b & bit_AVX512VL);
    f.avx512dq = f.avx512f && (b & bit_AVX512DQ);
    f.avx512vnni = f.avx512f && (c & bit_AVX512VNNI);
    const bool amx_hw = (d & (1u << 24)) && (d & (1u << 25));  // AMX-TILE, AMX-INT8.
    const bool os_amx = (xcr0 & 0x60000) == 0x60000;           // XTILECFG and XTILEDATA.
    f.amx_int8 = amx_hw && os_amx && RequestTileState();
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    f.avx512bf16 = f.avx512f && (a & (1u << 5));
    f.avxvnni = os_avx && (a & (1u << 4));
  }
#endif
#if defined(__aarch64__) && defined(__linux__)
  // The bits are fixed by the kernel's ABI; older headers lack the names.
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
  const unsigned long hwcap = getauxval(AT_HWCAP);
  f.neon = (hwcap & HWCAP_ASIMD) != 0;
  f.dotprod = f.neon && (hwcap & HWCAP_ASIMDDP) != 0;
#elif defined(__aarch64__)
  // Advanced SIMD is part of every AArch64 CPU; without the auxiliary vector the dot product
  // instructions are assumed only where the compiler was told the target has them.
  f.neon = true;
#if defined(__ARM_FEATURE_DOTPROD)
  f.dotprod = true;
#endif
#endif
  return f;
}

}  // namespace

std::string CpuFeatures::ToString() const {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add(sse42, "sse4.2");
  add(avx, "avx");
  add(avx2, "avx2");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512dq, "avx512dq");
  add(avx512vnni, "avx512vnni");
  add(avx512bf16, "avx512bf16");
  add(avxvnni, "avxvnni");
  add(amx_int8, "amx-int8");
  add(neon, "neon");
  add(dotprod, "dotprod");
  return out.empty() ? "none" : out;
}

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures features = Detect();
  return features;
}

std::string CpuModelName() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto pos = line.find(':');
      if (pos != std::string::npos && pos + 2 <= line.size()) return line.substr(pos + 2);
    }
  }
  return "unknown";
}

}  // namespace slimlm
