// Training data: text files cut into documents (at lines holding only "<|endoftext|>", the
// TinyStories layout; a file without them is one document), each tokenized with BOS first and
// EOS last, a held-out share of the documents set aside, and the rest served as windows of
// n_ctx + 1 tokens in an order shuffled per epoch from a seed. Everything is deterministic: the
// same files, tokenizer, options and position give the same batches, which is what makes
// resuming a checkpoint exact.
#ifndef SLIMLM_TRAIN_DATASET_H_
#define SLIMLM_TRAIN_DATASET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm::train {

struct DatasetOptions {
  int64_t n_ctx = 256;           // Tokens a window predicts (it holds n_ctx + 1).
  double valid_fraction = 0.05;  // Share of the documents held out (every k-th document).
  uint64_t seed = 1;
};

// Splits text into documents at "<|endoftext|>" lines; empty documents are dropped.
std::vector<std::string_view> SplitDocuments(std::string_view text);

class Dataset {
 public:
  // Tokenizes `texts` (the contents of the files, in order). Errors when the training part has
  // fewer tokens than one window.
  static Result<Dataset> Build(const std::vector<std::string>& texts, const Tokenizer& tokenizer,
                               const DatasetOptions& options);

  // The tokenized-data cache: Build's result kept in a file, so that a second run on the same
  // texts skips tokenizing. The key covers the texts' bytes, the tokenizer's vocabulary (each
  // token's text and type, in order; BOS and EOS) and the held-out fraction; a cache file with
  // another key is not used (Build runs and the file is replaced).
  static uint64_t CacheKey(const std::vector<std::string>& texts, const Tokenizer& tokenizer,
                           const DatasetOptions& options);
  // Build, through the cache at `cache_path` ("" for none). *from_cache tells which happened.
  static Result<Dataset> BuildCached(const std::vector<std::string>& texts,
                                     const Tokenizer& tokenizer, const DatasetOptions& options,
                                     const std::string& cache_path, bool* from_cache);

  // A hash of the tokenized training and held-out streams: what the data is, for caches built
  // from it (the teacher cache of train/distill.h).
  uint64_t Fingerprint() const;

  int64_t n_ctx() const { return n_ctx_; }
  int64_t train_tokens() const { return static_cast<int64_t>(train_.size()); }
  int64_t valid_tokens() const { return static_cast<int64_t>(valid_.size()); }
  int64_t documents() const { return documents_; }
  int64_t valid_documents() const { return valid_documents_; }
  // Training windows per epoch; held-out windows.
  int64_t windows() const { return static_cast<int64_t>(order_size()); }
  int64_t valid_windows() const;

  // Training window i of the stream (i counts across epochs: epoch i / windows(), shuffled
  // within the epoch): tokens and next-token targets, n_ctx each.
  void Window(int64_t i, int32_t* tokens, int32_t* targets) const;
  // Where training window i starts in the token stream, divided by n_ctx: its slot (in
  // [0, windows())), the same in every epoch.
  int64_t WindowSlot(int64_t i) const;
  // Tokens of slot j (n_ctx + 1 of them: inputs and the last target).
  const int32_t* SlotTokens(int64_t j) const { return train_.data() + j * n_ctx_; }
  // Held-out window i (in order).
  void ValidWindow(int64_t i, int32_t* tokens, int32_t* targets) const;

 private:
  size_t order_size() const { return static_cast<size_t>((train_.size() - 1) / n_ctx_); }
  Status CheckSize(const DatasetOptions& options) const;  // At least one window to train on.
  Status SaveCache(const std::string& path, uint64_t key) const;
  // NotFound when there is no usable cache (missing, another key, damaged).
  static Result<Dataset> LoadCache(const std::string& path, uint64_t key,
                                   const DatasetOptions& options);
  int64_t n_ctx_ = 0;
  uint64_t seed_ = 0;
  std::vector<int32_t> train_, valid_;
  int64_t documents_ = 0, valid_documents_ = 0;
};

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_DATASET_H_
