// Whole-model pruning on the bundled default model: the sparsity each method leaves, the loss
// it costs on a held-out story (calibrated methods must cost less than magnitude pruning), and
// structured pruning's bookkeeping, checked by removing parts that contribute exactly nothing.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "slimlm/formats/model_file.h"
#include "slimlm/model/context.h"
#include "slimlm/model/model.h"
#include "slimlm/prune/prune.h"
#include "slimlm/prune/structured.h"
#include "slimlm/tensor/quant_blocks.h"
#include "support/stories.h"
#include "support/test_data.h"

namespace slimlm::prune {
namespace {

WeightStore LoadDefault() {
  Result<WeightStore> store = LoadModel(testing::DefaultModelPath());
  SLIMLM_CHECK(store.ok()) << store.status().ToString();
  return std::move(*store);
}

int64_t Layers(const WeightStore& store) { return *store.metadata().GetInt("llama.block_count"); }

std::unique_ptr<Model> ModelOf(const WeightStore& store) {
  Result<std::unique_ptr<Model>> model =
      Model::FromStore(TruncatedView(store, Layers(store)), true);
  SLIMLM_CHECK(model.ok()) << model.status().ToString();
  return std::move(*model);
}

std::vector<int32_t> Tokens(const Model& model, const char* text) {
  return model.tokenizer()->Encode(text, true, false);
}

// Logits after every token of `tokens`: (n, n_vocab).
std::vector<float> AllLogits(const Model& model, const std::vector<int32_t>& tokens) {
  ContextOptions o;
  o.n_ctx = static_cast<int64_t>(tokens.size());
  o.all_logits = true;
  o.n_threads = 2;
  o.kv_type_k = o.kv_type_v = DType::kF32;
  auto ctx = Context::Create(model, o);
  SLIMLM_CHECK(ctx.ok() && (*ctx)->Eval(tokens).ok());
  std::vector<float> out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::span<const float> l = (*ctx)->logits_at(static_cast<int64_t>(i));
    out.insert(out.end(), l.begin(), l.end());
  }
  return out;
}

// Mean negative log-likelihood of the held-out story, nats per token.
double HeldOutLoss(const WeightStore& store) {
  std::unique_ptr<Model> model = ModelOf(store);
  const std::vector<int32_t> tokens = Tokens(*model, testing::kHeldOutStory);
  const std::vector<float> logits = AllLogits(*model, tokens);
  const int64_t v = model->config().n_vocab;
  double nll = 0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    const float* l = logits.data() + i * v;
    double max = l[0], sum = 0;
    for (int64_t j = 0; j < v; ++j) max = std::max<double>(max, l[j]);
    for (int64_t j = 0; j < v; ++j) sum += std::exp(l[j] - max);
    nll += max + std::log(sum) - l[tokens[i + 1]];
  }
  return nll / static_cast<double>(tokens.size() - 1);
}

std::vector<float> MatrixF32(const WeightStore& store, const std::string& name) {
  const StoredTensor* t = store.Find(name);
  std::vector<float> w(static_cast<size_t>(t->shape.NumElements()));
  RowToF32(t->dtype, t->data, w.data(), t->shape.NumElements());
  return w;
}

class PruneModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dense_ = LoadDefault();
    calib_ = Tokens(*ModelOf(dense_), testing::kCalibrationStories);
  }

  WeightStore Pruned(PruneMethod method, const SparsityTarget& target) {
    WeightStore store = LoadDefault();
    PruneOptions o;
    o.method = method;
    o.target = target;
    o.output_type = DType::kF16;
    o.calib_tokens = calib_;
    o.calibration.n_ctx = 64;
    o.calibration.n_threads = 2;
    o.n_threads = 2;
    Result<PruneReport> report = PruneModel(&store, o, [](int64_t, int64_t) {});
    SLIMLM_CHECK(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->tensors.size(), 7u * static_cast<size_t>(Layers(store)));
    EXPECT_NEAR(static_cast<double>(report->zeros) / static_cast<double>(report->elements),
                target.sparsity, 1e-3);
    if (NeedsCalibration(method)) {
      EXPECT_EQ(report->calib_tokens, static_cast<int64_t>(calib_.size() / 64 * 64));
    }
    return store;
  }

  WeightStore dense_;
  std::vector<int32_t> calib_;
};

