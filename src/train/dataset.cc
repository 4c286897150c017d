#include "slimlm/train/dataset.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace slimlm::train {
namespace {

// splitmix64: a small, fully specified generator (std's distributions are not, across
// libraries), so that an order depends only on the seed.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The order of an epoch's windows: a Fisher-Yates permutation seeded by (seed, epoch).
std::vector<uint32_t> Permutation(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<uint32_t> p(n);
  std::iota(p.begin(), p.end(), 0u);
  uint64_t state = Mix(seed ^ Mix(static_cast<uint64_t>(epoch)));
  for (size_t i = n; i > 1; --i) {
    state = Mix(state);
    std::swap(p[i - 1], p[state % i]);
  }
  return p;
}

void Fill(const std::vector<int32_t>& stream, int64_t start, int64_t n_ctx, int32_t* tokens,
          int32_t* targets) {
  std::copy_n(stream.begin() + start, n_ctx, tokens);
  std::copy_n(stream.begin() + start + 1, n_ctx, targets);
}

}  // namespace

std::vector<std::string_view> SplitDocuments(std::string_view text) {
  constexpr std::string_view kSeparator = "<|endoftext|>";
  std::vector<std::string_view> docs;
  size_t start = 0, line = 0;
  auto add = [&](size_t end) {
    std::string_view doc = text.substr(start, end - start);
    while (!doc.empty() && (doc.back() == '\n' || doc.back() == '\r')) doc.remove_suffix(1);
    while (!doc.empty() && (doc.front() == '\n' || doc.front() == '\r')) doc.remove_prefix(1);
    if (!doc.empty()) docs.push_back(doc);
  };
  while (line < text.size()) {
    size_t end = text.find('\n', line);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(line, end - line);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l == kSeparator) {
      add(line);
      start = end + 1;
    }
    line = end + 1;
  }
  if (start < text.size()) add(text.size());
  return docs;
}

Result<Dataset> Dataset::Build(const std::vector<std::string>& texts, const Tokenizer& tokenizer,
                               const DatasetOptions& options) {
  if (options.n_ctx < 1) return InvalidArgumentError("the context must be at least 1 token");
  if (options.valid_fraction < 0 || options.valid_fraction >= 1) {
    return InvalidArgumentError("the held-out fraction must be in [0, 1), got {}",
                                options.valid_fraction);
  }
  Dataset d;
  d.n_ctx_ = options.n_ctx;
  d.seed_ = options.seed;
  // Every k-th document is held out, k = round(1 / fraction).
  const int64_t every = options.valid_fraction > 0
                            ? std::max<int64_t>(2, std::llround(1.0 / options.valid_fraction))
                            : 0;
  const int32_t eos = tokenizer.eos_id();
  for (const std::string& text : texts) {
    for (std::string_view doc : SplitDocuments(text)) {
      std::vector<int32_t> ids = tokenizer.Encode(doc, /*add_special=*/true,
                                                  /*parse_special=*/false);
      if (eos >= 0 && (ids.empty() || ids.back() != eos)) ids.push_back(eos);
      const bool held_out = every > 0 && d.documents_ % every == every - 1;
      std::vector<int32_t>& stream = held_out ? d.valid_ : d.train_;
      stream.insert(stream.end(), ids.begin(), ids.end());
      ++d.documents_;
      d.valid_documents_ += held_out ? 1 : 0;
    }
  }
  if (static_cast<int64_t>(d.train_.size()) < options.n_ctx + 1) {
    return InvalidArgumentError(
        "the training text has {} tokens, fewer than one window of {} (the context plus one)",
        d.train_.size(), options.n_ctx + 1);
  }
  return d;
}

int64_t Dataset::valid_windows() const {
  return valid_.size() > 1 ? static_cast<int64_t>((valid_.size() - 1) / n_ctx_) : 0;
}

void Dataset::Window(int64_t i, int32_t* tokens, int32_t* targets) const {
  const size_t n = order_size();
  const int64_t epoch = i / static_cast<int64_t>(n);
  // The permutation depends on (windows, seed, epoch) only; keep the last one per thread.
  thread_local std::vector<uint32_t> order;
  thread_local int64_t order_epoch = -1;
  thread_local uint64_t order_seed = 0;
  if (order_epoch != epoch || order_seed != seed_ || order.size() != n) {
    order = Permutation(n, seed_, epoch);
    order_epoch = epoch;
    order_seed = seed_;
  }
  const int64_t slot = order[static_cast<size_t>(i % static_cast<int64_t>(n))];
  Fill(train_, slot * n_ctx_, n_ctx_, tokens, targets);
}

void Dataset::ValidWindow(int64_t i, int32_t* tokens, int32_t* targets) const {
  Fill(valid_, i * n_ctx_, n_ctx_, tokens, targets);
}

}  // namespace slimlm::train
