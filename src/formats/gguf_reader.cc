// GGUF reader: parses the header with every count, length and offset checked against the file
// size before it is used, then points the store's tensors into the bytes (no copy).
#include <algorithm>
#include <limits>
#include <numeric>
#include <unordered_set>
#include <utility>
#include <vector>

#include "formats/byte_reader.h"
#include "formats/gguf_internal.h"
#include "formats/store_util.h"
#include "slimlm/core/file.h"
#include "slimlm/formats/gguf.h"

namespace slimlm {
namespace {

using formats_internal::ByteReader;
using formats_internal::CheckedAdd;
using formats_internal::CheckedMul;
using formats_internal::Printable;

// Nested arrays deeper than this are refused: no real file nests more than twice, and unbounded
// recursion on a hostile file would overflow the stack.
constexpr int kMaxArrayDepth = 8;
// The fewest bytes a metadata pair (u64 key length, a 1-byte key, u32 type, 1-byte value) and a
// tensor info (u64 name length, a 1-byte name, u32 n_dims, u32 type, u64 offset) can take; a
// count that could not fit in the rest of the file is rejected before anything is allocated.
constexpr uint64_t kMinMetadataPairBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 4 + 8;

// Bytes of a scalar value, or the fewest bytes of a string (its length) or array (type, count).
uint64_t MinValueBytes(MetaType type) {
  if (type == MetaType::kString) return 8;  // Its length.
  if (type == MetaType::kArray) return 12;  // Element type and count.
  return MetaScalarBytes(type);
}

template <typename T>
Status ReadNumbers(ByteReader& r, uint64_t count, std::vector<T>* out) {
  // The caller has checked count * sizeof(T) against the remaining bytes.
  out->resize(static_cast<size_t>(count));
  return r.Read(out->data(), count * sizeof(T));
}

template <typename T>
Status ReadNumericArray(ByteReader& r, uint64_t count, MetaValue (*make)(std::vector<T>),
                        MetaValue* out) {
  std::vector<T> values;
  SLIMLM_RETURN_IF_ERROR(ReadNumbers(r, count, &values));
  *out = make(std::move(values));
  return Status::Ok();
}

Status ReadArray(ByteReader& r, int depth, MetaValue* out);

Status ReadArrayElements(ByteReader& r, MetaType element, uint64_t count, int depth,
                         MetaValue* out) {
  switch (element) {
    case MetaType::kU8:
      return ReadNumericArray<uint8_t>(r, count, MetaValue::U8Array, out);
    case MetaType::kI8:
      return ReadNumericArray<int8_t>(r, count, MetaValue::I8Array, out);
    case MetaType::kU16:
      return ReadNumericArray<uint16_t>(r, count, MetaValue::U16Array, out);
    case MetaType::kI16:
      return ReadNumericArray<int16_t>(r, count, MetaValue::I16Array, out);
    case MetaType::kU32:
      return ReadNumericArray<uint32_t>(r, count, MetaValue::U32Array, out);
    case MetaType::kI32:
      return ReadNumericArray<int32_t>(r, count, MetaValue::I32Array, out);
    case MetaType::kU64:
      return ReadNumericArray<uint64_t>(r, count, MetaValue::U64Array, out);
    case MetaType::kI64:
      return ReadNumericArray<int64_t>(r, count, MetaValue::I64Array, out);
    case MetaType::kF32:
      return ReadNumericArray<float>(r, count, MetaValue::F32Array, out);
    case MetaType::kF64:
      return ReadNumericArray<double>(r, count, MetaValue::F64Array, out);
    // Bools keep their raw bytes, so a file read and written back is byte-identical.
    case MetaType::kBool:
      return ReadNumericArray<uint8_t>(r, count, MetaValue::BoolArray, out);
    case MetaType::kString: {
      std::vector<std::string> values(static_cast<size_t>(count));
      for (std::string& s : values) SLIMLM_RETURN_IF_ERROR(r.ReadString(&s));
      *out = MetaValue::StringArray(std::move(values));
      return Status::Ok();
    }
    case MetaType::kArray: {
      if (depth >= kMaxArrayDepth) {
        return CorruptError("{}: arrays nested more than {} deep at byte {}", r.path(),
                            kMaxArrayDepth, r.offset());
      }
      std::vector<MetaValue> values(static_cast<size_t>(count));
      for (MetaValue& v : values) SLIMLM_RETURN_IF_ERROR(ReadArray(r, depth + 1, &v));
      *out = MetaValue::ArrayOfArrays(std::move(values));
      return Status::Ok();
    }
  }
  return InternalError("{}: unhandled array type", r.path());
}

// An array value: u32 element type, u64 count, then the elements.
Status ReadArray(ByteReader& r, int depth, MetaValue* out) {
  uint32_t raw_type = 0;
  uint64_t count = 0;
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(&raw_type));
  if (!IsValidMetaType(raw_type)) {
    return CorruptError("{}: unknown array element type {} at byte {}", r.path(), raw_type,
                        r.offset() - 4);
  }
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(&count));
  MetaType element = static_cast<MetaType>(raw_type);
  if (count > r.remaining() / MinValueBytes(element)) {
    return CorruptError(
        "{}: truncated: array of {} {} values at byte {} cannot fit in the {} bytes "
        "left in the file",
        r.path(), count, MetaTypeName(element), r.offset() - 12, r.remaining());
  }
  return ReadArrayElements(r, element, count, depth, out);
}

