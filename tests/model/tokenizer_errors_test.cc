// Tokenizer::FromMetadata on inconsistent keys, and Encode/Decode on ids and text that do not
// fit: errors with clear messages, never a crash.
#include <cmath>
#include <string>

#include "model/tokenizer_test_support.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm {
namespace {

using testing::TinyBpeMetadata;
using testing::TinySpmMetadata;

// The error of FromMetadata, which must fail.
Status BuildError(const Metadata& md) {
  auto tokenizer = Tokenizer::FromMetadata(md);
  EXPECT_FALSE(tokenizer.ok());
  return tokenizer.status();
}

TEST(TokenizerErrors, NamesMissingKeys) {
  Status s = BuildError(Metadata());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("tokenizer.ggml.model"), std::string::npos) << s.message();
  Metadata md = TinySpmMetadata();
  md.Erase("tokenizer.ggml.tokens");
  s = BuildError(md);
  EXPECT_NE(s.message().find("tokenizer.ggml.tokens"), std::string::npos) << s.message();
}

TEST(TokenizerErrors, RejectsUnknownModelsAndPreTokenizers) {
  Metadata md = TinySpmMetadata();
  md.Set("tokenizer.ggml.model", MetaValue::String("bert"));
  Status s = BuildError(md);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("'bert'"), std::string::npos) << s.message();
  md = TinyBpeMetadata();
  md.Set("tokenizer.ggml.pre", MetaValue::String("deepseek-coder"));
  s = BuildError(md);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("'deepseek-coder'"), std::string::npos) << s.message();
}

TEST(TokenizerErrors, RejectsBadMerges) {
  Metadata md = TinyBpeMetadata();
  md.Set("tokenizer.ggml.merges", MetaValue::StringArray({"Ġ a", "ab"}));
  Status s = BuildError(md);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_NE(s.message().find("merges[1] 'ab'"), std::string::npos) << s.message();
  md.Set("tokenizer.ggml.merges", MetaValue::StringArray({"Ġ zz"}));
  s = BuildError(md);
  EXPECT_NE(s.message().find("'zz' is not a token"), std::string::npos) << s.message();
  md.Set("tokenizer.ggml.merges", MetaValue::StringArray({"b c"}));  // "bc" is no token
  s = BuildError(md);
  EXPECT_NE(s.message().find("'bc' is not a token"), std::string::npos) << s.message();
}

TEST(TokenizerErrors, RejectsInconsistentArraysAndIds) {
  Metadata md = TinySpmMetadata();
  md.Set("tokenizer.ggml.scores", MetaValue::F32Array({1.0f, 2.0f}));
  EXPECT_NE(BuildError(md).message().find("tokenizer.ggml.scores has 2 entries"),
            std::string::npos);
  md = TinySpmMetadata();
  std::vector<float> scores(TinySpmMetadata().Find("tokenizer.ggml.tokens")->array_size(), 0.0f);
  scores[5] = std::nanf("");
  md.Set("tokenizer.ggml.scores", MetaValue::F32Array(scores));
  EXPECT_NE(BuildError(md).message().find("score of token 5"), std::string::npos);
  md = TinySpmMetadata();
  std::vector<int32_t> types(scores.size(), 1);
  types[7] = 9;
  md.Set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
  EXPECT_NE(BuildError(md).message().find("token 7 has type 9"), std::string::npos);
  md = TinySpmMetadata();
  md.Set("tokenizer.ggml.bos_token_id", MetaValue::U32(100000));
  EXPECT_NE(BuildError(md).message().find("bos_token_id = 100000"), std::string::npos);
}

TEST(TokenizerErrors, OutOfRangeIdsDecodeToNothing) {
  auto tokenizer = Tokenizer::FromMetadata(TinySpmMetadata());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  const Tokenizer& tok = **tokenizer;
  EXPECT_EQ(tok.TokenToPiece(-1), "");
  EXPECT_EQ(tok.TokenToPiece(1 << 30, true), "");
  EXPECT_EQ(tok.TokenText(-5), "");
  EXPECT_EQ(tok.token_type(99999), TokenType::kUndefined);
  EXPECT_FALSE(tok.IsEndOfGeneration(-1));
  EXPECT_EQ(tok.Decode(std::vector<int32_t>{-1, 99999, tok.FindToken("▁a")}), "a");
}

TEST(TokenizerErrors, TinyVocabulariesEncodeAsExpected) {
  auto spm = Tokenizer::FromMetadata(TinySpmMetadata());
  ASSERT_TRUE(spm.ok()) << spm.status().message();
  auto id = [&](const char* text) { return (*spm)->FindToken(text); };
  // "▁a" (-5) merges before "ab" (-6), then "▁a" + "b" makes "▁ab".
  EXPECT_EQ((*spm)->Encode("ab", false, false), (std::vector<int32_t>{id("▁ab")}));
  // "▁c" and "ca" are no pieces: only "ab" merges.
  EXPECT_EQ((*spm)->Encode("cab", false, false),
            (std::vector<int32_t>{id("▁"), id("c"), id("ab")}));
  auto bpe = Tokenizer::FromMetadata(TinyBpeMetadata());
  ASSERT_TRUE(bpe.ok()) << bpe.status().message();
  EXPECT_EQ((*bpe)->Encode(" ab<|end|>", false, true), (std::vector<int32_t>{256, 'b', 258}));
  EXPECT_EQ((*bpe)->Encode("ab", false, false), (std::vector<int32_t>{257}));
  EXPECT_EQ((*bpe)->Decode(std::vector<int32_t>{256, 'b', 258}), " ab");
  EXPECT_TRUE((*bpe)->IsEndOfGeneration(258));
}

}  // namespace
}  // namespace slimlm
