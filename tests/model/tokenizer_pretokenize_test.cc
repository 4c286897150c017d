// The hand-written pre-tokenizer matchers on strings where the regexes' alternation order,
// backtracking and lookahead decide the split. The expected pieces are what the reference
// regexes give (checked against Python's `regex` module, which implements \p{..} like
// Oniguruma, on these and on 20,000 random strings while writing the matchers).
#include "model/tokenizer_pretokenize.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace slimlm {
namespace {

std::vector<std::string> Split(PreTokenizer kind, std::string_view text) {
  std::vector<std::string_view> pieces;
  PreTokenize(kind, text, &pieces);
  std::string joined;
  for (std::string_view piece : pieces) joined += piece;
  EXPECT_EQ(joined, text) << "pieces must cover the text exactly";
  return {pieces.begin(), pieces.end()};
}

using Pieces = std::vector<std::string>;

TEST(PreTokenize, Gpt2Contractions) {
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "I've been 'told he's"),
            (Pieces{"I", "'ve", " been", " '", "told", " he", "'s"}));
  // Case-sensitive: "'VE" is punctuation then letters.
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "WE'VE"), (Pieces{"WE", "'", "VE"}));
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "'''s"), (Pieces{"'''", "s"}));
}

TEST(PreTokenize, Gpt2SpacesBeforeWords) {
  // A run of spaces leaves its last space to the next word; trailing spaces stay one piece.
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "   Hello  "), (Pieces{"  ", " Hello", "  "}));
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "a\n\nb"), (Pieces{"a", "\n", "\n", "b"}));
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "\t\tx"), (Pieces{"\t", "\t", "x"}));
  EXPECT_EQ(Split(PreTokenizer::kGpt2, " (x) "), (Pieces{" (", "x", ")", " "}));
}

TEST(PreTokenize, Gpt2Digits) {
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "w048 7tuijk 3.14"),
            (Pieces{"w", "048", " 7", "tuijk", " 3", ".", "14"}));
}

TEST(PreTokenize, Llama3GroupsDigitsByThree) {
  EXPECT_EQ(Split(PreTokenizer::kLlama3, "1314151 22"), (Pieces{"131", "415", "1", " ", "22"}));
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "1314"), (Pieces{"1", "3", "1", "4"}));
}

TEST(PreTokenize, Llama3ContractionsIgnoreCase) {
  EXPECT_EQ(Split(PreTokenizer::kLlama3, "WE'VE 'Ll"), (Pieces{"WE", "'VE", " '", "Ll"}));
  // U+017F LATIN SMALL LETTER LONG S folds to "s" under (?i).
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "it'ſ"), (Pieces{"it", "'ſ"}));
}

TEST(PreTokenize, Llama3LetterRunsTakeOnePrefixCharacter) {
  // [^\r\n\p{L}\p{N}]?\p{L}+: a space, tab or punctuation mark joins the word after it.
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "\tHello,world"), (Pieces{"\tHello", ",world"}));
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "3rd"), (Pieces{"3", "rd"}));
}

TEST(PreTokenize, Llama3Newlines) {
  // \s*[\r\n]+ ends at the last newline of a whitespace run; punctuation keeps its newlines.
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "a \n\n  b"), (Pieces{"a", " \n\n", " ", " b"}));
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "?!\r\n\nx"), (Pieces{"?!\r\n\n", "x"}));
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "\n =\n"), (Pieces{"\n", " =\n"}));
}

TEST(PreTokenize, EmojiCjkAndOtherScripts) {
  EXPECT_EQ(Split(PreTokenizer::kGpt2, " this is 🦙.cpp"),
            (Pieces{" this", " is", " 🦙.", "cpp"}));
  // CJK ideographs are letters (Lo); the fullwidth tilde is punctuation.
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "我想在apple工作1314天～"),
            (Pieces{"我想在apple工作", "1", "3", "1", "4", "天", "～"}));
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "нещо на Български"), (Pieces{"нещо", " на", " Български"}));
  // The zero-width joiner and variation selector are not letters: they stay with the emoji.
  EXPECT_EQ(Split(PreTokenizer::kQwen2, "😶‍🌫️ (x)"),
            (Pieces{"😶‍🌫️", " (", "x", ")"}));
}

TEST(PreTokenize, UnicodeSpacesAndNumbers) {
  // U+3000 IDEOGRAPHIC SPACE is \s; "²" (No) and "Ⅻ" (Nl) are \p{N}.
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "a\u3000b x²Ⅻ"), (Pieces{"a", "\u3000", "b", " x", "²Ⅻ"}));
}

TEST(PreTokenize, InvalidUtf8BytesArePunctuation) {
  EXPECT_EQ(Split(PreTokenizer::kGpt2, "ab\xFF\xFE cd \xC3"),
            (Pieces{"ab", "\xFF\xFE", " cd", " \xC3"}));
}

TEST(PreTokenize, SmollmIsolatesEveryDigit) {
  // Digits split first; the GPT-2 regex then sees "a " alone, so its space is trailing.
  EXPECT_EQ(Split(PreTokenizer::kSmollm, "a 12b"), (Pieces{"a", " ", "1", "2", "b"}));
}

TEST(PreTokenize, EmptyTextHasNoPieces) {
  for (PreTokenizer kind :
       {PreTokenizer::kGpt2, PreTokenizer::kLlama3, PreTokenizer::kQwen2, PreTokenizer::kSmollm}) {
    EXPECT_TRUE(Split(kind, "").empty());
  }
}

TEST(PreTokenize, NamesRoundTrip) {
  for (PreTokenizer kind :
       {PreTokenizer::kGpt2, PreTokenizer::kLlama3, PreTokenizer::kQwen2, PreTokenizer::kSmollm}) {
    EXPECT_EQ(PreTokenizerFromName(PreTokenizerName(kind)), kind);
  }
  EXPECT_FALSE(PreTokenizerFromName("default").has_value());
}

}  // namespace
}  // namespace slimlm
