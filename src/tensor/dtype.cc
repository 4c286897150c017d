#include "slimlm/tensor/dtype.h"

#include <algorithm>
#include <cctype>
#include <string>

#include "slimlm/core/check.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {
namespace {

constexpr DTypeTraits kF32Traits{"f32", 1, 4, false};
constexpr DTypeTraits kF16Traits{"f16", 1, 2, false};
constexpr DTypeTraits kBF16Traits{"bf16", 1, 2, false};
constexpr DTypeTraits kQ8_0Traits{"q8_0", kQ8_0BlockSize, sizeof(BlockQ8_0), true};
constexpr DTypeTraits kQ4_0Traits{"q4_0", kQ4_0BlockSize, sizeof(BlockQ4_0), true};

constexpr DTypeTraits kQ4_KTraits{"q4_k", kQK_K, sizeof(BlockQ4_K), true};
constexpr DTypeTraits kQ6_KTraits{"q6_k", kQK_K, sizeof(BlockQ6_K), true};
// Not quantized: see DTypeTraits::quantized.
constexpr DTypeTraits kF16NMTraits{"f16_nm", kF16NMBlockSize, sizeof(BlockF16NM), false};

constexpr DType kAllTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ8_0,
                               DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kF16NM};

}  // namespace

const DTypeTraits& Traits(DType type) {
  switch (type) {
    case DType::kF32:
      return kF32Traits;
    case DType::kF16:
      return kF16Traits;
    case DType::kBF16:
      return kBF16Traits;
    case DType::kQ8_0:
      return kQ8_0Traits;
    case DType::kQ4_0:
      return kQ4_0Traits;
    case DType::kQ4_K:
      return kQ4_KTraits;
    case DType::kQ6_K:
      return kQ6_KTraits;
    case DType::kF16NM:
      return kF16NMTraits;
  }
  SLIMLM_CHECK(false) << "unknown dtype " << static_cast<uint32_t>(type);
  return kF32Traits;
}

bool IsKnownDType(uint32_t ggml_type) {
  return std::any_of(std::begin(kAllTypes), std::end(kAllTypes),
                     [&](DType t) { return static_cast<uint32_t>(t) == ggml_type; });
}

std::optional<DType> ParseDType(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (DType t : kAllTypes) {
    if (Traits(t).name == lower) return t;
  }
  return std::nullopt;
}

size_t RowBytes(DType type, int64_t n) {
  const DTypeTraits& t = Traits(type);
  SLIMLM_DCHECK(n % t.block_size == 0);
  return static_cast<size_t>(n / t.block_size) * static_cast<size_t>(t.block_bytes);
}

bool IsRowLengthValid(DType type, int64_t n) { return n >= 0 && n % Traits(type).block_size == 0; }

std::string_view GgmlTypeName(uint32_t ggml_type) {
  static constexpr std::string_view kNames[] = {"f32",
                                                "f16",
                                                "q4_0",
                                                "q4_1",
                                                "q4_2 (removed)",
                                                "q4_3 (removed)",
                                                "q5_0",
                                                "q5_1",
                                                "q8_0",
                                                "q8_1",
                                                "q2_k",
                                                "q3_k",
                                                "q4_k",
                                                "q5_k",
                                                "q6_k",
                                                "q8_k",
                                                "iq2_xxs",
                                                "iq2_xs",
                                                "iq3_xxs",
                                                "iq1_s",
                                                "iq4_nl",
                                                "iq3_s",
                                                "iq2_s",
                                                "iq4_xs",
                                                "i8",
                                                "i16",
                                                "i32",
                                                "i64",
                                                "f64",
                                                "iq1_m",
                                                "bf16",
                                                "q4_0_4_4",
                                                "q4_0_4_8",
                                                "q4_0_8_8",
                                                "tq1_0",
                                                "tq2_0"};
  if (ggml_type < std::size(kNames)) return kNames[ggml_type];
  return "unknown";
}

}  // namespace slimlm
