// Documents, held-out split and deterministic shuffled windows; the training loop lowers the
// held-out loss; a run resumed from a checkpoint ends with the same parameters, bit for bit, as
// one that never stopped; bad checkpoints are refused.
#include "slimlm/train/trainer.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/formats/gguf.h"
#include "slimlm/model/presets.h"
#include "support/test_data.h"

namespace slimlm::train {
namespace {

std::unique_ptr<Tokenizer> ByteTokenizer(Metadata* metadata) {
  AddSyntheticVocab(300, metadata);
  auto t = Tokenizer::FromMetadata(*metadata);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return std::move(*t);
}

// 40 short stories with a shared pattern, separated as TinyStories is.
std::string Stories() {
  std::string text;
  const char* names[] = {"Tom", "Sue", "Ben", "Amy", "Max"};
  for (int i = 0; i < 40; ++i) {
    text += std::string("Once upon a time ") + names[i % 5] + " had a red ball. " + names[i % 5] +
            " liked to play with the ball every day.\n<|endoftext|>\n";
  }
  return text;
}

TEST(Dataset, SplitsDocumentsAtSeparatorLines) {
  auto docs =
      SplitDocuments("one\ntwo\n<|endoftext|>\nthree\n<|endoftext|>\n\n<|endoftext|>\nfour");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0], "one\ntwo");
  EXPECT_EQ(docs[1], "three");
  EXPECT_EQ(docs[2], "four");
  EXPECT_EQ(SplitDocuments("no separator at all").size(), 1u);
}

TEST(Dataset, HoldsOutEveryKthDocumentAndShufflesWindowsPerEpoch) {
  Metadata md;
  auto tok = ByteTokenizer(&md);
  DatasetOptions o;
  o.n_ctx = 16;
  o.valid_fraction = 0.1;
  auto data = Dataset::Build({Stories()}, *tok, o);
  ASSERT_TRUE(data.ok()) << data.status().message();
  EXPECT_EQ(data->documents(), 40);
  EXPECT_EQ(data->valid_documents(), 4);  // Every 10th.
  const int64_t n = data->windows();
  ASSERT_GT(n, 10);
  // Each epoch visits every window once, in an order that differs between epochs.
  auto window_starts = [&](int64_t epoch) {
    std::vector<std::vector<int32_t>> w;
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int32_t> tokens(16), targets(16);
      data->Window(epoch * n + i, tokens.data(), targets.data());
      EXPECT_TRUE(std::equal(tokens.begin() + 1, tokens.end(), targets.begin()));
      w.push_back(tokens);
    }
    return w;
  };
  auto e0 = window_starts(0), e1 = window_starts(1);
  EXPECT_NE(e0, e1);
  std::set<std::vector<int32_t>> s0(e0.begin(), e0.end()), s1(e1.begin(), e1.end());
  EXPECT_EQ(s0, s1);
  // The same seed gives the same order; another seed another.
  auto again = Dataset::Build({Stories()}, *tok, o);
  EXPECT_EQ(window_starts(0), e0);
  (void)again;
  o.seed = 2;
  auto other = Dataset::Build({Stories()}, *tok, o);
  std::vector<int32_t> a(16), b(16), t(16);
  data->Window(0, a.data(), t.data());
  other->Window(0, b.data(), t.data());
  bool any_differs = a != b;
  for (int64_t i = 1; i < 4 && !any_differs; ++i) {
    data->Window(i, a.data(), t.data());
    other->Window(i, b.data(), t.data());
    any_differs = a != b;
  }
  EXPECT_TRUE(any_differs);
  // Too little text for one window.
  o.n_ctx = 100000;
  EXPECT_FALSE(Dataset::Build({Stories()}, *tok, o).ok());
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = ByteTokenizer(&metadata_);
    DatasetOptions o;
    o.n_ctx = 32;
    o.valid_fraction = 0.1;
    auto data = Dataset::Build({Stories()}, *tokenizer_, o);
    ASSERT_TRUE(data.ok());
    data_ = std::make_unique<Dataset>(std::move(*data));
    options_.batch = 4;
    options_.steps = 12;
    options_.schedule = Schedule{.peak = 3e-3, .floor = 3e-4, .warmup_steps = 3, .total_steps = 12};
    options_.eval_every = 0;
    options_.threads = 2;
  }

  TrainState Fresh() {
    ModelPreset preset = *FindPreset("tiny");
    preset.config.n_vocab = 300;
    InitOptions init;
    init.seed = 4;
    init.tokenizer = &metadata_;
    auto store = MakeRandomModel(preset, init);
    EXPECT_TRUE(store.ok());
    auto model = FromWeightStore(*store);
    EXPECT_TRUE(model.ok()) << model.status().message();
    return StartTraining(std::move(*model), store->metadata(), options_.adam);
  }

  Metadata metadata_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Dataset> data_;
  TrainOptions options_;
};

