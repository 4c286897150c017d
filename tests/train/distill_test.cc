// Distillation: the teacher cache holds each position's true top-k log-probabilities and
// survives a round trip to disk; the distillation loss is near zero for the teacher itself and
// falls as a layer-dropped student trains on it; layer dropping copies the right tensors; and
// vocabularies that differ are refused.
#include "slimlm/train/distill.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/model/presets.h"
#include "slimlm/train/ops.h"
#include "slimlm/train/trainer.h"
#include "support/test_data.h"

namespace slimlm::train {
namespace {

std::string Stories() {
  std::string text;
  const char* names[] = {"Tom", "Sue", "Ben", "Amy", "Max"};
  for (int i = 0; i < 30; ++i) {
    text += std::string("Once upon a time ") + names[i % 5] + " had a red ball. " + names[i % 5] +
            " liked to play with it.\n<|endoftext|>\n";
  }
  return text;
}

// Keeps the logits of sequence 0.
class KeepLogits : public LogitLoss<float> {
 public:
  float operator()(int64_t seq, const float* logits, const int32_t*, float*, int64_t n,
                   int64_t vocab) const override {
    if (seq == 0) logits_.assign(logits, logits + n * vocab);
    return 0.0f;
  }
  mutable std::vector<float> logits_;
};

class DistillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AddSyntheticVocab(300, &metadata_);
    tokenizer_ = std::move(*Tokenizer::FromMetadata(metadata_));
    DatasetOptions o;
    o.n_ctx = 16;
    o.valid_fraction = 0.1;
    data_ = std::make_unique<Dataset>(std::move(*Dataset::Build({Stories()}, *tokenizer_, o)));
    ModelPreset preset = *FindPreset("tiny");
    preset.config.n_vocab = 300;
    preset.config.n_layers = 3;
    InitOptions init;
    init.seed = 2;
    init.tokenizer = &metadata_;
    teacher_ = std::make_unique<Transformer<float>>(
        std::move(*FromWeightStore(*MakeRandomModel(preset, init))));
    // Make the teacher opinionated: train it until it predicts the stories well.
    TrainState state = StartTraining(std::move(*teacher_), metadata_, AdamWOptions{});
    TrainOptions options;
    options.batch = 8;
    options.steps = 60;
    options.schedule = Schedule{.peak = 1e-2, .floor = 1e-3, .warmup_steps = 5, .total_steps = 60};
    options.eval_every = 0;
    ASSERT_TRUE(Train(&state, *data_, options, [](const StepReport&) {}).ok());
    teacher_ = std::make_unique<Transformer<float>>(std::move(state.model));
  }

  TeacherCache Cache(int64_t k) {
    return TeacherCache::Build(*teacher_, *data_, k, 3, [](int64_t, int64_t) {});
  }

  Metadata metadata_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Dataset> data_;
  std::unique_ptr<Transformer<float>> teacher_;
};

TEST_F(DistillTest, TheCacheHoldsTheTeachersTopKLogProbabilities) {
  const int64_t k = 5, ctx = data_->n_ctx();
  TeacherCache cache = Cache(k);
  ASSERT_EQ(cache.slots(), data_->windows());
  for (int64_t slot : {int64_t{0}, data_->windows() - 1}) {
    std::vector<int32_t> tokens(data_->SlotTokens(slot), data_->SlotTokens(slot) + ctx);
    std::vector<int32_t> targets(data_->SlotTokens(slot) + 1, data_->SlotTokens(slot) + ctx + 1);
    KeepLogits keep;
    PassOptions<float> pass;
    pass.loss = &keep;
    teacher_->ForwardBackward(tokens, targets, 1, ctx, nullptr, pass);
    for (int64_t t = 0; t < ctx; ++t) {
      const float* z = keep.logits_.data() + t * 300;
      double sum = 0;
      for (int i = 0; i < 300; ++i) sum += std::exp(static_cast<double>(z[i]));
      std::vector<int32_t> order(300);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [z](int32_t a, int32_t b) { return z[a] > z[b]; });
      std::vector<float> logp(k);
      cache.LogProbs(slot, t, logp.data());
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_EQ(cache.Ids(slot, t)[j], order[j]) << "slot " << slot << " position " << t;
        const double expected = z[order[j]] - std::log(sum);
        // Stored as f16: relative precision 2^-11.
        EXPECT_NEAR(logp[j], expected, 1e-3 * std::max(1.0, std::fabs(expected)));
      }
    }
  }
}

TEST_F(DistillTest, TheCacheRoundTripsThroughAFileUnderItsKey) {
  TeacherCache cache = Cache(4);
  const std::string path = testing::MakeTempDir() + "/teacher.cache";
  const uint64_t key = TeacherCache::Key(*teacher_, data_->Fingerprint(), data_->n_ctx(), 4);
  ASSERT_TRUE(cache.Save(path, key).ok());
  auto loaded = TeacherCache::Load(path, key, 300);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded->slots(), cache.slots());
  for (int64_t slot = 0; slot < cache.slots(); ++slot) {
    for (int64_t t = 0; t < cache.n_ctx(); ++t) {
      ASSERT_TRUE(std::ranges::equal(loaded->Ids(slot, t), cache.Ids(slot, t)));
    }
  }
  // Another teacher, other data or another k: another key, and the file is not used.
  EXPECT_NE(TeacherCache::Key(*teacher_, data_->Fingerprint(), data_->n_ctx(), 5), key);
  EXPECT_NE(TeacherCache::Key(*teacher_, data_->Fingerprint() + 1, data_->n_ctx(), 4), key);
  EXPECT_EQ(TeacherCache::Load(path, key + 1, 300).status().code(), StatusCode::kNotFound);
  // An id past the vocabulary (a flipped byte the key cannot see) is caught too.
  EXPECT_EQ(TeacherCache::Load(path, key, 5).status().code(), StatusCode::kNotFound);
  std::ofstream(path, std::ios::binary | std::ios::app) << "x";
  EXPECT_EQ(TeacherCache::Load(path, key, 300).status().code(), StatusCode::kNotFound);
}