template <typename T>
Status ReadScalar(ByteReader& r, MetaValue (*make)(T), MetaValue* out) {
  T value{};
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(&value));
  *out = make(value);
  return Status::Ok();
}

Status ReadValue(ByteReader& r, MetaType type, MetaValue* out) {
  switch (type) {
    case MetaType::kU8:
      return ReadScalar<uint8_t>(r, MetaValue::U8, out);
    case MetaType::kI8:
      return ReadScalar<int8_t>(r, MetaValue::I8, out);
    case MetaType::kU16:
      return ReadScalar<uint16_t>(r, MetaValue::U16, out);
    case MetaType::kI16:
      return ReadScalar<int16_t>(r, MetaValue::I16, out);
    case MetaType::kU32:
      return ReadScalar<uint32_t>(r, MetaValue::U32, out);
    case MetaType::kI32:
      return ReadScalar<int32_t>(r, MetaValue::I32, out);
    case MetaType::kU64:
      return ReadScalar<uint64_t>(r, MetaValue::U64, out);
    case MetaType::kI64:
      return ReadScalar<int64_t>(r, MetaValue::I64, out);
    case MetaType::kF32:
      return ReadScalar<float>(r, MetaValue::F32, out);
    case MetaType::kF64:
      return ReadScalar<double>(r, MetaValue::F64, out);
    case MetaType::kBool: {
      uint8_t byte = 0;
      SLIMLM_RETURN_IF_ERROR(r.ReadPod(&byte));
      *out = MetaValue::Bool(byte != 0);
      return Status::Ok();
    }
    case MetaType::kString: {
      std::string s;
      SLIMLM_RETURN_IF_ERROR(r.ReadString(&s));
      *out = MetaValue::String(std::move(s));
      return Status::Ok();
    }
    case MetaType::kArray:
      return ReadArray(r, /*depth=*/0, out);
  }
  return InternalError("{}: unhandled metadata type", r.path());
}

Status ReadPreamble(ByteReader& r, uint64_t* n_tensors, uint64_t* n_metadata) {
  const std::string& path = r.path();
  if (r.size() < 4) return CorruptError("{}: not a GGUF file (only {} bytes)", path, r.size());
  uint8_t magic[4];
  SLIMLM_RETURN_IF_ERROR(r.Read(magic, 4));
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    return CorruptError("{}: not a GGUF file (magic 0x{:02x}{:02x}{:02x}{:02x}, expected \"GGUF\")",
                        path, magic[0], magic[1], magic[2], magic[3]);
  }
  uint32_t version = 0;
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(&version));
  if (version != 2 && version != 3) {
    if (version != 0 && (version & 0xffffu) == 0) {
      return UnsupportedError("{}: big-endian GGUF files are not supported", path);
    }
    return UnsupportedError("{}: GGUF version {} is not supported (2 and 3 are)", path, version);
  }
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(n_tensors));
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(n_metadata));
  if (*n_metadata > r.remaining() / kMinMetadataPairBytes) {
    return CorruptError(
        "{}: truncated or corrupt: the header announces {} metadata pairs, more "
        "than a file of {} bytes can hold",
        path, *n_metadata, r.size());
  }
  if (*n_tensors > r.remaining() / kMinTensorInfoBytes) {
    return CorruptError(
        "{}: truncated or corrupt: the header announces {} tensors, more than a "
        "file of {} bytes can hold",
        path, *n_tensors, r.size());
  }
  return Status::Ok();
}

