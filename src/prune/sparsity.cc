#include "slimlm/prune/sparsity.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include <fmt/core.h>

namespace slimlm::prune {
namespace {

// Sets to zero the `remove` lowest-scored of the `count` weights at positions index[0..count)
// (ties: the earlier position goes first). `index` is scratch of count entries.
template <typename Index>
void RemoveLowest(const float* score, float* w, Index* index, int64_t count, int64_t remove) {
  if (remove <= 0) return;
  // A NaN score (from a NaN weight) counts as the lowest, so the order stays a strict weak
  // ordering and such weights go first.
  auto key = [score](Index i) {
    return std::isnan(score[i]) ? -std::numeric_limits<float>::infinity() : score[i];
  };
  auto lower = [&key](Index a, Index b) {
    const float ka = key(a), kb = key(b);
    return ka < kb || (ka == kb && a < b);
  };
  if (remove < count) std::nth_element(index, index + remove, index + count, lower);
  for (int64_t i = 0; i < std::min(remove, count); ++i) w[index[i]] = 0.0f;
}

}  // namespace

std::string SparsityTarget::ToString() const {
  if (is_pattern()) return fmt::format("{}:{}", n, m);
  return fmt::format("unstructured {:g}%", 100.0 * sparsity);
}

std::string SparsityTarget::PatternName() const {
  return is_pattern() ? fmt::format("{}:{}", n, m) : "unstructured";
}

Result<SparsityTarget> UnstructuredTarget(double sparsity) {
  if (!(sparsity > 0.0 && sparsity < 1.0)) {
    return InvalidArgumentError(
        "sparsity {:g} is outside (0, 1): give the fraction of weights to "
        "remove, such as 0.5",
        sparsity);
  }
  SparsityTarget t;
  t.sparsity = sparsity;
  return t;
}

Result<SparsityTarget> ParsePattern(std::string_view text) {
  const size_t colon = text.find(':');
  int n = 0, m = 0;
  bool ok = colon != std::string_view::npos;
  if (ok) {
    const char* end_n = text.data() + colon;
    const char* end_m = text.data() + text.size();
    auto rn = std::from_chars(text.data(), end_n, n);
    auto rm = std::from_chars(end_n + 1, end_m, m);
    ok = rn.ec == std::errc() && rn.ptr == end_n && rm.ec == std::errc() && rm.ptr == end_m;
  }
  if (!ok || n <= 0 || m > 64 || n >= m) {
    return InvalidArgumentError(
        "pattern '{}' is not N:M with 0 < N < M <= 64 (N weights kept of every M), such as 2:4",
        text);
  }
  SparsityTarget t;
  t.n = n;
  t.m = m;
  t.sparsity = 1.0 - static_cast<double>(n) / m;
  return t;
}

Status CheckPatternFits(const SparsityTarget& target, int64_t cols, std::string_view name) {
  if (target.is_pattern() && cols % target.m != 0) {
    return InvalidArgumentError("pattern {}: the rows of {} have {} weights, not a multiple of {}",
                                target.ToString(), name, cols, target.m);
  }
  return Status::Ok();
}

void PruneByScore(const float* score, int64_t rows, int64_t cols, const SparsityTarget& target,
                  MaskScope scope, float* w) {
  if (target.is_pattern()) {
    const int64_t remove = target.m - target.n;
    std::vector<int64_t> index(static_cast<size_t>(target.m));
    for (int64_t g = 0; g < rows * cols; g += target.m) {
      std::iota(index.begin(), index.end(), g);
      RemoveLowest(score, w, index.data(), target.m, remove);
    }
    return;
  }
  if (scope == MaskScope::kRow) {
    const auto remove = static_cast<int64_t>(std::llround(target.sparsity * cols));
    std::vector<int64_t> index(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      std::iota(index.begin(), index.end(), r * cols);
      RemoveLowest(score, w, index.data(), cols, remove);
    }
    return;
  }
  const int64_t count = rows * cols;
  const auto remove = static_cast<int64_t>(std::llround(target.sparsity * count));
  std::vector<int64_t> index(static_cast<size_t>(count));
  std::iota(index.begin(), index.end(), 0);
  RemoveLowest(score, w, index.data(), count, remove);
}

int64_t CountZeros(const float* x, int64_t n) {
  int64_t zeros = 0;
  for (int64_t i = 0; i < n; ++i) zeros += x[i] == 0.0f ? 1 : 0;
  return zeros;
}

}  // namespace slimlm::prune
