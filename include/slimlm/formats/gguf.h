// GGUF v3: the file format of the llama.cpp ecosystem. See docs/formats/gguf.md.
//
// Layout (little-endian): magic "GGUF", u32 version (3; 2 is read too), u64 tensor count,
// u64 metadata count, metadata key/value pairs, tensor infos (name, n_dims, dims innermost first,
// u32 type, u64 offset), padding to general.alignment (default 32), tensor data. Every tensor's
// data starts at a multiple of the alignment and is followed by zero padding up to the next one
// (the last tensor too), which is what llama.cpp writes, so a file read and written back is
// byte-identical.
#ifndef SLIMLM_FORMATS_GGUF_H_
#define SLIMLM_FORMATS_GGUF_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "slimlm/core/file.h"
#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/tensor/tensor.h"

namespace slimlm {

// The alignment GGUF uses when general.alignment is absent.
inline constexpr uint32_t kGgufDefaultAlignment = 32;

// Maps the file and reads metadata and tensors; tensor data points into the map (no copy; the
// store keeps the map alive). Every size, offset, count, string length, type and dimension is
// checked against the file before use, so truncated or corrupt files give an error naming the
// file and the problem ("m.gguf: truncated: tensor 'x' data ends at byte N, file has M bytes").
// Tensor types slimlm cannot load give kUnsupported ("unsupported tensor type q4_k").
// Metadata keeps the file's order, including general.alignment when present.
Result<WeightStore> ReadGguf(const std::string& path);

// Reads only the metadata (for vocab-only files and tokenizer lookups); tensor infos are still
// validated.
Result<Metadata> ReadGgufMetadata(const std::string& path);

// Parses GGUF bytes already in memory; `name` stands for the file in messages and `owner` keeps
// `bytes` alive for the returned store's tensors (may be null when the caller guarantees it).
// ReadGguf is this over a memory map; tests use it on exact-size heap buffers, where ASan sees
// any read past the end.
Result<WeightStore> ParseGguf(std::span<const uint8_t> bytes, const std::string& name,
                              std::shared_ptr<const void> owner);

struct GgufWriteOptions {
  // 0 uses the metadata's general.alignment when present, else 32. A value other than the
  // resulting default is written as general.alignment (replacing the key's value in place, or
  // appended when absent). Must be a power of two.
  uint32_t alignment = 0;
};

// Writes the store atomically. Metadata and tensors keep the store's order.
Status WriteGguf(const WeightStore& store, const std::string& path,
                 const GgufWriteOptions& options = {});

// What the header says about one tensor; the data follows later through the stream writer.
struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;  // Outermost first (reversed on disk).
};

// Writes a GGUF file tensor by tensor, so a pass such as quantization can produce a model larger
// than memory: Create writes the header, metadata and tensor infos; Append takes the tensors'
// bytes in order, in pieces of any size (a piece may end one tensor and begin the next), adding
// the alignment padding itself; Finish checks that every byte came and renames the file into
// place. Destroying the writer before Finish leaves no file behind. Not thread-safe.
class GgufStreamWriter {
 public:
  // Fails on duplicate or empty names, a rank above 4, a dimension below 1, or a row length that
  // is not a whole number of blocks of its type.
  static Result<std::unique_ptr<GgufStreamWriter>> Create(const std::string& path,
                                                          const Metadata& metadata,
                                                          std::vector<GgufTensorInfo> tensors,
                                                          const GgufWriteOptions& options = {});

  // Appends tensor data; fails when it exceeds what the tensor infos announced.
  Status Append(const void* data, size_t size);
  // Finishes the file; fails when tensor data is missing.
  Status Finish();

  // The tensor that the next Append continues (tensors().size() once all data is written).
  size_t current_tensor() const { return current_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

 private:
  GgufStreamWriter(std::string path, std::unique_ptr<AtomicFileWriter> file,
                   std::vector<GgufTensorInfo> tensors, uint32_t alignment);
  // Pads and moves past every tensor whose bytes are all written.
  Status AdvancePastCompleteTensors();

  std::string path_;
  std::unique_ptr<AtomicFileWriter> file_;
  std::vector<GgufTensorInfo> tensors_;
  uint32_t alignment_;
  size_t current_ = 0;    // Index of the tensor being written.
  uint64_t written_ = 0;  // Bytes of tensors_[current_] written so far.
};

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_GGUF_H_
