// Scores <-> merges for SentencePiece-style BPE vocabularies (see docs/tokenizers.md for why
// the SentencePiece algorithm over these scores gives the same result as HF's BPE over these
// merges).
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "formats/tokenizer_internal.h"

namespace slimlm::hf {
namespace {

constexpr int32_t kNormal = 1, kUserDefined = 4, kUnused = 5;

bool Mergeable(int32_t type) { return type == kNormal || type == kUserDefined || type == 0; }

// Byte offsets where a UTF-8 character starts, past the first one: the split points of a token.
std::vector<size_t> SplitPoints(std::string_view text) {
  std::vector<size_t> points;
  for (size_t i = 1; i < text.size(); ++i) {
    if ((static_cast<uint8_t>(text[i]) & 0xC0) != 0x80) points.push_back(i);
  }
  return points;
}

std::unordered_map<std::string_view, int32_t> IndexMergeable(const std::vector<std::string>& tokens,
                                                             const std::vector<int32_t>& types) {
  std::unordered_map<std::string_view, int32_t> index;
  index.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (Mergeable(types[id])) index.emplace(tokens[id], static_cast<int32_t>(id));
  }
  return index;
}

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

size_t ScoresFromMerges(const std::vector<std::string>& tokens, const std::vector<MergeIds>& merges,
                        std::vector<float>* scores, std::vector<int32_t>* types) {
  const size_t n = tokens.size();
  std::vector<int64_t> first(n, -1), last(n, -1);
  std::unordered_set<uint64_t> pairs;
  pairs.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const MergeIds& m = merges[rank];
    if (first[m.merged] < 0) first[m.merged] = static_cast<int64_t>(rank);
    last[m.merged] = static_cast<int64_t>(rank);
    pairs.insert(PairKey(m.left, m.right));
  }
  scores->assign(n, 0.0f);
  std::vector<int32_t> produced;
  for (size_t id = 0; id < n; ++id) {
    if (first[id] >= 0) {
      (*scores)[id] = -static_cast<float>(first[id]);
      produced.push_back(static_cast<int32_t>(id));
    } else if ((*types)[id] == kNormal && !SplitPoints(tokens[id]).empty()) {
      (*types)[id] = kUnused;  // No merge makes it, so BPE never outputs it.
    }
  }
  // What scores cannot say: merges of different tokens that interleave in rank, and splits of
  // a token into two pieces that HF has no merge for (SentencePiece would merge them).
  size_t inexpressible = 0;
  std::sort(produced.begin(), produced.end(),
            [&](int32_t a, int32_t b) { return first[a] < first[b]; });
  for (size_t i = 1; i < produced.size(); ++i) {
    if (last[produced[i - 1]] > first[produced[i]]) ++inexpressible;
  }
  const auto index = IndexMergeable(tokens, *types);
  for (int32_t id : produced) {
    const std::string_view text = tokens[id];
    for (size_t point : SplitPoints(text)) {
      auto left = index.find(text.substr(0, point));
      auto right = index.find(text.substr(point));
      if (left != index.end() && right != index.end() &&
          !pairs.count(PairKey(left->second, right->second))) {
        ++inexpressible;
      }
    }
  }
  return inexpressible;
}

std::vector<std::pair<int32_t, int32_t>> MergesFromScores(const std::vector<std::string>& tokens,
                                                          const std::vector<float>& scores,
                                                          const std::vector<int32_t>& types) {
  struct Merge {
    float score;
    int32_t merged, left, right;
  };
  const auto index = IndexMergeable(tokens, types);
  std::vector<Merge> merges;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (!Mergeable(types[id])) continue;
    const std::string_view text = tokens[id];
    for (size_t point : SplitPoints(text)) {
      auto left = index.find(text.substr(0, point));
      auto right = index.find(text.substr(point));
      if (left != index.end() && right != index.end()) {
        merges.push_back(Merge{scores[id], static_cast<int32_t>(id), left->second, right->second});
      }
    }
  }
  // HF's converter order: by the merged piece's score, then by the ids of the two parts.
  std::sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.merged != b.merged) return a.merged < b.merged;
    if (a.left != b.left) return a.left < b.left;
    return a.right < b.right;
  });
  std::vector<std::pair<int32_t, int32_t>> out;
  out.reserve(merges.size());
  for (const Merge& m : merges) out.emplace_back(m.left, m.right);
  return out;
}

}  // namespace slimlm::hf
