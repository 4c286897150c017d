// The pre-tokenizers of byte-level BPE vocabularies: each splits text into the pieces that its
// reference regular expression matches, written by hand as a matcher over code points because
// std::regex knows neither \p{L} nor \p{N}. Each matcher follows the regex's leftmost-first
// alternation and greedy backtracking exactly (the comments derive each step), so the pieces are
// those that HF tokenizers (Oniguruma) and llama.cpp produce.
#ifndef SLIMLM_MODEL_TOKENIZER_PRETOKENIZE_H_
#define SLIMLM_MODEL_TOKENIZER_PRETOKENIZE_H_

#include <optional>
#include <string_view>
#include <vector>

namespace slimlm {

enum class PreTokenizer {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
  // \s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // As kLlama3 with \p{N} (one digit per piece) in place of \p{N}{1,3}.
  kQwen2,
  // HF's Digits(individual_digits) then the GPT-2 regex within the runs between digits.
  kSmollm,
};

// The tokenizer.ggml.pre name for each ("gpt-2", "llama-bpe", "qwen2", "smollm"), and back.
std::string_view PreTokenizerName(PreTokenizer kind);
std::optional<PreTokenizer> PreTokenizerFromName(std::string_view name);

// Splits text into pieces that cover it exactly, in order, none empty. Invalid UTF-8 bytes are
// single characters of the class "other".
void PreTokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>* pieces);

}  // namespace slimlm

#endif  // SLIMLM_MODEL_TOKENIZER_PRETOKENIZE_H_
