// The engine thread: requests submitted from many threads at once each get the greedy text they
// get alone; the scheduler's refusals reach the caller; cancelling ends a request at once and
// frees its blocks; Stop ends everything in flight and refuses what comes after.
#include "slimlm/serve/engine_loop.h"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "slimlm/model/model.h"
#include "support/test_data.h"

namespace slimlm::serve {
namespace {

using namespace std::chrono_literals;

class EngineLoopTest : public ::testing::Test {
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
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    return r;
  }
  // Reads a stream to its end: the text and the last event.
  static std::pair<std::string, Event> Drain(RequestStream& stream) {
    std::string text;
    Event last;
    while (last.finish == FinishReason::kNone) {
      for (Event& e : stream.Wait(1s)) {
        text += e.text;
        if (e.finish != FinishReason::kNone) last = e;
      }
    }
    return {text, last};
  }
  static std::unique_ptr<EngineLoop> Start(SchedulerOptions options = {}) {
    options.n_threads = 1;
    auto loop = EngineLoop::Start(*model_, options);
    SLIMLM_CHECK(loop.ok()) << loop.status().ToString();
    return std::move(*loop);
  }
  static inline Model* model_ = nullptr;
};

TEST_F(EngineLoopTest, ManyThreadsEachGetTheirTextAlone) {
  std::vector<std::string> alone;
  {
    auto loop = Start();
    for (int i = 0; i < 8; ++i) {
      auto stream = loop->Submit(Greedy(fmt::format("Tale {} of a brave {}", i, i), 16 + i));
      ASSERT_TRUE(stream.ok());
      alone.push_back(Drain(**stream).first);
    }
  }
  auto loop = Start();
  std::vector<std::string> together(8);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        auto stream = loop->Submit(Greedy(fmt::format("Tale {} of a brave {}", i, i), 16 + i));
        ASSERT_TRUE(stream.ok());
        auto [text, last] = Drain(**stream);
        together[i] = text;
        EXPECT_EQ(last.finish, FinishReason::kLength);
        EXPECT_EQ(last.completion_tokens, 16 + i);
      });
    }
  }
  EXPECT_EQ(together, alone);
  EXPECT_EQ(loop->stats().in_flight, 0);
  EXPECT_EQ(loop->stats().kv_blocks_used, 0);
}

TEST_F(EngineLoopTest, RefusalsReachTheCaller) {
  SchedulerOptions options;
  options.max_waiting = 0;
  auto loop = Start(options);
  Request empty;
  EXPECT_EQ(loop->Submit(empty).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(loop->Submit(Greedy("Hi", 4)).status().code(), StatusCode::kResourceExhausted);
}

TEST_F(EngineLoopTest, CancelEndsARequestAndFreesItsBlocks) {
  auto loop = Start();
  auto stream = loop->Submit(Greedy("Once upon a time", 250));
  ASSERT_TRUE(stream.ok());
  (*stream)->Wait(1s);  // Some tokens come.
  (*stream)->Cancel();
  auto [text, last] = Drain(**stream);
  EXPECT_EQ(last.finish, FinishReason::kCancelled);
  EXPECT_LT(last.completion_tokens, 250);
  for (int i = 0; i < 100 && loop->stats().in_flight > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(loop->stats().kv_blocks_used, 0);
  EXPECT_EQ(loop->stats().cancelled, 1);
}

TEST_F(EngineLoopTest, StopEndsEverythingAndRefusesMore) {
  auto loop = Start();
  auto stream = loop->Submit(Greedy("Once upon a time", 250));
  ASSERT_TRUE(stream.ok());
  loop->Stop();
  EXPECT_EQ(Drain(**stream).second.finish, FinishReason::kCancelled);
  EXPECT_EQ(loop->Submit(Greedy("Hi", 4)).status().code(), StatusCode::kFailedPrecondition);
  loop->Stop();  // Idempotent.
}

}  // namespace
}  // namespace slimlm::serve
