// ReadLlama2cTokenizer: llama2.c tokenizer.bin -> GGUF tokenizer keys, and every way the file
// can be broken.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/core/file.h"
#include "slimlm/formats/tokenizer_files.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

constexpr char kTok512[] = "models/stories260K/tok512.bin";
constexpr char kLlama2Bin[] = "tokenizers/llama2/tokenizer.bin";

const std::vector<std::string>& Tokens(const Metadata& md) {
  return *md.Find("tokenizer.ggml.tokens")->AsStringArray();
}

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  const std::string path = testing::MakeTempDir() + "/" + name;
  EXPECT_TRUE(WriteFileAtomically(path, bytes).ok());
  return path;
}

// A tokenizer.bin from (score, bytes) entries.
std::string MakeBin(int32_t max_length, const std::vector<std::pair<float, std::string>>& tokens) {
  std::string out(reinterpret_cast<const char*>(&max_length), 4);
  for (const auto& [score, text] : tokens) {
    const auto length = static_cast<int32_t>(text.size());
    out.append(reinterpret_cast<const char*>(&score), 4);
    out.append(reinterpret_cast<const char*>(&length), 4);
    out += text;
  }
  return out;
}

TEST(Llama2cTokenizer, ReadsTok512InGgufSpelling) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  Metadata md;
  ASSERT_TRUE(ReadLlama2cTokenizer(testing::SharedDataPath(kTok512), 512, &md).ok());
  EXPECT_EQ(md.GetString("tokenizer.ggml.model"), "llama");
  const auto& tokens = Tokens(md);
  ASSERT_EQ(tokens.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(tokens[300], "▁ha");  // " ha" in the file
  const auto types = *md.Find("tokenizer.ggml.token_type")->AsIntArray();
  EXPECT_EQ((std::vector<int64_t>(types.begin(), types.begin() + 4)),
            (std::vector<int64_t>{2, 3, 3, 6}));
  EXPECT_EQ(types[258], 6);
  EXPECT_EQ(types[259], 1);
  const auto scores = *md.Find("tokenizer.ggml.scores")->AsFloatArray();
  EXPECT_EQ(scores[300], -41.0f);
  EXPECT_EQ(md.GetInt("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(md.GetInt("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(md.GetInt("tokenizer.ggml.unknown_token_id"), 0);
  EXPECT_EQ(md.GetBool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(md.GetBool("tokenizer.ggml.add_space_prefix"), true);
}

TEST(Llama2cTokenizer, ReadsToTheEndWhenTheSizeIsUnknown) {
  SLIMLM_REQUIRE_SHARED_DATA(kLlama2Bin);
  Metadata md;
  Status s = ReadLlama2cTokenizer(testing::SharedDataPath(kLlama2Bin), 0, &md);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(Tokens(md).size(), 32000u);
  EXPECT_EQ(Tokens(md)[15043], "▁Hello");
}

TEST(Llama2cTokenizer, ReplacesTheKeysOfAnEarlierTokenizer) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  Metadata md;
  md.Set("general.name", MetaValue::String("kept"));
  md.Set("tokenizer.ggml.merges", MetaValue::StringArray({"a b"}));
  md.Set("tokenizer.chat_template", MetaValue::String("{{ stale }}"));
  // A failed read changes nothing.
  EXPECT_FALSE(ReadLlama2cTokenizer(testing::SharedDataPath(kTok512), 100, &md).ok());
  EXPECT_TRUE(md.Has("tokenizer.ggml.merges"));
  ASSERT_TRUE(ReadLlama2cTokenizer(testing::SharedDataPath(kTok512), 512, &md).ok());
  EXPECT_FALSE(md.Has("tokenizer.ggml.merges"));
  EXPECT_FALSE(md.Has("tokenizer.chat_template"));
  EXPECT_EQ(md.GetString("general.name"), "kept");
  EXPECT_EQ(md.GetString("tokenizer.ggml.model"), "llama");
}

TEST(Llama2cTokenizer, RejectsAVocabularySizeThatDisagrees) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  const std::string path = testing::SharedDataPath(kTok512);
  Metadata md;
  Status s = ReadLlama2cTokenizer(path, 513, &md);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_NE(s.message().find("truncated: token 512"), std::string::npos) << s.message();
  s = ReadLlama2cTokenizer(path, 511, &md);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_NE(s.message().find("left after the 511 tokens"), std::string::npos) << s.message();
  EXPECT_EQ(ReadLlama2cTokenizer(path, -1, &md).code(), StatusCode::kInvalidArgument);
}

TEST(Llama2cTokenizer, EveryTruncationIsAnErrorNamingTheFile) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  auto bytes = ReadFileToString(testing::SharedDataPath(kTok512));
  ASSERT_TRUE(bytes.ok());
  for (size_t length = 0; length < bytes->size(); length += (length < 64 ? 1 : 37)) {
    const std::string path = WriteTemp("cut.bin", bytes->substr(0, length));
    Metadata md;
    Status s = ReadLlama2cTokenizer(path, 512, &md);
    ASSERT_EQ(s.code(), StatusCode::kCorrupt) << "length " << length << ": " << s.message();
    EXPECT_EQ(s.message().rfind(path, 0), 0u) << s.message();
  }
}

