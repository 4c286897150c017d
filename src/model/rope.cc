#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace slimlm {
namespace {

// YaRN: the pair index at which a frequency completes `n_rotations` turns over the original
// context (dimensions below it rotate fast and are kept, above it are interpolated).
double YarnCorrectionDim(double n_rotations, int64_t rope_dim, int64_t original_context,
                         double base) {
  return static_cast<double>(rope_dim) *
         std::log(static_cast<double>(original_context) / (n_rotations * 2.0 * std::numbers::pi)) /
         (2.0 * std::log(base));
}

}  // namespace

RopeAngles::RopeAngles(const ModelConfig& c, const float* freq_factors) {
  const int64_t n_pairs = c.rope_dim / 2;
  const RopeScaling& s = c.rope_scaling;
  inv_freq_.resize(static_cast<size_t>(n_pairs));
  double yarn_low = 0.0, yarn_high = 0.0;
  if (s.type == RopeScalingType::kYarn) {
    yarn_low = std::max(0.0, std::floor(YarnCorrectionDim(s.beta_fast, c.rope_dim,
                                                          s.original_context, c.rope_theta)));
    yarn_high = std::min(
        static_cast<double>(c.rope_dim - 1),
        std::ceil(YarnCorrectionDim(s.beta_slow, c.rope_dim, s.original_context, c.rope_theta)));
    magnitude_ = s.attn_factor * (1.0 + 0.1 * std::log(s.factor));
  }
  for (int64_t i = 0; i < n_pairs; ++i) {
    double f = std::pow(static_cast<double>(c.rope_theta),
                        -2.0 * static_cast<double>(i) / static_cast<double>(c.rope_dim));
    if (freq_factors != nullptr) f /= freq_factors[i];
    switch (s.type) {
      case RopeScalingType::kNone:
        break;
      case RopeScalingType::kLinear:
        f /= s.factor;
        break;
      case RopeScalingType::kYarn: {
        // Blend interpolated (f / factor) and original frequencies by a ramp over pair index.
        double ramp = (static_cast<double>(i) - yarn_low) / std::max(0.001, yarn_high - yarn_low);
        double extrapolate = 1.0 - std::clamp(ramp, 0.0, 1.0);
        f = f / s.factor * (1.0 - extrapolate) + f * extrapolate;
        break;
      }
      case RopeScalingType::kLlama3: {
        // A GGUF file carries the result of this as rope_freqs.weight; apply it only once.
        if (freq_factors != nullptr) break;
        // Long wavelengths are interpolated, short ones kept, and those between smoothed.
        double wavelength = 2.0 * std::numbers::pi / f;
        double ctx = static_cast<double>(s.original_context);
        double low_wavelength = ctx / s.low_freq_factor;
        double high_wavelength = ctx / s.high_freq_factor;
        if (wavelength > low_wavelength) {
          f /= s.factor;
        } else if (wavelength >= high_wavelength) {
          double smooth =
              (ctx / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
          f = (1.0 - smooth) * f / s.factor + smooth * f;
        }
        break;
      }
    }
    inv_freq_[static_cast<size_t>(i)] = f;
  }
}

void RopeAngles::Compute(int64_t pos, float* cos, float* sin) const {
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    double angle = static_cast<double>(pos) * inv_freq_[i];
    cos[i] = static_cast<float>(std::cos(angle) * magnitude_);
    sin[i] = static_cast<float>(std::sin(angle) * magnitude_);
  }
}

}  // namespace slimlm
