// RoPE angles per position, with the scaling methods of the Llama family.
#ifndef SLIMLM_MODEL_ROPE_H_
#define SLIMLM_MODEL_ROPE_H_

#include <cstdint>
#include <vector>

#include "slimlm/model/config.h"

namespace slimlm {

class RopeAngles {
 public:
  // freq_factors: (rope_dim / 2) divisors of each pair's frequency, or null.
  RopeAngles(const ModelConfig& config, const float* freq_factors);

  // cos, sin: (rope_dim / 2) for position `pos`, including any YaRN magnitude scaling.
  void Compute(int64_t pos, float* cos, float* sin) const;

  int64_t n_pairs() const { return static_cast<int64_t>(inv_freq_.size()); }

 private:
  std::vector<double> inv_freq_;  // Radians per position, per pair, after scaling.
  double magnitude_ = 1.0;        // YaRN's attention temperature, folded into cos and sin.
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_ROPE_H_
