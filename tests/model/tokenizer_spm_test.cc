// SentencePiece BPE ("llama" vocabularies) against the references: llama.cpp's test vectors
// for the Llama 2 vocabulary and llama2.c's stories260K tokens.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "model/tokenizer_test_support.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm {
namespace {

using testing::LoadGoldenCases;
using testing::LoadSharedTokenizer;

constexpr char kLlama2Bin[] = "tokenizers/llama2/tokenizer.bin";
constexpr char kTok512[] = "models/stories260K/tok512.bin";

nlohmann::json LoadJson(const std::string& relative) {
  auto text = ReadFileToString(testing::SharedDataPath(relative));
  EXPECT_TRUE(text.ok());
  return text.ok() ? nlohmann::json::parse(*text) : nlohmann::json();
}

std::vector<int32_t> Ids(const nlohmann::json& array) { return array.get<std::vector<int32_t>>(); }

TEST(SpmTokenizer, MatchesLlamaSpmTestVectors) {
  SLIMLM_REQUIRE_SHARED_DATA(kLlama2Bin);
  auto tokenizer = LoadSharedTokenizer(kLlama2Bin, 32000);
  ASSERT_NE(tokenizer, nullptr);
  testing::ExpectGoldenEncodings(*tokenizer, LoadGoldenCases("llama-spm"));
}

TEST(SpmTokenizer, DecodesLlamaSpmTestVectorsBackToText) {
  SLIMLM_REQUIRE_SHARED_DATA(kLlama2Bin);
  auto tokenizer = LoadSharedTokenizer(kLlama2Bin, 32000);
  ASSERT_NE(tokenizer, nullptr);
  testing::ExpectGoldenDecodings(*tokenizer, LoadGoldenCases("llama-spm"));
}

TEST(SpmTokenizer, EncodesOnceUponATimeLikeLlama2c) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  auto tokenizer = LoadSharedTokenizer(kTok512, 512);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("Once upon a time", true, false),
            (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_TRUE(tokenizer->IsEndOfGeneration(2));
  EXPECT_TRUE(tokenizer->IsControl(1));
}

TEST(SpmTokenizer, MatchesTheStoryReferenceTokens) {
  SLIMLM_REQUIRE_SHARED_DATA("models/stories260K/reference/tinystories_valid_story0_nll.json");
  auto tokenizer = LoadSharedTokenizer(kTok512, 512);
  ASSERT_NE(tokenizer, nullptr);
  const nlohmann::json reference =
      LoadJson("models/stories260K/reference/tinystories_valid_story0_nll.json");
  const std::string text = reference["text"].get<std::string>();
  const std::vector<int32_t> expected = Ids(reference["tokens"]);
  EXPECT_EQ(tokenizer->Encode(text, true, false), expected);
  EXPECT_EQ(tokenizer->Decode(expected), text);
}

TEST(SpmTokenizer, DecodesTheGreedyReferences) {
  SLIMLM_REQUIRE_SHARED_DATA("models/stories260K/reference/greedy.json");
  auto tokenizer = LoadSharedTokenizer(kTok512, 512);
  ASSERT_NE(tokenizer, nullptr);
  const nlohmann::json reference = LoadJson("models/stories260K/reference/greedy.json");
  int checked = 0;
  for (const auto& [name, run] : reference.items()) {
    if (!run.is_object() || !run.contains("tokens")) continue;
    EXPECT_EQ(tokenizer->Decode(Ids(run["tokens"])), run["text"].get<std::string>()) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(SpmTokenizer, FallsBackToBytesForUnknownCharacters) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  auto tokenizer = LoadSharedTokenizer(kTok512, 512);
  ASSERT_NE(tokenizer, nullptr);
  // tok512 has no "中" or "🦙": their UTF-8 bytes come out as <0xNN> tokens (byte b is id b+3).
  const std::vector<int32_t> ids = tokenizer->Encode("中🦙", false, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{tokenizer->FindToken("▁"), 0xE4 + 3, 0xB8 + 3, 0xAD + 3,
                                       0xF0 + 3, 0x9F + 3, 0xA6 + 3, 0x99 + 3}));
  EXPECT_EQ(tokenizer->Decode(ids), "中🦙");
  EXPECT_EQ(tokenizer->TokenToPiece(0xC3 + 3), "\xC3");
}

TEST(SpmTokenizer, ParsesSpecialTokensOnlyWhenAsked) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  auto tokenizer = LoadSharedTokenizer(kTok512, 512);
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<int32_t> parsed = tokenizer->Encode("a</s>b", false, true);
  // The text after a special token gets the dummy prefix again, as in llama.cpp.
  std::vector<int32_t> expected = tokenizer->Encode("a", false, false);
  expected.push_back(2);
  for (int32_t id : tokenizer->Encode("b", false, false)) expected.push_back(id);
  EXPECT_EQ(parsed, expected);
  const std::vector<int32_t> plain = tokenizer->Encode("a</s>b", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(tokenizer->Decode(plain), "a</s>b");
  EXPECT_EQ(tokenizer->Decode(parsed), "a b");
  EXPECT_EQ(tokenizer->Decode(parsed, /*render_special=*/true), "a</s> b");
}

TEST(SpmTokenizer, StripsOnlyTheFirstDummyPrefix) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  auto tokenizer = LoadSharedTokenizer(kTok512, 512);
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<int32_t> ids = tokenizer->Encode(" a  b ", true, false);
  EXPECT_EQ(tokenizer->Decode(ids), " a  b ");
  EXPECT_EQ(tokenizer->TokenToPiece(ids[1]).substr(0, 1), " ");
  EXPECT_TRUE(tokenizer->Encode("", false, false).empty());
  EXPECT_EQ(tokenizer->Encode("", true, false), (std::vector<int32_t>{1}));
}

TEST(SpmTokenizer, HandlesInvalidUtf8AndNulBytes) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  auto tokenizer = LoadSharedTokenizer(kTok512, 512);
  ASSERT_NE(tokenizer, nullptr);
  const std::string text("a\xFF\x80\xE2\x96 \0b", 8);
  const std::vector<int32_t> ids = tokenizer->Encode(text, false, false);
  EXPECT_EQ(tokenizer->Decode(ids), text);
}

}  // namespace
}  // namespace slimlm
