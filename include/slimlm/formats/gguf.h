// GGUF v3: the file format of the llama.cpp ecosystem. See docs/formats/gguf.md.
//
// Layout (little-endian): magic "GGUF", u32 version (3; 2 is read too), u64 tensor count,
// u64 metadata count, metadata key/value pairs, tensor infos (name, n_dims, dims innermost first,
// u32 type, u64 offset), padding to general.alignment (default 32), tensor data.
#ifndef SLIMLM_FORMATS_GGUF_H_
#define SLIMLM_FORMATS_GGUF_H_

#include <cstdint>
#include <string>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm {

// Maps the file and reads metadata and tensors; tensor data points into the map (no copy).
// Every size, offset, count, string length, type and dimension is checked against the file
// before use, so truncated or corrupt files give an error naming the file and the problem.
Result<WeightStore> ReadGguf(const std::string& path);

// Reads only the metadata (for vocab-only files and tokenizer lookups); tensor infos are still
// validated.
Result<Metadata> ReadGgufMetadata(const std::string& path);

struct GgufWriteOptions {
  uint32_t alignment = 32;  // Written as general.alignment when not 32.
};

// Writes the store atomically. Metadata and tensors keep the store's order.
Status WriteGguf(const WeightStore& store, const std::string& path,
                 const GgufWriteOptions& options = {});

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_GGUF_H_