Status ReadMetadata(ByteReader& r, uint64_t count, Metadata* metadata) {
  for (uint64_t i = 0; i < count; ++i) {
    r.set_context(fmt::format("metadata key {} of {}", i, count));
    std::string key;
    SLIMLM_RETURN_IF_ERROR(r.ReadString(&key));
    if (key.empty()) return CorruptError("{}: metadata key {} is empty", r.path(), i);
    if (metadata->Has(key)) {
      return CorruptError("{}: duplicate metadata key '{}'", r.path(), Printable(key));
    }
    r.set_context(fmt::format("metadata key '{}'", Printable(key)));
    uint32_t raw_type = 0;
    SLIMLM_RETURN_IF_ERROR(r.ReadPod(&raw_type));
    if (!IsValidMetaType(raw_type)) {
      return CorruptError("{}: metadata key '{}' has unknown value type {}", r.path(),
                          Printable(key), raw_type);
    }
    MetaValue value;
    SLIMLM_RETURN_IF_ERROR(ReadValue(r, static_cast<MetaType>(raw_type), &value));
    metadata->Set(key, std::move(value));
  }
  return Status::Ok();
}

// Reads dims (innermost first on disk) into an outermost-first Shape, with n_dims <= 4, every
// dim >= 1 and the element count within int64.
Status ReadShape(ByteReader& r, const std::string& name, Shape* shape) {
  uint32_t n_dims = 0;
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(&n_dims));
  if (n_dims > static_cast<uint32_t>(Shape::kMaxRank)) {
    return CorruptError("{}: tensor '{}' has {} dimensions (at most {})", r.path(), name, n_dims,
                        Shape::kMaxRank);
  }
  uint64_t dims[Shape::kMaxRank] = {};
  uint64_t elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    SLIMLM_RETURN_IF_ERROR(r.ReadPod(&dims[d]));
    if (dims[d] == 0 || dims[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return CorruptError("{}: tensor '{}' has invalid dimension {} = {}", r.path(), name, d,
                          dims[d]);
    }
    if (!CheckedMul(elements, dims[d], &elements) ||
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return CorruptError(
          "{}: tensor '{}' has too many elements (the product of its dimensions "
          "overflows)",
          r.path(), name);
    }
  }
  *shape = Shape();
  for (uint32_t d = n_dims; d-- > 0;) shape->Append(static_cast<int64_t>(dims[d]));
  return Status::Ok();
}

// Bytes of a tensor, or an error when its rows are not whole blocks or the size overflows.
Status ComputeTensorBytes(const std::string& path, const std::string& name, DType dtype,
                          const Shape& shape, uint64_t* nbytes) {
  const DTypeTraits& traits = Traits(dtype);
  int64_t cols = shape.Cols();
  if (!IsRowLengthValid(dtype, cols)) {
    return CorruptError(
        "{}: tensor '{}' has rows of {} elements, not a multiple of {}'s block "
        "size {}",
        path, name, cols, traits.name, traits.block_size);
  }
  uint64_t row_bytes = 0;
  if (!CheckedMul(static_cast<uint64_t>(cols / traits.block_size),
                  static_cast<uint64_t>(traits.block_bytes), &row_bytes) ||
      !CheckedMul(row_bytes, static_cast<uint64_t>(shape.Rows()), nbytes)) {
    return CorruptError("{}: tensor '{}' is too large (its size overflows)", path, name);
  }
  return Status::Ok();
}

Status ReadTensorInfo(ByteReader& r, uint64_t index, uint64_t count,
                      formats_internal::GgufTensorRecord* out) {
  r.set_context(fmt::format("tensor info {} of {}", index, count));
  std::string raw_name;
  SLIMLM_RETURN_IF_ERROR(r.ReadString(&raw_name));
  if (raw_name.empty()) return CorruptError("{}: tensor {} has an empty name", r.path(), index);
  std::string name = Printable(raw_name);
  r.set_context(fmt::format("tensor info '{}'", name));
  SLIMLM_RETURN_IF_ERROR(ReadShape(r, name, &out->shape));
  uint32_t type = 0;
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(&type));
  if (!IsKnownDType(type)) {
    return UnsupportedError("{}: tensor '{}' has unsupported tensor type {} (ggml type {})",
                            r.path(), name, GgmlTypeName(type), type);
  }
  out->dtype = static_cast<DType>(type);
  SLIMLM_RETURN_IF_ERROR(r.ReadPod(&out->offset));
  SLIMLM_RETURN_IF_ERROR(ComputeTensorBytes(r.path(), name, out->dtype, out->shape, &out->nbytes));
  out->name = std::move(raw_name);
  return Status::Ok();
}

Result<uint32_t> AlignmentOf(const Metadata& metadata, const std::string& path) {
  const MetaValue* value = metadata.Find("general.alignment");
  if (value == nullptr) return kGgufDefaultAlignment;
  uint64_t alignment = value->scalar_bits();
  if (value->type() != MetaType::kU32 || alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return CorruptError("{}: general.alignment must be a u32 power of two (it is a {} = {})", path,
                        MetaTypeName(value->type()), value->AsInt().value_or(-1));
  }
  return static_cast<uint32_t>(alignment);
}

