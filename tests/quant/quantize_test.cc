// Whole-model quantization: the per-tensor plan, files that give exactly the logits of the same
// quantization done in memory, the accuracy cost on a real model, and bad input.
#include "slimlm/quant/quantize.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/eval/perplexity.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/model/context.h"
#include "slimlm/model/model.h"
#include "slimlm/model/presets.h"
#include "slimlm/tensor/quant_blocks.h"
#include "support/test_data.h"

namespace slimlm::quant {
namespace {

constexpr const char* kModel = "models/stories260K/stories260K.gguf";
constexpr const char* kText = "text/tinystories/TinyStories-valid.head.txt";

WeightStore LoadStories() {
  auto store = LoadModel(testing::SharedDataPath(kModel));
  EXPECT_TRUE(store.ok()) << store.status().message();
  return std::move(*store);
}

const TensorPlan& Find(const std::vector<TensorPlan>& plan, const std::string& name) {
  for (const TensorPlan& p : plan) {
    if (p.name == name) return p;
  }
  ADD_FAILURE() << "no tensor " << name;
  return plan.front();
}

QuantizeOptions Options(DType type) {
  QuantizeOptions o;
  o.type = type;
  o.n_threads = 2;
  return o;
}

// The logits of the tokens 1, 2, ..., n, fed in one step.
std::vector<float> Logits(const Model& model, int n) {
  ContextOptions o;
  o.n_ctx = 64;
  o.kv_type_k = o.kv_type_v = DType::kF32;
  auto ctx = Context::Create(model, o);
  EXPECT_TRUE(ctx.ok());
  std::vector<int32_t> tokens;
  for (int i = 1; i <= n; ++i) tokens.push_back(i * 7);
  EXPECT_TRUE((*ctx)->Eval(tokens).ok());
  std::span<const float> l = (*ctx)->logits();
  return {l.begin(), l.end()};
}

class QuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override { SLIMLM_REQUIRE_SHARED_DATA(kModel); }
};

TEST_F(QuantizeTest, PlanKeepsVectorsAndTheLogitsMatrixAndFollowsRules) {
  WeightStore store = LoadStories();
  auto plan = PlanQuantization(store, Options(DType::kQ4_0));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(Find(*plan, "blk.0.attn_q.weight").to, DType::kQ4_0);
  EXPECT_EQ(Find(*plan, "blk.0.attn_norm.weight").to, DType::kF32);
  // The GGUF of stories260K has its own output matrix, which makes the logits.
  EXPECT_EQ(Find(*plan, "output.weight").to, DType::kQ8_0);
  EXPECT_EQ(Find(*plan, "output.weight").why, "logits matrix at 8 bits");
  EXPECT_EQ(Find(*plan, "token_embd.weight").to, DType::kQ4_0);
  // Without it, the embedding is the output matrix and stays at 8 bits.
  store.Remove("output.weight");
  auto tied = PlanQuantization(store, Options(DType::kQ4_0));
  ASSERT_TRUE(tied.ok());
  EXPECT_EQ(Find(*tied, "token_embd.weight").to, DType::kQ8_0);
  // ffn_down's rows hold 172 values, not whole blocks of 32.
  EXPECT_EQ(Find(*plan, "blk.0.ffn_down.weight").to, DType::kF16);

  QuantizeOptions o = Options(DType::kQ4_0);
  auto rule = ParseTensorTypeRule("blk\\.[01]\\.attn_.*=q8_0");
  ASSERT_TRUE(rule.ok()) << rule.status().message();
  o.rules.push_back(*rule);
  plan = PlanQuantization(store, o);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Find(*plan, "blk.1.attn_v.weight").to, DType::kQ8_0);
  EXPECT_EQ(Find(*plan, "blk.2.attn_v.weight").to, DType::kQ4_0);
  EXPECT_EQ(Find(*plan, "blk.1.attn_v.weight").why, "rule blk\\.[01]\\.attn_.*");

