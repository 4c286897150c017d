// The memory and speed model on the bundled default model: every part it can know exactly (the
// packed weights the model really allocates, the KV cache, a quantized layout's bytes) equals
// what slimlm does, and the speed terms scale as the physics says.
#include <cmath>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "slimlm/formats/model_file.h"
#include "slimlm/model/model.h"
#include "slimlm/plan/candidates.h"
#include "slimlm/plan/estimate.h"
#include "slimlm/plan/layout.h"
#include "slimlm/quant/quantize.h"
#include "support/test_data.h"

namespace slimlm::plan {
namespace {

WeightStore LoadDefault() {
  Result<WeightStore> store = LoadModel(testing::DefaultModelPath());
  SLIMLM_CHECK(store.ok()) << store.status().ToString();
  return std::move(*store);
}

ModelLayout LayoutOf(const WeightStore& store) {
  Result<ModelLayout> layout = ModelLayout::FromStore(store);
  SLIMLM_CHECK(layout.ok()) << layout.status().ToString();
  return std::move(*layout);
}

// A machine with round figures and no cache large enough to hold the weights.
MachineLimits Machine() {
  MachineLimits m;
  m.threads = 1;
  m.bandwidth_gbs = 30;
  m.fma_gflops = 100;
  m.int8_gops = 400;
  m.llc_bytes = 0;
  m.runtime_bytes = 5 << 20;
  m.fault_window_bytes = 64 * 1024;
  return m;
}

double Part(const RunEstimate& e, const std::string& name) {
  double bytes = 0;
  for (const MemoryPart& p : e.parts) {
    if (p.name == name || (name == "weights" && p.name.starts_with("weights "))) bytes += p.bytes;
  }
  return bytes;
}

TEST(LayoutTest, ReadsTheDefaultModel) {
  const WeightStore store = LoadDefault();
  const ModelLayout layout = LayoutOf(store);
  EXPECT_EQ(layout.TensorBytes(), store.TotalTensorBytes());
  EXPECT_EQ(layout.tensors.size(), store.tensors().size());
  EXPECT_TRUE(layout.tied_embeddings);
  EXPECT_EQ(layout.DominantType(), DType::kF16);
  int matrices = 0;
  for (const TensorInfo& t : layout.tensors) matrices += t.role == TensorRole::kLayerMatrix;
  EXPECT_EQ(matrices, 7 * layout.config.n_layers);
  // The header holds the vocabulary: more than a few bytes per entry, less than the file.
  EXPECT_GT(layout.header_bytes, static_cast<uint64_t>(4 * layout.config.n_vocab));
  EXPECT_EQ(layout.header_bytes + layout.TensorBytes(),
            std::filesystem::file_size(testing::DefaultModelPath()));
}

TEST(EstimateTest, WeightsAreWhatTheModelPacks) {
  const WeightStore store = LoadDefault();
  const ModelLayout layout = LayoutOf(store);
  Result<std::unique_ptr<Model>> model = Model::Load(testing::DefaultModelPath());
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Workload w;
  w.ctx = 128;
  Result<RunEstimate> e = EstimateRun(layout, w, Machine());
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  // Each packed matrix is 64-byte aligned in the buffer; the model counts them unaligned.
  const double matrices = 7.0 * static_cast<double>(layout.config.n_layers) + 1;
  const double packed = static_cast<double>((*model)->PackedBytes());
  if (packed > 0) {
    EXPECT_GE(Part(*e, "weights"), packed);
    EXPECT_LE(Part(*e, "weights"), packed + 64 * matrices);
  } else {  // A kernel path that multiplies the file layout: the matrices' file bytes.
    EXPECT_NEAR(Part(*e, "weights"), static_cast<double>(layout.TensorBytes()), 64 * matrices);
  }
}

TEST(EstimateTest, KvCacheIsExact) {
  const WeightStore store = LoadDefault();
  const ModelLayout layout = LayoutOf(store);
  const ModelConfig& c = layout.config;
  for (DType kv : {DType::kF16, DType::kQ8_0, DType::kF32}) {
    for (int64_t batch : {1, 3}) {
      Workload w;
      w.ctx = 192;
      w.batch = batch;
      w.kv_type = kv;
      Result<RunEstimate> e = EstimateRun(layout, w, Machine());
      ASSERT_TRUE(e.ok());
      const double expected = 2.0 * static_cast<double>(c.n_layers * c.n_kv_heads * 192 * batch) *
                              static_cast<double>(RowBytes(kv, c.head_dim));
      EXPECT_EQ(Part(*e, "KV cache"), expected) << DTypeName(kv) << " batch " << batch;
      double sum = 0;
      for (const MemoryPart& p : e->parts) sum += p.bytes;
      EXPECT_DOUBLE_EQ(e->total_bytes, sum);
      EXPECT_DOUBLE_EQ(e->model_bytes(), e->total_bytes - (5 << 20));
    }
  }
}

TEST(EstimateTest, QuantizedLayoutHasTheBytesQuantizeWrites) {
  const WeightStore store = LoadDefault();
  const ModelLayout layout = LayoutOf(store);
  const std::string dir = testing::MakeTempDir();
  for (DType type : {DType::kQ8_0, DType::kQ4_K}) {
    quant::QuantizeOptions options;
    options.type = type;
    Result<ModelLayout> planned = QuantizedLayout(layout, store, options);
    ASSERT_TRUE(planned.ok()) << planned.status().ToString();
    const std::string out = dir + "/q.gguf";
    ASSERT_TRUE(
        quant::QuantizeToGguf(store, out, options, "default", [](int64_t, int64_t) {}).ok());
    Result<WeightStore> written = LoadModel(out);
    ASSERT_TRUE(written.ok());
    const ModelLayout actual = LayoutOf(*written);
    EXPECT_EQ(planned->TensorBytes(), actual.TensorBytes()) << DTypeName(type);
    EXPECT_EQ(planned->BytesByType(), actual.BytesByType()) << DTypeName(type);
  }
  std::filesystem::remove_all(dir);
}

TEST(EstimateTest, DecodeScalesWithBandwidthAndBytes) {
  const WeightStore store = LoadDefault();
  const ModelLayout layout = LayoutOf(store);
  Workload w;
  w.ctx = 256;
  MachineLimits m = Machine();
  Result<RunEstimate> slow = EstimateRun(layout, w, m);
  m.bandwidth_gbs *= 2;
  Result<RunEstimate> fast = EstimateRun(layout, w, m);
  ASSERT_TRUE(slow.ok() && fast.ok());
  EXPECT_NEAR(fast->tg / slow->tg, 2.0, 1e-9);
  EXPECT_NEAR(slow->tg_bound, 30e9 / (slow->weight_bytes_per_token + slow->kv_bytes_per_token),
              1e-6);
  EXPECT_LT(slow->tg, slow->tg_bound);  // No kernel reaches the bound.
  EXPECT_LT(slow->tg_full_ctx, slow->tg);
  // A layout with half the bytes per weight decodes faster.
  quant::QuantizeOptions q8;
  q8.type = DType::kQ8_0;
  Result<ModelLayout> quantized = QuantizedLayout(layout, store, q8);
  ASSERT_TRUE(quantized.ok());
  Result<RunEstimate> q = EstimateRun(*quantized, w, Machine());
  ASSERT_TRUE(q.ok());
  EXPECT_GT(q->tg, 1.5 * slow->tg);
  EXPECT_LT(q->model_bytes(), slow->model_bytes());
}

TEST(EstimateTest, LargestContextAndBatchFit) {
  const WeightStore store = LoadDefault();
  const ModelLayout layout = LayoutOf(store);
  Workload w;
  w.ctx = 128;
  const MachineLimits m = Machine();
  Result<RunEstimate> at128 = EstimateRun(layout, w, m);
  ASSERT_TRUE(at128.ok());
  // The search steps by 256 positions (the default model's whole context): a budget just
  // above the estimate at 128 positions allows no step.
  const double budget = at128->model_bytes() + 1;
  EXPECT_EQ(LargestContext(layout, w, m, budget), 0);  // 256 positions need more.
  EXPECT_EQ(LargestContext(layout, w, m, 1e12), layout.config.context_length);
  const int64_t batch = LargestBatch(layout, w, m, 4 * at128->model_bytes());
  ASSERT_GE(batch, 1);
  w.batch = batch;
  EXPECT_LE(EstimateRun(layout, w, m)->model_bytes(), 4 * at128->model_bytes());
  w.batch = batch + 1;
  EXPECT_GT(EstimateRun(layout, w, m)->model_bytes(), 4 * at128->model_bytes());
  EXPECT_EQ(LargestBatch(layout, w, m, 1), 0);
}

TEST(CandidatesTest, DefaultModelCandidates) {
  const WeightStore store = LoadDefault();
  const ModelLayout layout = LayoutOf(store);
  CandidateOptions options;
  const std::vector<Candidate> all = BuildCandidates(layout, store, options);
  // Source, bf16, q8_0, q6_k, q4_k (+cal), q4_0 (+cal), wanda, sparsegpt: 10, each with two KV
  // types (head dimension 32).
  ASSERT_EQ(all.size(), 20u);
  EXPECT_EQ(all[0].kind, Candidate::Kind::kSource);
  EXPECT_TRUE(all[0].ProduceArgs("in", "out", "c", 64, 4).empty());
  options.calibrated = false;
  options.prune = false;
  options.kv_q8 = false;
  options.types = {DType::kQ4_K};
  const std::vector<Candidate> few = BuildCandidates(layout, store, options);
  ASSERT_EQ(few.size(), 2u);
  EXPECT_EQ(few[1].ProduceArgs("in.gguf", "out.gguf", "", 64, 4),
            (std::vector<std::string>{"quantize", "in.gguf", "out.gguf", "--type", "q4_k"}));
}

}  // namespace
}  // namespace slimlm::plan
