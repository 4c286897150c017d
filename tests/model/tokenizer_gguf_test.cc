// The tokenizers read from GGUF vocabularies (llama.cpp's ggml-vocab files and the stories260K
// model) against llama.cpp's test vectors. Kept apart because they need the GGUF reader.
#include "model/tokenizer_test_support.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm {
namespace {

std::unique_ptr<Tokenizer> FromGguf(const std::string& relative) {
  Metadata md;
  Status s = ReadTokenizerFile(testing::SharedDataPath(relative), 0, &md);
  EXPECT_TRUE(s.ok()) << s.message();
  auto tokenizer = Tokenizer::FromMetadata(md);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

TEST(GgufTokenizer, LlamaSpmMatchesTestVectors) {
  SLIMLM_REQUIRE_SHARED_DATA("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf");
  auto tokenizer = FromGguf("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf");
  ASSERT_NE(tokenizer, nullptr);
  const auto cases = testing::LoadGoldenCases("llama-spm");
  testing::ExpectGoldenEncodings(*tokenizer, cases);
  testing::ExpectGoldenDecodings(*tokenizer, cases);
}

TEST(GgufTokenizer, Gpt2MatchesTestVectors) {
  SLIMLM_REQUIRE_SHARED_DATA("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf");
  auto tokenizer = FromGguf("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf");
  ASSERT_NE(tokenizer, nullptr);
  const auto cases = testing::LoadGoldenCases("gpt-2");
  testing::ExpectGoldenEncodings(*tokenizer, cases);
  testing::ExpectGoldenDecodings(*tokenizer, cases);
}

TEST(GgufTokenizer, Stories260KEncodesLikeLlama2c) {
  SLIMLM_REQUIRE_SHARED_DATA("models/stories260K/stories260K.gguf");
  auto tokenizer = FromGguf("models/stories260K/stories260K.gguf");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->Encode("Once upon a time", true, false),
            (std::vector<int32_t>{1, 403, 407, 261, 378}));
}

}  // namespace
}  // namespace slimlm
