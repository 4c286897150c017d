// ReadHfTokenizer on the real GPT-2 and Qwen3 files and on broken ones, and WriteHfTokenizer
// round trips: written files read back to tokenizers that encode the test vectors identically.
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/tokenizer_test_support.h"
#include "slimlm/core/file.h"
#include "slimlm/formats/tokenizer_files.h"
#include "slimlm/model/tokenizer.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using nlohmann::json;

constexpr char kGpt2Json[] = "tokenizers/hf/gpt2/tokenizer.json";
constexpr char kQwen3Json[] = "tokenizers/hf/qwen3/tokenizer.json";
constexpr char kLlama2Bin[] = "tokenizers/llama2/tokenizer.bin";

size_t ArraySize(const Metadata& md, const char* key) {
  const MetaValue* value = md.Find(key);
  return value != nullptr ? value->array_size() : 0;
}

// Writes `text` as tokenizer.json (and the config when given) in a fresh folder.
std::string WriteTokenizerJson(const std::string& text, const std::string& config = "") {
  const std::string dir = testing::MakeTempDir();
  EXPECT_TRUE(WriteFileAtomically(dir + "/tokenizer.json", text).ok());
  if (!config.empty()) {
    EXPECT_TRUE(WriteFileAtomically(dir + "/tokenizer_config.json", config).ok());
  }
  return dir + "/tokenizer.json";
}

