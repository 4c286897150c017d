#include "slimlm/train/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include "slimlm/core/file.h"
#include "slimlm/core/hash.h"

namespace slimlm::train {
namespace {

constexpr int64_t kCacheMagic = 0x31304b4f544d4c53;  // "SLMTOK01"
constexpr int32_t kCacheVersion = 1;

// The order of an epoch's windows: a Fisher-Yates permutation seeded by (seed, epoch).
std::vector<uint32_t> Permutation(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<uint32_t> p(n);
  std::iota(p.begin(), p.end(), 0u);
  uint64_t state = Mix64(seed ^ Mix64(static_cast<uint64_t>(epoch)));
  for (size_t i = n; i > 1; --i) {
    state = Mix64(state);
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
  SLIMLM_RETURN_IF_ERROR(d.CheckSize(options));
  return d;
}

Status Dataset::CheckSize(const DatasetOptions& options) const {
  if (static_cast<int64_t>(train_.size()) < options.n_ctx + 1) {
    return InvalidArgumentError(
        "the training text has {} tokens, fewer than one window of {} (the context plus one)",
        train_.size(), options.n_ctx + 1);
  }
  return Status::Ok();
}

int64_t Dataset::valid_windows() const {
  return valid_.size() > 1 ? static_cast<int64_t>((valid_.size() - 1) / n_ctx_) : 0;
}

uint64_t Dataset::CacheKey(const std::vector<std::string>& texts, const Tokenizer& tokenizer,
                           const DatasetOptions& options) {
  uint64_t h = kHashSeed;
  auto mix = [&h](const auto& value) { h = HashBytes(&value, sizeof(value), h); };
  mix(kCacheVersion);
  mix(options.valid_fraction);
  for (const std::string& text : texts) {
    mix(text.size());
    h = HashBytes(text.data(), text.size(), h);
  }
  mix(tokenizer.vocab_size());
  mix(tokenizer.bos_id());
  mix(tokenizer.eos_id());
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    const std::string& piece = tokenizer.TokenText(id);
    mix(piece.size());
    h = HashBytes(piece.data(), piece.size(), h);
    mix(static_cast<int32_t>(tokenizer.token_type(id)));
  }
  return h;
}

Status Dataset::SaveCache(const std::string& path, uint64_t key) const {
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> out, AtomicFileWriter::Create(path));
  const int64_t header[] = {
      kCacheMagic,      static_cast<int64_t>(key),           documents_,
      valid_documents_, static_cast<int64_t>(train_.size()), static_cast<int64_t>(valid_.size())};
  SLIMLM_RETURN_IF_ERROR(out->Write(header, sizeof(header)));
  SLIMLM_RETURN_IF_ERROR(out->Write(train_.data(), train_.size() * sizeof(int32_t)));
  SLIMLM_RETURN_IF_ERROR(out->Write(valid_.data(), valid_.size() * sizeof(int32_t)));
  return out->Commit();
}

Result<Dataset> Dataset::LoadCache(const std::string& path, uint64_t key,
                                   const DatasetOptions& options) {
  if (!IsRegularFile(path)) return NotFoundError("{}: no cache", path);
  // Mapped, not read: the file's pages are copied once, into the arrays.
  SLIMLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const std::span<const uint8_t> bytes = file.bytes();
  int64_t header[6];
  if (bytes.size() < sizeof(header)) return NotFoundError("{}: not a token cache", path);
  std::memcpy(header, bytes.data(), sizeof(header));
  const int64_t n_train = header[4], n_valid = header[5];
  const int64_t capacity = static_cast<int64_t>(bytes.size() / 4);  // Bounds both before adding.
  if (header[0] != kCacheMagic || static_cast<uint64_t>(header[1]) != key || n_train < 0 ||
      n_valid < 0 || n_train > capacity || n_valid > capacity ||
      bytes.size() != sizeof(header) + static_cast<uint64_t>(n_train + n_valid) * 4) {
    return NotFoundError("{}: a cache of other data, or damaged", path);
  }
  Dataset d;
  d.n_ctx_ = options.n_ctx;
  d.seed_ = options.seed;
  d.documents_ = header[2];
  d.valid_documents_ = header[3];
  d.train_.resize(static_cast<size_t>(n_train));
  d.valid_.resize(static_cast<size_t>(n_valid));
  std::memcpy(d.train_.data(), bytes.data() + sizeof(header), d.train_.size() * 4);
  std::memcpy(d.valid_.data(), bytes.data() + sizeof(header) + d.train_.size() * 4,
              d.valid_.size() * 4);
  return d;
}

Result<Dataset> Dataset::BuildCached(const std::vector<std::string>& texts,
                                     const Tokenizer& tokenizer, const DatasetOptions& options,
                                     const std::string& cache_path, bool* from_cache) {
  *from_cache = false;
  if (cache_path.empty()) return Build(texts, tokenizer, options);
  const uint64_t key = CacheKey(texts, tokenizer, options);
  Result<Dataset> cached = LoadCache(cache_path, key, options);
  if (cached.ok()) {
    SLIMLM_RETURN_IF_ERROR(cached->CheckSize(options));
    *from_cache = true;
    return cached;
  }
  SLIMLM_ASSIGN_OR_RETURN(Dataset d, Build(texts, tokenizer, options));
  SLIMLM_RETURN_IF_ERROR(d.SaveCache(cache_path, key));
  return d;
}

uint64_t Dataset::Fingerprint() const {
  uint64_t h = HashBytes(train_.data(), train_.size() * sizeof(int32_t));
  return HashBytes(valid_.data(), valid_.size() * sizeof(int32_t), h);
}

int64_t Dataset::WindowSlot(int64_t i) const {
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
  return order[static_cast<size_t>(i % static_cast<int64_t>(n))];
}

void Dataset::Window(int64_t i, int32_t* tokens, int32_t* targets) const {
  Fill(train_, WindowSlot(i) * n_ctx_, n_ctx_, tokens, targets);
}

void Dataset::ValidWindow(int64_t i, int32_t* tokens, int32_t* targets) const {
  Fill(valid_, i * n_ctx_, n_ctx_, tokens, targets);
}

}  // namespace slimlm::train
