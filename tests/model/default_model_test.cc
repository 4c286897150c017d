// slimlm's own default model (models/, trained by `slimlm train`; see models/README.md), which
// the repository bundles, so these tests run with or without ../shared: it loads with the shape
// it was trained with, its forward pass agrees with an independent double-precision one, it
// predicts a story it never saw far better than chance, and greedy decoding reproduces the
// continuation recorded when it was bundled.
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "model/naive_forward.h"
#include "slimlm/model/context.h"
#include "slimlm/model/generate.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

// Written for this test (not from any dataset): a story in TinyStories' style.
constexpr const char* kStory =
    "Once upon a time, there was a little girl named Lily. She had a red ball that she loved "
    "very much. One day, she went to the park with her mom. Lily threw the ball high in the sky. "
    "The ball fell into a big tree! Lily was sad. Her mom said, \"Don't worry, we can get it "
    "together.\" They found a long stick and pushed the ball down. Lily hugged her mom and said, "
    "\"Thank you!\" They played with the ball until the sun went down.";

// Greedy continuation of "Once upon a time" (48 tokens), recorded with `slimlm run -m
// models/slimlm-stories-6m.f16.gguf -p "Once upon a time" --temp 0 -n 48` when it was bundled.
constexpr const char* kGreedy =
    "Once upon a time there was a little girl named Lucy. She was three years old and loved to "
    "explore. One day, she decided to go for a walk in the park.\n"
    "Lucy was very excited to see the birds and the birds and the birds. She saw a big tree";

class DefaultModel : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = testing::DefaultModelPath();
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " is part of the repository";
    auto model = Model::Load(path, LoadOptions{});
    ASSERT_TRUE(model.ok()) << model.status().message();
    model_ = std::move(*model);
  }

  std::unique_ptr<Context> NewContext(bool all_logits) {
    ContextOptions o;
    o.n_ctx = 256;
    o.n_threads = 2;
    o.all_logits = all_logits;
    o.kv_type_k = o.kv_type_v = DType::kF32;
    auto ctx = Context::Create(*model_, o);
    EXPECT_TRUE(ctx.ok()) << ctx.status().message();
    return std::move(*ctx);
  }

  std::unique_ptr<Model> model_;
};

TEST_F(DefaultModel, HasTheShapeItWasTrainedWith) {
  const ModelConfig& c = model_->config();
  EXPECT_EQ(c.dim, 256);
  EXPECT_EQ(c.n_layers, 6);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.ffn_dim, 768);
  EXPECT_EQ(c.n_vocab, 4096);
  ASSERT_NE(model_->tokenizer(), nullptr);
  EXPECT_EQ(model_->tokenizer()->vocab_size(), 4096);
  // Every dimension a multiple of 256: every quantization type applies to every matrix.
  EXPECT_EQ(c.dim % 256, 0);
  EXPECT_EQ(c.ffn_dim % 256, 0);
}

// f16 weights read exactly by both sides; f32 accumulation over 768-term products keeps the
// logits within 1e-4 of their scale.
TEST_F(DefaultModel, MatchesAnIndependentDoublePrecisionForward) {
  std::vector<int32_t> tokens = model_->tokenizer()->Encode("Once upon a time, Tom", true, false);
  std::vector<testing::Vec> expected = testing::NaiveForward(*model_, tokens);
  auto ctx = NewContext(true);
  ASSERT_TRUE(ctx->Eval(tokens).ok());
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::span<const float> got = ctx->logits_at(static_cast<int64_t>(t));
    double scale = 0;
    for (double v : expected[t]) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], expected[t][i], 1e-4 * scale) << "token " << t << " logit " << i;
    }
  }
}

// Chance is log(4096) = 8.3 nats per token; the model's held-out loss is near 2.9, and this
// plain story is easier than most.
TEST_F(DefaultModel, PredictsAnUnseenStoryFarBetterThanChance) {
  std::vector<int32_t> tokens = model_->tokenizer()->Encode(kStory, true, false);
  ASSERT_GT(tokens.size(), 80u);
  auto ctx = NewContext(true);
  ASSERT_TRUE(ctx->Eval(tokens).ok());
  double nll = 0;
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    std::span<const float> z = ctx->logits_at(static_cast<int64_t>(t));
    double max = z[0], sum = 0;
    for (float v : z) max = std::max<double>(max, v);
    for (float v : z) sum += std::exp(v - max);
    nll += std::log(sum) + max - z[static_cast<size_t>(tokens[t + 1])];
  }
  nll /= static_cast<double>(tokens.size() - 1);
  EXPECT_LT(nll, 2.5);
  EXPECT_GT(nll, 0.5);  // A sanity floor: it cannot have memorized a story it never saw.
}

TEST_F(DefaultModel, GreedyContinuationMatchesTheRecordedOne) {
  std::vector<int32_t> prompt = model_->tokenizer()->Encode("Once upon a time", true, false);
  auto ctx = NewContext(false);
  GenerateOptions o;
  o.max_tokens = 48;
  o.sampling.temperature = 0.0f;
  auto result = Generate(*ctx, prompt, o);
  ASSERT_TRUE(result.ok()) << result.status().message();
  std::vector<int32_t> all(prompt.begin() + 1, prompt.end());  // Without BOS.
  all.insert(all.end(), result->tokens.begin(), result->tokens.end());
  EXPECT_EQ(result->tokens.size(), 48u);
  EXPECT_EQ(model_->tokenizer()->Decode(all), kGreedy);
}

}  // namespace
}  // namespace slimlm
