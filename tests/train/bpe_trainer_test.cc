// The BPE trainer against slimlm's own SentencePiece-style encoder: the vocabulary layout, exact
// round trips (non-ASCII and byte fallback included), the encoder reproducing the segmentation
// the trainer predicts, golden merges on hand-made texts, determinism and bad input.
#include "slimlm/train/bpe_trainer.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "slimlm/formats/gguf.h"
#include "slimlm/formats/tokenizer_files.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/train/dataset.h"
#include "support/test_data.h"

namespace slimlm::train {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kTinyStories = "text/tinystories/train/tinystories-train-00.txt";

// A small text with what the trainer must handle: repeated words, punctuation, newlines and a
// tab, runs of spaces, leading and trailing spaces, accented letters, CJK, an emoji that occurs
// once (byte fallback) and a byte that is not UTF-8.
std::string BuiltInText() {
  std::string text;
  for (int i = 0; i < 20; ++i) {
    text +=
        "Once upon a time, there was a little cat named Tom. Tom liked to play in the garden.\n"
        "One day, the cat saw a big red ball. \"Look!\" said Tom.\tThe ball was  red.\n\n";
  }
  text += " Le café était très naïve, déjà vu. Ça va? 日本語のテキスト、日本語。\n";
  text += "café café naïve naïve 日本 日本 日本\n";
  text += "An emoji once: \xF0\x9F\x99\x82 and a bad byte: \xFF. End with spaces   ";
  return text;
}

Result<BpeVocabulary> Train(std::string_view text, int32_t vocab_size, int64_t min_pair_count = 2,
                            int64_t min_char_count = 2) {
  BpeTrainerOptions options;
  options.vocab_size = vocab_size;
  options.min_pair_count = min_pair_count;
  options.min_char_count = min_char_count;
  return TrainBpe(std::span(&text, 1), options);
}

std::unique_ptr<Tokenizer> MakeTokenizer(const BpeVocabulary& vocabulary) {
  Metadata metadata;
  SetTokenizerMetadata(vocabulary, &metadata);
  auto tokenizer = Tokenizer::FromMetadata(metadata);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

// The learned pieces (after the reserved tokens and base characters), in merge order.
std::vector<std::string> Merges(const BpeVocabulary& v) {
  return {v.tokens.begin() + kBpeReservedTokens + v.n_base_chars, v.tokens.end()};
}

// Encoding the text gives the trainer's token count, and decoding gives the text back.
void ExpectEncoderAgrees(const BpeVocabulary& vocabulary, std::string_view text) {
  std::unique_ptr<Tokenizer> tokenizer = MakeTokenizer(vocabulary);
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<int32_t> ids = tokenizer->Encode(text, false, false);
  EXPECT_EQ(ids.size(), vocabulary.n_tokens);
  uint64_t bytes = 0;
  for (int32_t id : ids) bytes += tokenizer->token_type(id) == TokenType::kByte;
  EXPECT_EQ(bytes, vocabulary.n_byte_tokens);
  EXPECT_TRUE(tokenizer->Decode(ids) == text) << "round trip failed";
  // With BOS too, as a model sees it.
  const std::vector<int32_t> with_bos = tokenizer->Encode(text, true, false);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos[0], 1);
  EXPECT_TRUE(tokenizer->Decode(with_bos) == text);
}

TEST(BpeTrainer, VocabularyLayout) {
  const std::string text = BuiltInText();
  auto v = Train(text, 350);
  ASSERT_TRUE(v.ok()) << v.status().message();
  ASSERT_EQ(v->tokens.size(), 350u);
  ASSERT_EQ(v->scores.size(), 350u);
  ASSERT_EQ(v->types.size(), 350u);
  EXPECT_EQ(v->tokens[0], "<unk>");
  EXPECT_EQ(v->types[0], TokenType::kUnknown);
  EXPECT_EQ(v->tokens[1], "<s>");
  EXPECT_EQ(v->types[1], TokenType::kControl);
  EXPECT_EQ(v->tokens[2], "</s>");
  EXPECT_EQ(v->types[2], TokenType::kControl);
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(v->tokens[3 + b], fmt::format("<0x{:02X}>", b));
    EXPECT_EQ(v->types[3 + b], TokenType::kByte);
  }
  EXPECT_EQ(v->tokens[kBpeReservedTokens], "\xE2\x96\x81");  // "▁" is always the first character
  EXPECT_EQ(v->n_base_chars + v->n_merges + kBpeReservedTokens, 350);
  for (size_t id = kBpeReservedTokens; id < v->tokens.size(); ++id) {
    EXPECT_EQ(v->types[id], TokenType::kNormal);
  }
  // Learned pieces score -rank; characters score below every merge.
  const size_t first_merge = kBpeReservedTokens + v->n_base_chars;
  for (size_t id = first_merge; id < v->tokens.size(); ++id) {
    EXPECT_EQ(v->scores[id], -static_cast<float>(id - first_merge));
  }
  for (size_t id = kBpeReservedTokens; id < first_merge; ++id) {
    EXPECT_LT(v->scores[id], -static_cast<float>(v->n_merges - 1));
  }
  // Every text is unique, and no piece has a "▁" after another character (the encoder relies on
  // that to encode word by word).
  std::set<std::string> unique(v->tokens.begin(), v->tokens.end());
  EXPECT_EQ(unique.size(), v->tokens.size());
  for (const std::string& piece : Merges(*v)) {
    std::string_view rest = piece;
    while (rest.starts_with("\xE2\x96\x81")) rest.remove_prefix(3);
    EXPECT_EQ(rest.find("\xE2\x96\x81"), std::string_view::npos) << piece;
  }
  // The emoji (once) and the bad byte are not characters of the vocabulary.
  EXPECT_EQ(std::count(v->tokens.begin(), v->tokens.end(), "\xF0\x9F\x99\x82"), 0);
  EXPECT_GT(v->n_byte_tokens, 0u);
}

