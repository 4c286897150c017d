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

MatMulFn KernelTable::MatMul(DType weight) const {
  switch (weight) {
    case DType::kF32:
      return matmul_f32;
    case DType::kF16:
      return matmul_f16;
    case DType::kBF16:
      return matmul_bf16;
    case DType::kQ8_0:
      return matmul_q8_0;
    case DType::kQ4_0:
      return matmul_q4_0;
  }
  SLIMLM_CHECK(false) << "no matmul for dtype " << static_cast<int>(weight);
  return nullptr;
}

DType ActivationType(DType weight) { return Traits(weight).quantized ? DType::kQ8_0 : DType::kF32; }

void ConvertActivation(const KernelTable& table, DType weight, const float* x, void* out,
                       int64_t n) {
  if (ActivationType(weight) == DType::kQ8_0) {
    table.quantize_q8_0(x, out, n);
  } else {
    std::copy(x, x + n, static_cast<float*>(out));
  }
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
