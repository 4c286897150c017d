// Distillation: a student learns the teacher's next-token distributions as well as the data.
//
// The teacher runs once over every training window; its k most likely tokens and their
// log-probabilities at each position form the TeacherCache (kept on disk, so that a later run
// or a resumed one does not run the teacher again). Training then uses DistillLoss in place of
// the cross-entropy: a mix of the cross-entropy on the data and the KL divergence from the
// cached teacher distribution (DistillKl of train/ops.h), scaled by temperature^2 so that its
// gradients keep their size as the temperature changes.
#ifndef SLIMLM_TRAIN_DISTILL_H_
#define SLIMLM_TRAIN_DISTILL_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/train/dataset.h"
#include "slimlm/train/transformer.h"

namespace slimlm::train {

// The teacher's top-k tokens and log-probabilities for every position of every training
// window slot (Dataset::WindowSlot).
class TeacherCache {
 public:
  // Runs `teacher` over every slot of `data` (in batches of `batch` windows on its threads);
  // progress(done, total) after each batch.
  static TeacherCache Build(Transformer<float>& teacher, const Dataset& data, int64_t k,
                            int64_t batch, FunctionRef<void(int64_t, int64_t)> progress);
  // A file written by Save for the same key, with every id below `vocab` (NotFound when
  // missing, for another key, or damaged: the caller builds it again).
  static Result<TeacherCache> Load(const std::string& path, uint64_t key, int64_t vocab);
  Status Save(const std::string& path, uint64_t key) const;
  // What a cache depends on: the teacher's parameters, the data (Dataset::Fingerprint), the
  // context and k.
  static uint64_t Key(const Transformer<float>& teacher, uint64_t data_key, int64_t n_ctx,
                      int64_t k);

  int64_t k() const { return k_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t slots() const { return slots_; }
  // Position t of slot j: k token ids and their log-probabilities (converted from f16).
  std::span<const int32_t> Ids(int64_t slot, int64_t t) const;
  void LogProbs(int64_t slot, int64_t t, float* out) const;
  // Bytes held.
  uint64_t bytes() const { return ids_.size() * 4 + logp_.size() * 2; }

 private:
  int64_t k_ = 0, n_ctx_ = 0, slots_ = 0;
  std::vector<int32_t> ids_;    // (slots, n_ctx, k)
  std::vector<uint16_t> logp_;  // (slots, n_ctx, k) as f16
};

struct DistillOptions {
  // 1 by default: with a top-k teacher, a higher temperature flattens the even tail the most
  // (with k = 16 of 4096 tokens it holds 84% of the mass at 2), and the student learns that.
  double temperature = 1.0;
  double reverse_weight = 0.0;  // 0: forward KL(teacher || student); 1: reverse; between: a mix.
  double ce_weight = 0.5;       // Weight of the cross-entropy on the data; the KL gets the rest.
};

// The loss of one micro-batch: Bind gives it the window slots of the batch's sequences.
class DistillLoss : public LogitLoss<float> {
 public:
  DistillLoss(const TeacherCache& cache, const Dataset& data, const DistillOptions& options)
      : cache_(cache), data_(data), options_(options) {}
  // Sets the slots of the micro-batch whose windows are `windows` (stream indices).
  void Bind(std::span<const int64_t> windows);
  float operator()(int64_t seq, const float* logits, const int32_t* targets, float* dlogits,
                   int64_t n, int64_t vocab) const override;

 private:
  const TeacherCache& cache_;
  const Dataset& data_;
  DistillOptions options_;
  std::vector<int64_t> slots_;
};

// A student of the teacher's shape with only the listed layers (in order, each once), with the
// teacher's embedding, output and norms: the classic layer-dropping start for distillation.
Result<Transformer<float>> KeepLayers(const Transformer<float>& teacher,
                                      std::span<const int64_t> layers);

// OK when the two tokenizers are the same vocabulary (every token's text and type, BOS, EOS);
// otherwise says where they first differ.
Status CheckSameVocabulary(const Tokenizer& teacher, const Tokenizer& student);

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_DISTILL_H_
