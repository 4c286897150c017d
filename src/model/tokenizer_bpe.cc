// Byte-level BPE ("gpt2" vocabularies: GPT-2, Llama 3, Qwen2/3, SmolLM), as HF tokenizers and
// llama.cpp compute it:
//   1. (Qwen2) the text is normalized to NFC;
//   2. the pre-tokenizer regex splits it into words (tokenizer_pretokenize.cc);
//   3. each byte of a word is a symbol, the token of its GPT-2 printable character ("Ġ" for a
//      space), so no byte is ever unknown;
//   4. repeatedly, the adjacent pair with the lowest merge rank merges (ties: the leftmost), on a
//      priority queue with lazy deletion: O(n log n) in the word's length.
// Llama 3 (pre "llama-bpe") sets HF's ignore_merges: a word that is a token is taken whole.
#include <array>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/tokenizer_base.h"
#include "model/tokenizer_pretokenize.h"
#include "model/unicode.h"
#include "slimlm/core/log.h"

namespace slimlm {
namespace {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes
// (controls, space, DEL, NBSP, soft hyphen) take the code points from U+0100 on, in byte order.
std::array<uint32_t, 256> MakeByteToCodePoint() {
  std::array<uint32_t, 256> table{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    table[b] = printable ? b : next++;
  }
  return table;
}
const std::array<uint32_t, 256> kByteToCodePoint = MakeByteToCodePoint();

// Words longer than this are not cached: they are rare and would bloat the cache.
constexpr size_t kMaxCachedWord = 256;
constexpr size_t kMaxCacheEntries = size_t{1} << 16;

class BpeTokenizer final : public TokenizerBase {
 public:
  explicit BpeTokenizer(VocabData vocab) : TokenizerBase(std::move(vocab)) {}
  Status Init();

 protected:
  struct WordCache : Scratch {
    std::unordered_map<std::string, std::vector<int32_t>> words;
  };
  void EncodeRaw(std::string_view text, bool after_special, Scratch* scratch,
                 std::vector<int32_t>* out) const override;
  std::unique_ptr<Scratch> MakeScratch() const override { return std::make_unique<WordCache>(); }
  std::string NormalPiece(const std::string& text) const override;

 private:
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t left;
    int32_t left_id;
    int32_t right_id;
    int32_t merged;
    // The queue's top is the lowest rank, then the leftmost pair.
    bool operator<(const Candidate& other) const {
      return rank > other.rank || (rank == other.rank && left > other.left);
    }
  };
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  PreTokenizer pre_ = PreTokenizer::kGpt2;
  bool nfc_ = false;
  bool ignore_merges_ = false;
  MergeTable merges_;
  std::array<int32_t, 256> byte_ids_{};
};

Status BpeTokenizer::Init() {
  const VocabData& v = vocab();
  if (v.pre.empty() || v.pre == "default") {
    SLIMLM_LOG(kWarning, "tokenizer.ggml.pre is '{}': using the GPT-2 pre-tokenizer", v.pre);
  } else if (std::optional<PreTokenizer> pre = PreTokenizerFromName(v.pre)) {
    pre_ = *pre;
  } else {
    return UnsupportedError(
        "unsupported pre-tokenizer '{}' (tokenizer.ggml.pre; supported: gpt-2, llama-bpe, qwen2, "
        "smollm)",
        v.pre);
  }
  nfc_ = pre_ == PreTokenizer::kQwen2;
  ignore_merges_ = pre_ == PreTokenizer::kLlama3;

  for (int b = 0; b < 256; ++b) {
    std::string text;
    unicode::AppendUtf8(kByteToCodePoint[b], &text);
    byte_ids_[b] = FindToken(text);
    if (byte_ids_[b] < 0) {
      if (v.unk < 0) {
        return CorruptError("byte-level vocabulary has no token '{}' for byte 0x{:02X}", text, b);
      }
      byte_ids_[b] = v.unk;
    }
  }

  merges_ = MergeTable(v.merges.size());
  for (size_t rank = 0; rank < v.merges.size(); ++rank) {
    const std::string& merge = v.merges[rank];
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos || space + 1 >= merge.size()) {
      return CorruptError("tokenizer.ggml.merges[{}] '{}' is not 'left right'", rank, merge);
    }
    const std::string_view left(merge.data(), space);
    const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
    const int32_t left_id = FindToken(left);
    const int32_t right_id = FindToken(right);
    const int32_t merged_id = FindToken(std::string(left) + std::string(right));
    if (left_id < 0 || right_id < 0 || merged_id < 0) {
      return CorruptError("tokenizer.ggml.merges[{}] '{}': '{}' is not a token", rank, merge,
                          left_id < 0    ? std::string(left)
                          : right_id < 0 ? std::string(right)
                                         : std::string(left) + std::string(right));
    }
    merges_.Insert(left_id, right_id, {static_cast<int32_t>(rank), merged_id});
  }
  InitPieces();
  return Status::Ok();
}

