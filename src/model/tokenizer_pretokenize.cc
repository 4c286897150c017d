#include "model/tokenizer_pretokenize.h"

#include <algorithm>
#include <cstddef>

#include "model/unicode.h"

namespace slimlm {
namespace {

using unicode::CharClass;
using unicode::CodePoint;

// The code points of one segment, [begin, end) of `cps`; matchers return how many code points
// the regex matches at position i (always at least one, since the last alternatives of every
// regex here match any character).
class Matcher {
 public:
  Matcher(const std::vector<CodePoint>& cps, size_t end) : cps_(cps), end_(end) {}

  size_t Gpt2(size_t i) const;
  size_t Llama3(size_t i, size_t max_digits) const;

 private:
  bool Has(size_t i) const { return i < end_; }
  uint32_t Cp(size_t i) const { return cps_[i].cp; }
  bool Is(size_t i, CharClass cls) const { return i < end_ && cps_[i].cls == cls; }
  bool IsNewline(size_t i) const { return i < end_ && (Cp(i) == '\r' || Cp(i) == '\n'); }
  // The end of the run of class `cls` that starts at i.
  size_t RunEnd(size_t i, CharClass cls) const {
    while (Is(i, cls)) ++i;
    return i;
  }
  // 's|'t|'re|'ve|'m|'ll|'d, optionally case-insensitive; 0 when none matches.
  size_t Contraction(size_t i, bool fold) const;
  // \s+(?!\S)|\s+ at a whitespace character: the greedy run backs off one character when a
  // non-space follows, so that the space can lead the next word; a single space before a
  // non-space fails the lookahead and falls to the plain \s+, which takes it alone.
  size_t TrailingSpace(size_t i) const {
    const size_t run = RunEnd(i, CharClass::kWhitespace);
    if (run == end_ || run - i == 1) return run - i;
    return run - i - 1;
  }

  const std::vector<CodePoint>& cps_;
  size_t end_;
};

size_t Matcher::Contraction(size_t i, bool fold) const {
  if (!Has(i + 1) || Cp(i) != '\'') return 0;
  auto at = [&](size_t j) { return fold ? unicode::FoldCase(Cp(j)) : Cp(j); };
  const uint32_t c1 = at(i + 1);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (!Has(i + 2)) return 0;
  const uint32_t c2 = at(i + 2);
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

size_t Matcher::Gpt2(size_t i) const {
  if (size_t n = Contraction(i, /*fold=*/false)) return n;
  // " ?\p{L}+", " ?\p{N}+" and " ?[^\s\p{L}\p{N}]+" share one shape: an optional space, then a
  // run of one class. A character is in exactly one class, so trying the three in order comes
  // down to looking at the class of the first character after the optional space.
  if (Cp(i) == ' ' && Has(i + 1) && !Is(i + 1, CharClass::kWhitespace)) {
    return RunEnd(i + 1, cps_[i + 1].cls) - i;
  }
  if (!Is(i, CharClass::kWhitespace)) return RunEnd(i, cps_[i].cls) - i;
  return TrailingSpace(i);
}

size_t Matcher::Llama3(size_t i, size_t max_digits) const {
  if (size_t n = Contraction(i, /*fold=*/true)) return n;
  // [^\r\n\p{L}\p{N}]?\p{L}+: one optional character that is neither a newline, a letter nor a
  // digit (a space, a tab or punctuation), then letters. Without the optional character the
  // first character itself must be a letter.
  if (!IsNewline(i) && !Is(i, CharClass::kLetter) && !Is(i, CharClass::kNumber) &&
      Is(i + 1, CharClass::kLetter)) {
    return RunEnd(i + 1, CharClass::kLetter) - i;
  }
  if (Is(i, CharClass::kLetter)) return RunEnd(i, CharClass::kLetter) - i;
  // \p{N}{1,3} (Llama 3) or \p{N} (Qwen2).
  if (Is(i, CharClass::kNumber)) return std::min(RunEnd(i, CharClass::kNumber) - i, max_digits);
  // " ?[^\s\p{L}\p{N}]+[\r\n]*": punctuation with an optional leading space, then any newlines.
  size_t start = end_;
  if (Cp(i) == ' ' && Is(i + 1, CharClass::kOther)) start = i + 1;
  if (Is(i, CharClass::kOther)) start = i;
  if (start != end_) {
    size_t j = RunEnd(start, CharClass::kOther);
    while (IsNewline(j)) ++j;
    return j - i;
  }
  // \s*[\r\n]+: the greedy \s* backs off until [\r\n]+ can match, so the piece ends just after
  // the last newline within the whitespace run; no newline in the run means no match.
  const size_t run = RunEnd(i, CharClass::kWhitespace);
  for (size_t k = run; k > i; --k) {
    if (IsNewline(k - 1)) return k - i;
  }
  return TrailingSpace(i);
}

void Emit(std::string_view text, const std::vector<CodePoint>& cps, size_t first, size_t last,
          std::vector<std::string_view>* pieces) {
  const size_t begin = cps[first].offset;
  const size_t end = cps[last - 1].offset + cps[last - 1].length;
  pieces->push_back(text.substr(begin, end - begin));
}

}  // namespace

std::string_view PreTokenizerName(PreTokenizer kind) {
  switch (kind) {
    case PreTokenizer::kGpt2:
      return "gpt-2";
    case PreTokenizer::kLlama3:
      return "llama-bpe";
    case PreTokenizer::kQwen2:
      return "qwen2";
    case PreTokenizer::kSmollm:
      return "smollm";
  }
  return "unknown";
}

std::optional<PreTokenizer> PreTokenizerFromName(std::string_view name) {
  for (PreTokenizer kind :
       {PreTokenizer::kGpt2, PreTokenizer::kLlama3, PreTokenizer::kQwen2, PreTokenizer::kSmollm}) {
    if (PreTokenizerName(kind) == name) return kind;
  }
  return std::nullopt;
}

void PreTokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>* pieces) {
  std::vector<CodePoint> cps;
  unicode::DecodeAll(text, &cps);
  const size_t n = cps.size();
  if (kind == PreTokenizer::kSmollm) {
    // Every digit is a piece of its own; the GPT-2 regex runs separately on each stretch between
    // digits, so its lookahead sees the stretch's end as the end of the text.
    size_t i = 0;
    while (i < n) {
      if (cps[i].cls == CharClass::kNumber) {
        Emit(text, cps, i, i + 1, pieces);
        ++i;
        continue;
      }
      size_t end = i;
      while (end < n && cps[end].cls != CharClass::kNumber) ++end;
      Matcher matcher(cps, end);
      while (i < end) {
        const size_t length = matcher.Gpt2(i);
        Emit(text, cps, i, i + length, pieces);
        i += length;
      }
    }
    return;
  }
  Matcher matcher(cps, n);
  for (size_t i = 0; i < n;) {
    size_t length;
    switch (kind) {
      case PreTokenizer::kLlama3:
        length = matcher.Llama3(i, 3);
        break;
      case PreTokenizer::kQwen2:
        length = matcher.Llama3(i, 1);
        break;
      default:
        length = matcher.Gpt2(i);
        break;
    }
    Emit(text, cps, i, i + length, pieces);
    i += length;
  }
}

}  // namespace slimlm
