// safetensors reader and writer. The JSON header is parsed with nlohmann::json without
// exceptions where it offers that, and every remaining throw is caught here: no exception leaves
// this file.
#include "slimlm/formats/safetensors.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "formats/byte_reader.h"
#include "formats/store_util.h"
#include "slimlm/core/file.h"

namespace slimlm {
namespace {

using formats_internal::CheckedMul;
using formats_internal::Printable;
using Json = nlohmann::json;

// Every dtype the safetensors library defines, to tell "not supported" from "not a dtype".
constexpr std::string_view kOtherKnownDTypes[] = {
    "BOOL",    "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",  "F6_E2M3",
    "F6_E3M2", "I16", "U16", "I32",     "U32",     "F64",     "I64", "U64"};

bool IsUnsignedInt(const Json& j) { return j.is_number_unsigned(); }

// One tensor entry of the header, validated against the data section's size.
Status ParseEntry(const std::string& path, const std::string& name, const Json& entry,
                  uint64_t data_size, StoredTensor* out, uint64_t* begin) {
  std::string shown = Printable(name);
  if (!entry.is_object())
    return CorruptError("{}: tensor '{}' entry is not an object", path, shown);
  auto dtype_it = entry.find("dtype");
  auto shape_it = entry.find("shape");
  auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string() || shape_it == entry.end() ||
      !shape_it->is_array() || offsets_it == entry.end() || !offsets_it->is_array()) {
    return CorruptError("{}: tensor '{}' lacks a string dtype, a shape or data_offsets", path,
                        shown);
  }
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  std::optional<DType> dtype = ParseSafetensorsDType(dtype_name);
  if (!dtype) {
    bool known = std::find(std::begin(kOtherKnownDTypes), std::end(kOtherKnownDTypes),
                           dtype_name) != std::end(kOtherKnownDTypes);
    return UnsupportedError("{}: tensor '{}' has {} dtype {}; slimlm loads F32, F16 and BF16", path,
                            shown, known ? "unsupported" : "unknown", Printable(dtype_name));
  }
  if (shape_it->size() > static_cast<size_t>(Shape::kMaxRank)) {
    return CorruptError("{}: tensor '{}' has {} dimensions (at most {})", path, shown,
                        shape_it->size(), Shape::kMaxRank);
  }
  Shape shape;
  uint64_t elements = 1;
  for (const Json& d : *shape_it) {
    uint64_t dim = IsUnsignedInt(d) ? d.get<uint64_t>() : 0;
    if (dim == 0 || !CheckedMul(elements, dim, &elements) ||
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return CorruptError("{}: tensor '{}' has an invalid shape {}", path, shown,
                          Printable(shape_it->dump()));
    }
    shape.Append(static_cast<int64_t>(dim));
  }
  const Json& offsets = *offsets_it;
  if (offsets.size() != 2 || !IsUnsignedInt(offsets[0]) || !IsUnsignedInt(offsets[1])) {
    return CorruptError("{}: tensor '{}' data_offsets must be two non-negative integers", path,
                        shown);
  }
  uint64_t start = offsets[0].get<uint64_t>();
  uint64_t end = offsets[1].get<uint64_t>();
  if (start > end || end > data_size) {
    return CorruptError(
        "{}: truncated: tensor '{}' data [{}, {}) lies outside the {} bytes of "
        "data in the file",
        path, shown, start, end, data_size);
  }
  uint64_t needed = 0;
  bool fits = CheckedMul(elements, static_cast<uint64_t>(Traits(*dtype).block_bytes), &needed);
  if (!fits || needed != end - start) {
    return CorruptError("{}: tensor '{}' has {} bytes of data, but shape {} of {} needs {}", path,
                        shown, end - start, shape.ToString(), dtype_name,
                        fits ? std::to_string(needed) : std::string("more than 2^64"));
  }
  out->name = name;
  out->dtype = *dtype;
  out->shape = shape;
  out->nbytes = end - start;
  *begin = start;
  return Status::Ok();
}

Status ParseMetadataObject(const std::string& path, const Json& j,
                           std::vector<std::pair<std::string, std::string>>* out) {
  if (j.is_null()) return Status::Ok();
  if (!j.is_object()) return CorruptError("{}: __metadata__ is not an object", path);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string()) {
      return CorruptError("{}: __metadata__ value of '{}' is not a string", path,
                          Printable(it.key()));
    }
    out->emplace_back(it.key(), it.value().get<std::string>());
  }
  return Status::Ok();
}

