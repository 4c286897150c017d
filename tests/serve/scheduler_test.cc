// Continuous batching on the bundled default model: sixteen requests at once give exactly the
// greedy text each gives alone, also when prompts are prefilled in chunks beside decodes, when a
// small KV pool forces preemptions, and when prompts share a cached prefix; limits, stop strings,
// cancellation and timeouts end requests as they should and free their blocks.
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/model/model.h"
#include "slimlm/serve/scheduler.h"
#include "support/test_data.h"

namespace slimlm::serve {
namespace {

struct Outcome {
  std::string text;
  FinishReason finish = FinishReason::kNone;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t token_events = 0;
};

class SchedulerTest : public ::testing::Test {
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

  static Request Greedy(const std::string& prompt, int64_t max_tokens) {
    Request r;
    r.prompt = model_->tokenizer()->Encode(prompt, true, false);
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    return r;
  }

  static std::unique_ptr<Scheduler> Make(SchedulerOptions o) {
    o.n_threads = 2;
    auto s = Scheduler::Create(*model_, o);
    SLIMLM_CHECK(s.ok()) << s.status().ToString();
    return std::move(*s);
  }

  // Runs every request to its end; the outcome of each, by submission order.
  static std::vector<Outcome> RunAll(Scheduler& s, const std::vector<Request>& requests) {
    std::vector<int64_t> ids;
    for (const Request& r : requests) {
      Result<int64_t> id = s.Submit(r);
      SLIMLM_CHECK(id.ok()) << id.status().ToString();
      ids.push_back(*id);
    }
    std::map<int64_t, Outcome> by_id;
    for (int guard = 0; !s.Idle() && guard < 100000; ++guard) {
      std::vector<Event> events;
      SLIMLM_CHECK(s.Step(&events).ok());
      for (const Event& e : events) {
        Outcome& o = by_id[e.id];
        o.text += e.text;
        o.token_events += e.new_tokens;
        if (e.finish != FinishReason::kNone) {
          o.finish = e.finish;
          o.completion_tokens = e.completion_tokens;
          o.cached_tokens = e.cached_tokens;
        }
      }
    }
    std::vector<Outcome> out;
    for (int64_t id : ids) out.push_back(by_id[id]);
    return out;
  }

  static Model* model_;
};

Model* SchedulerTest::model_ = nullptr;

std::vector<std::string> Prompts() {
  const char* starts[] = {"Once upon a time",
                          "The little dog",
                          "Lily and Ben went to the park",
                          "One day, a big bird",
                          "Tom had a red ball. He",
                          "The sun was hot and",
                          "Mom said",
                          "A girl named Sue liked to"};
  std::vector<std::string> prompts;
  for (int i = 0; i < 16; ++i) {
    std::string p = starts[i % 8];
    for (int k = 0; k < i / 8; ++k) p += " and then they played all day in the big green garden";
    prompts.push_back(p);
  }
  return prompts;
}

TEST_F(SchedulerTest, SixteenAtOnceGiveWhatEachGivesAlone) {
  std::vector<Request> requests;
  for (const std::string& p : Prompts()) requests.push_back(Greedy(p, 24));
  std::vector<Outcome> alone;
  for (const Request& r : requests) {
    SchedulerOptions o;
    alone.push_back(RunAll(*Make(o), {r})[0]);
  }
  SchedulerOptions o;
  o.max_step_tokens = 32;  // Prompts prefill in chunks beside the decodes.
  auto s = Make(o);
  const std::vector<Outcome> together = RunAll(*s, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "request " << i);
    EXPECT_FALSE(alone[i].text.empty());
    EXPECT_EQ(together[i].text, alone[i].text);
    EXPECT_EQ(together[i].finish, FinishReason::kLength);
    EXPECT_EQ(together[i].completion_tokens, 24);
    EXPECT_EQ(together[i].token_events, 24);
  }
  EXPECT_EQ(s->stats().generation_tokens, 16 * 24);
  EXPECT_EQ(s->pool().Usage(), 0.0);
  EXPECT_EQ(s->stats().preemptions, 0);
}

TEST_F(SchedulerTest, PreemptedRequestsRecomputeToTheSameText) {
  std::vector<Request> requests;
  for (const std::string& p : Prompts()) requests.push_back(Greedy(p, 40));
  std::vector<Outcome> alone;
  for (size_t i = 0; i < 4; ++i)
    alone.push_back(RunAll(*Make(SchedulerOptions{}), {requests[i]})[0]);
  SchedulerOptions o;
  o.n_blocks = 10;  // 160 positions for four requests of about 45: someone must wait.
  o.max_step_tokens = 16;
  o.prefix_cache = false;
  auto s = Make(o);
  const std::vector<Outcome> together =
      RunAll(*s, {requests[0], requests[1], requests[2], requests[3]});
  EXPECT_GT(s->stats().preemptions, 0);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(together[i].text, alone[i].text) << i;
    EXPECT_EQ(together[i].completion_tokens, 40) << i;
  }
  EXPECT_EQ(s->pool().Usage(), 0.0);
}