  for (const char* bad : {"noequals", "=q8_0", "x=", "blk.*=q5_0", "([=q8_0"}) {
    auto r = ParseTensorTypeRule(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(PlanQuantization(store, Options(DType::kF32)).ok()) << "f32 is not a target";
}

// The file's logits equal those of the same quantization applied in memory, bit for bit, for
// both 8-bit and 4-bit targets: the writer, the GGUF reader and the block layouts agree.
TEST_F(QuantizeTest, FileGivesTheLogitsOfTheInMemoryQuantizedModel) {
  for (DType type : {DType::kQ8_0, DType::kQ4_0}) {
    SCOPED_TRACE(DTypeName(type));
    const std::string path = testing::MakeTempDir() + "/q.gguf";
    WeightStore source = LoadStories();
    auto summary =
        QuantizeToGguf(source, path, Options(type), "stories260K.gguf", [](int64_t, int64_t) {});
    ASSERT_TRUE(summary.ok()) << summary.status().message();

    WeightStore in_memory = LoadStories();
    auto plan = PlanQuantization(in_memory, Options(type));
    ASSERT_TRUE(plan.ok());
    for (const TensorPlan& p : *plan) {
      if (p.to == p.from) continue;
      const StoredTensor old = *in_memory.Find(p.name);
      uint8_t* dst = in_memory.Replace(p.name, p.to, p.shape);
      std::vector<float> row(static_cast<size_t>(p.shape.Cols()));
      for (int64_t r = 0; r < p.shape.Rows(); ++r) {
        RowToF32(old.dtype, old.data + r * RowBytes(old.dtype, p.shape.Cols()), row.data(),
                 p.shape.Cols());
        RowFromF32(p.to, row.data(), dst + r * RowBytes(p.to, p.shape.Cols()), p.shape.Cols());
      }
    }
    auto from_memory = Model::FromStore(std::move(in_memory), true);
    auto from_file = Model::Load(path);
    ASSERT_TRUE(from_memory.ok()) << from_memory.status().message();
    ASSERT_TRUE(from_file.ok()) << from_file.status().message();
    EXPECT_EQ(Logits(**from_file, 9), Logits(**from_memory, 9));

    auto written = ReadGguf(path);
    ASSERT_TRUE(written.ok());
    const Metadata& md = written->metadata();
    EXPECT_EQ(md.GetInt("general.file_type"), type == DType::kQ8_0 ? 7 : 2);
    EXPECT_EQ(md.GetString("slimlm.quantize.type"), std::string(DTypeName(type)));
    EXPECT_EQ(md.GetString("slimlm.quantize.source_hash"),
              fmt::format("{:016x}", ContentHash(LoadStories())));
    EXPECT_EQ(summary->bytes_out, written->TotalTensorBytes());
  }
}

// A random Llama with every matrix 256 wide (k-quant rows) and 16 layers, for the q4_k mix.
WeightStore RandomKQuantModel(int n_layers) {
  ModelPreset preset = *FindPreset("tiny");
  preset.config.dim = 256;
  preset.config.n_heads = 4;
  preset.config.n_kv_heads = 2;
  preset.config.head_dim = 64;
  preset.config.rope_dim = 64;
  preset.config.ffn_dim = 512;
  preset.config.n_layers = n_layers;
  preset.tied_embeddings = false;
  InitOptions init;
  init.seed = 3;
  auto store = MakeRandomModel(preset, init);
  EXPECT_TRUE(store.ok()) << store.status().message();
  return std::move(*store);
}

// q4_k: the logits matrix and, in the first and last eighth of the layers and every third layer
// between, the v and down projections at q6_k; rows that are not whole 256-blocks fall back to
// the type of the same size with 32-blocks.
TEST(QuantizePlan, Q4KMixRaisesTheSensitiveMatricesToSixBits) {
  WeightStore store = RandomKQuantModel(16);
  auto plan = PlanQuantization(store, Options(DType::kQ4_K));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(Find(*plan, "output.weight").to, DType::kQ6_K);
  EXPECT_EQ(Find(*plan, "output.weight").why, "logits matrix at 6 bits");
  EXPECT_EQ(Find(*plan, "token_embd.weight").to, DType::kQ4_K);
  for (int layer = 0; layer < 16; ++layer) {
    const bool six = layer < 2 || layer >= 14 || (layer - 2) % 3 == 2;
    const DType expected = six ? DType::kQ6_K : DType::kQ4_K;
    EXPECT_EQ(Find(*plan, fmt::format("blk.{}.attn_v.weight", layer)).to, expected) << layer;
    EXPECT_EQ(Find(*plan, fmt::format("blk.{}.ffn_down.weight", layer)).to, expected) << layer;
    EXPECT_EQ(Find(*plan, fmt::format("blk.{}.attn_q.weight", layer)).to, DType::kQ4_K) << layer;
  }
  auto q6 = PlanQuantization(store, Options(DType::kQ6_K));
  ASSERT_TRUE(q6.ok());
  for (const TensorPlan& p : *q6) {
    if (p.shape.rank() == 2) {
      EXPECT_EQ(p.to, DType::kQ6_K) << p.name;
    }
  }
}

TEST_F(QuantizeTest, KQuantsFallBackWhereRowsAreNotWholeBlocks) {
  WeightStore store = LoadStories();  // dim 64: no row is a whole 256-block.
  auto plan = PlanQuantization(store, Options(DType::kQ4_K));
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_EQ(Find(*plan, "blk.0.attn_q.weight").to, DType::kQ4_0);
  EXPECT_EQ(Find(*plan, "blk.0.attn_q.weight").why, "rows of 64 are not whole q4_k blocks");
  EXPECT_EQ(Find(*plan, "output.weight").to, DType::kQ8_0);
  EXPECT_EQ(Find(*plan, "output.weight").why, "rows of 64 are not whole q6_k blocks");
}

// A q4_k file gives the logits of the same mix quantized in memory, bit for bit, and records
// where it came from: the source, its hash, the calibration text and its hash, the tool.
TEST(QuantizeKQuant, FileGivesTheLogitsOfTheInMemoryQuantizedModelAndItsProvenance) {
  const std::string path = testing::MakeTempDir() + "/q4k.gguf";
  WeightStore source = RandomKQuantModel(2);
  QuantizeOptions options = Options(DType::kQ4_K);
  options.tool_version = "slimlm test";
  ImportanceStats stats;
  stats.tokens = 10;
  stats.source = "calib.txt";
  stats.source_hash = 0x1234;
  options.importance = &stats;  // No matrix has statistics here: plain rounding, but recorded.
  auto summary = QuantizeToGguf(source, path, options, "random.gguf", [](int64_t, int64_t) {});
  ASSERT_TRUE(summary.ok()) << summary.status().message();

  WeightStore in_memory = RandomKQuantModel(2);
  auto plan = PlanQuantization(in_memory, options);
  ASSERT_TRUE(plan.ok());
  int k_quant_matrices = 0;
  for (const TensorPlan& p : *plan) {
    if (p.to == p.from) continue;
    k_quant_matrices += p.to == DType::kQ4_K || p.to == DType::kQ6_K;
    const StoredTensor old = *in_memory.Find(p.name);
    uint8_t* dst = in_memory.Replace(p.name, p.to, p.shape);
    std::vector<float> row(static_cast<size_t>(p.shape.Cols()));
    for (int64_t r = 0; r < p.shape.Rows(); ++r) {
      RowToF32(old.dtype, old.data + r * RowBytes(old.dtype, p.shape.Cols()), row.data(),
               p.shape.Cols());
      RowFromF32(p.to, row.data(), dst + r * RowBytes(p.to, p.shape.Cols()), p.shape.Cols());
    }
  }
  EXPECT_EQ(k_quant_matrices, 2 * 7 + 2);
  auto from_memory = Model::FromStore(std::move(in_memory), true);
  auto from_file = Model::Load(path);
  ASSERT_TRUE(from_memory.ok()) << from_memory.status().message();
  ASSERT_TRUE(from_file.ok()) << from_file.status().message();
  EXPECT_EQ(Logits(**from_file, 9), Logits(**from_memory, 9));

  auto written = ReadGguf(path);
  ASSERT_TRUE(written.ok());
  const Metadata& md = written->metadata();
  EXPECT_EQ(md.GetInt("general.file_type"), 15);
  EXPECT_EQ(md.GetString("slimlm.quantize.type"), "q4_k");
  EXPECT_EQ(md.GetString("slimlm.quantize.source"), "random.gguf");
  EXPECT_EQ(md.GetString("slimlm.quantize.source_hash"),
            fmt::format("{:016x}", ContentHash(RandomKQuantModel(2))));
  EXPECT_EQ(md.GetString("slimlm.quantize.tool_version"), "slimlm test");
  EXPECT_EQ(md.GetString("slimlm.quantize.calibration_source"), "calib.txt");
  EXPECT_EQ(md.GetString("slimlm.quantize.calibration_hash"), "0000000000001234");
}

TEST_F(QuantizeTest, Q8CostsUnderTwoTenthsOfAPercentOfPerplexity) {
  SLIMLM_REQUIRE_SHARED_DATA(kText);
  const std::string path = testing::MakeTempDir() + "/q8.gguf";
  WeightStore source = LoadStories();
  ASSERT_TRUE(
      QuantizeToGguf(source, path, Options(DType::kQ8_0), "s", [](int64_t, int64_t) {}).ok());
  auto text = ReadFileToString(testing::SharedDataPath(kText));
  ASSERT_TRUE(text.ok());
  auto ppl = [&](const std::string& model_path) {
    auto model = Model::Load(model_path);
    EXPECT_TRUE(model.ok());
    auto tokens = eval::TokenizeText(**model, *text);
    eval::PerplexityOptions o;
    o.n_ctx = 256;
    o.max_chunks = 100;
    o.kv_type_k = o.kv_type_v = DType::kF32;
    auto r = eval::ComputePerplexity(**model, *tokens, o, [](int64_t, int64_t) {});
    EXPECT_TRUE(r.ok());
    return r->ppl;
  };
  const double base = ppl(testing::SharedDataPath(kModel)), q8 = ppl(path);
  // The bound is 0.2%; measured: +0.11% over 200 chunks.
  EXPECT_LT(std::abs(q8 - base) / base, 0.002) << base << " -> " << q8;
  EXPECT_NE(q8, base) << "the weights did change";
}

TEST_F(QuantizeTest, BadInputIsRefusedWithoutAnOutputFile) {
  const std::string dir = testing::MakeTempDir();
  WeightStore source = LoadStories();
  ASSERT_TRUE(
      QuantizeToGguf(source, dir + "/q4.gguf", Options(DType::kQ4_0), "s", [](int64_t, int64_t) {
      }).ok());
  auto q4 = LoadModel(dir + "/q4.gguf");
  ASSERT_TRUE(q4.ok());
  // Below the target's precision.
  auto up =
      QuantizeToGguf(*q4, dir + "/up.gguf", Options(DType::kQ8_0), "q4", [](int64_t, int64_t) {});
  ASSERT_FALSE(up.ok());
  EXPECT_NE(up.status().message().find("cannot bring the precision back"), std::string::npos)
      << up.status().message();
  EXPECT_FALSE(std::filesystem::exists(dir + "/up.gguf"));
  // Quantized again without --allow-requantize.
  auto again = QuantizeToGguf(*q4, dir + "/again.gguf", Options(DType::kQ4_0), "q4",
                              [](int64_t, int64_t) {});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("--allow-requantize"), std::string::npos);
  // A folder that does not exist.
  auto nowhere = QuantizeToGguf(source, dir + "/no/such/dir/x.gguf", Options(DType::kQ8_0), "s",
                                [](int64_t, int64_t) {});
  EXPECT_FALSE(nowhere.ok());
  EXPECT_FALSE(std::filesystem::exists(dir + "/no"));
}

}  // namespace
}  // namespace slimlm::quant
