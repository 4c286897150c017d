// The batched engine on the bundled default model: a sequence's logits and greedy tokens are
// bit-identical alone and among sixteen others (prefill chunks and decode tokens mixed in one
// step, blocks scattered in the pool), a paged sequence matches the one-block Context, and every
// malformed step is refused before anything is computed.
#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/model/context.h"
#include "slimlm/model/engine.h"
#include "slimlm/model/model.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

constexpr int64_t kBlock = 16;

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = Model::Load(testing::DefaultModelPath(), LoadOptions{});
    SLIMLM_CHECK(model.ok()) << model.status().ToString();
    model_ = std::move(*model).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  std::unique_ptr<Engine> MakeEngine(int64_t n_blocks, int64_t max_step, DType kv = DType::kF16) {
    EngineOptions o;
    o.n_blocks = n_blocks;
    o.block_size = kBlock;
    o.max_step_tokens = max_step;
    o.n_threads = 2;
    o.kv_type_k = o.kv_type_v = kv;
    auto engine = Engine::Create(*model_, o);
    SLIMLM_CHECK(engine.ok()) << engine.status().ToString();
    return std::move(*engine);
  }

  static Model* model_;
};

Model* EngineTest::model_ = nullptr;

// A prompt of `length` tokens drawn from the vocabulary.
std::vector<int32_t> Prompt(std::mt19937& rng, int64_t length, int64_t n_vocab) {
  std::uniform_int_distribution<int32_t> pick(3, static_cast<int32_t>(n_vocab) - 1);
  std::vector<int32_t> p(static_cast<size_t>(length));
  for (int32_t& t : p) t = pick(rng);
  return p;
}

int32_t Argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// One sequence being decoded: its prompt, the tokens fed so far and the logits after each of
// its steps' last token.
struct Sequence {
  std::vector<int32_t> prompt;
  std::vector<int32_t> table;
  std::vector<int32_t> fed;  // Prompt tokens, then generated ones.
  std::vector<int32_t> generated;
  std::vector<std::vector<float>> logits;  // After each generated token's predecessor.
  int64_t next_prompt = 0;                 // Prompt tokens fed so far.
  bool done() const { return generated.size() >= 12; }
};

// Runs the sequences to completion, `max_step` tokens per step: decode tokens of running
// sequences first, then chunks of waiting prompts (at most `chunk` tokens each), as a
// continuous-batching scheduler does.
void RunAll(Engine& engine, std::vector<Sequence*> seqs, int64_t max_step, int64_t chunk) {
  const int64_t n_vocab = engine.model().config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(max_step * n_vocab));
  for (;;) {
    std::vector<StepToken> step;
    std::vector<std::span<const int32_t>> tables;
    std::vector<Sequence*> owners;  // Of the tokens with logits, in order.
    for (Sequence* s : seqs) {
      if (s->done() || s->next_prompt < static_cast<int64_t>(s->prompt.size())) continue;
      if (static_cast<int64_t>(step.size()) >= max_step) break;
      const int32_t seq = static_cast<int32_t>(tables.size());
      tables.push_back(s->table);
      step.push_back({s->generated.back(), static_cast<int64_t>(s->fed.size()), seq, true});
      s->fed.push_back(s->generated.back());
      owners.push_back(s);
    }
    for (Sequence* s : seqs) {
      const int64_t left = static_cast<int64_t>(s->prompt.size()) - s->next_prompt;
      const int64_t room = max_step - static_cast<int64_t>(step.size());
      if (left <= 0 || room <= 0) continue;
      const int64_t take = std::min({left, chunk, room});
      const int32_t seq = static_cast<int32_t>(tables.size());
      tables.push_back(s->table);
      for (int64_t i = 0; i < take; ++i) {
        const bool last = s->next_prompt + 1 == static_cast<int64_t>(s->prompt.size());
        const int32_t token = s->prompt[static_cast<size_t>(s->next_prompt)];
        step.push_back({token, static_cast<int64_t>(s->fed.size()), seq, last});
        s->fed.push_back(token);
        ++s->next_prompt;
        if (last) owners.push_back(s);
      }
    }
    if (step.empty()) return;
    ASSERT_TRUE(engine.Step(step, tables, logits.data()).ok());
    for (size_t i = 0; i < owners.size(); ++i) {
      std::span<const float> row(logits.data() + i * n_vocab, static_cast<size_t>(n_vocab));
      owners[i]->logits.emplace_back(row.begin(), row.end());
      owners[i]->generated.push_back(Argmax(row));
    }
  }
}

