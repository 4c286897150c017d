// Small helpers shared by the readers for putting tensors into a WeightStore.
#ifndef SLIMLM_SRC_FORMATS_STORE_UTIL_H_
#define SLIMLM_SRC_FORMATS_STORE_UTIL_H_

#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "formats/byte_reader.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm::formats_internal {

// The alignment a tensor's data needs so that kernels may load its elements directly: 4 for f32,
// 2 for everything else (f16/bf16 elements and the f16 scales of quantized blocks).
inline size_t ElementAlignment(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

// Adds a tensor that borrows `data` from `owner` (zero-copy). Files whose layout leaves a tensor
// misaligned (legal in safetensors and in GGUF with general.alignment 1) get an owned copy
// instead, because reading floats through a misaligned pointer is undefined behaviour.
inline void AddTensorFromBytes(WeightStore* store, std::string name, DType dtype,
                               const Shape& shape, const uint8_t* data,
                               const std::shared_ptr<const void>& owner) {
  if (IsAligned(data, ElementAlignment(dtype))) {
    store->AddBorrowed(std::move(name), dtype, shape, data, owner);
    return;
  }
  uint8_t* copy = store->AddOwned(std::move(name), dtype, shape);
  std::memcpy(copy, data, TensorBytes(dtype, shape));
}

}  // namespace slimlm::formats_internal

#endif  // SLIMLM_SRC_FORMATS_STORE_UTIL_H_
