#include "slimlm/train/distill.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/hash.h"
#include "slimlm/tensor/half.h"
#include "slimlm/train/ops.h"

namespace slimlm::train {
namespace {

constexpr int64_t kTeacherCacheMagic = 0x31304843544d4c53;  // "SLMTCH01"

// Captures the top k of each position's teacher distribution into the cache's arrays, for the
// sequences of one batch (seq -> slot).
class CaptureTopK : public LogitLoss<float> {
 public:
  CaptureTopK(int64_t k, const int64_t* slots, int32_t* ids, uint16_t* logp)
      : k_(k), slots_(slots), ids_(ids), logp_(logp) {}
  float operator()(int64_t seq, const float* logits, const int32_t*, float*, int64_t n,
                   int64_t vocab) const override {
    std::vector<int32_t> order(static_cast<size_t>(vocab));
    const int64_t base = slots_[seq] * n * k_;
    for (int64_t t = 0; t < n; ++t) {
      const float* z = logits + t * vocab;
      const float max = *std::max_element(z, z + vocab);
      double sum = 0;
      for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(z[i] - max));
      const double log_z = std::log(sum) + max;
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k_, order.end(), [z](int32_t a, int32_t b) {
        return z[a] > z[b] || (z[a] == z[b] && a < b);
      });
      for (int64_t j = 0; j < k_; ++j) {
        const int32_t id = order[static_cast<size_t>(j)];
        ids_[base + t * k_ + j] = id;
        logp_[base + t * k_ + j] = F32ToF16(static_cast<float>(z[id] - log_z));
      }
    }
    return 0.0f;
  }

 private:
  int64_t k_;
  const int64_t* slots_;
  int32_t* ids_;
  uint16_t* logp_;
};

}  // namespace

TeacherCache TeacherCache::Build(Transformer<float>& teacher, const Dataset& data, int64_t k,
                                 int64_t batch, FunctionRef<void(int64_t, int64_t)> progress) {
  TeacherCache cache;
  cache.k_ = std::min<int64_t>(k, teacher.config().n_vocab);
  cache.n_ctx_ = data.n_ctx();
  cache.slots_ = data.windows();
  const int64_t ctx = cache.n_ctx_, per_slot = ctx * cache.k_;
  cache.ids_.resize(static_cast<size_t>(cache.slots_ * per_slot));
  cache.logp_.resize(cache.ids_.size());
  std::vector<int32_t> tokens, targets;
  std::vector<int64_t> slots;
  for (int64_t first = 0; first < cache.slots_; first += batch) {
    const int64_t n = std::min(batch, cache.slots_ - first);
    tokens.resize(static_cast<size_t>(n * ctx));
    targets.resize(tokens.size());
    slots.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      slots[static_cast<size_t>(i)] = first + i;
      const int32_t* window = data.SlotTokens(first + i);
      std::copy_n(window, ctx, tokens.begin() + i * ctx);
      std::copy_n(window + 1, ctx, targets.begin() + i * ctx);
    }
    CaptureTopK capture(cache.k_, slots.data(), cache.ids_.data(), cache.logp_.data());
    PassOptions<float> pass;
    pass.loss = &capture;
    teacher.ForwardBackward(tokens, targets, n, ctx, nullptr, pass);
    progress(first + n, cache.slots_);
  }
  return cache;
}

uint64_t TeacherCache::Key(const Transformer<float>& teacher, uint64_t data_key, int64_t n_ctx,
                           int64_t k) {
  uint64_t h = HashBytes(teacher.params().data(), teacher.params().size() * sizeof(float));
  for (uint64_t v : {data_key, static_cast<uint64_t>(n_ctx), static_cast<uint64_t>(k)}) {
    h = HashBytes(&v, sizeof(v), h);
  }
  return h;
}

