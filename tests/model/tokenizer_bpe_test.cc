// Byte-level BPE ("gpt2" vocabularies) against llama.cpp's test vectors, which HF tokenizers
// produced: GPT-2 and Qwen2 (the Qwen3 tokenizer.json has the same vocabulary and merges).
#include <algorithm>
#include <thread>

#include "model/tokenizer_test_support.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm {
namespace {

using testing::LoadGoldenCases;
using testing::LoadSharedTokenizer;

constexpr char kGpt2Json[] = "tokenizers/hf/gpt2/tokenizer.json";
constexpr char kQwen3Json[] = "tokenizers/hf/qwen3/tokenizer.json";

// Loading the 11 MB Qwen3 file takes a while under sanitizers: once per test binary.
const Tokenizer* Qwen() {
  static std::unique_ptr<Tokenizer> tokenizer = LoadSharedTokenizer(kQwen3Json);
  return tokenizer.get();
}

TEST(BpeTokenizer, MatchesGpt2TestVectors) {
  SLIMLM_REQUIRE_SHARED_DATA(kGpt2Json);
  auto tokenizer = LoadSharedTokenizer(kGpt2Json);
  ASSERT_NE(tokenizer, nullptr);
  const auto cases = LoadGoldenCases("gpt-2");
  testing::ExpectGoldenEncodings(*tokenizer, cases);
  testing::ExpectGoldenDecodings(*tokenizer, cases);
}

TEST(BpeTokenizer, MatchesQwen2TestVectors) {
  SLIMLM_REQUIRE_SHARED_DATA(kQwen3Json);
  ASSERT_NE(Qwen(), nullptr);
  const auto cases = LoadGoldenCases("qwen2");
  testing::ExpectGoldenEncodings(*Qwen(), cases);
  testing::ExpectGoldenDecodings(*Qwen(), cases);
}

TEST(BpeTokenizer, Gpt2HasNoBosAndEndsWithEndOfText) {
  SLIMLM_REQUIRE_SHARED_DATA(kGpt2Json);
  auto tokenizer = LoadSharedTokenizer(kGpt2Json);
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->vocab_size(), 50257);
  EXPECT_EQ(tokenizer->Encode("Hello world", true, false), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tokenizer->eos_id(), 50256);
  EXPECT_TRUE(tokenizer->IsEndOfGeneration(50256));
  EXPECT_EQ(tokenizer->Encode("a<|endoftext|>", false, true), (std::vector<int32_t>{64, 50256}));
  EXPECT_EQ(tokenizer->TokenText(995), "Ġworld");
  EXPECT_EQ(tokenizer->TokenToPiece(995), " world");
}

TEST(BpeTokenizer, QwenParsesChatTokens) {
  SLIMLM_REQUIRE_SHARED_DATA(kQwen3Json);
  ASSERT_NE(Qwen(), nullptr);
  const Tokenizer& qwen = *Qwen();
  const int32_t im_start = qwen.FindToken("<|im_start|>");
  const int32_t im_end = qwen.FindToken("<|im_end|>");
  EXPECT_EQ(im_start, 151644);
  EXPECT_EQ(im_end, 151645);
  const std::string chat = "<|im_start|>user\nHi<|im_end|>";
  const std::vector<int32_t> parsed = qwen.Encode(chat, false, true);
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), im_start);
  EXPECT_EQ(parsed.back(), im_end);
  EXPECT_EQ(qwen.Decode(parsed, /*render_special=*/true), chat);
  EXPECT_EQ(qwen.Decode(parsed), "user\nHi");
  // Without parse_special the markers are plain text.
  const std::vector<int32_t> plain = qwen.Encode(chat, false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), im_start), 0);
  EXPECT_EQ(qwen.Decode(plain), chat);
  EXPECT_TRUE(qwen.IsEndOfGeneration(im_end));
  EXPECT_TRUE(qwen.IsEndOfGeneration(qwen.FindToken("<|endoftext|>")));
  EXPECT_FALSE(qwen.IsEndOfGeneration(im_start));
}