// Copies a misaligned tensor into 8-byte aligned storage (see store_util.h).
std::shared_ptr<const void> AlignedCopy(const uint8_t* data, size_t nbytes, const uint8_t** out) {
  auto buffer = std::make_shared<std::vector<uint64_t>>((nbytes + 7) / 8);
  std::memcpy(buffer->data(), data, nbytes);
  *out = reinterpret_cast<const uint8_t*>(buffer->data());
  return buffer;
}

Status ParseHeaderJson(const std::string& path, const Json& header, std::span<const uint8_t> data,
                       const std::shared_ptr<const void>& owner, SafetensorsContents* out) {
  if (!header.is_object()) return CorruptError("{}: the header is not a JSON object", path);
  std::vector<std::pair<uint64_t, StoredTensor>> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      SLIMLM_RETURN_IF_ERROR(ParseMetadataObject(path, it.value(), &out->metadata));
      continue;
    }
    StoredTensor t;
    uint64_t begin = 0;
    SLIMLM_RETURN_IF_ERROR(ParseEntry(path, it.key(), it.value(), data.size(), &t, &begin));
    entries.emplace_back(begin, std::move(t));
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i - 1].first + entries[i - 1].second.nbytes > entries[i].first) {
      return CorruptError("{}: tensors '{}' and '{}' overlap in the data", path,
                          Printable(entries[i - 1].second.name), Printable(entries[i].second.name));
    }
  }
  for (auto& [begin, t] : entries) {
    t.data = data.data() + begin;
    t.owner = owner;
    if (!formats_internal::IsAligned(t.data, formats_internal::ElementAlignment(t.dtype))) {
      t.owner = AlignedCopy(t.data, t.nbytes, &t.data);
    }
    out->tensors.push_back(std::move(t));
  }
  return Status::Ok();
}

}  // namespace

std::optional<DType> ParseSafetensorsDType(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  return std::nullopt;
}

std::optional<std::string_view> SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    default:
      return std::nullopt;
  }
}

Result<SafetensorsContents> ParseSafetensors(std::span<const uint8_t> bytes,
                                             const std::string& name,
                                             std::shared_ptr<const void> owner) {
  if (bytes.size() < 8) {
    return CorruptError("{}: not a safetensors file (only {} bytes)", name, bytes.size());
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size > kSafetensorsMaxHeaderBytes) {
    return CorruptError("{}: not a safetensors file (header length {} is over the {} MiB limit)",
                        name, header_size, kSafetensorsMaxHeaderBytes >> 20);
  }
  if (header_size > bytes.size() - 8) {
    return CorruptError("{}: truncated: the {}-byte header ends at byte {}, file has {} bytes",
                        name, header_size, header_size + 8, bytes.size());
  }
  const char* text = reinterpret_cast<const char*>(bytes.data() + 8);
  if (header_size == 0 || text[0] != '{') {
    return CorruptError("{}: not a safetensors file (the header does not start with '{{')", name);
  }
  SafetensorsContents contents;
  try {
    Json header = Json::parse(text, text + header_size, nullptr, /*allow_exceptions=*/false);
    if (header.is_discarded()) return CorruptError("{}: the header is not valid JSON", name);
    SLIMLM_RETURN_IF_ERROR(
        ParseHeaderJson(name, header, bytes.subspan(8 + header_size), owner, &contents));
  } catch (const std::exception& e) {
    return CorruptError("{}: bad header: {}", name, e.what());
  }
  return contents;
}

Result<SafetensorsContents> ReadSafetensors(const std::string& path) {
  SLIMLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  auto map = std::make_shared<const MappedFile>(std::move(file));
  return ParseSafetensors(map->bytes(), path, map);
}

