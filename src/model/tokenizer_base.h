// What both tokenizer algorithms share: the vocabulary read from tokenizer.* keys, the matching
// of special tokens in the text, BOS/EOS, pieces and decoding. SpmTokenizer (tokenizer_spm.cc)
// and BpeTokenizer (tokenizer_bpe.cc) add only how plain text becomes ids.
#ifndef SLIMLM_MODEL_TOKENIZER_BASE_H_
#define SLIMLM_MODEL_TOKENIZER_BASE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer_maps.h"
#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm {

// The tokenizer.* keys, checked and decoded.
struct VocabData {
  std::string model;  // "llama" or "gpt2"
  std::string pre;    // tokenizer.ggml.pre, "" when absent
  std::vector<std::string> tokens;
  std::vector<float> scores;     // One per token (0 when the file has none).
  std::vector<TokenType> types;  // One per token (normal when the file has none).
  std::vector<std::string> merges;
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
};

// Reads and validates the keys: sizes agree, scores are finite, types and special ids are in
// range. Merges are checked by the BPE tokenizer, which resolves them.
Result<VocabData> ReadVocabData(const Metadata& metadata);

class TokenizerBase : public Tokenizer {
 public:
  // The token index points into vocab_: a copy would point into the original.
  TokenizerBase(const TokenizerBase&) = delete;
  TokenizerBase& operator=(const TokenizerBase&) = delete;

  std::vector<int32_t> Encode(std::string_view text, bool add_special,
                              bool parse_special) const final;
  std::string TokenToPiece(int32_t id, bool render_special) const final;
  std::string Decode(std::span<const int32_t> ids, bool render_special) const final;
  const std::string& TokenText(int32_t id) const final;
  TokenType token_type(int32_t id) const final;
  int32_t FindToken(std::string_view text) const final;

  int32_t vocab_size() const final { return static_cast<int32_t>(vocab_.tokens.size()); }
  int32_t bos_id() const final { return vocab_.bos; }
  int32_t eos_id() const final { return vocab_.eos; }
  bool IsEndOfGeneration(int32_t id) const final;
  bool IsControl(int32_t id) const final;

 protected:
  // Per-call state an algorithm may keep across the fragments of one Encode (a word cache).
  struct Scratch {
    virtual ~Scratch() = default;
  };

  explicit TokenizerBase(VocabData vocab);

  // Fills the decoded pieces; the subclass constructor calls it once it can answer NormalPiece.
  void InitPieces();
  // Encodes text that holds no special token. after_special: the text starts the input or
  // follows a special token (where SentencePiece adds its dummy prefix).
  virtual void EncodeRaw(std::string_view text, bool after_special, Scratch* scratch,
                         std::vector<int32_t>* out) const = 0;
  virtual std::unique_ptr<Scratch> MakeScratch() const { return nullptr; }
  // The output bytes of a normal token's text.
  virtual std::string NormalPiece(const std::string& text) const = 0;
  // Whether Decode drops the space that add_space_prefix put before the first word.
  virtual bool StripsLeadingSpace() const { return false; }

  const VocabData& vocab() const { return vocab_; }
  // The id of the <0xNN> token for each byte, -1 when absent.
  const std::array<int32_t, 256>& byte_tokens() const { return byte_tokens_; }

 private:
  struct Fragment {
    int32_t token;          // -1 for plain text
    std::string_view text;  // the plain text
  };
  // Splits text at special tokens, leftmost first and longest at each position (as HF's
  // added-token matcher). Control tokens count only when parse_special; user-defined always.
  void SplitSpecial(std::string_view text, bool parse_special, std::vector<Fragment>* out) const;
  void BuildSpecialMatcher();

  VocabData vocab_;
  TokenIndex index_;  // every token text -> id, for FindToken
  std::vector<std::string> pieces_;
  std::vector<uint8_t> end_of_generation_;
  std::array<int32_t, 256> byte_tokens_;
  // Special tokens by first byte, longest first.
  std::array<std::vector<int32_t>, 256> specials_by_byte_;
};

// Builds the tokenizer of vocab.model ("llama" or "gpt2").
Result<std::unique_ptr<Tokenizer>> MakeSpmTokenizer(VocabData vocab);
Result<std::unique_ptr<Tokenizer>> MakeBpeTokenizer(VocabData vocab);

}  // namespace slimlm

#endif  // SLIMLM_MODEL_TOKENIZER_BASE_H_
