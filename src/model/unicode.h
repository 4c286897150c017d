// Unicode helpers for the tokenizers: UTF-8 decoding that never fails, the three character
// classes the pre-tokenizer regexes use (\p{L}, \p{N}, \s), case folding for (?i) and NFC.
// Character properties come from ICU so they follow the Unicode tables, not hand-made ranges.
#ifndef SLIMLM_MODEL_UNICODE_H_
#define SLIMLM_MODEL_UNICODE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace slimlm::unicode {

// A code point that stands for one byte that is not part of valid UTF-8. It lies outside
// Unicode, so it never matches a property test and never collides with real text.
inline constexpr uint32_t kInvalidByte = 0x110000;

// Decodes the code point at text[pos]. Returns its length in bytes (1 to 4) and stores it in
// *cp; an invalid or truncated sequence gives length 1 and *cp = kInvalidByte. pos < size.
size_t DecodeUtf8(std::string_view text, size_t pos, uint32_t* cp);

// Appends the UTF-8 encoding of a valid code point.
void AppendUtf8(uint32_t cp, std::string* out);

// True when the whole string is valid UTF-8.
bool IsValidUtf8(std::string_view text);

// The classes of the pre-tokenizer regexes; every code point is exactly one of them.
enum class CharClass : uint8_t {
  kLetter,      // \p{L}
  kNumber,      // \p{N}
  kWhitespace,  // \s (Unicode White_Space, as Oniguruma's and llama.cpp's \s)
  kOther,       // everything else, including bytes of invalid UTF-8
};
CharClass Classify(uint32_t cp);

// Simple (one-to-one) case folding, as (?i) applies it; kInvalidByte maps to itself.
uint32_t FoldCase(uint32_t cp);

// The text in Unicode Normalization Form C. Text that is not valid UTF-8 is returned unchanged,
// so that no byte of the input is lost.
std::string NormalizeNfc(std::string_view text);

// One decoded code point: its value, where it starts in the text, its length and class.
struct CodePoint {
  uint32_t cp;
  uint32_t offset;
  uint8_t length;
  CharClass cls;
};

// Decodes the whole text. Offsets are 32-bit: callers split texts over 4 GiB first.
void DecodeAll(std::string_view text, std::vector<CodePoint>* out);

}  // namespace slimlm::unicode

#endif  // SLIMLM_MODEL_UNICODE_H_