// Checks every tensor's data lies inside the file, is aligned, and overlaps no other.
Status CheckTensorPlacement(const formats_internal::ParsedGguf& parsed, uint64_t file_size,
                            const std::string& path) {
  for (const auto& t : parsed.tensors) {
    if (t.offset % parsed.alignment != 0) {
      return CorruptError("{}: tensor '{}' data offset {} is not a multiple of the alignment {}",
                          path, Printable(t.name), t.offset, parsed.alignment);
    }
    uint64_t end = 0;
    if (!CheckedAdd(parsed.data_start, t.offset, &end) || !CheckedAdd(end, t.nbytes, &end)) {
      return CorruptError("{}: tensor '{}' data offset {} is past any possible file end", path,
                          Printable(t.name), t.offset);
    }
    if (end > file_size) {
      return CorruptError("{}: truncated: tensor '{}' data ends at byte {}, file has {} bytes",
                          path, Printable(t.name), end, file_size);
    }
  }
  std::vector<size_t> order(parsed.tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return parsed.tensors[a].offset < parsed.tensors[b].offset;
  });
  for (size_t i = 1; i < order.size(); ++i) {
    const auto& prev = parsed.tensors[order[i - 1]];
    const auto& next = parsed.tensors[order[i]];
    if (prev.offset + prev.nbytes > next.offset) {
      return CorruptError("{}: tensors '{}' and '{}' overlap in the data section", path,
                          Printable(prev.name), Printable(next.name));
    }
  }
  return Status::Ok();
}

}  // namespace

namespace formats_internal {

Result<ParsedGguf> ParseGgufHeader(std::span<const uint8_t> bytes, const std::string& path) {
  ByteReader r(bytes, path);
  uint64_t n_tensors = 0;
  uint64_t n_metadata = 0;
  SLIMLM_RETURN_IF_ERROR(ReadPreamble(r, &n_tensors, &n_metadata));
  ParsedGguf parsed;
  SLIMLM_RETURN_IF_ERROR(ReadMetadata(r, n_metadata, &parsed.metadata));
  SLIMLM_ASSIGN_OR_RETURN(parsed.alignment, AlignmentOf(parsed.metadata, path));

  parsed.tensors.resize(static_cast<size_t>(n_tensors));
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorRecord& t = parsed.tensors[static_cast<size_t>(i)];
    SLIMLM_RETURN_IF_ERROR(ReadTensorInfo(r, i, n_tensors, &t));
    if (!names.insert(t.name).second) {
      return CorruptError("{}: duplicate tensor name '{}'", path, Printable(t.name));
    }
  }
  // Data starts at the first multiple of the alignment after the tensor infos.
  uint64_t header_end = r.offset();
  uint64_t padded = 0;
  if (!CheckedAdd(header_end, parsed.alignment - 1, &padded)) {
    return CorruptError("{}: corrupt header", path);
  }
  parsed.data_start = padded / parsed.alignment * parsed.alignment;
  if (n_tensors > 0 && parsed.data_start > r.size()) {
    return CorruptError("{}: truncated: tensor data would start at byte {}, file has {} bytes",
                        path, parsed.data_start, r.size());
  }
  SLIMLM_RETURN_IF_ERROR(CheckTensorPlacement(parsed, r.size(), path));
  return parsed;
}

}  // namespace formats_internal

Result<WeightStore> ParseGguf(std::span<const uint8_t> bytes, const std::string& name,
                              std::shared_ptr<const void> owner) {
  SLIMLM_ASSIGN_OR_RETURN(formats_internal::ParsedGguf parsed,
                          formats_internal::ParseGgufHeader(bytes, name));
  WeightStore store;
  store.metadata() = std::move(parsed.metadata);
  for (auto& t : parsed.tensors) {
    const uint8_t* data = bytes.data() + parsed.data_start + t.offset;
    formats_internal::AddTensorFromBytes(&store, std::move(t.name), t.dtype, t.shape, data, owner);
  }
  store.KeepAlive(std::move(owner));
  store.source_path = name;
  store.source_format = "gguf";
  return store;
}

Result<WeightStore> ReadGguf(const std::string& path) {
  SLIMLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  auto map = std::make_shared<const MappedFile>(std::move(file));
  return ParseGguf(map->bytes(), path, map);
}

Result<Metadata> ReadGgufMetadata(const std::string& path) {
  SLIMLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  SLIMLM_ASSIGN_OR_RETURN(formats_internal::ParsedGguf parsed,
                          formats_internal::ParseGgufHeader(file.bytes(), path));
  return std::move(parsed.metadata);
}

}  // namespace slimlm