TEST(BpeTrainer, EncoderReproducesTheTrainingSegmentationAndRoundTrips) {
  const std::string text = BuiltInText();
  for (int32_t vocab_size : {260, 300, 400, 1000}) {
    SCOPED_TRACE(vocab_size);
    auto v = Train(text, vocab_size);
    ASSERT_TRUE(v.ok()) << v.status().message();
    ExpectEncoderAgrees(*v, text);
  }
  // Other texts through the same vocabulary still round-trip exactly.
  auto v = Train(text, 400);
  ASSERT_TRUE(v.ok());
  std::unique_ptr<Tokenizer> tokenizer = MakeTokenizer(*v);
  for (std::string other :
       {"", " ", "Zebra? Ω≈ç√ 🦀🦀 \x80\xC3", "  two  spaces\n\n\tTom  "}) {
    EXPECT_EQ(tokenizer->Decode(tokenizer->Encode(other, true, false)), other);
  }
}

TEST(BpeTrainer, GoldenMergesOnHandMadeTexts) {
  // "▁aaab" x3: "aa" (6 pairs) first; then three pairs of 3 tie and the lowest ids win:
  // "▁"=259 < "a" < "b" < "aa".
  auto v = Train("aaab aaab aaab", 300);
  ASSERT_TRUE(v.ok());
  EXPECT_THAT(Merges(*v), ElementsAre("aa",
                                      "\xE2\x96\x81"
                                      "aa",
                                      "ab",
                                      "\xE2\x96\x81"
                                      "aaab"));
  EXPECT_EQ(v->n_tokens, 3u);
  ExpectEncoderAgrees(*v, "aaab aaab aaab");

  // Counts decide: "ab" (6) before "abc" (2); the text runs out of pairs seen twice before the
  // vocabulary is full.
  v = Train("ab ab ab ab abc abc", 300);
  ASSERT_TRUE(v.ok());
  EXPECT_THAT(Merges(*v), ElementsAre("\xE2\x96\x81"
                                      "a",
                                      "\xE2\x96\x81"
                                      "ab",
                                      "\xE2\x96\x81"
                                      "abc"));
  EXPECT_EQ(v->tokens.size(), static_cast<size_t>(kBpeReservedTokens + 4 + 3));

  // Words end at newlines: no piece spans one.
  v = Train("to\nto\nto\nto", 300, 1);
  ASSERT_TRUE(v.ok());
  for (const std::string& piece : Merges(*v)) EXPECT_EQ(piece.find('\n'), std::string::npos);
  ExpectEncoderAgrees(*v, "to\nto\nto\nto");
}

