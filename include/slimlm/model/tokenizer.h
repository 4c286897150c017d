// Text <-> token ids, exactly as the reference tokenizers do it.
//
// Two algorithms, chosen by tokenizer.ggml.model:
//   - "llama": SentencePiece BPE (Llama 2, llama2.c, Mistral): spaces become "▁", a "▁" is
//     prepended (add_space_prefix), then adjacent symbols merge by highest score; characters
//     outside the vocabulary fall back to <0xNN> byte tokens.
//   - "gpt2": byte-level BPE (GPT-2, Llama 3, Qwen2/3): text is split by the pre-tokenizer's
//     regular expression (tokenizer.ggml.pre chooses GPT-2's, Llama 3's or Qwen2's), bytes map
//     to printable characters, and merges apply in rank order.
// Special tokens (control and user-defined tokens such as <|im_start|>) are matched in the text
// first when parse_special is true.
//
// Thread-safe after construction: Encode and Decode are const and keep no shared state.
#ifndef SLIMLM_MODEL_TOKENIZER_H_
#define SLIMLM_MODEL_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"

namespace slimlm {

// tokenizer.ggml.token_type values (GGUF's, which follow SentencePiece's piece types).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,      // <unk>
  kControl = 3,      // BOS, EOS, <|im_start|>: never produced from plain text
  kUserDefined = 4,  // always matched whole in the text (HF's non-special added tokens)
  kUnused = 5,
  kByte = 6,  // <0xNN> byte fallback
};

class Tokenizer {
 public:
  // Builds from the tokenizer.* keys (see formats/tokenizer_files.h). Errors name what is
  // missing or inconsistent (no tokens, unknown model or pre-tokenizer, bad merge...).
  static Result<std::unique_ptr<Tokenizer>> FromMetadata(const Metadata& metadata);
  virtual ~Tokenizer() = default;

  // Encodes text. add_special adds BOS (and EOS) when the vocabulary asks for them
  // (tokenizer.ggml.add_bos_token / add_eos_token). parse_special recognizes control tokens
  // written in the text (longest match, leftmost first); when false they are encoded as plain
  // text. User-defined tokens are always recognized, as HF and llama.cpp do. Never fails: bytes
  // that are not valid UTF-8 are encoded as bytes.
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;

  // The bytes one token stands for in output text (a byte token gives its byte; "▁" becomes a
  // space; control tokens give "" unless render_special). May be part of a UTF-8 character.
  virtual std::string TokenToPiece(int32_t id, bool render_special = false) const = 0;

  // Decodes a sequence, the inverse of Encode (a leading space added by add_space_prefix is
  // removed from the first word after any control tokens, as SentencePiece does). Ids out of
  // range are skipped. The result may end inside a UTF-8 character.
  virtual std::string Decode(std::span<const int32_t> ids, bool render_special = false) const = 0;

  // The token's text as stored in the vocabulary (e.g. "▁Hello", "<0x0A>", "Ġworld"); "" for an
  // id out of range.
  virtual const std::string& TokenText(int32_t id) const = 0;
  // The token's type; kUndefined for an id out of range.
  virtual TokenType token_type(int32_t id) const = 0;
  // The id whose vocabulary text is exactly `text` (as TokenText spells it), -1 when none.
  virtual int32_t FindToken(std::string_view text) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when none
  virtual int32_t eos_id() const = 0;  // -1 when none
  // True for tokens that end generation (EOS, EOT, <|im_end|>, <|endoftext|>, ...).
  virtual bool IsEndOfGeneration(int32_t id) const = 0;
  // True for control tokens (BOS, EOS, <|im_start|>, ...).
  virtual bool IsControl(int32_t id) const = 0;
};

// Decodes a stream of tokens into complete UTF-8 text: bytes of a character split across tokens
// are held back until the character is complete. Invalid sequences become U+FFFD (one per
// maximal invalid subpart, as the Unicode standard recommends). The concatenated output equals
// Decode() of the whole sequence wherever that is valid UTF-8. Not thread-safe.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Returns the text that is complete after adding `id`.
  std::string Add(int32_t id);
  // Returns whatever is still held back (as U+FFFD for an incomplete character).
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_TOKENIZER_H_
