// Chooses the kernel table once, from the CPU's features or $SLIMLM_ISA.
#include <algorithm>
#include <cstdlib>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/core/check.h"
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
    case Isa::kNeon:
      return "neon";
  }
  return "unknown";
}

std::optional<Isa> ParseIsa(std::string_view name) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (IsaName(isa) == name) return isa;
  }
  return std::nullopt;
}

int64_t AttentionScratchFloats(int64_t group, int64_t head_dim, int64_t n_kv) {
  // Scores of every position for each head, one widened row, and room for tiles.
  return group * n_kv + head_dim + group * (head_dim + 256) + 64;
}

std::vector<Isa> SupportedIsas() {
  // Fast paths register here as they land; the scalar reference runs everywhere.
  return {Isa::kScalar};
}

Result<const KernelTable*> KernelsFor(Isa isa) {
  if (isa == Isa::kScalar) return &ref::Table();
  return UnsupportedError("kernel path '{}' is not available on this CPU or build", IsaName(isa));
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
                                                    "avx512, neon",
                                                    env));
      if (pinned.ok()) return *pinned;
      SLIMLM_LOG(kWarning, "{}; using {}", pinned.status().message(), IsaName(chosen));
    }
    return *KernelsFor(chosen);
  }();
  return *table;
}

}  // namespace slimlm::kernels