TEST_F(PruneModelTest, EveryMethodLeavesTheTargetSparsityAndTouchesOnlyBlockMatrices) {
  // Each method once, each form of target at least once (the debug build is slow).
  const std::pair<PruneMethod, SparsityTarget> cases[] = {
      {PruneMethod::kMagnitude, *UnstructuredTarget(0.5)},
      {PruneMethod::kWanda, *ParsePattern("2:4")},
      {PruneMethod::kSparseGpt, *ParsePattern("4:8")}};
  for (const auto& [method, target] : cases) {
    {
      SCOPED_TRACE(fmt::format("{} {}", PruneMethodName(method), target.ToString()));
      const WeightStore store = Pruned(method, target);
      for (const std::string& name : PrunableMatrices(2)) {
        const std::vector<float> w = MatrixF32(store, name);
        if (target.is_pattern()) {
          for (size_t g = 0; g < w.size(); g += target.m) {
            ASSERT_GE(CountZeros(w.data() + g, target.m), target.m - target.n)
                << name << " group " << g;
          }
        } else if (method == PruneMethod::kMagnitude) {
          EXPECT_EQ(CountZeros(w.data(), static_cast<int64_t>(w.size())),
                    static_cast<int64_t>(w.size()) / 2)
              << name;
        }
      }
      // The embedding and the norms are the input's bytes.
      for (const char* name :
           {"token_embd.weight", "output_norm.weight", "blk.3.ffn_norm.weight"}) {
        const StoredTensor* a = store.Find(name);
        const StoredTensor* b = dense_.Find(name);
        ASSERT_EQ(a->nbytes, b->nbytes) << name;
        EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0) << name;
      }
    }
  }
}

TEST_F(PruneModelTest, CalibratedMethodsCostLessThanMagnitudePruning) {
  const double dense = HeldOutLoss(dense_);
  const SparsityTarget half = *UnstructuredTarget(0.5);
  const double magnitude = HeldOutLoss(Pruned(PruneMethod::kMagnitude, half));
  const double wanda = HeldOutLoss(Pruned(PruneMethod::kWanda, half));
  const double sparsegpt = HeldOutLoss(Pruned(PruneMethod::kSparseGpt, half));
  std::printf("held-out loss: dense %.4f, magnitude %.4f, wanda %.4f, sparsegpt %.4f\n", dense,
              magnitude, wanda, sparsegpt);
  EXPECT_GT(magnitude, dense);
  // The published ordering, by a margin well above the story's noise between close variants.
  EXPECT_LT(wanda - dense, 0.8 * (magnitude - dense));
  EXPECT_LT(sparsegpt - dense, 0.8 * (magnitude - dense));
}

TEST_F(PruneModelTest, CompactNMStorageRunsTheSameModel) {
  WeightStore store = Pruned(PruneMethod::kWanda, *ParsePattern("2:4"));
  const std::vector<int32_t> tokens = Tokens(*ModelOf(store), testing::kHeldOutStory);
  const std::vector<float> before = AllLogits(*ModelOf(store), tokens);
  for (int64_t l = 0; l < Layers(store); ++l) {
    for (const std::string& name : PrunableMatrices(l)) {
      const StoredTensor* t = store.Find(name);
      const int64_t rows = t->shape[0], cols = t->shape.Cols();
      std::vector<float> w = MatrixF32(store, name);
      ASSERT_TRUE(IsRowNMHalfSparse(w.data(), rows * cols)) << name;
      uint8_t* out = store.Replace(name, DType::kF16NM, Shape{rows, cols});
      RowFromF32(DType::kF16NM, w.data(), out, rows * cols);
    }
  }
  const std::vector<float> after = AllLogits(*ModelOf(store), tokens);
  ASSERT_EQ(before.size(), after.size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    max_diff = std::max<double>(max_diff, std::fabs(before[i] - after[i]));
    max_abs = std::max<double>(max_abs, std::fabs(before[i]));
  }
  // The same f16 values: only the order of f32 sums differs.
  EXPECT_LT(max_diff, 1e-3 * max_abs);

  // A damaged mask (a byte keeping 5 of 8) is refused at load, before any kernel reads it.
  const StoredTensor* t = store.Find("blk.1.ffn_up.weight");
  std::vector<uint8_t> bytes(t->data, t->data + t->nbytes);
  bytes[36 * 7] |= 0xff;
  std::copy(bytes.begin(), bytes.end(), store.Replace(t->name, DType::kF16NM, t->shape));
  Result<std::unique_ptr<Model>> damaged =
      Model::FromStore(TruncatedView(store, Layers(store)), true);
  ASSERT_FALSE(damaged.ok());
  EXPECT_NE(damaged.status().message().find("blk.1.ffn_up.weight"), std::string::npos)
      << damaged.status().message();
}

