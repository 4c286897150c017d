// ReadTokenizerFile, which needs the GGUF reader: the tokenizers inside GGUF files equal the
// llama2.c files they were converted from, and the reader is chosen by content.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/formats/tokenizer_files.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

Metadata Read(const std::string& relative, int n_vocab = 0) {
  Metadata md;
  Status s = ReadTokenizerFile(testing::SharedDataPath(relative), n_vocab, &md);
  EXPECT_TRUE(s.ok()) << s.message();
  return md;
}

// The same vocabulary: tokens, scores and types.
void ExpectSameVocabulary(const Metadata& a, const Metadata& b) {
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores"}) {
    ASSERT_NE(a.Find(key), nullptr) << key;
    ASSERT_NE(b.Find(key), nullptr) << key;
    EXPECT_TRUE(*a.Find(key) == *b.Find(key)) << key;
  }
  EXPECT_EQ(a.Find("tokenizer.ggml.token_type")->AsIntArray(),
            b.Find("tokenizer.ggml.token_type")->AsIntArray());
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.bos_token_id",
                          "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"}) {
    EXPECT_EQ(a.GetString(key), b.GetString(key)) << key;
    EXPECT_EQ(a.GetInt(key), b.GetInt(key)) << key;
  }
}

TEST(TokenizerFiles, Tok512EqualsTheVocabularyInStories260KGguf) {
  SLIMLM_REQUIRE_SHARED_DATA("models/stories260K/stories260K.gguf");
  ExpectSameVocabulary(Read("models/stories260K/tok512.bin", 512),
                       Read("models/stories260K/stories260K.gguf"));
}

TEST(TokenizerFiles, Llama2BinEqualsTheLlamaSpmGguf) {
  SLIMLM_REQUIRE_SHARED_DATA("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf");
  ExpectSameVocabulary(Read("tokenizers/llama2/tokenizer.bin"),
                       Read("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf"));
}

TEST(TokenizerFiles, CopiesOnlyTokenizerKeysFromGguf) {
  SLIMLM_REQUIRE_SHARED_DATA("models/stories260K/stories260K.gguf");
  const Metadata md = Read("models/stories260K/stories260K.gguf");
  EXPECT_FALSE(md.entries().empty());
  for (const auto& [key, value] : md.entries()) {
    EXPECT_EQ(key.rfind("tokenizer.", 0), 0u) << key;
  }
}

TEST(TokenizerFiles, ChoosesTheReaderByContent) {
  SLIMLM_REQUIRE_SHARED_DATA("tokenizers/hf/gpt2/tokenizer.json");
  EXPECT_EQ(Read("tokenizers/hf/gpt2/tokenizer.json").GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(Read("tokenizers/hf/gpt2").GetString("tokenizer.ggml.model"), "gpt2");  // a folder
  EXPECT_EQ(Read("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf").GetString("tokenizer.ggml.pre"),
            "gpt-2");
  EXPECT_EQ(Read("models/stories260K/tok512.bin", 512).GetString("tokenizer.ggml.model"), "llama");
  Metadata md;
  EXPECT_EQ(ReadTokenizerFile(testing::SharedDataPath("tokenizers"), 0, &md).code(),
            StatusCode::kNotFound);
  EXPECT_FALSE(ReadTokenizerFile("/nonexistent/tokenizer.model", 0, &md).ok());
}

}  // namespace
}  // namespace slimlm
