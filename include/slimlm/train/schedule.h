// The learning-rate schedule of training: a linear warm-up from 0, then a cosine decay to a floor.
#ifndef SLIMLM_TRAIN_SCHEDULE_H_
#define SLIMLM_TRAIN_SCHEDULE_H_

#include <cstdint>

namespace slimlm::train {

struct Schedule {
  double peak = 1e-3;          // Learning rate at the end of the warm-up.
  double floor = 1e-4;         // Learning rate at the last step and after.
  int64_t warmup_steps = 100;  // Steps 0 .. warmup_steps - 1 rise linearly to peak.
  int64_t total_steps = 1000;

  // Learning rate of step `step` (0-based).
  double At(int64_t step) const;
};

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_SCHEDULE_H_