TEST(Llama2cTokenizer, BitFlipsNeverCrash) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok512);
  auto bytes = ReadFileToString(testing::SharedDataPath(kTok512));
  ASSERT_TRUE(bytes.ok());
  std::mt19937 rng(7);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string flipped = *bytes;
    const size_t pos = rng() % flipped.size();
    flipped[pos] = static_cast<char>(flipped[pos] ^ (1u << (rng() % 8)));
    const std::string path = WriteTemp("flip.bin", flipped);
    for (int n_vocab : {512, 0}) {
      Metadata md;
      Status s = ReadLlama2cTokenizer(path, n_vocab, &md);
      if (s.ok()) {
        EXPECT_EQ(Tokens(md).size(), n_vocab == 0 ? Tokens(md).size() : 512u);
      } else {
        ++errors;
        EXPECT_EQ(s.code(), StatusCode::kCorrupt) << s.message();
      }
    }
  }
  // Flips in a length field (one in six bytes or so) are caught; flips in text are harmless.
  EXPECT_GT(errors, 0);
}

TEST(Llama2cTokenizer, RejectsBadFields) {
  Metadata md;
  std::string bin = MakeBin(7, {{0, "<unk>"}, {0, "<s>"}, {0, "</s>"}});
  EXPECT_TRUE(ReadLlama2cTokenizer(WriteTemp("ok.bin", bin), 0, &md).ok());
  // A negative length.
  std::string negative = bin;
  const int32_t minus = -5;
  std::memcpy(negative.data() + 8, &minus, 4);
  Status s = ReadLlama2cTokenizer(WriteTemp("neg.bin", negative), 0, &md);
  EXPECT_NE(s.message().find("token 0 has length -5"), std::string::npos) << s.message();
  // A piece longer than max_token_length.
  s = ReadLlama2cTokenizer(WriteTemp("long.bin", MakeBin(2, {{0, "<unk>"}})), 0, &md);
  EXPECT_NE(s.message().find("max_token_length is 2"), std::string::npos) << s.message();
  // A NaN score.
  s = ReadLlama2cTokenizer(WriteTemp("nan.bin", MakeBin(7, {{NAN, "a"}, {0, "b"}, {0, "c"}})), 0,
                           &md);
  EXPECT_NE(s.message().find("token 0 has score nan"), std::string::npos) << s.message();
  // Too few tokens, no header, a zero header.
  s = ReadLlama2cTokenizer(WriteTemp("two.bin", MakeBin(7, {{0, "a"}, {0, "b"}})), 0, &md);
  EXPECT_NE(s.message().find("only 2 tokens"), std::string::npos) << s.message();
  EXPECT_EQ(ReadLlama2cTokenizer(WriteTemp("empty.bin", ""), 0, &md).code(), StatusCode::kCorrupt);
  EXPECT_EQ(ReadLlama2cTokenizer(WriteTemp("zero.bin", MakeBin(0, {})), 0, &md).code(),
            StatusCode::kCorrupt);
  EXPECT_FALSE(ReadLlama2cTokenizer("/nonexistent/tokenizer.bin", 0, &md).ok());
}

}  // namespace
}  // namespace slimlm