TEST(BpeTrainer, NeverLearnsTheTextOfAReservedToken) {
  const std::string text = "<s> <s> <s> </s> </s> <0x41> <0x41> <unk> <unk> <s><s>";
  auto v = Train(text, 400, 1, 1);
  ASSERT_TRUE(v.ok());
  std::set<std::string> unique(v->tokens.begin(), v->tokens.end());
  EXPECT_EQ(unique.size(), v->tokens.size());
  for (const std::string& piece : Merges(*v)) {
    EXPECT_NE(piece, "<s>");
    EXPECT_NE(piece, "<0x41>");
  }
  ExpectEncoderAgrees(*v, text);
}

TEST(BpeTrainer, RareCharactersFallBackToBytes) {
  // "é" occurs twice, "ü" once: with min_char_count 2 only "é" is a character token.
  const std::string text = "résumé über tree tree tree";
  auto v = Train(text, 300, 2, 2);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(std::count(v->tokens.begin(), v->tokens.end(), "é"), 1);
  EXPECT_EQ(std::count(v->tokens.begin(), v->tokens.end(), "ü"), 0);
  EXPECT_EQ(v->n_byte_tokens, 6u);  // "s", "u", "m", "b" (once each) and the two bytes of "ü"
  ExpectEncoderAgrees(*v, text);

  // A vocabulary with room for only three characters keeps "▁" and the two most frequent.
  v = Train(text, kBpeReservedTokens + 3, 2, 1);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->n_base_chars, 3);
  EXPECT_EQ(v->n_merges, 0);
  EXPECT_THAT(std::vector<std::string>(v->tokens.begin() + kBpeReservedTokens, v->tokens.end()),
              ElementsAre("\xE2\x96\x81", "e", "r"));
  ExpectEncoderAgrees(*v, text);
}

// Random texts over a small alphabet (many merges, overlapping pairs, byte fallback, newlines,
// invalid bytes): the encoder always reproduces the trainer's segmentation.
TEST(BpeTrainer, EncoderAgreesOnRandomTexts) {
  std::mt19937 rng(7);
  const std::vector<std::string> alphabet = {"a", "b", "c", "a", "b", "a",    " ",  "\n",
                                             "é", "<", "s", ">", "x", "\xFF", "日", "  "};
  for (int iteration = 0; iteration < 300; ++iteration) {
    std::string text;
    const size_t letters = 2 + rng() % alphabet.size();
    const int length = 1 + static_cast<int>(rng() % 300);
    for (int i = 0; i < length; ++i) text += alphabet[rng() % std::min(letters, alphabet.size())];
    auto v = Train(text, 260 + static_cast<int32_t>(rng() % 80), 1 + rng() % 2, 1 + rng() % 3);
    ASSERT_TRUE(v.ok());
    SCOPED_TRACE(text);
    ExpectEncoderAgrees(*v, text);
    if (HasFailure()) return;
  }
}

TEST(BpeTrainer, IsDeterministic) {
  const std::string text = BuiltInText();
  auto a = Train(text, 500);
  auto b = Train(text, 500);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->scores, b->scores);
  Metadata ma, mb;
  SetTokenizerMetadata(*a, &ma);
  SetTokenizerMetadata(*b, &mb);
  EXPECT_TRUE(ma == mb);
}