TEST_F(TrainerTest, LowersTheHeldOutLossAndResumesBitIdentically) {
  TrainState straight = Fresh();
  const double before = ValidLoss(straight.model, *data_, 0);
  std::vector<StepReport> reports;
  ASSERT_TRUE(
      Train(&straight, *data_, options_, [&](const StepReport& r) { reports.push_back(r); }).ok());
  ASSERT_EQ(reports.size(), 12u);
  EXPECT_EQ(reports.back().step, 12);
  ASSERT_TRUE(reports.back().valid_loss.has_value());
  EXPECT_LT(*reports.back().valid_loss, before - 0.5) << "12 steps on a repetitive text";

  // Half the steps, a checkpoint, a fresh process's worth of state from it, the other half.
  const std::string path = testing::MakeTempDir() + "/ckpt.gguf";
  TrainState first = Fresh();
  TrainOptions half = options_;
  half.steps = 6;
  half.checkpoint = path;
  ASSERT_TRUE(Train(&first, *data_, half, [](const StepReport&) {}).ok());
  auto resumed = LoadCheckpoint(path, options_.adam);
  ASSERT_TRUE(resumed.ok()) << resumed.status().message();
  EXPECT_EQ(resumed->step, 6);
  ASSERT_TRUE(Train(&*resumed, *data_, options_, [](const StepReport&) {}).ok());
  EXPECT_EQ(resumed->model.params(), straight.model.params());
  EXPECT_EQ(resumed->adam.m(), straight.adam.m());
  EXPECT_EQ(resumed->metadata.GetString("tokenizer.ggml.model"), "llama");
}

TEST_F(TrainerTest, RefusesFilesThatAreNotCheckpoints) {
  const std::string dir = testing::MakeTempDir();
  TrainState s = Fresh();
  ASSERT_TRUE(WriteGguf(ToWeightStore(s.model, s.metadata), dir + "/model.gguf").ok());
  auto not_ckpt = LoadCheckpoint(dir + "/model.gguf", options_.adam);
  ASSERT_FALSE(not_ckpt.ok());
  EXPECT_NE(not_ckpt.status().message().find("not a training checkpoint"), std::string::npos);
  std::ofstream(dir + "/junk.gguf") << "junk";
  EXPECT_FALSE(LoadCheckpoint(dir + "/junk.gguf", options_.adam).ok());
}

TEST(Dataset, TheTokenCacheServesASecondRunAndIsRebuiltForOtherData) {
  Metadata md;
  auto tok = ByteTokenizer(&md);
  DatasetOptions o;
  o.n_ctx = 16;
  const std::string path = testing::MakeTempDir() + "/tokens.cache";
  bool cached = true;
  auto first = Dataset::BuildCached({Stories()}, *tok, o, path, &cached);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_FALSE(cached);
  auto second = Dataset::BuildCached({Stories()}, *tok, o, path, &cached);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_TRUE(cached);
  EXPECT_EQ(second->train_tokens(), first->train_tokens());
  EXPECT_EQ(second->valid_documents(), first->valid_documents());
  for (int64_t i = 0; i < first->windows() + 3; ++i) {
    std::vector<int32_t> a(16), b(16), ta(16), tb(16);
    first->Window(i, a.data(), ta.data());
    second->Window(i, b.data(), tb.data());
    ASSERT_EQ(a, b);
    ASSERT_EQ(ta, tb);
  }
  // Other text, or another held-out share: tokenized again, and the cache replaced.
  auto other = Dataset::BuildCached({Stories() + "More.\n"}, *tok, o, path, &cached);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(cached);
  o.valid_fraction = 0.2;
  ASSERT_TRUE(Dataset::BuildCached({Stories() + "More.\n"}, *tok, o, path, &cached).ok());
  EXPECT_FALSE(cached);
  // A damaged cache is not used.
  std::ofstream(path, std::ios::binary | std::ios::app) << "x";
  ASSERT_TRUE(Dataset::BuildCached({Stories() + "More.\n"}, *tok, o, path, &cached).ok());
  EXPECT_FALSE(cached);
}

