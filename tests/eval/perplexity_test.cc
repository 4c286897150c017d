// Perplexity by llama-perplexity's chunked method on stories260K (a real pretrained model) and
// TinyStories text: the chunked, batched scoring against an independent token-by-token decode,
// and the figure against llama2.c's reported validation loss.
#include "slimlm/eval/perplexity.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/model/context.h"
#include "slimlm/model/tokenizer.h"
#include "support/test_data.h"

namespace slimlm::eval {
namespace {

constexpr const char* kModel = "models/stories260K/stories260K.gguf";
constexpr const char* kText = "text/tinystories/TinyStories-valid.head.txt";

std::string ReadText(size_t max_bytes) {
  std::ifstream in(testing::SharedDataPath(kText));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str().substr(0, max_bytes);
}

class PerplexityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLIMLM_REQUIRE_SHARED_DATA(kModel);
    SLIMLM_REQUIRE_SHARED_DATA(kText);
    auto model = Model::Load(testing::SharedDataPath(kModel));
    ASSERT_TRUE(model.ok()) << model.status().message();
    model_ = std::move(*model);
  }
  std::unique_ptr<Model> model_;
};

TEST_F(PerplexityTest, ChunkedScoringMatchesATokenByTokenDecode) {
  auto tokens = TokenizeText(*model_, ReadText(4000));
  ASSERT_TRUE(tokens.ok()) << tokens.status().message();
  const Tokenizer& tok = *model_->tokenizer();
  ASSERT_EQ((*tokens)[0], tok.bos_id()) << "the Llama vocabulary adds BOS";
  PerplexityOptions options;
  options.n_ctx = 64;
  options.max_chunks = 3;
  options.n_batch = 24;  // Steps that do not divide the chunk, so scoring spans step edges.
  options.kv_type_k = options.kv_type_v = DType::kF32;
  auto r = ComputePerplexity(*model_, *tokens, options, [](int64_t, int64_t) {});
  ASSERT_TRUE(r.ok()) << r.status().message();

  // Independently: each chunk decoded one token at a time, BOS first, and the tokens after
  // positions 32..62 scored in double precision.
  double sum = 0, sum2 = 0, bytes = 0;
  int64_t count = 0;
  std::vector<double> running;
  for (int64_t c = 0; c < 3; ++c) {
    ContextOptions o;
    o.n_ctx = 64;
    o.kv_type_k = o.kv_type_v = DType::kF32;
    auto ctx = Context::Create(*model_, o);
    ASSERT_TRUE(ctx.ok());
    std::vector<int32_t> chunk(tokens->begin() + c * 64, tokens->begin() + (c + 1) * 64);
    chunk[0] = tok.bos_id();
    for (int64_t j = 0; j < 63; ++j) {
      ASSERT_TRUE((*ctx)->Eval(std::span<const int32_t>(&chunk[j], 1)).ok());
      if (j < 32) continue;
      std::span<const float> l = (*ctx)->logits();
      double max = l[0], z = 0;
      for (float v : l) max = std::max<double>(max, v);
      for (float v : l) z += std::exp(v - max);
      const double nll = std::log(z) - (l[chunk[j + 1]] - max);
      sum += nll;
      sum2 += nll * nll;
      bytes += static_cast<double>(tok.TokenToPiece(chunk[j + 1]).size());
      ++count;
    }
    running.push_back(std::exp(sum / count));
  }
  EXPECT_EQ(r->chunks, 3);
  EXPECT_EQ(r->scored_tokens, 3 * 31);
  EXPECT_EQ(r->scored_bytes, static_cast<int64_t>(bytes));
  const double nll = sum / count;
  // Batched and single-token steps sum every product in the same order (the kernels' float
  // tiles), so the two agree to rounding of the final sums.
  EXPECT_NEAR(r->nll, nll, 1e-6);
  EXPECT_NEAR(r->ppl, std::exp(nll), 1e-5);
  const double se = std::sqrt((sum2 / count - nll * nll) / (count - 1)) * std::exp(nll);
  EXPECT_NEAR(r->ppl_stderr, se, 1e-5);
  EXPECT_NEAR(r->bits_per_byte, sum / std::log(2.0) / bytes, 1e-6);
  ASSERT_EQ(r->running_ppl.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(r->running_ppl[i], running[i], 1e-5);
}

TEST_F(PerplexityTest, AgreesWithTheModelsReportedValidationLoss) {
  auto tokens = TokenizeText(*model_, ReadText(200000));
  ASSERT_TRUE(tokens.ok());
  PerplexityOptions options;
  options.n_ctx = 256;
  options.max_chunks = 40;
  auto r = ComputePerplexity(*model_, *tokens, options, [](int64_t, int64_t) {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  // llama2.c reports 1.2968 nats per token on the TinyStories validation split at its full
  // 512-token context; 40 chunks of this text, scored over their second halves, land within a
  // few hundredths of it (the standard error of the mean is about 0.02 nats here).
  EXPECT_NEAR(r->nll, 1.2968, 0.08) << "ppl " << r->ppl;
  EXPECT_GT(r->ppl_stderr, 0.0);
  EXPECT_LT(r->ppl_stderr, 0.2);
  // About two bytes per token for a 512-token vocabulary.
  EXPECT_GT(r->scored_bytes, r->scored_tokens);
  EXPECT_LT(r->scored_bytes, 4 * r->scored_tokens);
}

TEST_F(PerplexityTest, TooShortATextIsAnError) {
  auto tokens = TokenizeText(*model_, ReadText(200));
  ASSERT_TRUE(tokens.ok());
  PerplexityOptions options;
  options.n_ctx = 256;
  auto r = ComputePerplexity(*model_, *tokens, options, [](int64_t, int64_t) {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("needs at least 512"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace slimlm::eval
