// BPE training that mirrors the SentencePiece-style encoder (src/model/tokenizer_spm.cc).
//
// State: every distinct word with its frequency and its current symbols (piece ids; a negative
// symbol -n is a character outside the vocabulary, n bytes long). Invariant between steps: no
// word has two adjacent symbols whose concatenation is a piece, which is where the encoder stops
// merging. Each step:
//   1. takes the most frequent pair from a max-heap of (count, left, right) with lazy deletion
//      (an entry whose count is no longer the pair's current count is skipped);
//   2. adds the concatenation P as a piece; P may also be the concatenation of other pairs of
//      pieces, so the words to update are those containing any split of P into two pieces;
//   3. re-merges each such word as the encoder would with P added: only P's splits can merge at
//      first (the invariant), but a merge can make an earlier piece mergeable ("pq" + "rs" when
//      "pqrs" was learned from "p" + "qrs"), so the word runs the encoder's priority queue;
//   4. updates the counts of the pairs around each merge and pushes the changed pairs onto the
//      heap.
// Pair counts therefore always equal what the encoder would see, and the final word symbols are
// the encoder's segmentation of the training text.
#include "slimlm/train/bpe_trainer.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include <fmt/core.h>

#include "model/unicode.h"
#include "slimlm/core/check.h"
#include "slimlm/core/file.h"
#include "slimlm/core/hash.h"
#include "slimlm/train/dataset.h"

