// WeightStore: a model file's contents in memory, whatever format it came from.
//
// Holds the metadata (GGUF key names; see metadata.h) and the tensors (GGUF tensor names such as
// "blk.0.attn_q.weight", shapes outermost first). Tensor data is either borrowed from a memory
// map that the store keeps alive (zero-copy loading) or owned by the store. Readers fill a store;
// writers save one; the model layer builds its views on one.
#ifndef SLIMLM_FORMATS_WEIGHT_STORE_H_
#define SLIMLM_FORMATS_WEIGHT_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slimlm/formats/metadata.h"
#include "slimlm/tensor/tensor.h"

namespace slimlm {

struct StoredTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  const uint8_t* data = nullptr;  // TensorBytes(dtype, shape) bytes.
  size_t nbytes = 0;
  // Keeps `data` alive: the memory map it points into, or its own buffer.
  std::shared_ptr<const void> owner;

  TensorView view() const { return TensorView{dtype, shape, data}; }
};

class WeightStore {
 public:
  WeightStore() = default;
  WeightStore(WeightStore&&) = default;
  WeightStore& operator=(WeightStore&&) = default;
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  Metadata& metadata() { return metadata_; }
  const Metadata& metadata() const { return metadata_; }

  const std::vector<StoredTensor>& tensors() const { return tensors_; }
  const StoredTensor* Find(std::string_view name) const;

  // Adds a tensor whose bytes live elsewhere; `owner` (may be null when the caller guarantees
  // the lifetime) is kept alive as long as the store. The name must be new.
  void AddBorrowed(std::string name, DType dtype, Shape shape, const void* data,
                   std::shared_ptr<const void> owner);
  // Adds a tensor with zero-initialized storage owned by the store (64-byte aligned) and
  // returns a writable pointer to its TensorBytes(dtype, shape) bytes. The name must be new.
  uint8_t* AddOwned(std::string name, DType dtype, Shape shape);
  // Replaces an existing tensor's type, shape and data with new owned storage (used by passes
  // that rewrite tensors, such as a q/k permutation or quantization), releasing the old storage
  // when nothing else holds it. Returns the new bytes, zero-initialized.
  uint8_t* Replace(std::string_view name, DType dtype, Shape shape);
  // Removes a tensor; false when absent.
  bool Remove(std::string_view name);

  // Keeps an object (a memory map, a buffer) alive as long as the store.
  void KeepAlive(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }

  // Total bytes of tensor data.
  size_t TotalTensorBytes() const;

  // Where it was loaded from, and which reader ("gguf", "safetensors", "llama2c"), for messages.
  std::string source_path;
  std::string source_format;

 private:
  Metadata metadata_;
  std::vector<StoredTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::shared_ptr<const void>> owners_;
};

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_WEIGHT_STORE_H_
