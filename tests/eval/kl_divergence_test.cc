// KL divergence between a model and a reference on stories260K and TinyStories text: zero
// against itself, the perplexities equal to eval ppl's, and q8_0 within the issue's bounds.
#include "slimlm/eval/kl_divergence.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "slimlm/formats/model_file.h"
#include "slimlm/quant/quantize.h"
#include "support/test_data.h"

namespace slimlm::eval {
namespace {

constexpr const char* kModel = "models/stories260K/stories260K.gguf";
constexpr const char* kText = "text/tinystories/TinyStories-valid.head.txt";

class KlDivergenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLIMLM_REQUIRE_SHARED_DATA(kModel);
    SLIMLM_REQUIRE_SHARED_DATA(kText);
    auto model = Model::Load(testing::SharedDataPath(kModel));
    ASSERT_TRUE(model.ok()) << model.status().message();
    reference_ = std::move(*model);
    std::ifstream in(testing::SharedDataPath(kText));
    std::stringstream ss;
    ss << in.rdbuf();
    auto tokens = TokenizeText(*reference_, ss.str().substr(0, 60000));
    ASSERT_TRUE(tokens.ok());
    tokens_ = std::move(*tokens);
    options_.n_ctx = 128;
    options_.max_chunks = 20;
    options_.kv_type_k = options_.kv_type_v = DType::kF32;
  }

  std::unique_ptr<Model> reference_;
  std::vector<int32_t> tokens_;
  PerplexityOptions options_;
};

