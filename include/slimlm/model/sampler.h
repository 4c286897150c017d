// Choosing the next token from logits.
//
// The chain, in llama.cpp's order: repetition penalty over the last tokens, then (unless the
// temperature is 0, which means greedy argmax) top-k, top-p, min-p, temperature, and a draw
// from the resulting distribution with a seeded generator, so a seed reproduces a run.
#ifndef SLIMLM_MODEL_SAMPLER_H_
#define SLIMLM_MODEL_SAMPLER_H_

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

#include "slimlm/core/status.h"

namespace slimlm {

struct SamplingParams {
  float temperature = 0.8f;     // 0: greedy.
  int top_k = 40;               // 0: off.
  float top_p = 0.95f;          // 1: off.
  float min_p = 0.05f;          // 0: off. Drops tokens below min_p times the top probability.
  float repeat_penalty = 1.0f;  // 1: off. Divides positive, multiplies negative logits.
  int repeat_last_n = 64;       // Tokens the penalty looks back over.
  uint64_t seed = 0;

  // An error naming the first out-of-range value.
  Status Validate() const;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int64_t n_vocab);

  // Chooses a token from logits: (n_vocab,). Allocates nothing after the first call.
  int32_t Sample(std::span<const float> logits);
  // Records a token (from the prompt or generated) for the repetition penalty.
  void Accept(int32_t token);

  // The index of the largest logit (the lowest index among ties).
  static int32_t Argmax(std::span<const float> logits);

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };

  SamplingParams params_;
  int64_t n_vocab_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;
  std::vector<float> penalized_;
  std::vector<int32_t> seen_;
  std::vector<Candidate> candidates_;
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_SAMPLER_H_
