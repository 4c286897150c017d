#include "slimlm/core/cpu_features.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace slimlm {
namespace {

// Wider instruction sets imply the narrower ones they extend, and the OS-support checks make
// AVX-512 imply AVX2 state too.
TEST(CpuFeatures, ImplicationsHold) {
  const CpuFeatures& f = GetCpuFeatures();
  EXPECT_TRUE(!f.avx2 || f.avx);
  EXPECT_TRUE(!(f.avx512bw || f.avx512vl || f.avx512dq || f.avx512vnni || f.avx512bf16) ||
              f.avx512f);
  EXPECT_TRUE(!f.avx512f || f.avx);
  EXPECT_TRUE(!f.dotprod || f.neon);
#if defined(__x86_64__)
  EXPECT_TRUE(f.sse42) << "every x86-64 machine these tests run on has SSE4.2";
#endif
  EXPECT_FALSE(f.ToString().empty());
  EXPECT_FALSE(CpuModelName().empty());
}

// The vendor flag agrees with the kernel's reading of CPUID (Linux x86 only).
TEST(CpuFeatures, VendorMatchesProcCpuinfo) {
#if defined(__x86_64__) && defined(__linux__)
  std::ifstream in("/proc/cpuinfo");
  std::string line, vendor;
  while (vendor.empty() && std::getline(in, line)) {
    if (line.rfind("vendor_id", 0) == 0) vendor = line.substr(line.find(':') + 2);
  }
  if (vendor.empty()) GTEST_SKIP() << "/proc/cpuinfo has no vendor_id line";
  EXPECT_EQ(GetCpuFeatures().intel, vendor == "GenuineIntel") << "vendor_id: " << vendor;
#else
  EXPECT_FALSE(GetCpuFeatures().intel);
#endif
}

}  // namespace
}  // namespace slimlm