std::string BpeTokenizer::NormalPiece(const std::string& text) const {
  static const std::array<int16_t, 324> kCodePointToByte = [] {
    std::array<int16_t, 324> table;
    table.fill(-1);
    for (int b = 0; b < 256; ++b) table[kByteToCodePoint[b]] = static_cast<int16_t>(b);
    return table;
  }();
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp;
    pos += unicode::DecodeUtf8(text, pos, &cp);
    // Like HF's ByteLevel decoder: a token with a character outside the byte alphabet is
    // rendered as its own text.
    if (cp >= kCodePointToByte.size() || kCodePointToByte[cp] < 0) return text;
    out.push_back(static_cast<char>(kCodePointToByte[cp]));
  }
  return out;
}

void BpeTokenizer::EncodeRaw(std::string_view raw, bool, Scratch* scratch,
                             std::vector<int32_t>* out) const {
  std::string normalized;
  std::string_view text = raw;
  if (nfc_) {
    normalized = unicode::NormalizeNfc(raw);
    text = normalized;
  }
  std::vector<std::string_view> words;
  PreTokenize(pre_, text, &words);
  auto& cache = static_cast<WordCache*>(scratch)->words;
  for (std::string_view word : words) {
    if (word.size() > kMaxCachedWord) {
      EncodeWord(word, out);
      continue;
    }
    auto it = cache.find(std::string(word));
    if (it == cache.end()) {
      if (cache.size() >= kMaxCacheEntries) cache.clear();
      std::vector<int32_t> ids;
      EncodeWord(word, &ids);
      it = cache.emplace(std::string(word), std::move(ids)).first;
    }
    out->insert(out->end(), it->second.begin(), it->second.end());
  }
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (ignore_merges_) {
    std::string mapped;
    for (char c : word) unicode::AppendUtf8(kByteToCodePoint[static_cast<uint8_t>(c)], &mapped);
    const int32_t id = FindToken(mapped);
    if (id >= 0 && vocab().types[id] == TokenType::kNormal) {
      out->push_back(id);
      return;
    }
  }
  const auto n = static_cast<int32_t>(word.size());
  std::vector<Symbol> symbols(n);
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = Symbol{byte_ids_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  std::priority_queue<Candidate> queue;
  auto try_pair = [&](int32_t left) {
    if (left < 0 || symbols[left].next < 0) return;
    const int32_t left_id = symbols[left].id;
    const int32_t right_id = symbols[symbols[left].next].id;
    if (const MergeTable::Merge* merge = merges_.Find(left_id, right_id)) {
      queue.push(Candidate{merge->rank, left, left_id, right_id, merge->merged});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) try_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.left];
    // Stale when either side has merged since: a symbol's id only ever grows into a longer
    // token, so equal ids mean the same two symbols are still neighbours.
    if (left.id != top.left_id || left.next < 0 || symbols[left.next].id != top.right_id) continue;
    Symbol& right = symbols[left.next];
    left.id = top.merged;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.id = -1;
    try_pair(left.prev);
    try_pair(top.left);
  }
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) out->push_back(symbols[i].id);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> MakeBpeTokenizer(VocabData vocab) {
  auto tokenizer = std::make_unique<BpeTokenizer>(std::move(vocab));
  SLIMLM_RETURN_IF_ERROR(tokenizer->Init());
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

}  // namespace slimlm