TEST_F(SchedulerTest, ASharedPromptPrefixIsComputedOnce) {
  const std::string common =
      "Once upon a time there was a little girl named Lily. She loved to play outside in the "
      "sun with her friends, and every day she went to the park near her house.";
  SchedulerOptions o;
  auto s = Make(o);
  const Outcome first = RunAll(*s, {Greedy(common + " One day", 8)})[0];
  EXPECT_EQ(first.cached_tokens, 0);
  const Outcome second = RunAll(*s, {Greedy(common + " The next day", 8)})[0];
  const int64_t shared =
      static_cast<int64_t>(model_->tokenizer()->Encode(common, true, false).size());
  // Whole blocks of the shared prompt, short of the block with its last shared token at most.
  EXPECT_GE(second.cached_tokens, (shared / 16 - 1) * 16);
  EXPECT_EQ(second.cached_tokens % 16, 0);
  EXPECT_GT(second.cached_tokens, 0);
  // Reused blocks give what computing them gives.
  const Outcome fresh = RunAll(*Make(o), {Greedy(common + " The next day", 8)})[0];
  EXPECT_EQ(second.text, fresh.text);
  EXPECT_EQ(s->stats().prefix_hits, second.cached_tokens);
}

TEST_F(SchedulerTest, StopStringsEndTheTextBeforeThem) {
  const Request r = Greedy("Once upon a time", 40);
  const Outcome full = RunAll(*Make(SchedulerOptions{}), {r})[0];
  ASSERT_GT(full.text.size(), 30u);
  // A stop string from the middle of the greedy text.
  const std::string stop = full.text.substr(20, 5);
  const size_t at = full.text.find(stop);
  Request stopped = r;
  stopped.stop = {"never appears in a story", stop};
  const Outcome o = RunAll(*Make(SchedulerOptions{}), {stopped})[0];
  EXPECT_EQ(o.finish, FinishReason::kStop);
  EXPECT_EQ(o.text, full.text.substr(0, at));
  EXPECT_LT(o.completion_tokens, 40);
}

TEST_F(SchedulerTest, CancelAndTimeoutFreeTheBlocksAtOnce) {
  auto s = Make(SchedulerOptions{});
  Result<int64_t> a = s->Submit(Greedy("Once upon a time", 100));
  Request slow = Greedy("The little dog", 100);
  slow.timeout_seconds = 1e-9;
  Result<int64_t> b = s->Submit(slow);
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<Event> events;
  ASSERT_TRUE(s->Step(&events).ok());  // b has timed out already; a runs.
  EXPECT_GT(s->pool().Usage(), 0.0);
  s->Cancel(*a);
  EXPECT_EQ(s->pool().Usage(), 0.0);  // At once, before the next step.
  ASSERT_TRUE(s->Step(&events).ok());
  std::map<int64_t, FinishReason> finish;
  for (const Event& e : events) finish[e.id] = e.finish;
  EXPECT_EQ(finish[*a], FinishReason::kCancelled);
  EXPECT_EQ(finish[*b], FinishReason::kTimeout);
  EXPECT_TRUE(s->Idle());
  EXPECT_EQ(s->pool().LiveSequences(), 0);
}

TEST_F(SchedulerTest, RefusesBadRequestsAndAFullQueue) {
  SchedulerOptions o;
  o.max_waiting = 2;
  auto s = Make(o);
  Request empty;
  EXPECT_EQ(s->Submit(empty).status().code(), StatusCode::kInvalidArgument);
  Request r = Greedy("Once upon a time", 0);
  EXPECT_EQ(s->Submit(r).status().code(), StatusCode::kInvalidArgument);
  r.max_tokens = 4;
  r.prompt.push_back(1 << 20);
  EXPECT_EQ(s->Submit(r).status().code(), StatusCode::kInvalidArgument);
  Request lng = Greedy("Once", 4);
  lng.prompt.assign(static_cast<size_t>(model_->config().context_length), 5);
  EXPECT_EQ(s->Submit(lng).status().code(), StatusCode::kInvalidArgument);
  Request bad_sampling = Greedy("Once", 4);
  bad_sampling.sampling.top_p = 2.0f;
  EXPECT_EQ(s->Submit(bad_sampling).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(s->Submit(Greedy("Once", 4)).ok());
  EXPECT_TRUE(s->Submit(Greedy("Twice", 4)).ok());
  EXPECT_EQ(s->Submit(Greedy("Thrice", 4)).status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace slimlm::serve
