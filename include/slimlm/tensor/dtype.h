// Element types of tensors, with GGUF's numbering and block layouts.
//
// Quantized types store rows as a sequence of fixed-size blocks; a row's length must be a
// multiple of the block size. The numeric values equal GGML's type ids, so a GGUF file's type
// field converts with a cast after IsKnownDType(); ids from 1000 on are slimlm's own (files with
// them load in slimlm only).
#ifndef SLIMLM_TENSOR_DTYPE_H_
#define SLIMLM_TENSOR_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace slimlm {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ6_K = 14,
  kBF16 = 30,
  // 50% N:M-sparse f16 (slimlm only, not a GGML type): per 32 elements a keep mask and the 16 kept
  // values (BlockF16NM in quant_blocks.h).
  kF16NM = 1001,
};

struct DTypeTraits {
  std::string_view name;  // "f32", "q4_0", ... (as llama.cpp spells them, lower case)
  int block_size;         // Elements per block (1 for plain types).
  int block_bytes;        // Bytes per block.
  // True for the types whose matrix products take activations quantized to 8 bits (q8_0, q4_0,
  // q4_k, q6_k) and whose values are rounded to a grid of few levels. f16_nm is a block type
  // but not quantized: its values are f16 and its products take f32 activations.
  bool quantized;
};

// Traits of a known type.
const DTypeTraits& Traits(DType type);
// True when `ggml_type` is a type slimlm can load.
bool IsKnownDType(uint32_t ggml_type);
// Parses "f32", "F16", "q8_0", ...; nullopt when unknown.
std::optional<DType> ParseDType(std::string_view name);
inline std::string_view DTypeName(DType type) { return Traits(type).name; }

// Bytes of a row of n elements; n must be a multiple of the block size.
size_t RowBytes(DType type, int64_t n);
// True when n elements form whole blocks of `type`.
bool IsRowLengthValid(DType type, int64_t n);

// GGML's name for a type id that slimlm cannot load (for error messages), e.g. "q5_k (13)".
std::string_view GgmlTypeName(uint32_t ggml_type);

}  // namespace slimlm

#endif  // SLIMLM_TENSOR_DTYPE_H_