TEST_F(EngineTest, ASequenceGivesTheSameTokensAloneAndInABatchOfSixteen) {
  std::mt19937 rng(1);
  const int64_t n_vocab = model_->config().n_vocab;
  constexpr int kSequences = 16;
  constexpr int64_t kBlocksEach = 6;  // 96 positions: prompts up to 70 tokens plus 12.
  std::vector<Sequence> alone(kSequences), batched(kSequences);
  // Blocks scattered over the pool, different for the two runs.
  std::vector<int32_t> pool(kSequences * kBlocksEach);
  std::iota(pool.begin(), pool.end(), 0);
  std::vector<int32_t> shuffled = pool;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  for (int i = 0; i < kSequences; ++i) {
    const std::vector<int32_t> prompt = Prompt(rng, 1 + (i * 37) % 70, n_vocab);
    alone[i].prompt = batched[i].prompt = prompt;
    alone[i].table.assign(pool.begin(), pool.begin() + kBlocksEach);
    batched[i].table.assign(shuffled.begin() + i * kBlocksEach,
                            shuffled.begin() + (i + 1) * kBlocksEach);
  }
  {
    auto engine = MakeEngine(kSequences * kBlocksEach, 64);
    for (Sequence& s : alone) RunAll(*engine, {&s}, 64, 64);
  }
  auto engine = MakeEngine(kSequences * kBlocksEach, 64);
  std::vector<Sequence*> all;
  for (Sequence& s : batched) all.push_back(&s);
  RunAll(*engine, all, 64, 24);  // Prompts split into chunks, mixed with decodes.
  for (int i = 0; i < kSequences; ++i) {
    SCOPED_TRACE(::testing::Message() << "sequence " << i);
    EXPECT_EQ(batched[i].generated, alone[i].generated);
    ASSERT_EQ(batched[i].logits.size(), alone[i].logits.size());
    for (size_t k = 0; k < alone[i].logits.size(); ++k) {
      ASSERT_EQ(batched[i].logits[k], alone[i].logits[k]) << "logits after step " << k;
    }
  }
}

TEST_F(EngineTest, APagedSequenceMatchesTheContext) {
  std::mt19937 rng(2);
  const int64_t n_vocab = model_->config().n_vocab;
  const std::vector<int32_t> prompt = Prompt(rng, 50, n_vocab);
  ContextOptions co;
  co.n_ctx = 128;
  co.n_threads = 2;
  auto ctx = Context::Create(*model_, co);
  ASSERT_TRUE(ctx.ok());
  ASSERT_TRUE((*ctx)->Eval(prompt).ok());
  Sequence s;
  s.prompt = prompt;
  s.table = {5, 2, 7, 0, 3, 6};  // Out of order in a pool of 8.
  auto engine = MakeEngine(8, 32);
  RunAll(*engine, {&s}, 32, 32);
  // The paged attention restarts its tiles at every block of 16; the one-block Context tiles the
  // whole context: the sums differ in rounding only.
  const std::span<const float> want = (*ctx)->logits();
  for (int64_t i = 0; i < n_vocab; ++i) {
    ASSERT_NEAR(s.logits[0][static_cast<size_t>(i)], want[static_cast<size_t>(i)], 1e-3) << i;
  }
  std::vector<int32_t> greedy;
  for (int k = 0; k < 12; ++k) {
    greedy.push_back(Argmax((*ctx)->logits()));
    ASSERT_TRUE((*ctx)->Eval(std::span(&greedy.back(), 1)).ok());
  }
  EXPECT_EQ(s.generated, greedy);
}

TEST_F(EngineTest, RefusesMalformedSteps) {
  auto engine = MakeEngine(4, 8);
  const std::vector<int32_t> table = {1, 3};
  const std::span<const int32_t> t(table);
  std::vector<std::span<const int32_t>> tables = {t};
  std::vector<float> logits(static_cast<size_t>(8 * model_->config().n_vocab));
  auto step = [&](std::vector<StepToken> tokens) {
    return engine->Step(tokens, tables, logits.data());
  };
  EXPECT_EQ(step({}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(step(std::vector<StepToken>(9, StepToken{1, 0, 0, false})).code(),
            StatusCode::kInvalidArgument);  // More than max_step_tokens.
  EXPECT_EQ(step({{-1, 0, 0, true}}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(step({{1, 32, 0, true}}).code(), StatusCode::kOutOfRange);      // Beyond 2 blocks.
  EXPECT_EQ(step({{1, 0, 1, true}}).code(), StatusCode::kInvalidArgument);  // No table.
  EXPECT_EQ(step({{1, 3, 0, false}, {2, 3, 0, true}}).code(), StatusCode::kInvalidArgument);
  const std::vector<int32_t> outside = {1, 4};
  tables = {std::span<const int32_t>(outside)};
  EXPECT_EQ(step({{1, 20, 0, true}}).code(), StatusCode::kInvalidArgument);  // Block 4 of 4.
  tables = {t};
  EXPECT_TRUE(step({{1, 0, 0, false}, {2, 1, 0, true}}).ok());
  EngineOptions bad;
  bad.n_blocks = 0;
  EXPECT_FALSE(Engine::Create(*model_, bad).ok());
  bad.n_blocks = 4;
  bad.kv_type_k = DType::kQ4_0;
  EXPECT_FALSE(Engine::Create(*model_, bad).ok());
}

}  // namespace
}  // namespace slimlm