// The mean distillation loss of a model over the first training windows.
double DistillLossOf(Transformer<float>& model, const Dataset& data, DistillLoss& loss) {
  const int64_t n = 4, ctx = data.n_ctx();
  std::vector<int32_t> tokens(n * ctx), targets(n * ctx);
  std::vector<int64_t> windows(n);
  for (int64_t i = 0; i < n; ++i) {
    windows[i] = i;
    data.Window(i, &tokens[i * ctx], &targets[i * ctx]);
  }
  loss.Bind(windows);
  PassOptions<float> pass;
  pass.loss = &loss;
  return model.ForwardBackward(tokens, targets, n, ctx, nullptr, pass);
}

TEST_F(DistillTest, AStudentLearnsTheTeachersDistribution) {
  TeacherCache cache = Cache(32);
  DistillOptions options;
  options.ce_weight = 0;  // The KL term alone.
  options.temperature = 1;
  DistillLoss loss(cache, *data_, options);
  // The teacher's divergence from itself is what the top-k truncation leaves: small.
  const double self = DistillLossOf(*teacher_, *data_, loss);
  // A fresh two-layer student (random weights: far from the teacher).
  ModelPreset preset = *FindPreset("tiny");
  preset.config.n_vocab = 300;
  InitOptions init;
  init.seed = 9;
  init.tokenizer = &metadata_;
  auto student = FromWeightStore(*MakeRandomModel(preset, init));
  ASSERT_TRUE(student.ok()) << student.status().message();
  const double before = DistillLossOf(*student, *data_, loss);
  EXPECT_LT(self, 0.1 * before) << "self " << self << " student " << before;
  TrainState state = StartTraining(std::move(*student), metadata_, AdamWOptions{});
  TrainOptions train;
  train.batch = 4;
  train.steps = 20;
  train.schedule = Schedule{.peak = 5e-3, .floor = 5e-4, .warmup_steps = 2, .total_steps = 20};
  train.eval_every = 0;
  train.batch_loss = [&loss](std::span<const int64_t> windows) {
    loss.Bind(windows);
    return &loss;
  };
  ASSERT_TRUE(Train(&state, *data_, train, [](const StepReport&) {}).ok());
  const double after = DistillLossOf(state.model, *data_, loss);
  EXPECT_LT(after, 0.5 * before) << "before " << before << " after " << after;
  // With the cross-entropy weight at 1 the loss is the plain cross-entropy.
  options.ce_weight = 1;
  DistillLoss ce_only(cache, *data_, options);
  const int64_t ctx = data_->n_ctx();
  std::vector<int32_t> tokens(4 * ctx), targets(4 * ctx);
  for (int64_t i = 0; i < 4; ++i) data_->Window(i, &tokens[i * ctx], &targets[i * ctx]);
  const float plain = state.model.ForwardBackward(tokens, targets, 4, ctx, nullptr);
  EXPECT_FLOAT_EQ(DistillLossOf(state.model, *data_, ce_only), plain);
}

TEST_F(DistillTest, KeepLayersCopiesTheListedLayersInOrder) {
  auto student = KeepLayers(*teacher_, std::vector<int64_t>{2, 0});
  ASSERT_TRUE(student.ok()) << student.status().message();
  EXPECT_EQ(student->config().n_layers, 2);
  auto same = [&](const std::string& s, const std::string& t) {
    const ParamSlot* a = student->Find(s);
    const ParamSlot* b = teacher_->Find(t);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_TRUE(std::equal(student->params().begin() + a->offset,
                           student->params().begin() + a->offset + a->size,
                           teacher_->params().begin() + b->offset))
        << s << " from " << t;
  };
  same("token_embd.weight", "token_embd.weight");
  same("output_norm.weight", "output_norm.weight");
  same("blk.0.attn_q.weight", "blk.2.attn_q.weight");
  same("blk.0.ffn_down.weight", "blk.2.ffn_down.weight");
  same("blk.1.attn_norm.weight", "blk.0.attn_norm.weight");
  EXPECT_FALSE(KeepLayers(*teacher_, std::vector<int64_t>{}).ok());
  auto missing = KeepLayers(*teacher_, std::vector<int64_t>{0, 3});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("layer 3 does not exist"), std::string::npos);
  auto twice = KeepLayers(*teacher_, std::vector<int64_t>{1, 1});
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("listed twice"), std::string::npos);
}

TEST_F(DistillTest, DifferentVocabulariesAreRefused) {
  EXPECT_TRUE(CheckSameVocabulary(*tokenizer_, *tokenizer_).ok());
  Metadata other;
  AddSyntheticVocab(301, &other);
  auto bigger = Tokenizer::FromMetadata(other);
  ASSERT_TRUE(bigger.ok());
  Status s = CheckSameVocabulary(*tokenizer_, **bigger);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("300 tokens, the student's 301"), std::string::npos);
  Metadata renamed = metadata_;
  std::vector<std::string> pieces = *renamed.Find("tokenizer.ggml.tokens")->AsStringArray();
  pieces[280] = "zz";
  renamed.Set("tokenizer.ggml.tokens", MetaValue::StringArray(pieces));
  auto changed = Tokenizer::FromMetadata(renamed);
  ASSERT_TRUE(changed.ok()) << changed.status().message();
  s = CheckSameVocabulary(*tokenizer_, **changed);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("differ at token 280"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace slimlm::train
