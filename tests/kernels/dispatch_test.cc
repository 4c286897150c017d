// The choice of kernel path: every path the CPU's features allow and the build has is offered,
// and $SLIMLM_ISA pins the one in use (scripts/test-arm runs the tests with SLIMLM_ISA=neon under
// qemu, so that the NEON path is known to be the one tested).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/core/cpu_features.h"
#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels {
namespace {

bool Has(const std::vector<Isa>& isas, Isa isa) {
  return std::find(isas.begin(), isas.end(), isa) != isas.end();
}

TEST(Dispatch, OffersThePathsTheCpuSupports) {
  const CpuFeatures& f = GetCpuFeatures();
  const std::vector<Isa> isas = SupportedIsas();
  std::string names;
  for (Isa isa : isas) names += std::string(IsaName(isa)) + " ";
  std::printf("cpu features: %s\nsupported paths: %s\n", f.ToString().c_str(), names.c_str());
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), Isa::kScalar);
#if defined(__aarch64__)
  EXPECT_TRUE(f.neon) << "every AArch64 CPU has Advanced SIMD";
  EXPECT_EQ(Has(isas, Isa::kNeon), f.neon && f.dotprod);
#elif defined(__x86_64__)
  EXPECT_EQ(Has(isas, Isa::kAvx2), f.avx2 && f.fma && f.f16c);
  EXPECT_FALSE(Has(isas, Isa::kNeon));
  // AMX is AVX-512's path plus tiles: never offered without it.
  EXPECT_EQ(Has(isas, Isa::kAmx), Has(isas, Isa::kAvx512) && f.amx_int8);
#endif
  for (Isa isa : isas) {
    Result<const KernelTable*> table = KernelsFor(isa);
    ASSERT_TRUE(table.ok()) << IsaName(isa);
    EXPECT_EQ((*table)->isa, isa);
  }
}

// With $SLIMLM_ISA set, the path it names must be supported and in use; without it, the best.
TEST(Dispatch, UsesThePinnedPathOrTheBest) {
  const char* env = std::getenv("SLIMLM_ISA");
  if (env == nullptr) {
    EXPECT_EQ(Kernels().isa, SupportedIsas().back());
    return;
  }
  std::optional<Isa> pinned = ParseIsa(env);
  ASSERT_TRUE(pinned.has_value()) << "SLIMLM_ISA=" << env;
  ASSERT_TRUE(Has(SupportedIsas(), *pinned))
      << "SLIMLM_ISA=" << env
      << " is not supported here (cpu features: " << GetCpuFeatures().ToString() << ")";
  EXPECT_EQ(Kernels().isa, *pinned);
}

}  // namespace
}  // namespace slimlm::kernels
