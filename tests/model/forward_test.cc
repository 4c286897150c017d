// Context's forward pass against the independent double-precision forward (naive_forward.h) on
// random models of every architecture and weight type, and the invariances that make batching
// safe: chunked prefill, thread count and token-by-token decoding give the same logits.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "model/naive_forward.h"
#include "slimlm/model/context.h"
#include "slimlm/model/presets.h"

namespace slimlm {
namespace {

std::unique_ptr<Model> RandomModel(const std::string& preset_name, DType type, uint64_t seed,
                                   const kernels::KernelTable* table = nullptr) {
  InitOptions options;
  options.seed = seed;
  options.type = type;
  Result<WeightStore> store = MakeRandomModel(*FindPreset(preset_name), options);
  EXPECT_TRUE(store.ok()) << store.status().message();
  // The forward pass needs no tokenizer; leaving it out keeps this test about numerics.
  std::vector<std::string> keys;
  for (const auto& [key, value] : store->metadata().entries()) {
    if (key.rfind("tokenizer.", 0) == 0) keys.push_back(key);
  }
  for (const std::string& key : keys) store->metadata().Erase(key);
  Result<std::unique_ptr<Model>> model = Model::FromStore(std::move(*store), false, table);
  EXPECT_TRUE(model.ok()) << model.status().message();
  return std::move(*model);
}

std::vector<int32_t> SomeTokens(int n, int vocab) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 131 + 7) % vocab);
  return t;
}

// All logits of `tokens` evaluated in chunks of `chunk` with `threads` threads.
std::vector<std::vector<float>> RunContext(const Model& model, const std::vector<int32_t>& tokens,
                                           int64_t chunk, int threads) {
  ContextOptions o;
  o.n_ctx = 64;
  o.n_threads = threads;
  o.n_batch = chunk;
  o.all_logits = true;
  o.kv_type_k = o.kv_type_v = DType::kF32;  // The naive forward keeps float keys and values.
  auto ctx = Context::Create(model, o);
  EXPECT_TRUE(ctx.ok());
  std::vector<std::vector<float>> out;
  for (size_t start = 0; start < tokens.size(); start += static_cast<size_t>(chunk)) {
    size_t n = std::min(tokens.size() - start, static_cast<size_t>(chunk));
    Status s = (*ctx)->Eval(std::span<const int32_t>(tokens.data() + start, n));
    EXPECT_TRUE(s.ok()) << s.message();
    for (size_t i = 0; i < n; ++i) {
      auto l = (*ctx)->logits_at(static_cast<int64_t>(i));
      out.emplace_back(l.begin(), l.end());
    }
  }
  return out;
}

struct Case {
  const char* preset;
  DType type;
};

class ForwardTest : public ::testing::TestWithParam<Case> {};

// f32 accumulation over at most ~200-term dot products through 2 layers keeps the relative error
// of a logit near 1e-6 of the logit scale; quantized types multiply activations quantized to
// 8 bits (relative error up to 1/254 per element), which bounds their error near 1e-2 of scale.
// Every kernel path the CPU supports runs the whole forward pass.
TEST_P(ForwardTest, MatchesIndependentDoublePrecisionForward) {
  const Case c = GetParam();
  for (kernels::Isa isa : kernels::SupportedIsas()) {
    auto model = RandomModel(c.preset, c.type, 42, *kernels::KernelsFor(isa));
    std::vector<int32_t> tokens = SomeTokens(9, static_cast<int>(model->config().n_vocab));
    std::vector<testing::Vec> expected = testing::NaiveForward(*model, tokens);
    std::vector<std::vector<float>> got = RunContext(*model, tokens, 4, 2);
    ASSERT_EQ(got.size(), expected.size());
    const double tolerance = Traits(c.type).quantized ? 2e-2 : 2e-5;
    for (size_t t = 0; t < got.size(); ++t) {
      double scale = 0.0;
      for (double v : expected[t]) scale = std::max(scale, std::fabs(v));
      for (size_t i = 0; i < got[t].size(); ++i) {
        ASSERT_NEAR(got[t][i], expected[t][i], tolerance * scale)
            << kernels::IsaName(isa) << " " << c.preset << " " << DTypeName(c.type) << " token "
            << t << " logit " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, ForwardTest,
                         ::testing::Values(Case{"tiny", DType::kF32},
                                           Case{"tiny-qwen2", DType::kF32},
                                           Case{"tiny-qwen3", DType::kF32},
                                           Case{"tiny", DType::kF16}, Case{"tiny", DType::kBF16},
                                           Case{"tiny", DType::kQ8_0},
                                           Case{"tiny-qwen2", DType::kQ4_0}),
                         [](const auto& param_info) {
                           std::string name = std::string(param_info.param.preset) + "_" +
                                              std::string(DTypeName(param_info.param.type));
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

// Threads split rows into whole packed groups and each row's sum does not depend on how many
// tokens share a step, so logits are bit-identical for any chunking and thread count.
TEST(Forward, ChunkingAndThreadsDoNotChangeLogits) {
  for (kernels::Isa isa : kernels::SupportedIsas()) {
    for (DType type : {DType::kQ8_0, DType::kF16}) {
      auto model = RandomModel("tiny-qwen3", type, 3, *kernels::KernelsFor(isa));
      std::vector<int32_t> tokens = SomeTokens(13, 512);
      auto reference = RunContext(*model, tokens, 1, 1);
      for (int64_t chunk : {3, 5, 13}) {
        for (int threads : {1, 2, 3}) {
          auto got = RunContext(*model, tokens, chunk, threads);
          ASSERT_EQ(got, reference) << kernels::IsaName(isa) << " " << DTypeName(type) << " chunk "
                                    << chunk << " threads " << threads;
        }
      }
    }
  }
}

TEST(Forward, RejectsBadTokensAndContextOverflowWithoutSideEffects) {
  auto model = RandomModel("tiny", DType::kF32, 1);
  ContextOptions o;
  o.n_ctx = 8;
  auto ctx = *Context::Create(*model, o);
  std::vector<int32_t> bad = {1, 512};
  Status s = ctx->Eval(bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("token id 512 is outside the vocabulary"), std::string::npos);
  EXPECT_EQ(ctx->n_past(), 0);
  std::vector<int32_t> nine(9, 5);
  s = ctx->Eval(nine);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(ctx->n_past(), 0);
  EXPECT_EQ(ctx->Eval(std::vector<int32_t>{}).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace slimlm