Status TeacherCache::Save(const std::string& path, uint64_t key) const {
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> out, AtomicFileWriter::Create(path));
  const int64_t header[] = {kTeacherCacheMagic, static_cast<int64_t>(key), k_, n_ctx_, slots_};
  SLIMLM_RETURN_IF_ERROR(out->Write(header, sizeof(header)));
  SLIMLM_RETURN_IF_ERROR(out->Write(ids_.data(), ids_.size() * sizeof(int32_t)));
  SLIMLM_RETURN_IF_ERROR(out->Write(logp_.data(), logp_.size() * sizeof(uint16_t)));
  return out->Commit();
}

Result<TeacherCache> TeacherCache::Load(const std::string& path, uint64_t key, int64_t vocab) {
  if (!IsRegularFile(path)) return NotFoundError("{}: no teacher cache", path);
  // Mapped, not read: the file's pages are copied once, into the arrays.
  SLIMLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const std::span<const uint8_t> bytes = file.bytes();
  int64_t header[5];
  if (bytes.size() < sizeof(header)) return NotFoundError("{}: not a teacher cache", path);
  std::memcpy(header, bytes.data(), sizeof(header));
  TeacherCache cache;
  cache.k_ = header[2];
  cache.n_ctx_ = header[3];
  cache.slots_ = header[4];
  // Bounded before multiplying: a damaged header must not overflow the size.
  const bool sane =
      cache.k_ > 0 && cache.n_ctx_ > 0 && cache.slots_ >= 0 && cache.k_ < (1 << 20) &&
      cache.n_ctx_ < (1 << 24) &&
      cache.slots_ <= static_cast<int64_t>(bytes.size() / 6) / (cache.k_ * cache.n_ctx_);
  const uint64_t values = sane ? static_cast<uint64_t>(cache.k_ * cache.n_ctx_ * cache.slots_) : 0;
  if (header[0] != kTeacherCacheMagic || static_cast<uint64_t>(header[1]) != key || !sane ||
      bytes.size() != sizeof(header) + values * 6) {
    return NotFoundError("{}: a teacher cache for another teacher or data, or damaged", path);
  }
  cache.ids_.resize(values);
  cache.logp_.resize(values);
  std::memcpy(cache.ids_.data(), bytes.data() + sizeof(header), values * 4);
  std::memcpy(cache.logp_.data(), bytes.data() + sizeof(header) + values * 4, values * 2);
  // The key does not cover the contents: a damaged id must not index past the vocabulary.
  for (int32_t id : cache.ids_) {
    if (id < 0 || id >= vocab) return NotFoundError("{}: a token id out of range, damaged", path);
  }
  return cache;
}

std::span<const int32_t> TeacherCache::Ids(int64_t slot, int64_t t) const {
  return {ids_.data() + (slot * n_ctx_ + t) * k_, static_cast<size_t>(k_)};
}

void TeacherCache::LogProbs(int64_t slot, int64_t t, float* out) const {
  const uint16_t* p = logp_.data() + (slot * n_ctx_ + t) * k_;
  for (int64_t j = 0; j < k_; ++j) out[j] = F16ToF32(p[j]);
}

void DistillLoss::Bind(std::span<const int64_t> windows) {
  slots_.clear();
  for (int64_t w : windows) slots_.push_back(data_.WindowSlot(w));
}

