// Chooses the kernel table once, from the CPU's features or $SLIMLM_ISA.
#include <algorithm>
#include <cstdlib>

#include "kernels/ref/ref_kernels.h"
#if defined(SLIMLM_KERNELS_X86)
#include "kernels/x86/kernels_x86.h"
#endif
#if defined(SLIMLM_KERNELS_ARM)
#include "kernels/arm/kernels_arm.h"
#endif
#include "slimlm/core/check.h"
#include "slimlm/core/cpu_features.h"
#include "slimlm/core/log.h"
#include "slimlm/kernels/kernels.h"

namespace slimlm::kernels {

std::string_view IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAmx:
      return "amx";
    case Isa::kNeon:
      return "neon";
  }
  return "unknown";
}

std::optional<Isa> ParseIsa(std::string_view name) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx, Isa::kNeon}) {
    if (IsaName(isa) == name) return isa;
  }
  return std::nullopt;
}

int64_t AttentionScratchFloats(int64_t group, int64_t head_dim, int64_t n_kv) {
  // Scores of every position for each head, one widened row, and room for tiles.
  return group * n_kv + head_dim + group * (head_dim + 256) + 64;
}

namespace {

bool CpuSupports(Isa isa) {
  const CpuFeatures& f = GetCpuFeatures();
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return f.avx2 && f.fma && f.f16c;
    case Isa::kAvx512:
      return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq &&
             f.avx512vnni;
    case Isa::kAmx:
      return CpuSupports(Isa::kAvx512) && f.amx_int8;
    case Isa::kNeon:
      return f.neon && f.dotprod;
  }
  return false;
}

// The table of a path this build has, or null.
const KernelTable* BuiltTable(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return &ref::Table();
#if defined(SLIMLM_KERNELS_X86)
    case Isa::kAvx2:
      return &avx2::Table();
    case Isa::kAvx512:
      return &avx512::Table();
    case Isa::kAmx:
      return &amx::Table();
#endif
#if defined(SLIMLM_KERNELS_ARM)
    case Isa::kNeon:
      return &neon::Table();
#endif
    default:
      return nullptr;
  }
}

}  // namespace

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kNeon, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (CpuSupports(isa) && BuiltTable(isa) != nullptr) isas.push_back(isa);
  }
  return isas;
}

Result<const KernelTable*> KernelsFor(Isa isa) {
  const KernelTable* table = BuiltTable(isa);
  if (table == nullptr) {
    return UnsupportedError("kernel path '{}' is not built into this binary", IsaName(isa));
  }
  if (!CpuSupports(isa)) {
    return UnsupportedError("kernel path '{}' needs CPU features this machine lacks (it has: {})",
                            IsaName(isa), GetCpuFeatures().ToString());
  }
  return table;
}

const KernelTable& Kernels() {
  static const KernelTable* table = [] {
    std::vector<Isa> supported = SupportedIsas();
    Isa chosen = supported.back();
    if (const char* env = std::getenv("SLIMLM_ISA")) {
      std::optional<Isa> wanted = ParseIsa(env);
      Result<const KernelTable*> pinned = wanted
                                              ? KernelsFor(*wanted)
                                              : Result<const KernelTable*>(InvalidArgumentError(
                                                    "SLIMLM_ISA='{}' is not one of scalar, avx2, "
                                                    "avx512, amx, neon",
                                                    env));
      if (pinned.ok()) return *pinned;
      SLIMLM_LOG(kWarning, "{}; using {}", pinned.status().message(), IsaName(chosen));
    }
    return *KernelsFor(chosen);
  }();
  return *table;
}

}  // namespace slimlm::kernels
