#include "slimlm/formats/weight_store.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "slimlm/core/check.h"

namespace slimlm {
namespace {

// 64-byte aligned, zeroed storage, freed by its shared_ptr.
std::shared_ptr<uint8_t> AllocateAligned(size_t nbytes) {
  size_t rounded = (nbytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p), [](uint8_t* q) { std::free(q); });
}

}  // namespace

const StoredTensor* WeightStore::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

void WeightStore::AddBorrowed(std::string name, DType dtype, Shape shape, const void* data,
                              std::shared_ptr<const void> owner) {
  SLIMLM_CHECK(index_.find(name) == index_.end()) << "duplicate tensor " << name;
  StoredTensor t;
  t.owner = std::move(owner);
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = shape;
  t.data = static_cast<const uint8_t*>(data);
  t.nbytes = TensorBytes(dtype, shape);
  index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
}

uint8_t* WeightStore::AddOwned(std::string name, DType dtype, Shape shape) {
  std::shared_ptr<uint8_t> buffer = AllocateAligned(TensorBytes(dtype, shape));
  uint8_t* data = buffer.get();
  AddBorrowed(std::move(name), dtype, shape, data, std::move(buffer));
  return data;
}

uint8_t* WeightStore::Replace(std::string_view name, DType dtype, Shape shape) {
  auto it = index_.find(std::string(name));
  SLIMLM_CHECK(it != index_.end()) << "Replace: no tensor " << name;
  std::shared_ptr<uint8_t> buffer = AllocateAligned(TensorBytes(dtype, shape));
  StoredTensor& t = tensors_[it->second];
  t.dtype = dtype;
  t.shape = shape;
  t.data = buffer.get();
  t.nbytes = TensorBytes(dtype, shape);
  t.owner = std::move(buffer);
  return const_cast<uint8_t*>(t.data);
}

bool WeightStore::Remove(std::string_view name) {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) return false;
  tensors_.erase(tensors_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return true;
}

size_t WeightStore::TotalTensorBytes() const {
  size_t total = 0;
  for (const auto& t : tensors_) total += t.nbytes;
  return total;
}

}  // namespace slimlm
