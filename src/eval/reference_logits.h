// A file of a reference model's log-probabilities over llama-perplexity's chunks, so that
// `eval kld` can compare many models with a reference that is no longer loaded (or no longer
// fits in memory beside them), as llama-perplexity's --kl-divergence-base does.
//
// Layout (little-endian):
//   "SLIMLMKL" magic, u32 version (1), u32 n_vocab, u32 n_ctx, u32 chunks
//   i32 tokens[chunks][n_ctx]: the chunks' tokens, checked against the text of a later run
//   per chunk, per scored position (n_ctx - n_ctx/2 - 1 of them):
//     f32 lo, f32 step, u16 code[n_vocab]   log p = lo + step * code
// The 16-bit codes over [min log p, 0] keep each log-probability within step/2 (under 3e-4 nats
// for a range of 40 nats), far below the KL divergences worth measuring.
#ifndef SLIMLM_EVAL_REFERENCE_LOGITS_H_
#define SLIMLM_EVAL_REFERENCE_LOGITS_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "slimlm/core/file.h"
#include "slimlm/core/status.h"

namespace slimlm::eval {

// The reference's figures at one chunk's scored positions.
struct ReferenceChunk {
  std::vector<double> logp;  // (positions, n_vocab)
  std::vector<int32_t> top;  // Most likely token per position.
  std::vector<double> nll;   // -log p of the actual next token per position.
};

class ReferenceLogitsWriter {
 public:
  static Result<std::unique_ptr<ReferenceLogitsWriter>> Create(const std::string& path,
                                                               int64_t n_vocab, int64_t n_ctx,
                                                               std::span<const int32_t> tokens,
                                                               int64_t chunks);
  // Appends one chunk's positions (the logp rows of `chunk`), in chunk order.
  Status Append(const ReferenceChunk& chunk);
  Status Commit();

 private:
  explicit ReferenceLogitsWriter(std::unique_ptr<AtomicFileWriter> file, int64_t n_vocab)
      : file_(std::move(file)), n_vocab_(n_vocab) {}
  std::unique_ptr<AtomicFileWriter> file_;
  int64_t n_vocab_;
  std::vector<uint16_t> codes_;
};

class ReferenceLogitsReader {
 public:
  // Opens `path` and checks it against this run: the vocabulary size, the chunk size, at least
  // `chunks` chunks, and the same tokens in each.
  static Result<std::unique_ptr<ReferenceLogitsReader>> Open(const std::string& path,
                                                             int64_t n_vocab, int64_t n_ctx,
                                                             std::span<const int32_t> tokens,
                                                             int64_t chunks);
  // Reads chunk `c`'s positions (chunks are read in order) and the targets from the tokens.
  Status Read(int64_t c, std::span<const int32_t> tokens, ReferenceChunk* out);

 private:
  ReferenceLogitsReader(MappedFile file, int64_t n_vocab, int64_t n_ctx, size_t data_offset)
      : file_(std::move(file)), n_vocab_(n_vocab), n_ctx_(n_ctx), data_offset_(data_offset) {}
  MappedFile file_;
  int64_t n_vocab_, n_ctx_;
  size_t data_offset_;
};

}  // namespace slimlm::eval

#endif  // SLIMLM_EVAL_REFERENCE_LOGITS_H_
