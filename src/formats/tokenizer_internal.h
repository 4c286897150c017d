// Private to the tokenizer file readers and writers (src/formats/tokenizer_*.cc): the pieces of
// an HF tokenizer.json that map to GGUF tokenizer keys. Every function here is exception-free
// except where it touches JSON; the callers catch nlohmann::json's exceptions at the module's
// edge.
#ifndef SLIMLM_FORMATS_TOKENIZER_INTERNAL_H_
#define SLIMLM_FORMATS_TOKENIZER_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"

namespace slimlm {

// Replaces every tokenizer.* key of `out` with those of `converted`: the keys of a tokenizer read
// before (merges, scores, a chat template) must not survive into the new one.
void ReplaceTokenizerKeys(const Metadata& converted, Metadata* out);

namespace hf {

using Json = nlohmann::json;

// The pre-tokenizer regexes, exactly as HF tokenizer.json files spell them.
inline constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

inline constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 "▁"

// The member `key` of an object, or nullptr when `node` is not an object, lacks it or holds null.
const Json* Member(const Json& node, const char* key);
// The string member `key`, or "" when absent or not a string.
std::string StringMember(const Json& node, const char* key);

// What the pre-tokenizer and normalizer of a tokenizer.json amount to.
struct TextProcessing {
  bool byte_level = false;        // "gpt2" vocabulary, else SentencePiece-style "llama"
  std::string pre;                // tokenizer.ggml.pre
  bool add_space_prefix = false;  // "llama": a "▁" goes in front of the text
};
// Recognizes the supported combinations; anything else is kUnsupported naming what was found.
Result<TextProcessing> DetectTextProcessing(const Json& root, const std::string& path);

// BOS/EOS and chat settings from tokenizer_config.json beside tokenizer.json (when present) and
// the post-processor, written into `out` as tokenizer.* keys.
struct SpecialTokenNames {
  std::string bos, eos, unk, pad;
  std::optional<bool> add_bos, add_eos;
  std::string chat_template;
};
Status ReadSpecialTokenNames(const Json& root, const std::string& tokenizer_json_path,
                             SpecialTokenNames* names);

// For a SentencePiece-style BPE (merges given by rank), the scores under which SentencePiece's
// highest-score-first merging reproduces rank-order merging: a merged token's score is minus the
// rank of the first merge producing it. Multi-character normal tokens that no merge produces are
// unreachable by BPE and become unused (type 5). `merges` are (left id, right id, merged id) in
// rank order. Returns how many merges the scores cannot express (0 for vocabularies converted
// from SentencePiece; see docs/tokenizers.md).
struct MergeIds {
  int32_t left, right, merged;
};
size_t ScoresFromMerges(const std::vector<std::string>& tokens, const std::vector<MergeIds>& merges,
                        std::vector<float>* scores, std::vector<int32_t>* types);

// The inverse for the writer: every pair of tokens whose concatenation is a token, ordered by
// that token's score (highest first), as HF's SentencePiece converter builds them.
std::vector<std::pair<int32_t, int32_t>> MergesFromScores(const std::vector<std::string>& tokens,
                                                          const std::vector<float>& scores,
                                                          const std::vector<int32_t>& types);

}  // namespace hf
}  // namespace slimlm

#endif  // SLIMLM_FORMATS_TOKENIZER_INTERNAL_H_