Result<SafetensorsContents> ReadShardedSafetensors(const std::string& index_path) {
  namespace fs = std::filesystem;
  SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_path));
  std::map<std::string, std::string> weight_map;  // tensor -> shard
  try {
    Json index = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (index.is_discarded() || !index.is_object()) {
      return CorruptError("{}: not a valid JSON object", index_path);
    }
    auto map_it = index.find("weight_map");
    if (map_it == index.end() || !map_it->is_object()) {
      return CorruptError("{}: no \"weight_map\" object", index_path);
    }
    for (auto it = map_it->begin(); it != map_it->end(); ++it) {
      if (!it.value().is_string()) {
        return CorruptError("{}: weight_map entry '{}' is not a file name", index_path,
                            Printable(it.key()));
      }
      weight_map[it.key()] = it.value().get<std::string>();
    }
  } catch (const std::exception& e) {
    return CorruptError("{}: bad index: {}", index_path, e.what());
  }
  std::set<std::string> shards;
  for (const auto& [tensor, shard] : weight_map) {
    // Shards are plain names beside the index; anything else could point outside the folder.
    if (shard.empty() || shard == "." || shard == ".." ||
        shard.find_first_of("/\\") != std::string::npos) {
      return CorruptError("{}: shard name '{}' is not a plain file name", index_path,
                          Printable(shard));
    }
    shards.insert(shard);
  }
  fs::path dir = fs::path(index_path).parent_path();
  SafetensorsContents all;
  std::map<std::string, std::string> found;  // tensor -> shard it was read from
  for (const std::string& shard : shards) {
    SLIMLM_ASSIGN_OR_RETURN(SafetensorsContents part, ReadSafetensors((dir / shard).string()));
    if (all.metadata.empty()) all.metadata = std::move(part.metadata);
    for (StoredTensor& t : part.tensors) {
      if (!found.emplace(t.name, shard).second) {
        return CorruptError("{}: tensor '{}' is in both {} and {}", index_path, Printable(t.name),
                            found[t.name], shard);
      }
      all.tensors.push_back(std::move(t));
    }
  }
  for (const auto& [tensor, shard] : weight_map) {
    auto it = found.find(tensor);
    if (it == found.end() || it->second != shard) {
      return CorruptError("{}: tensor '{}' is listed in {} but not found there", index_path,
                          Printable(tensor), shard);
    }
  }
  return all;
}

Status WriteSafetensors(const std::string& path, const std::vector<StoredTensor>& tensors,
                        const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::vector<const StoredTensor*> order;
  for (const StoredTensor& t : tensors) {
    if (!SafetensorsDTypeName(t.dtype)) {
      return UnsupportedError("{}: tensor '{}' is {}; safetensors output holds f32, f16 and bf16",
                              path, t.name, DTypeName(t.dtype));
    }
    order.push_back(&t);
  }
  std::stable_sort(order.begin(), order.end(), [](const StoredTensor* a, const StoredTensor* b) {
    int size_a = Traits(a->dtype).block_bytes, size_b = Traits(b->dtype).block_bytes;
    return size_a != size_b ? size_a > size_b : a->name < b->name;
  });
  auto quote = [](const std::string& s) {
    return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
  };
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      if (i > 0) header += ",";
      header += quote(metadata[i].first) + ":" + quote(metadata[i].second);
    }
    header += "}";
  }
  uint64_t offset = 0;
  for (const StoredTensor* t : order) {
    if (header.size() > 1) header += ",";
    std::string shape;
    for (int d = 0; d < t->shape.rank(); ++d) {
      if (d > 0) shape += ',';
      shape += std::to_string(t->shape[d]);
    }
    header += fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          quote(t->name), *SafetensorsDTypeName(t->dtype), shape, offset,
                          offset + t->nbytes);
    offset += t->nbytes;
  }
  header += "}";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> file, AtomicFileWriter::Create(path));
  uint64_t header_size = header.size();
  SLIMLM_RETURN_IF_ERROR(file->Write(&header_size, 8));
  SLIMLM_RETURN_IF_ERROR(file->Write(header));
  for (const StoredTensor* t : order) SLIMLM_RETURN_IF_ERROR(file->Write(t->data, t->nbytes));
  return file->Commit();
}

}  // namespace slimlm