float DistillLoss::operator()(int64_t seq, const float* logits, const int32_t* targets,
                              float* dlogits, int64_t n, int64_t vocab) const {
  const int64_t slot = slots_[static_cast<size_t>(seq)];
  const int64_t k = cache_.k();
  // Scratch kept per thread: this runs for every sequence of every step.
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<float> logp, dkl;
  ids.resize(static_cast<size_t>(n * k));
  logp.resize(ids.size());
  for (int64_t t = 0; t < n; ++t) {
    std::span<const int32_t> row = cache_.Ids(slot, t);
    std::copy(row.begin(), row.end(), ids.begin() + t * k);
    cache_.LogProbs(slot, t, logp.data() + t * k);
  }
  const float tau = static_cast<float>(options_.temperature);
  const float ce_weight = static_cast<float>(options_.ce_weight);
  // Hinton's tau^2 keeps the soft targets' gradients the size of the hard ones'.
  const float kl_weight = (1.0f - ce_weight) * tau * tau;
  if (dlogits != nullptr) dkl.resize(static_cast<size_t>(n * vocab));
  float loss = 0;
  if (ce_weight > 0) loss += ce_weight * CrossEntropy(logits, targets, dlogits, n, vocab);
  const float kl = kl_weight > 0 ? DistillKl(logits, ids.data(), logp.data(), k,
                                             dlogits != nullptr ? dkl.data() : nullptr, n, vocab,
                                             tau, static_cast<float>(options_.reverse_weight))
                                 : 0.0f;
  loss += kl_weight * kl;
  if (dlogits != nullptr) {
    for (int64_t i = 0; i < n * vocab; ++i) {
      const float ce = ce_weight > 0 ? ce_weight * dlogits[i] : 0.0f;
      dlogits[i] = ce + (kl_weight > 0 ? kl_weight * dkl[static_cast<size_t>(i)] : 0.0f);
    }
  }
  return loss;
}

Result<Transformer<float>> KeepLayers(const Transformer<float>& teacher,
                                      std::span<const int64_t> layers) {
  const ModelConfig& c = teacher.config();
  if (layers.empty()) return InvalidArgumentError("keep at least one layer");
  std::vector<bool> seen(static_cast<size_t>(c.n_layers), false);
  for (int64_t l : layers) {
    if (l < 0 || l >= c.n_layers) {
      return InvalidArgumentError("layer {} does not exist: the teacher has layers 0 to {}", l,
                                  c.n_layers - 1);
    }
    if (seen[static_cast<size_t>(l)]) return InvalidArgumentError("layer {} is listed twice", l);
    seen[static_cast<size_t>(l)] = true;
  }
  ModelConfig sc = c;
  sc.n_layers = static_cast<int64_t>(layers.size());
  Transformer<float> student(sc, teacher.tied_embeddings());
  for (const ParamSlot& s : student.slots()) {
    std::string name = s.name;
    if (name.starts_with("blk.")) {
      const size_t dot = name.find('.', 4);
      const int64_t i = std::stoll(name.substr(4, dot - 4));
      name = fmt::format("blk.{}{}", layers[static_cast<size_t>(i)], name.substr(dot));
    }
    const ParamSlot* from = teacher.Find(name);
    if (from == nullptr || from->size != s.size) {
      return InternalError("the teacher has no tensor '{}' of the student's shape", name);
    }
    std::copy_n(teacher.params().begin() + from->offset, s.size,
                student.params().begin() + s.offset);
  }
  return student;
}

Status CheckSameVocabulary(const Tokenizer& teacher, const Tokenizer& student) {
  if (teacher.vocab_size() != student.vocab_size()) {
    return InvalidArgumentError(
        "the teacher's tokenizer has {} tokens, the student's {}: distillation needs the same "
        "vocabulary",
        teacher.vocab_size(), student.vocab_size());
  }
  for (int32_t id = 0; id < teacher.vocab_size(); ++id) {
    if (teacher.TokenText(id) != student.TokenText(id) ||
        teacher.token_type(id) != student.token_type(id)) {
      return InvalidArgumentError(
          "the teacher's and the student's tokenizers differ at token {} ('{}' against '{}'): "
          "distillation needs the same vocabulary",
          id, teacher.TokenText(id), student.TokenText(id));
    }
  }
  if (teacher.bos_id() != student.bos_id() || teacher.eos_id() != student.eos_id()) {
    return InvalidArgumentError("the teacher's and the student's BOS or EOS tokens differ");
  }
  return Status::Ok();
}

}  // namespace slimlm::train
