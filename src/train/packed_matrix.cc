#include "train/packed_matrix.h"

#include <algorithm>

#include "kernels/packed/packed_layout.h"

namespace slimlm::train {

void PackedMatrix::Pack(const kernels::KernelTable& k, const float* w, int64_t rows, int64_t cols) {
  const size_t bytes = k.packed_bytes(DType::kF32, rows, cols);
  matrix_ =
      kernels::Matrix{DType::kF32, rows, cols, nullptr, static_cast<size_t>(cols) * 4, bytes != 0};
  if (bytes == 0) {
    storage_.assign(w, w + rows * cols);
  } else {
    storage_.resize(bytes / sizeof(float));
    k.pack(DType::kF32, w, static_cast<size_t>(cols) * 4, rows, cols, 0, rows, storage_.data());
  }
  matrix_.data = storage_.data();
}

void PackedMatrix::PackTransposed(const kernels::KernelTable& k, const float* a, int64_t a_rows,
                                  int64_t a_cols) {
  const int64_t rows = a_cols, cols = a_rows;
  const size_t bytes = k.packed_bytes(DType::kF32, rows, cols);
  if (bytes == 0 || bytes != kernels::packed::PackedBytes(DType::kF32, rows, cols)) {
    std::vector<float> t(static_cast<size_t>(rows * cols));
    Transpose(a, a_rows, a_cols, t.data());
    Pack(k, t.data(), rows, cols);
    return;
  }
  constexpr int64_t kGroup = kernels::packed::kPackRows;
  matrix_ = kernels::Matrix{DType::kF32, rows, cols, nullptr, static_cast<size_t>(cols) * 4, true};
  storage_.resize(bytes / sizeof(float));
  // Element (g cols + c) 16 + j of the packed layout is row g 16 + j, column c of a^T, that is
  // a[c, g 16 + j].
  for (int64_t g = 0; g * kGroup < rows; ++g) {
    const int64_t valid = std::min(kGroup, rows - g * kGroup);
    float* dst = storage_.data() + g * cols * kGroup;
    for (int64_t c = 0; c < cols; ++c) {
      const float* src = a + c * a_cols + g * kGroup;
      std::copy_n(src, valid, dst + c * kGroup);
      std::fill(dst + c * kGroup + valid, dst + (c + 1) * kGroup, 0.0f);
    }
  }
  matrix_.data = storage_.data();
}

void PackedMatrix::Apply(const kernels::KernelTable& k, const float* x, int64_t n, float* y) const {
  k.matmul(matrix_, x, static_cast<size_t>(matrix_.cols) * 4, y, matrix_.rows, n, 0, matrix_.rows);
}

void Transpose(const float* a, int64_t rows, int64_t cols, float* out) {
  // Tiles keep both the reads and the writes within a few cache lines.
  constexpr int64_t kTile = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) out[c * rows + r] = a[r * cols + c];
      }
    }
  }
}

}  // namespace slimlm::train