// Two micro-batches of 2 windows per step are one batch of 4 (the same windows, the mean of
// the two means): the parameters agree to float rounding.
TEST_F(TrainerTest, GradientAccumulationMatchesTheLargerBatch) {
  options_.steps = 4;
  TrainState big = Fresh();
  ASSERT_TRUE(Train(&big, *data_, options_, [](const StepReport&) {}).ok());
  TrainState accumulated = Fresh();
  TrainOptions o = options_;
  o.batch = 2;
  o.accumulate = 2;
  ASSERT_TRUE(Train(&accumulated, *data_, o, [](const StepReport&) {}).ok());
  const std::vector<float>& a = big.model.params();
  const std::vector<float>& b = accumulated.model.params();
  ASSERT_EQ(a.size(), b.size());
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += a[i] * a[i];
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-5);
  TrainState fresh = Fresh();
  EXPECT_NE(fresh.model.params(), a);  // Training moved them.
}

// Dropout regularizes: the training loss is higher with it (some of each block is dropped),
// while a held-out evaluation never drops anything.
TEST_F(TrainerTest, DropoutRaisesTheTrainingLossOnly) {
  options_.steps = 1;
  TrainState a = Fresh(), b = Fresh();
  double plain = 0, dropped = 0;
  ASSERT_TRUE(Train(&a, *data_, options_, [&](const StepReport& r) { plain = r.loss; }).ok());
  options_.dropout = 0.5;
  ASSERT_TRUE(Train(&b, *data_, options_, [&](const StepReport& r) { dropped = r.loss; }).ok());
  EXPECT_NE(plain, dropped);
  TrainState c = Fresh();
  EXPECT_EQ(ValidLoss(c.model, *data_, 0), ValidLoss(c.model, *data_, 0));
}

TEST_F(TrainerTest, RefusesDataSmallerThanOneBatch) {
  options_.batch = data_->windows() + 1;
  TrainState s = Fresh();
  Status status = Train(&s, *data_, options_, [](const StepReport&) {});
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("fewer than one batch"), std::string::npos) << status.message();
  EXPECT_EQ(s.step, 0);
}

// A loss that is not finite stops the run before the step is applied, with the last
// checkpoint as it was.
TEST_F(TrainerTest, ANanLossStopsTrainingAndKeepsTheLastCheckpoint) {
  const std::string path = testing::MakeTempDir() + "/ckpt.gguf";
  options_.checkpoint = path;
  options_.checkpoint_every = 2;
  options_.steps = 2;
  TrainState s = Fresh();
  ASSERT_TRUE(Train(&s, *data_, options_, [](const StepReport&) {}).ok());
  std::ifstream in(path, std::ios::binary);
  const std::string before((std::istreambuf_iterator<char>(in)), {});
  s.model.params()[0] = std::numeric_limits<float>::quiet_NaN();
  options_.steps = 4;
  int reports = 0;
  Status status = Train(&s, *data_, options_, [&](const StepReport&) { ++reports; });
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("the loss is nan at step 3"), std::string::npos)
      << status.message();
  EXPECT_EQ(reports, 0);
  EXPECT_EQ(s.step, 2);
  std::ifstream again(path, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(again)), {}), before);
  auto resumed = LoadCheckpoint(path, options_.adam);
  ASSERT_TRUE(resumed.ok()) << resumed.status().message();
  EXPECT_EQ(resumed->step, 2);
}

}  // namespace
}  // namespace slimlm::train
