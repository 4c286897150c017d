// The parsed form of a GGUF header, shared by the reader's entry points.
#ifndef SLIMLM_SRC_FORMATS_GGUF_INTERNAL_H_
#define SLIMLM_SRC_FORMATS_GGUF_INTERNAL_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/tensor/tensor.h"

namespace slimlm::formats_internal {

struct GgufTensorRecord {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;          // Outermost first.
  uint64_t offset = 0;  // From the start of the data section.
  uint64_t nbytes = 0;
};

struct ParsedGguf {
  Metadata metadata;
  std::vector<GgufTensorRecord> tensors;  // File order.
  uint32_t alignment = 32;
  uint64_t data_start = 0;  // File offset of the data section.
};

// Parses and validates the whole header; on success every tensor's data lies inside `bytes`.
Result<ParsedGguf> ParseGgufHeader(std::span<const uint8_t> bytes, const std::string& path);

}  // namespace slimlm::formats_internal

#endif  // SLIMLM_SRC_FORMATS_GGUF_INTERNAL_H_