// A small valid byte-level tokenizer.json: "a", "b", "ab", "Ġ" and one merge.
json SmallByteLevel() {
  return json::parse(R"({
    "added_tokens": [{"id": 4, "content": "<|end|>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3}, "merges": ["a b"]}
  })");
}

Status ReadError(const std::string& text, const std::string& config = "") {
  Metadata md;
  Status s = ReadHfTokenizer(WriteTokenizerJson(text, config), &md);
  EXPECT_FALSE(s.ok());
  return s;
}

void ExpectMessageHas(const Status& s, const std::string& part) {
  EXPECT_NE(s.message().find(part), std::string::npos) << s.message();
}

TEST(HfTokenizerRead, Gpt2) {
  SLIMLM_REQUIRE_SHARED_DATA(kGpt2Json);
  Metadata md;
  Status s = ReadHfTokenizer(testing::SharedDataPath(kGpt2Json), &md);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(md.GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(md.GetString("tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(ArraySize(md, "tokenizer.ggml.tokens"), 50257u);
  EXPECT_EQ(ArraySize(md, "tokenizer.ggml.merges"), 50000u);
  EXPECT_EQ((*md.Find("tokenizer.ggml.merges")->AsStringArray())[0], "Ġ t");
  EXPECT_EQ(md.GetInt("tokenizer.ggml.bos_token_id"), 50256);
  EXPECT_EQ(md.GetInt("tokenizer.ggml.eos_token_id"), 50256);
  EXPECT_EQ(md.GetBool("tokenizer.ggml.add_bos_token"), false);
  EXPECT_EQ((*md.Find("tokenizer.ggml.token_type")->AsIntArray())[50256], 3);
}

TEST(HfTokenizerRead, Qwen3) {
  SLIMLM_REQUIRE_SHARED_DATA(kQwen3Json);
  Metadata md;
  Status s = ReadHfTokenizer(testing::SharedDataPath(kQwen3Json), &md);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(md.GetString("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(ArraySize(md, "tokenizer.ggml.tokens"), 151669u);
  const auto& tokens = *md.Find("tokenizer.ggml.tokens")->AsStringArray();
  const auto types = *md.Find("tokenizer.ggml.token_type")->AsIntArray();
  EXPECT_EQ(tokens[151644], "<|im_start|>");
  EXPECT_EQ(types[151644], 3);
  EXPECT_EQ(types[151643], 3);
  EXPECT_EQ(types[151667], 4);  // <think> is added but not special
  EXPECT_EQ(md.GetInt("tokenizer.ggml.eos_token_id"), 151645);
  EXPECT_EQ(md.GetInt("tokenizer.ggml.padding_token_id"), 151643);
  EXPECT_FALSE(md.Has("tokenizer.ggml.bos_token_id"));
  EXPECT_NE(md.GetString("tokenizer.chat_template").value_or("").find("<|im_start|>"),
            std::string::npos);
}

TEST(HfTokenizerRead, ReadsBothMergeForms) {
  json j = SmallByteLevel();
  j["model"]["merges"] = json::array({json::array({"a", "b"})});
  Metadata md;
  ASSERT_TRUE(ReadHfTokenizer(WriteTokenizerJson(j.dump()), &md).ok());
  EXPECT_EQ(*md.Find("tokenizer.ggml.merges")->AsStringArray(), std::vector<std::string>{"a b"});
}

TEST(HfTokenizerRead, RejectsMalformedFiles) {
  ExpectMessageHas(ReadError("{\"model\": "), "invalid JSON");
  ExpectMessageHas(ReadError("[1, 2]"), "not a JSON object");
  ExpectMessageHas(ReadError("{}"), "no model");
  json j = SmallByteLevel();
  j["model"]["type"] = "Unigram";
  EXPECT_EQ(ReadError(j.dump()).code(), StatusCode::kUnsupported);
  j = SmallByteLevel();
  j["model"]["vocab"]["a"] = "zero";
  ExpectMessageHas(ReadError(j.dump()), "token 'a' has a bad id");
  j = SmallByteLevel();
  j["model"]["merges"] = {"ab"};
  ExpectMessageHas(ReadError(j.dump()), "bad merge 0 'ab'");
  j["model"]["merges"] = {"a c"};
  ExpectMessageHas(ReadError(j.dump()), "'c' is not in the vocabulary");
  j["model"]["merges"] = {"b a"};
  ExpectMessageHas(ReadError(j.dump()), "'ba' is not in the vocabulary");
  j["model"]["merges"] = json::array({json::array({"a"})});
  ExpectMessageHas(ReadError(j.dump()), "bad merge 0");
  j = SmallByteLevel();
  j["added_tokens"][0]["id"] = 0;
  ExpectMessageHas(ReadError(j.dump()), "id 0 is both");
  j = SmallByteLevel();
  j.erase("model");
  ExpectMessageHas(ReadError(j.dump()), "no model");
  // Deep nesting must not exhaust the stack, in the parser or in our own walk.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  ExpectMessageHas(ReadError("{\"model\": " + deep + "}"), "no model");
  std::string nested;
  for (int i = 0; i < 20000; ++i) nested += R"({"type": "Sequence", "pretokenizers": [)";
  nested += R"({"type": "ByteLevel"})";
  for (int i = 0; i < 20000; ++i) nested += "]}";
  j = SmallByteLevel();
  EXPECT_EQ(ReadError(R"({"model": )" + j["model"].dump() + R"(, "pre_tokenizer": )" + nested + "}")
                .code(),
            StatusCode::kUnsupported);
}

TEST(HfTokenizerRead, NamesUnsupportedPreTokenizers) {
  json j = SmallByteLevel();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  Status s = ReadError(j.dump());
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  ExpectMessageHas(s, "unsupported pre-tokenizer Whitespace");
  j["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
  ExpectMessageHas(ReadError(j.dump()), "Sequence[Split(\\w+), ByteLevel]");
  j = SmallByteLevel();
  j["normalizer"] = {{"type", "NFKC"}};
  ExpectMessageHas(ReadError(j.dump()), "unsupported normalizer NFKC");
}

TEST(HfTokenizerRead, RejectsABrokenConfig) {
  Status s = ReadError(SmallByteLevel().dump(), "{ broken");
  ExpectMessageHas(s, "tokenizer_config.json: not a JSON object");
}

TEST(HfTokenizerRead, EveryTruncationIsAnError) {
  const std::string text = SmallByteLevel().dump();
  for (size_t length = 0; length < text.size(); ++length) {
    Metadata md;
    Status s = ReadHfTokenizer(WriteTokenizerJson(text.substr(0, length)), &md);
    EXPECT_EQ(s.code(), StatusCode::kCorrupt) << length << ": " << s.message();
  }
}

// Reads `relative`, writes it as tokenizer.json, reads that back; returns both tokenizers.
struct RoundTrip {
  Metadata original, written;
  std::string dir;
};
RoundTrip WriteAndReadBack(const std::string& relative) {
  RoundTrip rt;
  const std::string path = testing::SharedDataPath(relative);
  Status s = relative.ends_with(".json") ? ReadHfTokenizer(path, &rt.original)
                                         : ReadLlama2cTokenizer(path, 0, &rt.original);
  EXPECT_TRUE(s.ok()) << s.message();
  rt.dir = testing::MakeTempDir() + "/out";
  s = WriteHfTokenizer(rt.original, rt.dir);
  EXPECT_TRUE(s.ok()) << s.message();
  s = ReadHfTokenizer(rt.dir + "/tokenizer.json", &rt.written);
  EXPECT_TRUE(s.ok()) << s.message();
  return rt;
}

std::unique_ptr<Tokenizer> Build(const Metadata& md) {
  auto tokenizer = Tokenizer::FromMetadata(md);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

TEST(HfTokenizerWrite, LlamaVocabularyRoundTripsThroughMerges) {
  SLIMLM_REQUIRE_SHARED_DATA(kLlama2Bin);
  RoundTrip rt = WriteAndReadBack(kLlama2Bin);
  EXPECT_EQ(rt.written.GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(*rt.written.Find("tokenizer.ggml.tokens")->AsStringArray(),
            *rt.original.Find("tokenizer.ggml.tokens")->AsStringArray());
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
                          "tokenizer.ggml.add_space_prefix"}) {
    EXPECT_EQ(rt.written.GetInt(key), rt.original.GetInt(key)) << key;
  }
  auto tokenizer = Build(rt.written);
  ASSERT_NE(tokenizer, nullptr);
  const auto cases = testing::LoadGoldenCases("llama-spm");
  testing::ExpectGoldenEncodings(*tokenizer, cases);
  testing::ExpectGoldenDecodings(*tokenizer, cases);
  auto config = ReadFileToString(rt.dir + "/tokenizer_config.json");
  ASSERT_TRUE(config.ok());
  const json parsed = json::parse(*config);
  EXPECT_EQ(parsed["bos_token"], "<s>");
  EXPECT_EQ(parsed["add_bos_token"], true);
}

TEST(HfTokenizerWrite, MetaspaceFormReadsTheSame) {
  SLIMLM_REQUIRE_SHARED_DATA(kLlama2Bin);
  RoundTrip rt = WriteAndReadBack(kLlama2Bin);
  // Newer HF files express the same with a Metaspace pre-tokenizer and no normalizer.
  auto text = ReadFileToString(rt.dir + "/tokenizer.json");
  ASSERT_TRUE(text.ok());
  json j = json::parse(*text);
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "first"}};
  Metadata md;
  Status s = ReadHfTokenizer(WriteTokenizerJson(j.dump()), &md);
  ASSERT_TRUE(s.ok()) << s.message();
  auto tokenizer = Build(md);
  ASSERT_NE(tokenizer, nullptr);
  testing::ExpectGoldenEncodings(*tokenizer, testing::LoadGoldenCases("llama-spm"));
}

TEST(HfTokenizerWrite, Gpt2RoundTripsExactly) {
  SLIMLM_REQUIRE_SHARED_DATA(kGpt2Json);
  RoundTrip rt = WriteAndReadBack(kGpt2Json);
  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.merges",
                          "tokenizer.ggml.token_type", "tokenizer.ggml.pre"}) {
    ASSERT_NE(rt.written.Find(key), nullptr) << key;
    EXPECT_TRUE(*rt.written.Find(key) == *rt.original.Find(key)) << key;
  }
  auto tokenizer = Build(rt.written);
  ASSERT_NE(tokenizer, nullptr);
  testing::ExpectGoldenEncodings(*tokenizer, testing::LoadGoldenCases("gpt-2"));
}

TEST(HfTokenizerWrite, Qwen3RoundTripsExactly) {
  SLIMLM_REQUIRE_SHARED_DATA(kQwen3Json);
  RoundTrip rt = WriteAndReadBack(kQwen3Json);
  for (const char* key :
       {"tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type",
        "tokenizer.ggml.pre", "tokenizer.chat_template", "tokenizer.ggml.eos_token_id"}) {
    ASSERT_NE(rt.written.Find(key), nullptr) << key;
    EXPECT_TRUE(*rt.written.Find(key) == *rt.original.Find(key)) << key;
  }
  auto tokenizer = Build(rt.written);
  ASSERT_NE(tokenizer, nullptr);
  testing::ExpectGoldenEncodings(*tokenizer, testing::LoadGoldenCases("qwen2"));
}

TEST(HfTokenizerWrite, RejectsWhatItCannotWrite) {
  const std::string dir = testing::MakeTempDir();
  Status s = WriteHfTokenizer(Metadata(), dir);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  Metadata md = testing::TinySpmMetadata();
  md.Set("tokenizer.ggml.model", MetaValue::String("bert"));
  ExpectMessageHas(WriteHfTokenizer(md, dir), "'bert'");
  md = testing::TinyBpeMetadata();
  md.Set("tokenizer.ggml.pre", MetaValue::String("falcon"));
  ExpectMessageHas(WriteHfTokenizer(md, dir), "'falcon'");
  md = testing::TinyBpeMetadata();
  md.Set("tokenizer.ggml.tokens", MetaValue::StringArray({"ok", "bad\xFF"}));
  md.Erase("tokenizer.ggml.token_type");
  md.Erase("tokenizer.ggml.merges");
  EXPECT_EQ(WriteHfTokenizer(md, dir).code(), StatusCode::kUnsupported);
  EXPECT_FALSE(IsRegularFile(dir + "/tokenizer.json"));
}

TEST(HfTokenizerWrite, TinyVocabulariesRoundTrip) {
  for (const Metadata& original : {testing::TinySpmMetadata(), testing::TinyBpeMetadata()}) {
    const std::string dir = testing::MakeTempDir();
    ASSERT_TRUE(WriteHfTokenizer(original, dir).ok());
    Metadata md;
    Status s = ReadHfTokenizer(dir + "/tokenizer.json", &md);
    ASSERT_TRUE(s.ok()) << s.message();
    auto before = Build(original);
    auto after = Build(md);
    ASSERT_TRUE(before && after);
    for (const char* text : {"ab", "cab", " a b  ab é", "x<|end|>ab"}) {
      EXPECT_EQ(after->Encode(text, true, true), before->Encode(text, true, true)) << text;
    }
  }
}

}  // namespace
}  // namespace slimlm
