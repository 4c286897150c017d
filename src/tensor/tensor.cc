#include "slimlm/tensor/tensor.h"

#include <fmt/core.h>

namespace slimlm {

Shape::Shape(std::initializer_list<int64_t> dims) {
  SLIMLM_CHECK(dims.size() <= kMaxRank) << "rank " << dims.size();
  for (int64_t d : dims) dims_[static_cast<size_t>(rank_++)] = d;
}

bool Shape::Append(int64_t d) {
  if (rank_ == kMaxRank) return false;
  dims_[static_cast<size_t>(rank_++)] = d;
  return true;
}

int64_t Shape::NumElements() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

std::string Shape::ToString() const {
  std::string out = "[";
  for (int i = 0; i < rank_; ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(dims_[static_cast<size_t>(i)]);
  }
  return out + "]";
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i) {
    if (dims_[static_cast<size_t>(i)] != other.dims_[static_cast<size_t>(i)]) return false;
  }
  return true;
}

size_t TensorBytes(DType type, const Shape& shape) {
  return static_cast<size_t>(shape.Rows()) * RowBytes(type, shape.Cols());
}

}  // namespace slimlm
