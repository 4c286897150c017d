// Shapes and non-owning views of tensors.
//
// Shapes are listed outermost first and data is row-major: a weight matrix that maps d_in
// inputs to d_out outputs has shape {d_out, d_in}, and its row r holds the d_in weights of
// output r. (GGUF lists the same dims innermost first; the GGUF reader reverses them.)
#ifndef SLIMLM_TENSOR_TENSOR_H_
#define SLIMLM_TENSOR_TENSOR_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "slimlm/core/check.h"
#include "slimlm/tensor/dtype.h"

namespace slimlm {

class Shape {
 public:
  static constexpr int kMaxRank = 4;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);

  int rank() const { return rank_; }
  int64_t dim(int i) const {
    SLIMLM_DCHECK(i >= 0 && i < rank_);
    return dims_[static_cast<size_t>(i)];
  }
  int64_t operator[](int i) const { return dim(i); }
  // Appends a dimension (outer to inner); false when the rank is already kMaxRank.
  bool Append(int64_t d);

  int64_t NumElements() const;
  // The innermost dimension (row length); 1 for a scalar.
  int64_t Cols() const { return rank_ == 0 ? 1 : dims_[static_cast<size_t>(rank_ - 1)]; }
  // The product of all but the innermost dimension.
  int64_t Rows() const { return Cols() == 0 ? 0 : NumElements() / Cols(); }

  // "[512, 64]".
  std::string ToString() const;

  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }

 private:
  int rank_ = 0;
  std::array<int64_t, kMaxRank> dims_{};
};

// Bytes needed by a tensor of this type and shape (rows of whole blocks).
size_t TensorBytes(DType type, const Shape& shape);

// A typed, non-owning window onto tensor data. Whoever made the view keeps the data alive.
struct TensorView {
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;

  int64_t rows() const { return shape.Rows(); }
  int64_t cols() const { return shape.Cols(); }
  size_t row_bytes() const { return RowBytes(dtype, cols()); }
  size_t nbytes() const { return TensorBytes(dtype, shape); }
  const uint8_t* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_bytes();
  }
  const float* f32() const {
    SLIMLM_DCHECK(dtype == DType::kF32);
    return static_cast<const float*>(data);
  }
};

}  // namespace slimlm

#endif  // SLIMLM_TENSOR_TENSOR_H_
