// GGUF writer. The header (metadata and tensor infos) is built in memory and written first; the
// tensor data then streams through GgufStreamWriter::Append, so WriteGguf and passes that produce
// tensors one at a time share one code path.
#include <algorithm>
#include <unordered_set>
#include <utility>

#include "formats/byte_reader.h"
#include "slimlm/formats/gguf.h"

namespace slimlm {
namespace {

constexpr uint32_t kGgufVersion = 3;

template <typename T>
void AppendPod(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

void AppendString(std::string* out, std::string_view s) {
  AppendPod<uint64_t>(out, s.size());
  out->append(s);
}

template <typename T>
Status AppendNumbers(std::string* out, const std::vector<T>* values) {
  if (values == nullptr) return InternalError("metadata array holds the wrong element type");
  out->append(reinterpret_cast<const char*>(values->data()), values->size() * sizeof(T));
  return Status::Ok();
}

// An array value: element type, count, elements (nested arrays recursively).
Status AppendArray(std::string* out, const MetaValue& value) {
  AppendPod<uint32_t>(out, static_cast<uint32_t>(value.array_type()));
  AppendPod<uint64_t>(out, value.array_size());
  switch (value.array_type()) {
    case MetaType::kU8:
    case MetaType::kBool:
      return AppendNumbers(out, value.ArrayOf<uint8_t>());
    case MetaType::kI8:
      return AppendNumbers(out, value.ArrayOf<int8_t>());
    case MetaType::kU16:
      return AppendNumbers(out, value.ArrayOf<uint16_t>());
    case MetaType::kI16:
      return AppendNumbers(out, value.ArrayOf<int16_t>());
    case MetaType::kU32:
      return AppendNumbers(out, value.ArrayOf<uint32_t>());
    case MetaType::kI32:
      return AppendNumbers(out, value.ArrayOf<int32_t>());
    case MetaType::kU64:
      return AppendNumbers(out, value.ArrayOf<uint64_t>());
    case MetaType::kI64:
      return AppendNumbers(out, value.ArrayOf<int64_t>());
    case MetaType::kF32:
      return AppendNumbers(out, value.ArrayOf<float>());
    case MetaType::kF64:
      return AppendNumbers(out, value.ArrayOf<double>());
    case MetaType::kString:
      for (const std::string& s : *value.AsStringArray()) AppendString(out, s);
      return Status::Ok();
    case MetaType::kArray:
      for (const MetaValue& element : *value.AsArrayOfArrays()) {
        SLIMLM_RETURN_IF_ERROR(AppendArray(out, element));
      }
      return Status::Ok();
  }
  return InternalError("unknown metadata array type");
}

Status AppendValue(std::string* out, const MetaValue& value) {
  if (value.is_array()) return AppendArray(out, value);
  if (value.type() == MetaType::kString) {
    AppendString(out, *value.AsString());
    return Status::Ok();
  }
  // Scalars are their payload's low bytes, little-endian (see byte_reader.h).
  uint64_t bits = value.scalar_bits();
  out->append(reinterpret_cast<const char*>(&bits), MetaScalarBytes(value.type()));
  return Status::Ok();
}

uint64_t AlignUp(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

// The alignment to write with, and the metadata with general.alignment set to match it.
Result<uint32_t> ResolveAlignment(const std::string& path, const GgufWriteOptions& options,
                                  Metadata* metadata) {
  uint32_t alignment = options.alignment;
  const MetaValue* existing = metadata->Find("general.alignment");
  if (alignment == 0) {
    alignment = kGgufDefaultAlignment;
    if (existing != nullptr && existing->type() == MetaType::kU32) {
      alignment = static_cast<uint32_t>(existing->scalar_bits());
    }
  }
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return InvalidArgumentError("{}: GGUF alignment {} is not a power of two", path, alignment);
  }
  if (existing != nullptr || alignment != kGgufDefaultAlignment) {
    metadata->Set("general.alignment", MetaValue::U32(alignment));
  }
  return alignment;
}

Status ValidateTensorInfos(const std::string& path, const std::vector<GgufTensorInfo>& tensors) {
  std::unordered_set<std::string_view> names;
  for (const GgufTensorInfo& t : tensors) {
    if (t.name.empty()) return InvalidArgumentError("{}: a tensor has an empty name", path);
    if (!names.insert(t.name).second) {
      return InvalidArgumentError("{}: duplicate tensor name '{}'", path, t.name);
    }
    for (int d = 0; d < t.shape.rank(); ++d) {
      if (t.shape[d] < 1) {
        return InvalidArgumentError("{}: tensor '{}' has shape {}", path, t.name,
                                    t.shape.ToString());
      }
    }
    if (!IsRowLengthValid(t.dtype, t.shape.Cols())) {
      return InvalidArgumentError("{}: tensor '{}' rows of {} elements are not whole {} blocks",
                                  path, t.name, t.shape.Cols(), DTypeName(t.dtype));
    }
  }
  return Status::Ok();
}

// Magic, counts, metadata and tensor infos, padded to the alignment.
Status BuildHeader(const Metadata& metadata, const std::vector<GgufTensorInfo>& tensors,
                   uint32_t alignment, std::string* out) {
  out->append("GGUF", 4);
  AppendPod<uint32_t>(out, kGgufVersion);
  AppendPod<uint64_t>(out, tensors.size());
  AppendPod<uint64_t>(out, metadata.size());
  for (const auto& [key, value] : metadata.entries()) {
    AppendString(out, key);
    AppendPod<uint32_t>(out, static_cast<uint32_t>(value.type()));
    SLIMLM_RETURN_IF_ERROR(AppendValue(out, value));
  }
  uint64_t offset = 0;
  for (const GgufTensorInfo& t : tensors) {
    AppendString(out, t.name);
    AppendPod<uint32_t>(out, static_cast<uint32_t>(t.shape.rank()));
    for (int d = t.shape.rank(); d-- > 0;)
      AppendPod<uint64_t>(out, static_cast<uint64_t>(t.shape[d]));
    AppendPod<uint32_t>(out, static_cast<uint32_t>(t.dtype));
    AppendPod<uint64_t>(out, offset);
    offset += AlignUp(TensorBytes(t.dtype, t.shape), alignment);
  }
  // Files without tensors (vocab-only files) end right after the header, as llama.cpp's tools
  // write them; otherwise the data section starts at the next multiple of the alignment.
  if (!tensors.empty()) out->resize(AlignUp(out->size(), alignment), '\0');
  return Status::Ok();
}

}  // namespace

GgufStreamWriter::GgufStreamWriter(std::string path, std::unique_ptr<AtomicFileWriter> file,
                                   std::vector<GgufTensorInfo> tensors, uint32_t alignment)
    : path_(std::move(path)),
      file_(std::move(file)),
      tensors_(std::move(tensors)),
      alignment_(alignment) {}

Result<std::unique_ptr<GgufStreamWriter>> GgufStreamWriter::Create(
    const std::string& path, const Metadata& metadata, std::vector<GgufTensorInfo> tensors,
    const GgufWriteOptions& options) {
  Metadata adjusted = metadata;
  SLIMLM_ASSIGN_OR_RETURN(uint32_t alignment, ResolveAlignment(path, options, &adjusted));
  SLIMLM_RETURN_IF_ERROR(ValidateTensorInfos(path, tensors));
  std::string header;
  SLIMLM_RETURN_IF_ERROR(BuildHeader(adjusted, tensors, alignment, &header).WithContext(path));
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> file, AtomicFileWriter::Create(path));
  SLIMLM_RETURN_IF_ERROR(file->Write(header));
  auto writer = std::unique_ptr<GgufStreamWriter>(
      new GgufStreamWriter(path, std::move(file), std::move(tensors), alignment));
  SLIMLM_RETURN_IF_ERROR(writer->AdvancePastCompleteTensors());
  return writer;
}

Status GgufStreamWriter::AdvancePastCompleteTensors() {
  while (current_ < tensors_.size()) {
    uint64_t nbytes = TensorBytes(tensors_[current_].dtype, tensors_[current_].shape);
    if (written_ < nbytes) break;
    SLIMLM_RETURN_IF_ERROR(file_->WriteZeros(AlignUp(nbytes, alignment_) - nbytes));
    ++current_;
    written_ = 0;
  }
  return Status::Ok();
}

Status GgufStreamWriter::Append(const void* data, size_t size) {
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  while (size > 0) {
    if (current_ == tensors_.size()) {
      return FailedPreconditionError("{}: {} bytes of tensor data past the last tensor", path_,
                                     size);
    }
    uint64_t nbytes = TensorBytes(tensors_[current_].dtype, tensors_[current_].shape);
    size_t n = static_cast<size_t>(std::min<uint64_t>(size, nbytes - written_));
    SLIMLM_RETURN_IF_ERROR(file_->Write(bytes, n));
    bytes += n;
    size -= n;
    written_ += n;
    SLIMLM_RETURN_IF_ERROR(AdvancePastCompleteTensors());
  }
  return Status::Ok();
}

Status GgufStreamWriter::Finish() {
  if (current_ < tensors_.size()) {
    const GgufTensorInfo& t = tensors_[current_];
    return FailedPreconditionError("{}: tensor '{}' is missing {} of its {} bytes", path_, t.name,
                                   TensorBytes(t.dtype, t.shape) - written_,
                                   TensorBytes(t.dtype, t.shape));
  }
  return file_->Commit();
}

Status WriteGguf(const WeightStore& store, const std::string& path,
                 const GgufWriteOptions& options) {
  std::vector<GgufTensorInfo> infos;
  infos.reserve(store.tensors().size());
  for (const StoredTensor& t : store.tensors()) infos.push_back({t.name, t.dtype, t.shape});
  SLIMLM_ASSIGN_OR_RETURN(
      auto writer, GgufStreamWriter::Create(path, store.metadata(), std::move(infos), options));
  for (const StoredTensor& t : store.tensors()) {
    SLIMLM_RETURN_IF_ERROR(writer->Append(t.data, t.nbytes));
  }
  return writer->Finish();
}

}  // namespace slimlm
