// Learning a SentencePiece-style BPE vocabulary with byte fallback from text: the "llama"
// tokenizer model of GGUF, which slimlm's own tokenizer (model/tokenizer.h) then encodes with.
//
// Vocabulary layout (ids):
//   0 <unk> (unknown), 1 <s> (control, BOS), 2 </s> (control, EOS),
//   3 .. 258 <0x00> .. <0xFF> (byte fallback),
//   259 .. base characters (one code point each, most frequent first),
//   then the learned pieces in merge order.
// A space is written "▁" (U+2581); add_space_prefix and add_bos_token are on.
//
// Training follows the encoder exactly, so that encoding the training text reproduces the
// segmentation the trainer predicts (BpeVocabulary::n_tokens):
//   - the text is cut into words where the encoder cuts it: a word is a run of "▁" followed by
//     characters other than "▁". Newlines, tabs, carriage returns, vertical tabs and form feeds
//     never merge with anything, so they also end a word;
//   - characters seen fewer than min_char_count times, and bytes that are not valid UTF-8, are
//     not in the vocabulary: the encoder spells them as byte tokens, and nothing merges with them;
//   - each step merges the most frequent adjacent pair (ties: the pair of lower ids) into a new
//     piece scored -rank, and updates each word that contains it the way the encoder would:
//     every adjacent pair whose concatenation is a piece merges, highest score first, leftmost on
//     ties. Only words that contain the pair are touched.
// Output is deterministic: the same texts and options give the same vocabulary.
#ifndef SLIMLM_TRAIN_BPE_TRAINER_H_
#define SLIMLM_TRAIN_BPE_TRAINER_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm::train {

// <unk>, <s>, </s> and the 256 byte tokens come before any character or learned piece.
inline constexpr int32_t kBpeReservedTokens = 3 + 256;
// The smallest vocabulary: the reserved tokens and one more (a base character or a piece).
inline constexpr int32_t kBpeMinVocabSize = kBpeReservedTokens + 1;
// The largest vocabulary we accept (2^20): far beyond what any text here supports, and it keeps
// a mistyped --vocab-size from reserving gigabytes.
inline constexpr int32_t kBpeMaxVocabSize = 1 << 20;

struct BpeTrainerOptions {
  // Total tokens, reserved tokens included, in [kBpeMinVocabSize, kBpeMaxVocabSize]. Base
  // characters take their share first (most frequent first, as many as fit), merges the rest.
  // The vocabulary comes out smaller when the text has no more pairs worth merging.
  int32_t vocab_size = 4096;
  // A character becomes a base token when it occurs at least this often (>= 1); rarer ones fall
  // back to bytes.
  int64_t min_char_count = 2;
  // A pair is merged only when it occurs at least this often (>= 1).
  int64_t min_pair_count = 2;
  // TrainBpeFromFiles reads at most this many bytes in all (0: everything), cut at a character
  // boundary.
  uint64_t max_text_bytes = 0;
  // Called after every merge with the number of merges so far and the most there can be.
  std::function<void(int64_t done, int64_t total)> progress;
};

// A trained vocabulary and what training measured. Indices are token ids.
struct BpeVocabulary {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenType> types;
  int32_t n_base_chars = 0;
  int32_t n_merges = 0;

  // The training text.
  uint64_t text_bytes = 0;
  uint64_t text_hash = 0;  // HashBytes (core/hash.h) over the texts in order.
  uint64_t n_words = 0;    // Words as the trainer cut them, counted with repetition.
  uint64_t n_distinct_words = 0;
  // Tokens of the training text encoded with this vocabulary (each text on its own, without
  // BOS), as Tokenizer::Encode(text, false, false) gives them; and how many of them are byte
  // tokens.
  uint64_t n_tokens = 0;
  uint64_t n_byte_tokens = 0;
  uint64_t n_cascades = 0;  // Merges of earlier pieces that a later merge made possible.
};

// Learns a vocabulary from texts; each text is encoded on its own (a "▁" goes before each).
// Errors (kInvalidArgument): options out of range, no text at all.
Result<BpeVocabulary> TrainBpe(std::span<const std::string_view> texts,
                               const BpeTrainerOptions& options);

// Reads the files, cuts each into documents at "<|endoftext|>" lines (SplitDocuments of
// train/dataset.h; a file without them is one document) and trains on the documents. Errors name
// the file: missing or unreadable (as ReadFileToString), empty (kInvalidArgument).
Result<BpeVocabulary> TrainBpeFromFiles(const std::vector<std::string>& paths,
                                        const BpeTrainerOptions& options);

// Replaces every tokenizer.* key of `out` with the vocabulary (tokenizer.ggml.model "llama",
// pre "default", tokens, scores, token_type, BOS 1, EOS 2, UNK 0, add_bos_token,
// add_space_prefix); other keys are left alone.
void SetTokenizerMetadata(const BpeVocabulary& vocabulary, Metadata* out);

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_BPE_TRAINER_H_