TEST(BpeTokenizer, QwenAlwaysMatchesUserDefinedTokens) {
  SLIMLM_REQUIRE_SHARED_DATA(kQwen3Json);
  ASSERT_NE(Qwen(), nullptr);
  const int32_t think = Qwen()->FindToken("<think>");
  ASSERT_GE(think, 0);
  EXPECT_EQ(Qwen()->token_type(think), TokenType::kUserDefined);
  const std::vector<int32_t> ids = Qwen()->Encode("<think>x", false, false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), think);
  EXPECT_EQ(Qwen()->Decode(ids), "<think>x");
}

TEST(BpeTokenizer, QwenNormalizesToNfc) {
  SLIMLM_REQUIRE_SHARED_DATA(kQwen3Json);
  ASSERT_NE(Qwen(), nullptr);
  // "e" + U+0301 COMBINING ACUTE ACCENT composes to "é" before tokenization.
  EXPECT_EQ(Qwen()->Encode("Caf\x65\xCC\x81", false, false), Qwen()->Encode("Café", false, false));
}

TEST(BpeTokenizer, EncodesEveryByteOfInvalidUtf8) {
  SLIMLM_REQUIRE_SHARED_DATA(kGpt2Json);
  auto tokenizer = LoadSharedTokenizer(kGpt2Json);
  ASSERT_NE(tokenizer, nullptr);
  const std::string text("ab\xFF\xC3 \x80\0\xF0\x9F", 9);
  EXPECT_EQ(tokenizer->Decode(tokenizer->Encode(text, false, false)), text);
  ASSERT_NE(Qwen(), nullptr);
  EXPECT_EQ(Qwen()->Decode(Qwen()->Encode(text, false, false)), text);
}

TEST(BpeTokenizer, LongRunsRoundTrip) {
  SLIMLM_REQUIRE_SHARED_DATA(kGpt2Json);
  auto tokenizer = LoadSharedTokenizer(kGpt2Json);
  ASSERT_NE(tokenizer, nullptr);
  // One 20,000-byte word and one 20,000-byte run of spaces: the merge queue keeps them cheap.
  const std::string text = std::string(20000, 'a') + std::string(20000, ' ') + "b";
  const std::vector<int32_t> ids = tokenizer->Encode(text, false, false);
  EXPECT_LT(ids.size(), text.size() / 4 * 3);
  EXPECT_EQ(tokenizer->Decode(ids), text);
}

TEST(BpeTokenizer, Llama3TakesWholeWordsThatAreTokens) {
  // HF's ignore_merges (Llama 3): a word that is itself a token is not merged from bytes.
  Metadata md = testing::TinyBpeMetadata();
  std::vector<std::string> tokens = *md.Find("tokenizer.ggml.tokens")->AsStringArray();
  tokens.push_back("abc");
  md.Set("tokenizer.ggml.tokens", MetaValue::StringArray(tokens));
  std::vector<int32_t> types(tokens.size(), 1);
  types[258] = 3;
  md.Set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
  auto gpt2 = Tokenizer::FromMetadata(md);
  ASSERT_TRUE(gpt2.ok()) << gpt2.status().message();
  EXPECT_EQ((*gpt2)->Encode("abc", false, false), (std::vector<int32_t>{257, 'c'}));
  md.Set("tokenizer.ggml.pre", MetaValue::String("llama-bpe"));
  auto llama3 = Tokenizer::FromMetadata(md);
  ASSERT_TRUE(llama3.ok()) << llama3.status().message();
  EXPECT_EQ((*llama3)->Encode("abc", false, false), (std::vector<int32_t>{259}));
}

TEST(BpeTokenizer, EncodesFromManyThreadsAtOnce) {
  SLIMLM_REQUIRE_SHARED_DATA(kQwen3Json);
  ASSERT_NE(Qwen(), nullptr);
  const std::string text = "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～ <|im_end|>";
  const std::vector<int32_t> expected = Qwen()->Encode(text, false, true);
  std::vector<std::thread> threads;
  std::vector<int> same(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) same[t] += Qwen()->Encode(text, false, true) == expected;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(same, (std::vector<int>{50, 50, 50, 50}));
}

}  // namespace
}  // namespace slimlm