// The default model with parts that contribute exactly nothing: the listed query heads of every
// layer, FFN channels 0, 4, 8, ... (a quarter) of every layer, and all of layer 3. Removing them
// must leave the logits as they were.
WeightStore WithDeadParts(const std::vector<int64_t>& dead_heads) {
  WeightStore store = LoadDefault();
  const int64_t head_dim = 32;
  for (int64_t l = 0; l < 6; ++l) {
    for (const char* part : {"attn_output", "ffn_down"}) {
      const std::string name = fmt::format("blk.{}.{}.weight", l, part);
      std::vector<float> w = MatrixF32(store, name);
      const Shape shape = store.Find(name)->shape;
      const int64_t cols = shape.Cols();
      for (int64_t r = 0; r < shape[0]; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          const bool attn = std::string(part) == "attn_output";
          const bool dead = l == 3 || (attn ? std::find(dead_heads.begin(), dead_heads.end(),
                                                        c / head_dim) != dead_heads.end()
                                            : c % 4 == 0);
          if (dead) w[r * cols + c] = 0.0f;
        }
      }
      uint8_t* out = store.Replace(name, DType::kF32, shape);
      std::copy(w.begin(), w.end(), reinterpret_cast<float*>(out));
    }
  }
  return store;
}

// Logits of the held-out story before and after: the largest difference over the largest logit.
double RelativeLogitChange(const Model& before, const Model& after) {
  const std::vector<int32_t> held_out = Tokens(before, testing::kHeldOutStory);
  const std::vector<float> want = AllLogits(before, held_out);
  const std::vector<float> got = AllLogits(after, held_out);
  SLIMLM_CHECK(want.size() == got.size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_diff = std::max<double>(max_diff, std::fabs(want[i] - got[i]));
    max_abs = std::max<double>(max_abs, std::fabs(want[i]));
  }
  return max_diff / max_abs;
}

// Structured options for a target, calibrated on the test stories in chunks of 64 tokens.
StructuredOptions StructuredFor(const char* target, const std::vector<int32_t>& calib) {
  StructuredOptions o;
  o.target = *ParseStructured(target);
  o.calib_tokens = calib;
  o.calibration.n_ctx = 64;
  o.calibration.n_threads = 2;
  o.layer_score_chunks = 2;
  return o;
}

TEST(PruneStructured, RemovingDeadHeadsChannelsAndLayersKeepsTheLogits) {
  // Heads 2 and 3 are key/value group 1: the whole group goes.
  const WeightStore store = WithDeadParts({2, 3});
  std::unique_ptr<Model> original = ModelOf(store);
  const std::vector<int32_t> calib = Tokens(*original, testing::kCalibrationStories);
  const StructuredOptions o = StructuredFor("heads=0.25,ffn=0.25,layers=1", calib);
  StructuredReport report;
  Result<WeightStore> pruned = PruneStructured(store, o, &report, [](int64_t, int64_t) {});
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(report.removed_layers, std::vector<int64_t>{3});
  EXPECT_NEAR(report.layer_loss_rise[3], 0.0, 1e-5);
  const ModelConfig& a = report.after;
  EXPECT_EQ(a.n_layers, 5);
  EXPECT_EQ(a.n_heads, 6);
  EXPECT_EQ(a.n_kv_heads, 3);
  EXPECT_EQ(a.ffn_dim, 576);
  EXPECT_EQ(pruned->Find("blk.3.ffn_down.weight")->shape, (Shape{256, 576}));
  EXPECT_EQ(pruned->Find("blk.0.attn_q.weight")->shape, (Shape{192, 256}));
  EXPECT_EQ(pruned->Find("blk.0.attn_k.weight")->shape, (Shape{96, 256}));
  EXPECT_EQ(pruned->Find("blk.4.attn_output.weight")->shape, (Shape{256, 192}));
  EXPECT_EQ(pruned->Find("blk.5.attn_norm.weight"), nullptr);
  EXPECT_LT(RelativeLogitChange(*original, *ModelOf(*pruned)), 1e-4);
}

