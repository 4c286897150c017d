#include "slimlm/train/optimizer.h"

#include <cmath>

#include "slimlm/core/check.h"

namespace slimlm::train {

AdamW::AdamW(const std::vector<ParamSlot>& slots, int64_t n_params, const AdamWOptions& options)
    : options_(options),
      decay_(static_cast<size_t>(n_params), 0),
      m_(static_cast<size_t>(n_params), 0.0f),
      v_(static_cast<size_t>(n_params), 0.0f) {
  for (const ParamSlot& s : slots) {
    if (s.shape.rank() != 2) continue;
    std::fill_n(decay_.begin() + s.offset, s.size, uint8_t{1});
  }
}

double AdamW::Step(std::span<float> params, std::span<const float> grads, double lr) {
  SLIMLM_CHECK(params.size() == m_.size() && grads.size() == m_.size());
  double norm2 = 0;
  for (float g : grads) norm2 += static_cast<double>(g) * g;
  const double norm = std::sqrt(norm2);
  const double clip =
      options_.clip_norm > 0 && norm > options_.clip_norm ? options_.clip_norm / norm : 1.0;
  ++steps_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  // Bias corrections of the moment estimates, folded into the step size.
  const double c1 = 1.0 - std::pow(b1, static_cast<double>(steps_));
  const double c2 = 1.0 - std::pow(b2, static_cast<double>(steps_));
  const float step = static_cast<float>(lr / c1);
  const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(c2));
  const float decay = static_cast<float>(lr * options_.weight_decay);
  const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
  const float eps = static_cast<float>(options_.eps), fclip = static_cast<float>(clip);
  for (size_t i = 0; i < params.size(); ++i) {
    const float g = grads[i] * fclip;
    m_[i] = fb1 * m_[i] + (1.0f - fb1) * g;
    v_[i] = fb2 * v_[i] + (1.0f - fb2) * g * g;
    if (decay_[i] != 0) params[i] -= decay * params[i];
    params[i] -= step * m_[i] / (std::sqrt(v_[i]) * inv_sqrt_c2 + eps);
  }
  return norm;
}

}  // namespace slimlm::train
