// Multiple-choice scoring: the tasks file format and its errors, templates, the summed
// log-likelihoods against an independent decode, and real accuracy well above chance on items
// made from TinyStories (the true continuation of a story against those of other stories).
#include "slimlm/eval/choice.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/core/file.h"
#include "slimlm/model/context.h"
#include "slimlm/model/tokenizer.h"
#include "support/test_data.h"

namespace slimlm::eval {
namespace {

std::string WriteTasks(const std::string& text) {
  const std::string path = testing::MakeTempDir() + "/tasks.jsonl";
  EXPECT_TRUE(WriteFileAtomically(path, text).ok());
  return path;
}

TEST(ChoiceTasks, ReadsEitherSpellingAndNamesTheBadLine) {
  auto items = ReadChoiceTasks(
      WriteTasks("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 1}\n\n"
                 "{\"ctx\": \"d\", \"endings\": [\"e\", \"f\", \"g\"], \"gold\": \"2\"}\n"));
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].label, 1);
  EXPECT_EQ((*items)[1].context, "d");
  EXPECT_EQ((*items)[1].choices.size(), 3u);
  EXPECT_EQ((*items)[1].label, 2);
  const std::pair<const char*, const char*> bad[] = {
      {"{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 1}\nnot json\n", ":2: not a"},
      {"{\"choices\": [\"b\", \"c\"], \"label\": 0}\n", ":1: no \"context\""},
      {"{\"context\": \"a\", \"choices\": [\"b\"], \"label\": 0}\n", "at least two"},
      {"{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 2}\n", "label 2"},
      {"{\"context\": \"a\", \"choices\": [\"b\", \"c\"]}\n", "no \"label\""},
      {"\n\n", "no items"},
  };
  for (const auto& [text, fragment] : bad) {
    auto r = ReadChoiceTasks(WriteTasks(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(ReadChoiceTasks("/nonexistent/tasks.jsonl").ok());
}

TEST(ChoiceTasks, TemplatesReplaceEveryContextSlot) {
  EXPECT_EQ(*ApplyTemplate("Q: {context}\nA: {context}", "x"), "Q: x\nA: x");
  EXPECT_EQ(*ApplyTemplate("{context}", ""), "");
  EXPECT_FALSE(ApplyTemplate("no slot", "x").ok());
}

constexpr const char* kModel = "models/stories260K/stories260K.gguf";
constexpr const char* kText = "text/tinystories/TinyStories-valid.head.txt";

// Items from the paragraphs of the text: 25 words of context, the next 6 words as the right
// choice, and the same words of three other paragraphs as the wrong ones.
std::vector<ChoiceItem> StoryItems(int n) {
  std::ifstream in(testing::SharedDataPath(kText));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::vector<std::string>> paragraphs;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find("\n\n", at);
    if (end == std::string::npos) end = text.size();
    std::istringstream words(text.substr(at, end - at));
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(word);
    if (w.size() >= 40) paragraphs.push_back(std::move(w));
    at = end + 2;
  }
  auto join = [](const std::vector<std::string>& w, size_t from, size_t to) {
    std::string s;
    for (size_t i = from; i < to; ++i) s += (i > from ? " " : "") + w[i];
    return s;
  };
  std::vector<ChoiceItem> items;
  for (int i = 0; i < n; ++i) {
    ChoiceItem item;
    item.context = join(paragraphs[i], 0, 25);
    for (int k = 0; k < 4; ++k) {
      item.choices.push_back(join(paragraphs[(i + 7 * k) % paragraphs.size()], 25, 31));
    }
    item.label = i % 4;  // Move the right one around.
    std::swap(item.choices[0], item.choices[static_cast<size_t>(item.label)]);
    items.push_back(std::move(item));
  }
  return items;
}

TEST(ChoiceScoring, PicksTheTrueContinuationFarAboveChance) {
  SLIMLM_REQUIRE_SHARED_DATA(kModel);
  SLIMLM_REQUIRE_SHARED_DATA(kText);
  auto model = Model::Load(testing::SharedDataPath(kModel));
  ASSERT_TRUE(model.ok());
  const std::vector<ChoiceItem> items = StoryItems(16);
  ChoiceOptions options;
  options.kv_type = DType::kF32;
  options.n_batch = 7;  // Steps that split the prefixes, to exercise the cached-prefix path.
  auto scores = ScoreChoices(**model, items, {"{context}", "Story:\n\n{context}"}, options,
                             [](int64_t, int64_t) {});
  ASSERT_TRUE(scores.ok()) << scores.status().message();
  ASSERT_EQ(scores->size(), 2u);
  // Chance is 0.25; stories260K gets 0.8 of 60 such items (standard error about 0.05).
  EXPECT_GT((*scores)[0].acc, 0.5);
  EXPECT_GT((*scores)[0].acc_norm, 0.5);
  EXPECT_NEAR((*scores)[0].acc_stderr, std::sqrt((*scores)[0].acc * (1 - (*scores)[0].acc) / 15.0),
              1e-12);

  // Item 0's log-likelihoods, decoded independently, token by token from an empty cache.
  const Tokenizer& tok = *(*model)->tokenizer();
  const std::vector<int32_t> prefix = tok.Encode(items[0].context, true, false);
  for (size_t c = 0; c < items[0].choices.size(); ++c) {
    const std::vector<int32_t> whole =
        tok.Encode(items[0].context + " " + items[0].choices[c], true, false);
    ContextOptions o;
    o.n_ctx = 256;
    o.kv_type_k = o.kv_type_v = DType::kF32;
    auto ctx = Context::Create(**model, o);
    ASSERT_TRUE(ctx.ok());
    double sum = 0;
    for (size_t j = 0; j + 1 < whole.size(); ++j) {
      ASSERT_TRUE((*ctx)->Eval(std::span<const int32_t>(&whole[j], 1)).ok());
      if (j + 1 < prefix.size()) continue;
      std::span<const float> l = (*ctx)->logits();
      double max = l[0], z = 0;
      for (float v : l) max = std::max<double>(max, v);
      for (float v : l) z += std::exp(v - max);
      sum += l[static_cast<size_t>(whole[j + 1])] - max - std::log(z);
    }
    EXPECT_NEAR((*scores)[0].loglik[0][c], sum, 1e-4) << "choice " << c;
  }
}

}  // namespace
}  // namespace slimlm::eval