TEST(BpeTrainer, MetadataWrittenAsGgufReadsBack) {
  const std::string text = BuiltInText();
  auto v = Train(text, 350);
  ASSERT_TRUE(v.ok());
  WeightStore store;
  store.metadata().Set("general.name", MetaValue::String("test"));
  store.metadata().Set("tokenizer.ggml.model", MetaValue::String("gpt2"));  // replaced
  SetTokenizerMetadata(*v, &store.metadata());
  EXPECT_EQ(store.metadata().GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(store.metadata().GetString("general.name"), "test");
  const std::string path = testing::MakeTempDir() + "/tok.gguf";
  ASSERT_TRUE(WriteGguf(store, path).ok());
  Metadata read;
  Status s = ReadTokenizerFile(path, 0, &read);
  ASSERT_TRUE(s.ok()) << s.message();
  auto tokenizer = Tokenizer::FromMetadata(read);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().message();
  EXPECT_EQ((*tokenizer)->vocab_size(), 350);
  EXPECT_EQ((*tokenizer)->bos_id(), 1);
  EXPECT_EQ((*tokenizer)->eos_id(), 2);
  EXPECT_EQ((*tokenizer)->Encode(text, true, true), MakeTokenizer(*v)->Encode(text, true, true));
}

TEST(BpeTrainer, RejectsBadInput) {
  auto v = Train("hello", kBpeReservedTokens);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(v.status().message(), HasSubstr("too small: the minimum is 260"));
  v = Train("hello", kBpeMaxVocabSize + 1);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("too large"));
  v = Train("hello", 300, 2, 0);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("min char count"));
  v = Train("", 300);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("no training text"));

  const std::string dir = testing::MakeTempDir();
  BpeTrainerOptions options;
  options.vocab_size = 300;
  v = TrainBpeFromFiles({dir + "/missing.txt"}, options);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(v.status().message(), HasSubstr("missing.txt"));
  std::ofstream(dir + "/empty.txt").close();
  v = TrainBpeFromFiles({dir + "/empty.txt"}, options);
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(v.status().message(), HasSubstr("empty.txt: the file is empty"));
  v = TrainBpeFromFiles({}, options);
  ASSERT_FALSE(v.ok());
}

TEST(BpeTrainer, MaxTextBytesCutsAtACharacterBoundary) {
  const std::string dir = testing::MakeTempDir();
  std::ofstream(dir + "/a.txt") << "ab ab ab é";  // "é" is bytes 9 and 10
  BpeTrainerOptions options;
  options.vocab_size = 300;
  options.max_text_bytes = 10;
  auto v = TrainBpeFromFiles({dir + "/a.txt"}, options);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->text_bytes, 9u);
  // The budget spans the files: 9 bytes of the first, 1 of the second.
  v = TrainBpeFromFiles({dir + "/a.txt", dir + "/a.txt"}, options);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->text_bytes, 10u);
}

TEST(BpeTrainer, TinyStoriesTrainsFastAndTheEncoderAgrees) {
  SLIMLM_REQUIRE_SHARED_DATA(kTinyStories);
  BpeTrainerOptions options;
  options.vocab_size = 2048;
  // A third of the file keeps this quick in sanitizer builds; the whole file is timed in
  // docs/tokenizers.md.
  options.max_text_bytes = 2'000'000;
  auto v = TrainBpeFromFiles({testing::SharedDataPath(kTinyStories)}, options);
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->tokens.size(), 2048u);
  // TinyStories is plain English: the first merges are common English pairs.
  const std::vector<std::string> merges = Merges(*v);
  EXPECT_THAT(std::vector<std::string>(merges.begin(), merges.begin() + 3),
              ElementsAre("he", "\xE2\x96\x81t",
                          "\xE2\x96\x81"
                          "a"));
  std::ifstream in(testing::SharedDataPath(kTinyStories), std::ios::binary);
  std::string text(options.max_text_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  size_t cut = static_cast<size_t>(in.gcount());
  while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  // The trainer learns from the documents between the "<|endoftext|>" lines, each encoded on
  // its own, and none of its pieces spells part of the separator.
  std::unique_ptr<Tokenizer> tokenizer = MakeTokenizer(*v);
  ASSERT_NE(tokenizer, nullptr);
  uint64_t doc_bytes = 0, doc_tokens = 0;
  for (std::string_view doc : SplitDocuments(text)) {
    doc_bytes += doc.size();
    doc_tokens += tokenizer->Encode(doc, false, false).size();
  }
  EXPECT_EQ(doc_bytes, v->text_bytes);
  EXPECT_EQ(doc_tokens, v->n_tokens);
  EXPECT_LT(doc_bytes, text.size());
  for (const std::string& piece : v->tokens) {
    EXPECT_EQ(piece.find("oftext"), std::string::npos) << piece;
  }
  // About 3.8 bytes per token at this size (docs/tokenizers.md).
  const double bytes_per_token = static_cast<double>(v->text_bytes) / v->n_tokens;
  EXPECT_GT(bytes_per_token, 3.0);
}

}  // namespace
}  // namespace slimlm::train