namespace slimlm::train {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁"
constexpr uint32_t kSpaceCodePoint = 0x2581;

// Characters that never merge with a neighbour, so that no piece spans a line break.
bool IsBreak(char c) { return c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f'; }

// Texts of the reserved tokens, which a learned piece must not duplicate: <unk>, <s>, </s> and
// <0xNN> in either case (the tokenizer parses both).
bool IsReservedText(std::string_view text) {
  if (text == "<unk>" || text == "<s>" || text == "</s>") return true;
  return text.size() == 6 && text.substr(0, 3) == "<0x" && text[5] == '>' &&
         std::isxdigit(static_cast<unsigned char>(text[3])) &&
         std::isxdigit(static_cast<unsigned char>(text[4]));
}

// Hash and equality that accept std::string_view, so lookups need not build a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return HashBytes(s.data(), s.size()); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

uint64_t PairKey(int32_t left, int32_t right) {
  return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
}
int32_t PairLeft(uint64_t key) { return static_cast<int32_t>(key >> 32); }
int32_t PairRight(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

// Adds the words of one text to `counts`, cut exactly where the encoder cuts: spaces become "▁",
// a "▁" goes in front, a word starts at each "▁" that follows another character; then each
// break character stands alone.
void CountWords(std::string_view text, StringMap<int64_t>* counts, uint64_t* n_words) {
  std::string marked(kSpace);
  marked.reserve(text.size() + text.size() / 4 + kSpace.size());
  for (char c : text) {
    if (c == ' ') {
      marked += kSpace;
    } else {
      marked.push_back(c);
    }
  }
  auto add = [&](std::string_view word) {
    if (word.empty()) return;
    ++*n_words;
    auto it = counts->find(word);
    if (it == counts->end()) {
      counts->emplace(std::string(word), 1);
    } else {
      ++it->second;
    }
  };
  auto add_split_at_breaks = [&](std::string_view word) {
    size_t start = 0;
    for (size_t i = 0; i < word.size(); ++i) {
      if (!IsBreak(word[i])) continue;
      add(word.substr(start, i - start));
      add(word.substr(i, 1));
      start = i + 1;
    }
    add(word.substr(start));
  };
  const std::string_view view(marked);
  size_t start = 0;
  for (size_t pos = view.find(kSpace, 1); pos != std::string_view::npos;
       pos = view.find(kSpace, pos + 1)) {
    if (pos >= kSpace.size() && view.compare(pos - kSpace.size(), kSpace.size(), kSpace) == 0) {
      continue;
    }
    add_split_at_breaks(view.substr(start, pos - start));
    start = pos;
  }
  add_split_at_breaks(view.substr(start));
}

struct Word {
  std::vector<int32_t> symbols;  // piece ids; -n for a character of n bytes outside the vocab
  int64_t freq = 0;
};

class Trainer {
 public:
  Trainer(const BpeTrainerOptions& options, BpeVocabulary* out) : options_(options), out_(out) {}

  void Run(std::span<const std::string_view> texts);

 private:
  struct HeapEntry {
    int64_t count;
    uint64_t key;
    // The top is the highest count, then the lowest left id, then the lowest right id.
    bool operator<(const HeapEntry& other) const {
      if (count != other.count) return count < other.count;
      return key > other.key;
    }
  };
  // A merge waiting in one word's queue, as the encoder's Candidate.
  struct Candidate {
    int32_t piece;  // lower id = earlier merge = higher score
    int32_t left;   // positions in the word
    int32_t right;
    int32_t left_symbol;
    int32_t right_symbol;
    bool operator<(const Candidate& other) const {
      return piece > other.piece || (piece == other.piece && left > other.left);
    }
  };

  void SelectBaseCharacters(const StringMap<int64_t>& counts);
  void BuildWords(const StringMap<int64_t>& counts);
  int32_t AddPiece(std::string text);
  // The most frequent pair that may merge, or nullopt when none reaches min_pair_count.
  std::optional<uint64_t> PopBestPair();
  void ApplyMerge(int32_t piece);
  void RemergeWord(int32_t word_index, int32_t piece, const std::vector<uint64_t>& splits);
  // Adds delta to the count of a pair (nothing when a side is outside the vocabulary).
  void BumpPair(int32_t left, int32_t right, int64_t delta);
  void Finish();

  const BpeTrainerOptions& options_;
  BpeVocabulary* out_;

  std::vector<std::string> pieces_;  // trainer ids: base characters, then merges
  StringMap<int32_t> piece_ids_;
  std::unordered_map<uint32_t, int32_t> char_ids_;  // code point -> piece id
  int32_t n_base_ = 0;

  std::vector<Word> words_;
  std::unordered_map<uint64_t, int64_t> pair_counts_;
  // Words that contain (or once contained) each pair; may hold stale entries and duplicates.
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words_;
  std::priority_queue<HeapEntry> heap_;
  std::unordered_set<uint64_t> forbidden_;  // pairs that would spell a reserved token
  std::vector<uint64_t> changed_;           // pairs whose count changed in this step

  // Scratch for RemergeWord.
  std::vector<int32_t> symbols_, prev_, next_;
  std::vector<uint8_t> touched_, merged_touched_;
  std::vector<Candidate> queue_;
  std::string concat_;
};

void Trainer::Run(std::span<const std::string_view> texts) {
  StringMap<int64_t> counts;
  for (std::string_view text : texts) {
    CountWords(text, &counts, &out_->n_words);
    out_->text_bytes += text.size();
    out_->text_hash = HashBytes(text.data(), text.size(), out_->text_hash);
  }
  out_->n_distinct_words = counts.size();
  SelectBaseCharacters(counts);
  BuildWords(counts);
  counts = {};

  const int64_t max_merges = options_.vocab_size - kBpeReservedTokens - n_base_;
  for (const auto& [key, count] : pair_counts_) heap_.push({count, key});
  for (int64_t merge = 0; merge < max_merges; ++merge) {
    std::optional<uint64_t> best = PopBestPair();
    if (!best) break;
    const int32_t piece = AddPiece(pieces_[PairLeft(*best)] + pieces_[PairRight(*best)]);
    ApplyMerge(piece);
    if (options_.progress) options_.progress(merge + 1, max_merges);
  }
  Finish();
}

void Trainer::SelectBaseCharacters(const StringMap<int64_t>& counts) {
  std::unordered_map<uint32_t, int64_t> char_counts;
  for (const auto& [word, freq] : counts) {
    for (size_t pos = 0; pos < word.size();) {
      uint32_t cp;
      pos += unicode::DecodeUtf8(word, pos, &cp);
      if (cp != unicode::kInvalidByte) char_counts[cp] += freq;
    }
  }
  // "▁" comes first whatever its count: spelled as bytes it would decode to itself, not to a
  // space.
  std::vector<std::pair<int64_t, uint32_t>> chars = {{0, kSpaceCodePoint}};
  for (const auto& [cp, count] : char_counts) {
    if (count >= options_.min_char_count && cp != kSpaceCodePoint) chars.emplace_back(count, cp);
  }
  std::sort(chars.begin() + 1, chars.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  const size_t room = static_cast<size_t>(options_.vocab_size - kBpeReservedTokens);
  if (chars.size() > room) chars.resize(room);
  for (const auto& [count, cp] : chars) {
    std::string text;
    unicode::AppendUtf8(cp, &text);
    char_ids_[cp] = AddPiece(std::move(text));
  }
  n_base_ = static_cast<int32_t>(pieces_.size());
}

void Trainer::BuildWords(const StringMap<int64_t>& counts) {
  // Sorted, so that the order of the word lists does not depend on the hash table.
  std::vector<const std::pair<const std::string, int64_t>*> sorted;
  sorted.reserve(counts.size());
  for (const auto& entry : counts) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  words_.reserve(sorted.size());
  for (const auto* entry : sorted) {
    const std::string& text = entry->first;
    Word word;
    word.freq = entry->second;
    for (size_t pos = 0; pos < text.size();) {
      uint32_t cp;
      const size_t length = unicode::DecodeUtf8(text, pos, &cp);
      auto it = cp == unicode::kInvalidByte ? char_ids_.end() : char_ids_.find(cp);
      word.symbols.push_back(it != char_ids_.end() ? it->second : -static_cast<int32_t>(length));
      pos += length;
    }
    const auto index = static_cast<int32_t>(words_.size());
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      if (word.symbols[i] < 0 || word.symbols[i + 1] < 0) continue;
      std::vector<int32_t>& list = pair_words_[PairKey(word.symbols[i], word.symbols[i + 1])];
      if (list.empty() || list.back() != index) list.push_back(index);
    }
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      BumpPair(word.symbols[i], word.symbols[i + 1], word.freq);
    }
    words_.push_back(std::move(word));
  }
  changed_.clear();
}

int32_t Trainer::AddPiece(std::string text) {
  const auto id = static_cast<int32_t>(pieces_.size());
  piece_ids_.emplace(text, id);
  pieces_.push_back(std::move(text));
  return id;
}

std::optional<uint64_t> Trainer::PopBestPair() {
  while (!heap_.empty()) {
    const HeapEntry top = heap_.top();
    heap_.pop();
    auto it = pair_counts_.find(top.key);
    if (it == pair_counts_.end() || it->second != top.count) continue;  // stale entry
    if (top.count < options_.min_pair_count) return std::nullopt;
    if (forbidden_.count(top.key) != 0) continue;
    const std::string text = pieces_[PairLeft(top.key)] + pieces_[PairRight(top.key)];
    if (IsReservedText(text)) {
      forbidden_.insert(top.key);
      continue;
    }
    // The invariant: a pair whose concatenation is already a piece has merged everywhere.
    SLIMLM_DCHECK(piece_ids_.find(text) == piece_ids_.end());
    return top.key;
  }
  return std::nullopt;
}

void Trainer::ApplyMerge(int32_t piece) {
  // Every split of the new piece into two existing pieces merges now.
  const std::string_view text = pieces_[piece];
  std::vector<uint64_t> splits;
  std::vector<int32_t> affected;
  for (size_t cut = 1; cut < text.size(); ++cut) {
    if ((static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) continue;  // inside a character
    auto left = piece_ids_.find(text.substr(0, cut));
    auto right = piece_ids_.find(text.substr(cut));
    if (left == piece_ids_.end() || right == piece_ids_.end()) continue;
    const uint64_t key = PairKey(left->second, right->second);
    auto it = pair_words_.find(key);
    if (it == pair_words_.end()) continue;
    splits.push_back(key);
    affected.insert(affected.end(), it->second.begin(), it->second.end());
    pair_words_.erase(it);
  }
  std::sort(affected.begin(), affected.end());
  affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
  for (int32_t word : affected) RemergeWord(word, piece, splits);

  std::sort(changed_.begin(), changed_.end());
  changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
  for (uint64_t key : changed_) {
    auto it = pair_counts_.find(key);
    if (it->second > 0) {
      heap_.push({it->second, key});
    } else {
      pair_counts_.erase(it);
    }
  }
  changed_.clear();
}

void Trainer::RemergeWord(int32_t word_index, int32_t piece, const std::vector<uint64_t>& splits) {
  Word& word = words_[word_index];
  const auto n = static_cast<int32_t>(word.symbols.size());
  queue_.clear();
  for (int32_t i = 0; i + 1 < n; ++i) {
    const uint64_t key = PairKey(word.symbols[i], word.symbols[i + 1]);
    if (word.symbols[i] >= 0 && word.symbols[i + 1] >= 0 &&
        std::find(splits.begin(), splits.end(), key) != splits.end()) {
      queue_.push_back({piece, i, i + 1, word.symbols[i], word.symbols[i + 1]});
    }
  }
  if (queue_.empty()) return;  // a stale entry of the word lists
  std::make_heap(queue_.begin(), queue_.end());

  symbols_ = word.symbols;
  prev_.resize(n);
  next_.resize(n);
  touched_.assign(n, 0);
  for (int32_t i = 0; i < n; ++i) {
    prev_[i] = i - 1;
    next_[i] = i + 1 < n ? i + 1 : -1;
  }
  // Queues the merge of two adjacent symbols when their concatenation is a piece.
  auto try_pair = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0 || symbols_[left] < 0 || symbols_[right] < 0) return;
    concat_.assign(pieces_[symbols_[left]]);
    concat_ += pieces_[symbols_[right]];
    auto it = piece_ids_.find(std::string_view(concat_));
    if (it == piece_ids_.end()) return;
    queue_.push_back({it->second, left, right, symbols_[left], symbols_[right]});
    std::push_heap(queue_.begin(), queue_.end());
  };
  while (!queue_.empty()) {
    std::pop_heap(queue_.begin(), queue_.end());
    const Candidate top = queue_.back();
    queue_.pop_back();
    // Stale once either side has merged elsewhere since the candidate was queued.
    if (next_[top.left] != top.right || symbols_[top.left] != top.left_symbol ||
        symbols_[top.right] != top.right_symbol) {
      continue;
    }
    if (top.piece != piece) ++out_->n_cascades;
    // The pairs around the merge change: (prev, left), (left, right), (right, next) go and
    // (prev, merged), (merged, next) come. Updating only these keeps long words cheap.
    const int32_t before = prev_[top.left];
    const int32_t after = next_[top.right];
    if (before >= 0) BumpPair(symbols_[before], symbols_[top.left], -word.freq);
    BumpPair(symbols_[top.left], symbols_[top.right], -word.freq);
    if (after >= 0) BumpPair(symbols_[top.right], symbols_[after], -word.freq);
    if (before >= 0) BumpPair(symbols_[before], top.piece, word.freq);
    if (after >= 0) BumpPair(top.piece, symbols_[after], word.freq);
    symbols_[top.left] = top.piece;
    symbols_[top.right] = -1;
    touched_[top.left] = 1;
    next_[top.left] = next_[top.right];
    if (next_[top.right] >= 0) prev_[next_[top.right]] = top.left;
    next_[top.right] = -2;  // removed
    try_pair(prev_[top.left], top.left);
    try_pair(top.left, next_[top.left]);
  }

  std::vector<int32_t>& merged = word.symbols;
  merged.clear();
  std::vector<uint8_t>& merged_touched = merged_touched_;
  merged_touched.clear();
  for (int32_t i = 0; i >= 0; i = next_[i]) {
    merged.push_back(symbols_[i]);
    merged_touched.push_back(touched_[i]);
  }
  // Pairs next to a merged symbol are new: list the word under them.
  for (size_t i = 0; i + 1 < merged.size(); ++i) {
    if (!(merged_touched[i] || merged_touched[i + 1]) || merged[i] < 0 || merged[i + 1] < 0) {
      continue;
    }
    std::vector<int32_t>& list = pair_words_[PairKey(merged[i], merged[i + 1])];
    if (list.empty() || list.back() != word_index) list.push_back(word_index);
  }
}

void Trainer::BumpPair(int32_t left, int32_t right, int64_t delta) {
  if (left < 0 || right < 0) return;  // a character outside the vocabulary never merges
  const uint64_t key = PairKey(left, right);
  pair_counts_[key] += delta;
  changed_.push_back(key);
}

void Trainer::Finish() {
  BpeVocabulary& v = *out_;
  v.n_base_chars = n_base_;
  v.n_merges = static_cast<int32_t>(pieces_.size()) - n_base_;
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(fmt::format("<0x{:02X}>", b));
    v.types.push_back(TokenType::kByte);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  // Learned pieces score -rank, so the encoder applies merges in training order; base
  // characters, which no merge produces, come below every merge, as in SentencePiece.
  for (size_t id = 0; id < pieces_.size(); ++id) {
    const auto rank = static_cast<int64_t>(id) - n_base_;
    v.tokens.push_back(pieces_[id]);
    v.types.push_back(TokenType::kNormal);
    v.scores.push_back(rank >= 0 ? -static_cast<float>(rank)
                                 : -static_cast<float>(v.n_merges + static_cast<int64_t>(id)));
  }
  for (const Word& word : words_) {
    for (int32_t symbol : word.symbols) {
      if (symbol >= 0) {
        v.n_tokens += word.freq;
      } else {
        v.n_tokens += word.freq * -symbol;
        v.n_byte_tokens += word.freq * -symbol;
      }
    }
  }
}

Status CheckOptions(const BpeTrainerOptions& options) {
  if (options.vocab_size < kBpeMinVocabSize) {
    return InvalidArgumentError(
        "vocab size {} is too small: the minimum is {} ({} reserved tokens: <unk>, <s>, </s> and "
        "256 byte tokens, plus at least one learned token)",
        options.vocab_size, kBpeMinVocabSize, kBpeReservedTokens);
  }
  if (options.vocab_size > kBpeMaxVocabSize) {
    return InvalidArgumentError("vocab size {} is too large: the maximum is {}", options.vocab_size,
                                kBpeMaxVocabSize);
  }
  if (options.min_char_count < 1) {
    return InvalidArgumentError("min char count {} must be at least 1", options.min_char_count);
  }
  if (options.min_pair_count < 1) {
    return InvalidArgumentError("min pair count {} must be at least 1", options.min_pair_count);
  }
  return Status::Ok();
}

}  // namespace

