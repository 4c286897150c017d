// AdamW against its formulas, clipping, weight decay on matrices only; and a tiny model trained
// with it learns a deterministic sequence (the loss falls from ln(vocab) to near zero).
#include "slimlm/train/optimizer.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/train/schedule.h"
#include "slimlm/train/transformer.h"

namespace slimlm::train {
namespace {

TEST(AdamW, FirstStepsFollowTheFormulas) {
  // One matrix (decayed) of 2 values and one vector (not decayed) of 1.
  const std::vector<ParamSlot> slots = {{"m", Shape{1, 2}, 0, 2}, {"n", Shape{1}, 2, 1}};
  AdamWOptions o;
  o.weight_decay = 0.5;
  o.clip_norm = 0;
  AdamW adam(slots, 3, o);
  std::vector<float> p = {1.0f, -2.0f, 3.0f};
  const std::vector<float> g = {0.5f, -0.25f, 2.0f};
  const double lr = 0.1;
  adam.Step(p, g, lr);
  // Step 1: m-hat = g and v-hat = g^2, so each moves by lr * sign(g) (eps aside), after decay.
  EXPECT_NEAR(p[0], 1.0 * (1 - lr * 0.5) - lr, 1e-6);
  EXPECT_NEAR(p[1], -2.0 * (1 - lr * 0.5) + lr, 1e-6);
  EXPECT_NEAR(p[2], 3.0 - lr, 1e-6);
  // Step 2 with the same gradient: the moments stay g and g^2 after bias correction.
  adam.Step(p, g, lr);
  EXPECT_NEAR(p[2], 3.0 - 2 * lr, 1e-6);
  EXPECT_EQ(adam.steps(), 2);
}

TEST(AdamW, ClipsTheGlobalNorm) {
  const std::vector<ParamSlot> slots = {{"n", Shape{2}, 0, 2}};
  AdamWOptions o;
  o.clip_norm = 1.0;
  AdamW adam(slots, 2, o);
  std::vector<float> p = {0.0f, 0.0f};
  const double norm = adam.Step(p, std::vector<float>{3.0f, 4.0f}, 0.1);
  EXPECT_DOUBLE_EQ(norm, 5.0);
  // Clipping scales g to (0.6, 0.8); the first step's direction is still sign(g).
  EXPECT_NEAR(adam.m()[0], 0.1f * 0.6f, 1e-7);
  EXPECT_NEAR(adam.m()[1], 0.1f * 0.8f, 1e-7);
}

TEST(Training, ATinyModelLearnsARepeatingSequence) {
  ModelConfig c;
  c.n_vocab = 13;
  c.dim = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 8;
  c.rope_dim = 8;
  c.ffn_dim = 32;
  c.context_length = 32;
  Transformer<float> model(c, true);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.1f);
  for (float& p : model.params()) p = dist(rng);
  for (const ParamSlot& s : model.slots()) {
    if (s.shape.rank() == 1) std::fill_n(model.params().begin() + s.offset, s.size, 1.0f);
  }
  // Sequences that cycle through 0..12: each next token is determined by the previous one.
  std::vector<int32_t> tokens, targets;
  for (int s = 0; s < 4; ++s) {
    for (int t = 0; t < 16; ++t) {
      tokens.push_back((3 * s + t) % 13);
      targets.push_back((3 * s + t + 1) % 13);
    }
  }
  AdamW adam(model.slots(), static_cast<int64_t>(model.params().size()), AdamWOptions{});
  Schedule schedule{.peak = 1e-2, .floor = 1e-3, .warmup_steps = 10, .total_steps = 150};
  std::vector<float> grads(model.params().size());
  float first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    std::fill(grads.begin(), grads.end(), 0.0f);
    last = model.ForwardBackward(tokens, targets, 4, 16, &grads);
    if (step == 0) first = last;
    adam.Step(model.params(), grads, schedule.At(step));
  }
  EXPECT_NEAR(first, std::log(13.0f), 0.3f) << "an untrained model is near uniform";
  EXPECT_LT(last, 0.05f) << "the sequence is deterministic: the loss must approach zero";
}

}  // namespace
}  // namespace slimlm::train
