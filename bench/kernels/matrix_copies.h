// The weights of the matrix-product benchmarks: a matrix as a kernel path multiplies it, repeated
// past the last-level cache for "cold" runs (each product then reads its weights from memory, as
// a decode step goes through a model's matrices) or once for "hot" runs (from the caches).
#ifndef SLIMLM_BENCH_KERNELS_MATRIX_COPIES_H_
#define SLIMLM_BENCH_KERNELS_MATRIX_COPIES_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "slimlm/core/aligned_bytes.h"
#include "slimlm/core/function_ref.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels {

class MatrixCopies {
 public:
  // A (rows, cols) matrix of `type` with row r's values from fill(r, row), packed where `table`
  // packs it; 256 MB or more of copies when `cold`, one otherwise.
  MatrixCopies(const KernelTable& table, DType type, int64_t rows, int64_t cols, bool cold,
               FunctionRef<void(int64_t r, std::span<float> row)> fill) {
    const size_t row_bytes = RowBytes(type, cols);
    std::vector<uint8_t> file(row_bytes * static_cast<size_t>(rows));
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      fill(r, row);
      RowFromF32(type, row.data(), file.data() + r * row_bytes, cols);
    }
    const size_t packed = table.packed_bytes(type, rows, cols);
    matrix_bytes_ = packed != 0 ? packed : file.size();
    stride_ = (matrix_bytes_ + 4095) / 4096 * 4096;
    copies_ = cold ? (kColdBytes + stride_ - 1) / stride_ : 1;
    bytes_ = AlignedBytes(stride_ * copies_);
    matrix_ = Matrix{type, rows, cols, bytes_.data(), row_bytes, packed != 0};
    if (packed != 0) {
      table.pack(type, file.data(), row_bytes, rows, cols, 0, rows, bytes_.data());
    } else {
      std::memcpy(bytes_.data(), file.data(), file.size());
    }
    for (size_t i = 1; i < copies_; ++i) {
      std::memcpy(bytes_.data() + i * stride_, bytes_.data(), matrix_bytes_);
    }
  }

  // The i-th product's matrix: the copies in turn.
  Matrix Next() {
    Matrix m = matrix_;
    m.data = bytes_.data() + (next_++ % copies_) * stride_;
    return m;
  }
  // Bytes one product reads.
  size_t matrix_bytes() const { return matrix_bytes_; }

 private:
  static constexpr size_t kColdBytes = size_t{256} << 20;
  AlignedBytes bytes_;
  Matrix matrix_;
  size_t matrix_bytes_ = 0;
  size_t stride_ = 0;
  size_t copies_ = 1;
  size_t next_ = 0;
};

}  // namespace slimlm::kernels

#endif  // SLIMLM_BENCH_KERNELS_MATRIX_COPIES_H_
