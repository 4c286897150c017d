// f32 matrices in the kernel table's packed layout, so that training's matrix products run on
// the same fast f32 kernels as inference (kernels/kernels.h): y = x w^T for rows of x. The
// backward products are the same operation on transposed operands (see transformer.cc).
#ifndef SLIMLM_TRAIN_PACKED_MATRIX_H_
#define SLIMLM_TRAIN_PACKED_MATRIX_H_

#include <cstdint>
#include <vector>

#include "slimlm/kernels/kernels.h"

namespace slimlm::train {

class PackedMatrix {
 public:
  // Packs w: (rows, cols) row-major. When the path multiplies the plain layout, a copy is kept.
  void Pack(const kernels::KernelTable& k, const float* w, int64_t rows, int64_t cols);
  // Packs a^T for a: (a_rows, a_cols) row-major, without forming a^T: in the 16-row groups of
  // the packed layout a column of a^T's group is 16 consecutive values of a row of a.
  void PackTransposed(const kernels::KernelTable& k, const float* a, int64_t a_rows,
                      int64_t a_cols);
  // y: (n, rows) = x: (n, cols) times w^T, on the calling thread.
  void Apply(const kernels::KernelTable& k, const float* x, int64_t n, float* y) const;
  int64_t rows() const { return matrix_.rows; }

 private:
  std::vector<float> storage_;
  kernels::Matrix matrix_;
};

// out: (cols, rows) = a: (rows, cols) transposed.
void Transpose(const float* a, int64_t rows, int64_t cols, float* out);

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_PACKED_MATRIX_H_