Result<BpeVocabulary> TrainBpe(std::span<const std::string_view> texts,
                               const BpeTrainerOptions& options) {
  SLIMLM_RETURN_IF_ERROR(CheckOptions(options));
  uint64_t total = 0;
  for (std::string_view text : texts) total += text.size();
  if (total == 0) return InvalidArgumentError("no training text: every text is empty");
  BpeVocabulary vocabulary;
  vocabulary.text_hash = kHashSeed;
  Trainer trainer(options, &vocabulary);
  trainer.Run(texts);
  return vocabulary;
}

Result<BpeVocabulary> TrainBpeFromFiles(const std::vector<std::string>& paths,
                                        const BpeTrainerOptions& options) {
  SLIMLM_RETURN_IF_ERROR(CheckOptions(options));
  if (paths.empty()) return InvalidArgumentError("no training text files given");
  std::vector<std::string> texts;
  uint64_t total = 0;
  for (const std::string& path : paths) {
    SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
    if (text.empty()) return InvalidArgumentError("{}: the file is empty", path);
    if (options.max_text_bytes > 0) {
      if (total >= options.max_text_bytes) break;
      if (text.size() > options.max_text_bytes - total) {
        // Cut before a character, not inside one.
        size_t cut = options.max_text_bytes - total;
        while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
        text.resize(cut);
      }
    }
    total += text.size();
    if (!text.empty()) texts.push_back(std::move(text));
  }
  // Each document is a text of its own, as the training data encodes it (train/dataset.h): the
  // "<|endoftext|>" lines between documents are not text to learn from.
  std::vector<std::string_view> views;
  for (const std::string& text : texts) {
    for (std::string_view doc : SplitDocuments(text)) views.push_back(doc);
  }
  if (views.empty()) return InvalidArgumentError("the training text holds no documents");
  return TrainBpe(views, options);
}

void SetTokenizerMetadata(const BpeVocabulary& vocabulary, Metadata* out) {
  std::vector<std::string> stale;
  for (const auto& [key, value] : out->entries()) {
    if (key.starts_with("tokenizer.")) stale.push_back(key);
  }
  for (const std::string& key : stale) out->Erase(key);
  std::vector<int32_t> types;
  types.reserve(vocabulary.types.size());
  for (TokenType type : vocabulary.types) types.push_back(static_cast<int32_t>(type));
  out->Set("tokenizer.ggml.model", MetaValue::String("llama"));
  out->Set("tokenizer.ggml.pre", MetaValue::String("default"));
  out->Set("tokenizer.ggml.tokens", MetaValue::StringArray(vocabulary.tokens));
  out->Set("tokenizer.ggml.scores", MetaValue::F32Array(vocabulary.scores));
  out->Set("tokenizer.ggml.token_type", MetaValue::I32Array(std::move(types)));
  out->Set("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
  out->Set("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
  out->Set("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));
  out->Set("tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
  out->Set("tokenizer.ggml.add_eos_token", MetaValue::Bool(false));
  out->Set("tokenizer.ggml.add_space_prefix", MetaValue::Bool(true));
}

}  // namespace slimlm::train
