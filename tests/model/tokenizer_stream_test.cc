// StreamingDecoder: characters split across tokens come out whole, invalid bytes as U+FFFD.
#include <string>
#include <vector>

#include "model/tokenizer_test_support.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";

int32_t Byte(uint8_t b) { return 3 + b; }  // <0xNN> ids of TinySpmMetadata

std::unique_ptr<Tokenizer> Tiny() {
  auto tokenizer = Tokenizer::FromMetadata(testing::TinySpmMetadata());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

// Feeds ids one at a time and returns what each Add returned, then the Flush.
std::vector<std::string> Stream(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  StreamingDecoder decoder(tokenizer);
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(decoder.Add(id));
  out.push_back(decoder.Flush());
  return out;
}

TEST(TokenizerStreamingDecoder, HoldsBackATwoByteCharacterUntilComplete) {
  auto tokenizer = Tiny();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(Stream(*tokenizer, {Byte(0xC3), Byte(0xA9)}), (std::vector<std::string>{"", "é", ""}));
}

TEST(TokenizerStreamingDecoder, HoldsBackAFourByteEmojiAcrossFourTokens) {
  auto tokenizer = Tiny();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(Stream(*tokenizer, {Byte(0xF0), Byte(0x9F), Byte(0xA6), Byte(0x99), Byte('!')}),
            (std::vector<std::string>{"", "", "", "🦙", "!", ""}));
}

TEST(TokenizerStreamingDecoder, ReplacesInvalidBytesAtOnce) {
  auto tokenizer = Tiny();
  ASSERT_NE(tokenizer, nullptr);
  // 0xFF never starts a character; 0x80 cannot start one either.
  EXPECT_EQ(Stream(*tokenizer, {Byte(0xFF), Byte(0x80), Byte('x')}),
            (std::vector<std::string>{kReplacement, kReplacement, "x", ""}));
  // An overlong form (C0 80) and a surrogate (ED A0 80) are invalid too.
  EXPECT_EQ(Stream(*tokenizer, {Byte(0xC0), Byte(0x80)}),
            (std::vector<std::string>{kReplacement, kReplacement, ""}));
  // ED alone may still begin a character; ED A0 cannot.
  EXPECT_EQ(Stream(*tokenizer, {Byte(0xED), Byte(0xA0)}),
            (std::vector<std::string>{"", std::string(kReplacement) + kReplacement, ""}));
}

TEST(TokenizerStreamingDecoder, ReplacesATruncatedCharacterOnce) {
  auto tokenizer = Tiny();
  ASSERT_NE(tokenizer, nullptr);
  // E2 82 is the start of "€" (E2 82 AC); a plain letter after it ends it unfinished: one
  // U+FFFD for the maximal invalid subpart, then the letter.
  EXPECT_EQ(Stream(*tokenizer, {Byte(0xE2), Byte(0x82), Byte('a')}),
            (std::vector<std::string>{"", "", std::string(kReplacement) + "a", ""}));
}

TEST(TokenizerStreamingDecoder, FlushReplacesWhatIsStillHeldBack) {
  auto tokenizer = Tiny();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(Stream(*tokenizer, {Byte('a'), Byte(0xF0), Byte(0x9F)}),
            (std::vector<std::string>{"a", "", "", kReplacement}));
}

TEST(TokenizerStreamingDecoder, DropsTheDummyPrefixOfTheFirstWordOnly) {
  auto tokenizer = Tiny();
  ASSERT_NE(tokenizer, nullptr);
  const int32_t space_a = tokenizer->FindToken("▁a");
  ASSERT_GE(space_a, 0);
  EXPECT_EQ(Stream(*tokenizer, {1, space_a, space_a}),
            (std::vector<std::string>{"", "a", " a", ""}));
}

TEST(TokenizerStreamingDecoder, ConcatenationEqualsDecode) {
  auto tokenizer = Tiny();
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = " ab é 中文 🦙 a";
  const std::vector<int32_t> ids = tokenizer->Encode(text, true, false);
  std::string streamed;
  for (const std::string& piece : Stream(*tokenizer, ids)) streamed += piece;
  EXPECT_EQ(streamed, tokenizer->Decode(ids));
  EXPECT_EQ(streamed, text);
}

}  // namespace
}  // namespace slimlm
