// Shared by the tokenizer tests: llama.cpp's tokenizer test vectors (ggml-vocab-*.gguf.inp and
// .out in ../shared/data/tokenizers/ggml-vocab), loaders for the tokenizer files there, and a
// tiny built-in vocabulary for tests that need no shared data.
#ifndef SLIMLM_TESTS_MODEL_TOKENIZER_TEST_SUPPORT_H_
#define SLIMLM_TESTS_MODEL_TOKENIZER_TEST_SUPPORT_H_

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/core/file.h"
#include "slimlm/formats/tokenizer_files.h"
#include "slimlm/model/tokenizer.h"
#include "support/test_data.h"

namespace slimlm::testing {

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;  // without BOS
};

// The cases of ggml-vocab-<name>.gguf.inp/.out: texts separated by "\n__ggml_vocab_test__\n"
// (each text is followed by one), and one line of space-separated ids per text.
inline std::vector<GoldenCase> LoadGoldenCases(const std::string& name) {
  const std::string base = "tokenizers/ggml-vocab/ggml-vocab-" + name + ".gguf";
  auto inp = ReadFileToString(SharedDataPath(base + ".inp"));
  auto out = ReadFileToString(SharedDataPath(base + ".out"));
  if (!inp.ok() || !out.ok()) {
    ADD_FAILURE() << "cannot read " << base << ".inp/.out";
    return {};
  }
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<GoldenCase> cases;
  for (size_t pos = 0; pos < inp->size();) {
    size_t next = inp->find(separator, pos);
    if (next == std::string::npos) next = inp->size();
    cases.push_back(GoldenCase{inp->substr(pos, next - pos), {}});
    pos = next + separator.size();
  }
  std::istringstream lines(*out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    if (i >= cases.size()) {
      ADD_FAILURE() << base << ".out has more lines than .inp has texts";
      break;
    }
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[i].ids.push_back(id);
    ++i;
  }
  EXPECT_EQ(i, cases.size()) << base << ": .out lines vs .inp texts";
  return cases;
}

inline std::string IdsToString(const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) {
    out += ' ';
    out += std::to_string(id);
  }
  return out;
}

// Encodes every case as llama.cpp's test-tokenizer-0 does (no BOS, special tokens not parsed)
// and expects the reference ids exactly.
inline void ExpectGoldenEncodings(const Tokenizer& tokenizer,
                                  const std::vector<GoldenCase>& cases) {
  ASSERT_FALSE(cases.empty());
  int matched = 0;
  for (const GoldenCase& c : cases) {
    const std::vector<int32_t> ids = tokenizer.Encode(c.text, /*add_special=*/false,
                                                      /*parse_special=*/false);
    if (ids == c.ids) {
      ++matched;
    } else {
      ADD_FAILURE() << "text '" << c.text << "'\n  expected:" << IdsToString(c.ids)
                    << "\n  got:     " << IdsToString(ids);
    }
  }
  EXPECT_EQ(matched, static_cast<int>(cases.size()));
}

// Decoding each reference line gives back its text.
inline void ExpectGoldenDecodings(const Tokenizer& tokenizer,
                                  const std::vector<GoldenCase>& cases) {
  ASSERT_FALSE(cases.empty());
  for (const GoldenCase& c : cases) {
    EXPECT_EQ(tokenizer.Decode(c.ids), c.text) << "ids" << IdsToString(c.ids);
  }
}

// Builds a tokenizer from a llama2.c tokenizer.bin or an HF tokenizer.json under shared data.
inline std::unique_ptr<Tokenizer> LoadSharedTokenizer(const std::string& relative,
                                                      int n_vocab = 0) {
  Metadata metadata;
  const std::string path = SharedDataPath(relative);
  const bool json = relative.size() > 5 && relative.substr(relative.size() - 5) == ".json";
  Status status =
      json ? ReadHfTokenizer(path, &metadata) : ReadLlama2cTokenizer(path, n_vocab, &metadata);
  EXPECT_TRUE(status.ok()) << status.message();
  if (!status.ok()) return nullptr;
  auto tokenizer = Tokenizer::FromMetadata(metadata);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  if (!tokenizer.ok()) return nullptr;
  return std::move(*tokenizer);
}

// A tiny SentencePiece vocabulary: <unk>, <s>, </s>, the 256 byte tokens <0x00>.. (ids 3..258),
// then "▁" (259), "a", "b", "c", "▁a", "ab", "▁ab", "é" with scores that favour longer pieces.
inline Metadata TinySpmMetadata() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char text[8];
    std::snprintf(text, sizeof(text), "<0x%02X>", b);
    tokens.push_back(text);
    types.push_back(6);
    scores.push_back(0);
  }
  const std::pair<const char*, float> pieces[] = {{"▁", -1},  {"a", -2},  {"b", -3},   {"c", -4},
                                                  {"▁a", -5}, {"ab", -6}, {"▁ab", -7}, {"é", -8}};
  for (const auto& [text, score] : pieces) {
    tokens.push_back(text);
    types.push_back(1);
    scores.push_back(score);
  }
  Metadata md;
  md.Set("tokenizer.ggml.model", MetaValue::String("llama"));
  md.Set("tokenizer.ggml.tokens", MetaValue::StringArray(tokens));
  md.Set("tokenizer.ggml.scores", MetaValue::F32Array(scores));
  md.Set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
  md.Set("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
  md.Set("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
  md.Set("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));
  return md;
}

// A tiny byte-level vocabulary: the 256 characters of GPT-2's byte alphabet (ids 0..255 by
// byte), "Ġa" (256) and "ab" (257) from two merges, and <|end|> (258) as a control token.
inline Metadata TinyBpeMetadata() {
  std::vector<std::string> tokens;
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    const uint32_t cp = printable ? b : next++;
    std::string text;
    if (cp < 0x80) {
      text.push_back(static_cast<char>(cp));
    } else {
      text.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      text.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    tokens.push_back(text);
  }
  tokens.push_back("Ġa");
  tokens.push_back("ab");
  tokens.push_back("<|end|>");
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  Metadata md;
  md.Set("tokenizer.ggml.model", MetaValue::String("gpt2"));
  md.Set("tokenizer.ggml.pre", MetaValue::String("gpt-2"));
  md.Set("tokenizer.ggml.tokens", MetaValue::StringArray(tokens));
  md.Set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
  md.Set("tokenizer.ggml.merges", MetaValue::StringArray({"Ġ a", "a b"}));
  md.Set("tokenizer.ggml.eos_token_id", MetaValue::U32(258));
  return md;
}

}  // namespace slimlm::testing

#endif  // SLIMLM_TESTS_MODEL_TOKENIZER_TEST_SUPPORT_H_
