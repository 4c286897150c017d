// Flat hash tables for the tokenizer's hot loops: token text -> id, and (left id, right id) ->
// merge. Both are built once and then only read, so open addressing with linear probing over
// one array keeps every lookup to one or two cache lines; std::unordered_map allocates a node
// per entry and was the bottleneck of encoding.
#ifndef SLIMLM_MODEL_TOKENIZER_MAPS_H_
#define SLIMLM_MODEL_TOKENIZER_MAPS_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace slimlm {

// A fast non-cryptographic hash of a short byte string (multiply-xorshift over 8-byte words).
inline uint64_t HashBytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xff51afd7ed558ccdull);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t v;
    std::memcpy(&v, s.data() + i, 8);
    h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  uint64_t v = 0;
  std::memcpy(&v, s.data() + i, s.size() - i);
  h = (h ^ v) * 0x94d049bb133111ebull;
  return h ^ (h >> 29);
}

// Token text -> id over a vocabulary that outlives it. The first id of a repeated text wins.
class TokenIndex {
 public:
  TokenIndex() = default;
  // Indexes tokens[id] for every id where keep(id) is true.
  template <typename Keep>
  void Build(const std::vector<std::string>* tokens, Keep keep) {
    tokens_ = tokens;
    size_t capacity = 16;
    while (capacity < tokens->size() * 2) capacity *= 2;
    slots_.assign(capacity, -1);
    mask_ = capacity - 1;
    for (size_t id = 0; id < tokens->size(); ++id) {
      if (!keep(id)) continue;
      const std::string& text = (*tokens)[id];
      size_t slot = HashBytes(text) & mask_;
      while (slots_[slot] >= 0 && (*tokens_)[slots_[slot]] != text) slot = (slot + 1) & mask_;
      if (slots_[slot] < 0) slots_[slot] = static_cast<int32_t>(id);
    }
  }
  // The id of `text`, or -1.
  int32_t Find(std::string_view text) const {
    if (slots_.empty()) return -1;
    size_t slot = HashBytes(text) & mask_;
    while (true) {
      const int32_t id = slots_[slot];
      if (id < 0) return -1;
      if ((*tokens_)[id] == text) return id;
      slot = (slot + 1) & mask_;
    }
  }

 private:
  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<int32_t> slots_;
  size_t mask_ = 0;
};

// (left id, right id) -> (rank, merged id) for byte-level BPE merges.
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  explicit MergeTable(size_t expected = 0) { Reserve(expected); }

  // Adds a merge; false when the pair is already present (the earlier rank is kept).
  bool Insert(int32_t left, int32_t right, Merge merge) {
    const uint64_t key = Key(left, right);
    size_t slot = Mix(key) & mask_;
    while (keys_[slot] != kEmpty) {
      if (keys_[slot] == key) return false;
      slot = (slot + 1) & mask_;
    }
    keys_[slot] = key;
    values_[slot] = merge;
    return true;
  }
  // The merge of the pair, or nullptr.
  const Merge* Find(int32_t left, int32_t right) const {
    const uint64_t key = Key(left, right);
    size_t slot = Mix(key) & mask_;
    while (keys_[slot] != kEmpty) {
      if (keys_[slot] == key) return &values_[slot];
      slot = (slot + 1) & mask_;
    }
    return nullptr;
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t Key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return x ^ (x >> 33);
  }
  void Reserve(size_t expected) {
    size_t capacity = 16;
    while (capacity < expected * 2) capacity *= 2;
    keys_.assign(capacity, kEmpty);
    values_.assign(capacity, Merge{0, 0});
    mask_ = capacity - 1;
  }

  std::vector<uint64_t> keys_;
  std::vector<Merge> values_;
  size_t mask_ = 0;
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_TOKENIZER_MAPS_H_
