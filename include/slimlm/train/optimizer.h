// AdamW (Adam with decoupled weight decay) over a flat f32 parameter array, with clipping of the
// gradient's global L2 norm. Weight decay applies to the matrices only (rank-2 tensors), not to
// norm weights, as is usual for transformers.
#ifndef SLIMLM_TRAIN_OPTIMIZER_H_
#define SLIMLM_TRAIN_OPTIMIZER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "slimlm/train/transformer.h"

namespace slimlm::train {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double clip_norm = 1.0;  // Gradients with a larger global L2 norm are scaled down to it; 0: off.
};

class AdamW {
 public:
  AdamW(const std::vector<ParamSlot>& slots, int64_t n_params, const AdamWOptions& options);

  // One update of params with grads at learning rate lr; returns the gradient's global L2 norm
  // before clipping.
  double Step(std::span<float> params, std::span<const float> grads, double lr);

  int64_t steps() const { return steps_; }
  // The moment estimates, for checkpoints.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  AdamWOptions options_;
  std::vector<uint8_t> decay_;  // Per parameter: 1 when weight decay applies.
  std::vector<float> m_, v_;
  int64_t steps_ = 0;
};

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_OPTIMIZER_H_
