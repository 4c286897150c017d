#include "eval/reference_logits.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace slimlm::eval {
namespace {

constexpr char kMagic[8] = {'S', 'L', 'I', 'M', 'L', 'M', 'K', 'L'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 * 4;

size_t PositionBytes(int64_t n_vocab) { return 8 + 2 * static_cast<size_t>(n_vocab); }

int64_t ScoredPerChunk(int64_t n_ctx) { return n_ctx - n_ctx / 2 - 1; }

uint32_t ReadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

Result<std::unique_ptr<ReferenceLogitsWriter>> ReferenceLogitsWriter::Create(
    const std::string& path, int64_t n_vocab, int64_t n_ctx, std::span<const int32_t> tokens,
    int64_t chunks) {
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> file, AtomicFileWriter::Create(path));
  const uint32_t header[4] = {kVersion, static_cast<uint32_t>(n_vocab),
                              static_cast<uint32_t>(n_ctx), static_cast<uint32_t>(chunks)};
  SLIMLM_RETURN_IF_ERROR(file->Write(kMagic, sizeof(kMagic)));
  SLIMLM_RETURN_IF_ERROR(file->Write(header, sizeof(header)));
  SLIMLM_RETURN_IF_ERROR(
      file->Write(tokens.data(), static_cast<size_t>(chunks * n_ctx) * sizeof(int32_t)));
  return std::unique_ptr<ReferenceLogitsWriter>(
      new ReferenceLogitsWriter(std::move(file), n_vocab));
}

Status ReferenceLogitsWriter::Append(const ReferenceChunk& chunk) {
  codes_.resize(static_cast<size_t>(n_vocab_));
  const size_t positions = chunk.top.size();
  for (size_t i = 0; i < positions; ++i) {
    const double* logp = chunk.logp.data() + i * static_cast<size_t>(n_vocab_);
    const double lo = *std::min_element(logp, logp + n_vocab_);
    const float step = static_cast<float>(-lo / 65535.0);
    const float lo_f = static_cast<float>(lo);
    for (int64_t v = 0; v < n_vocab_; ++v) {
      const double code = step > 0 ? std::round((logp[v] - lo_f) / step) : 0.0;
      codes_[static_cast<size_t>(v)] = static_cast<uint16_t>(std::clamp(code, 0.0, 65535.0));
    }
    SLIMLM_RETURN_IF_ERROR(file_->Write(&lo_f, sizeof(lo_f)));
    SLIMLM_RETURN_IF_ERROR(file_->Write(&step, sizeof(step)));
    SLIMLM_RETURN_IF_ERROR(file_->Write(codes_.data(), codes_.size() * sizeof(uint16_t)));
  }
  return Status::Ok();
}

Status ReferenceLogitsWriter::Commit() { return file_->Commit(); }

Result<std::unique_ptr<ReferenceLogitsReader>> ReferenceLogitsReader::Open(
    const std::string& path, int64_t n_vocab, int64_t n_ctx, std::span<const int32_t> tokens,
    int64_t chunks) {
  SLIMLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const uint8_t* p = file.data();
  if (file.size() < kHeaderBytes || std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    return InvalidArgumentError("{}: not a reference logits file (saved by eval kld --save-logits)",
                                path);
  }
  const uint32_t version = ReadU32(p + 8), file_vocab = ReadU32(p + 12), file_ctx = ReadU32(p + 16),
                 file_chunks = ReadU32(p + 20);
  if (version != kVersion) {
    return InvalidArgumentError(
        "{}: version {} of the reference logits format; this slimlm "
        "reads version {}",
        path, version, kVersion);
  }
  if (file_vocab != n_vocab) {
    return InvalidArgumentError("{}: saved for a vocabulary of {} tokens, the model has {}", path,
                                file_vocab, n_vocab);
  }
  if (file_ctx != n_ctx) {
    return InvalidArgumentError("{}: saved with -c {}, this run uses -c {}", path, file_ctx, n_ctx);
  }
  if (file_chunks < chunks) {
    return InvalidArgumentError("{}: holds {} chunks, this run scores {} (use --chunks {})", path,
                                file_chunks, chunks, file_chunks);
  }
  const size_t token_bytes = static_cast<size_t>(file_chunks) * file_ctx * sizeof(int32_t);
  const size_t data_offset = kHeaderBytes + token_bytes;
  const size_t expected = data_offset + static_cast<size_t>(file_chunks) *
                                            static_cast<size_t>(ScoredPerChunk(n_ctx)) *
                                            PositionBytes(n_vocab);
  if (file.size() != expected) {
    return InvalidArgumentError("{}: {} bytes, expected {}: the file is truncated or damaged", path,
                                file.size(), expected);
  }
  const size_t compared = static_cast<size_t>(chunks * n_ctx);
  if (tokens.size() < compared ||
      std::memcmp(p + kHeaderBytes, tokens.data(), compared * sizeof(int32_t)) != 0) {
    return InvalidArgumentError(
        "{}: saved from other tokens: the text or the tokenizer differs from this run's", path);
  }
  return std::unique_ptr<ReferenceLogitsReader>(
      new ReferenceLogitsReader(std::move(file), n_vocab, n_ctx, data_offset));
}

Status ReferenceLogitsReader::Read(int64_t c, std::span<const int32_t> tokens,
                                   ReferenceChunk* out) {
  const int64_t positions = ScoredPerChunk(n_ctx_), first = n_ctx_ / 2;
  out->logp.resize(static_cast<size_t>(positions * n_vocab_));
  out->top.resize(static_cast<size_t>(positions));
  out->nll.resize(static_cast<size_t>(positions));
  const uint8_t* p =
      file_.data() + data_offset_ + static_cast<size_t>(c * positions) * PositionBytes(n_vocab_);
  std::vector<uint16_t> codes(static_cast<size_t>(n_vocab_));
  for (int64_t i = 0; i < positions; ++i, p += PositionBytes(n_vocab_)) {
    float lo, step;
    std::memcpy(&lo, p, 4);
    std::memcpy(&step, p + 4, 4);
    std::memcpy(codes.data(), p + 8, codes.size() * sizeof(uint16_t));
    double* logp = out->logp.data() + i * n_vocab_;
    for (int64_t v = 0; v < n_vocab_; ++v) {
      logp[v] = static_cast<double>(lo) + static_cast<double>(step) * codes[static_cast<size_t>(v)];
    }
    out->top[static_cast<size_t>(i)] =
        static_cast<int32_t>(std::max_element(logp, logp + n_vocab_) - logp);
    const int32_t target = tokens[static_cast<size_t>(c * n_ctx_ + first + i + 1)];
    out->nll[static_cast<size_t>(i)] = -logp[target];
  }
  return Status::Ok();
}

}  // namespace slimlm::eval