TEST(PruneStructured, KeepsFewerQueryHeadsPerGroupWhenThatIsNearest) {
  // 8 heads in 4 groups, heads=0.625: 3 heads stay, one in each of 3 groups (kv 3, g 1). Dead:
  // all of group 1 and one head of each other group, so heads 0, 4 and 6 are the ones to keep.
  const WeightStore store = WithDeadParts({1, 2, 3, 5, 7});
  std::unique_ptr<Model> original = ModelOf(store);
  const std::vector<int32_t> calib = Tokens(*original, testing::kCalibrationStories);
  const StructuredOptions o = StructuredFor("heads=0.625", calib);
  StructuredReport report;
  Result<WeightStore> pruned = PruneStructured(store, o, &report, [](int64_t, int64_t) {});
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  EXPECT_EQ(report.after.n_heads, 3);
  EXPECT_EQ(report.after.n_kv_heads, 3);
  EXPECT_EQ(report.after.n_layers, 6);
  EXPECT_EQ(pruned->Find("blk.0.attn_q.weight")->shape, (Shape{96, 256}));
  // The surviving query head of each kept group must meet its own group's keys.
  EXPECT_LT(RelativeLogitChange(*original, *ModelOf(*pruned)), 1e-4);
}

TEST(PruneStructured, RefusesRatiosThatRemoveEverythingAndQuantizedWeights) {
  EXPECT_FALSE(ParseStructured("heads=1").ok());
  EXPECT_FALSE(ParseStructured("ffn=1.5").ok());
  EXPECT_FALSE(ParseStructured("ffn=-0.1").ok());
  EXPECT_FALSE(ParseStructured("layers=1.5").ok());
  EXPECT_FALSE(ParseStructured("depth=2").ok());
  EXPECT_FALSE(ParseStructured("heads=0.25,").ok());
  EXPECT_FALSE(ParseStructured("").ok());
  Result<StructuredTarget> t = ParseStructured("layers=2,ffn=0.5");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ToString(), "ffn=0.5,layers=2");

  const WeightStore store = LoadDefault();
  std::unique_ptr<Model> model = ModelOf(store);
  const std::vector<int32_t> calib = Tokens(*model, testing::kCalibrationStories);
  StructuredOptions o;
  o.calib_tokens = calib;
  o.calibration.n_ctx = 64;
  StructuredReport report;
  o.target = *ParseStructured("layers=6");
  Result<WeightStore> r = PruneStructured(store, o, &report, [](int64_t, int64_t) {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("every layer"), std::string::npos) << r.status().message();
  o.target = *ParseStructured("ffn=0.01");  // 768 * 0.99 rounds back to 768.
  r = PruneStructured(store, o, &report, [](int64_t, int64_t) {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("removes no channel"), std::string::npos);

  WeightStore quantized = LoadDefault();
  const std::vector<float> wq = MatrixF32(quantized, "blk.2.attn_q.weight");
  RowFromF32(DType::kQ8_0, wq.data(),
             quantized.Replace("blk.2.attn_q.weight", DType::kQ8_0, Shape{256, 256}), 256 * 256);
  o.target = *ParseStructured("ffn=0.25");
  r = PruneStructured(quantized, o, &report, [](int64_t, int64_t) {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("prune first, then quantize"), std::string::npos)
      << r.status().message();
}

TEST(PruneModel, RefusesPatternsThatDoNotDivideTheRows) {
  WeightStore store = LoadDefault();
  const uint8_t* first = store.Find("blk.0.attn_q.weight")->data;
  PruneOptions o;
  o.method = PruneMethod::kMagnitude;
  o.target = *ParsePattern("3:5");
  Result<PruneReport> r = PruneModel(&store, o, [](int64_t, int64_t) {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a multiple of 5"), std::string::npos);
  // Nothing was touched before the check (pruning replaces a tensor's storage).
  EXPECT_EQ(store.Find("blk.0.attn_q.weight")->data, first);
  o.method = PruneMethod::kWanda;
  o.target = *ParsePattern("2:4");
  r = PruneModel(&store, o, [](int64_t, int64_t) {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("calibration"), std::string::npos);
}

}  // namespace
}  // namespace slimlm::prune