TEST_F(KlDivergenceTest, AModelAgainstItselfIsZero) {
  auto r =
      ComputeKlDivergence(*reference_, *reference_, tokens_, options_, [](int64_t, int64_t) {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->positions, 20 * 63);
  EXPECT_LT(r->kld_max, 1e-12);
  EXPECT_EQ(r->top1_agreement, 1.0);
  EXPECT_EQ(r->delta_ppl, 0.0);
}

TEST_F(KlDivergenceTest, Q8WithinTheIssuesBoundsAndPerplexitiesMatchEvalPpl) {
  const std::string path = testing::MakeTempDir() + "/q8.gguf";
  auto source = LoadModel(testing::SharedDataPath(kModel));
  ASSERT_TRUE(source.ok());
  quant::QuantizeOptions q;
  q.type = DType::kQ8_0;
  ASSERT_TRUE(quant::QuantizeToGguf(*source, path, q, "s", [](int64_t, int64_t) {}).ok());
  auto q8 = Model::Load(path);
  ASSERT_TRUE(q8.ok());
  auto r = ComputeKlDivergence(**q8, *reference_, tokens_, options_, [](int64_t, int64_t) {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  // The issue's bound for q8_0 is a mean KLD under 0.002 (measured: 0.0007 over 200 chunks).
  EXPECT_LT(r->kld_mean, 0.002);
  EXPECT_GT(r->kld_mean, 0.0);
  EXPECT_LE(r->kld_median, r->kld_p90);
  EXPECT_LE(r->kld_p90, r->kld_p99);
  EXPECT_LE(r->kld_p99, r->kld_max);
  EXPECT_GT(r->top1_agreement, 0.95);
  // Both perplexities are eval ppl's figures on the same chunks.
  auto ppl_q8 = ComputePerplexity(**q8, tokens_, options_, [](int64_t, int64_t) {});
  auto ppl_ref = ComputePerplexity(*reference_, tokens_, options_, [](int64_t, int64_t) {});
  ASSERT_TRUE(ppl_q8.ok() && ppl_ref.ok());
  EXPECT_NEAR(r->ppl_model, ppl_q8->ppl, 1e-9 * ppl_q8->ppl);
  EXPECT_NEAR(r->ppl_reference, ppl_ref->ppl, 1e-9 * ppl_ref->ppl);
  EXPECT_NEAR(r->delta_ppl, ppl_q8->ppl - ppl_ref->ppl, 1e-9);
  EXPECT_GT(r->delta_ppl_stderr, 0.0);
}

// Saved log-probabilities stand in for the reference: every figure as with the reference loaded,
// up to the 16-bit coding of each log-probability (step/2 of a range under 40 nats: 3e-4).
TEST_F(KlDivergenceTest, SavedReferenceLogitsGiveTheSameFigures) {
  const std::string dir = testing::MakeTempDir();
  const std::string q8_path = dir + "/q8.gguf", logits = dir + "/ref.logits";
  auto source = LoadModel(testing::SharedDataPath(kModel));
  ASSERT_TRUE(source.ok());
  quant::QuantizeOptions q;
  q.type = DType::kQ4_0;
  ASSERT_TRUE(quant::QuantizeToGguf(*source, q8_path, q, "s", [](int64_t, int64_t) {}).ok());
  auto model = Model::Load(q8_path);
  ASSERT_TRUE(model.ok());
  auto direct = ComputeKlDivergence(
      **model, *reference_, tokens_, options_, [](int64_t, int64_t) {}, logits);
  ASSERT_TRUE(direct.ok()) << direct.status().message();
  auto saved = ComputeKlDivergence(**model, logits, tokens_, options_, [](int64_t, int64_t) {});
  ASSERT_TRUE(saved.ok()) << saved.status().message();
  EXPECT_EQ(saved->positions, direct->positions);
  EXPECT_NEAR(saved->kld_mean, direct->kld_mean, 3e-4);
  EXPECT_NEAR(saved->kld_p99, direct->kld_p99, 3e-4);
  EXPECT_NEAR(std::log(saved->ppl_reference), std::log(direct->ppl_reference), 3e-4);
  EXPECT_EQ(saved->ppl_model, direct->ppl_model);
  EXPECT_NEAR(saved->top1_agreement, direct->top1_agreement, 0.01);

  // SaveReferenceLogits writes the same file.
  const std::string again = dir + "/again.logits";
  auto chunks = SaveReferenceLogits(*reference_, tokens_, options_, again, [](int64_t, int64_t) {});
  ASSERT_TRUE(chunks.ok());
  EXPECT_EQ(*chunks, 20);
  std::ifstream a(logits, std::ios::binary), b(again, std::ios::binary);
  std::stringstream sa, sb;
  sa << a.rdbuf();
  sb << b.rdbuf();
  EXPECT_TRUE(sa.str() == sb.str());
}

TEST_F(KlDivergenceTest, SavedReferenceLogitsRefuseAnotherRun) {
  const std::string dir = testing::MakeTempDir();
  const std::string logits = dir + "/ref.logits";
  ASSERT_TRUE(
      SaveReferenceLogits(*reference_, tokens_, options_, logits, [](int64_t, int64_t) {}).ok());
  auto expect_error = [&](const std::string& path, std::span<const int32_t> tokens,
                          const PerplexityOptions& options, const std::string& words) {
    auto r = ComputeKlDivergence(*reference_, path, tokens, options, [](int64_t, int64_t) {});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
  };
  PerplexityOptions other_ctx = options_;
  other_ctx.n_ctx = 64;
  expect_error(logits, tokens_, other_ctx, "-c 128");
  PerplexityOptions more = options_;
  more.max_chunks = 30;
  expect_error(logits, tokens_, more, "holds 20 chunks");
  std::vector<int32_t> shifted(tokens_.begin() + 1, tokens_.end());
  expect_error(logits, shifted, options_, "other tokens");
  // A truncated file and one that is not a logits file at all.
  std::ifstream in(logits, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string cut = dir + "/cut.logits", other = dir + "/other.logits";
  std::ofstream(cut, std::ios::binary) << ss.str().substr(0, ss.str().size() - 10);
  std::ofstream(other, std::ios::binary) << "GGUF and then some more bytes";
  expect_error(cut, tokens_, options_, "truncated");
  expect_error(other, tokens_, options_, "not a reference logits file");
  expect_error(dir + "/missing.logits", tokens_, options_, "missing.logits");
}

}  // namespace
}  // namespace slimlm::eval
