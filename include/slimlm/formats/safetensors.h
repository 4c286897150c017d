// safetensors: Hugging Face's tensor file. See docs/formats/safetensors.md.
//
// Layout: u64 header length N (little-endian), N bytes of JSON (padded with spaces), then the
// data. The JSON maps each tensor name to {"dtype", "shape" (outermost first), "data_offsets":
// [begin, end) relative to the data}, plus an optional "__metadata__" object of strings. A
// sharded model lists its files in model.safetensors.index.json ("weight_map": name -> file).
//
// slimlm loads F32, F16 and BF16; other dtypes give kUnsupported naming the dtype. Tensors
// borrow from the memory map (zero-copy), except ones whose data is misaligned for its type,
// which are copied.
#ifndef SLIMLM_FORMATS_SAFETENSORS_H_
#define SLIMLM_FORMATS_SAFETENSORS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm {

// The contents of one safetensors file or of a sharded set.
struct SafetensorsContents {
  // Tensors under their names in the file, in data order (shard by shard); each keeps its
  // memory map (or copy) alive through StoredTensor::owner.
  std::vector<StoredTensor> tensors;
  // "__metadata__" of the (first) file, in file order.
  std::vector<std::pair<std::string, std::string>> metadata;
};

// The header is at most this large (the safetensors library's own limit).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100ull << 20;

// Reads one .safetensors file. Every offset, shape and size is checked against the file: data
// ranges must lie inside the data section, match shape x dtype size exactly and not overlap.
Result<SafetensorsContents> ReadSafetensors(const std::string& path);

// The same over bytes in memory; `owner` (may be null) keeps them alive for borrowed tensors.
Result<SafetensorsContents> ParseSafetensors(std::span<const uint8_t> bytes,
                                             const std::string& name,
                                             std::shared_ptr<const void> owner);

// Reads every shard named by a model.safetensors.index.json. Each tensor of the weight map must
// be in the shard the map names; a tensor in two shards is an error; shard names must be plain
// file names in the index's folder.
Result<SafetensorsContents> ReadShardedSafetensors(const std::string& index_path);

// Writes one file atomically. Tensors are laid out as the safetensors library does (larger
// element types first, then by name), with the header padded by spaces to a multiple of 8 bytes
// so that data is aligned. Only F32, F16 and BF16 tensors can be written.
Status WriteSafetensors(const std::string& path, const std::vector<StoredTensor>& tensors,
                        const std::vector<std::pair<std::string, std::string>>& metadata);

// "F32" <-> DType for the three supported types.
std::optional<DType> ParseSafetensorsDType(std::string_view name);
std::optional<std::string_view> SafetensorsDTypeName(DType dtype);

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_SAFETENSORS_H_
