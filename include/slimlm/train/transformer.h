// A Llama-architecture model as training sees it: every parameter in one flat array (which the
// optimizer and checkpoints treat as a whole), a forward pass that keeps what the backward pass
// needs, and the backward pass into a gradient array of the same layout.
//
// Templated on the element type: training uses float (f32 master weights); the whole-model
// gradient check uses double. Sequences are independent (each starts at position 0).
#ifndef SLIMLM_TRAIN_TRANSFORMER_H_
#define SLIMLM_TRAIN_TRANSFORMER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/model/config.h"

namespace slimlm::train {

// Where one named tensor lives in the flat parameter array.
struct ParamSlot {
  std::string name;  // GGUF name: "token_embd.weight", "blk.0.attn_q.weight", ...
  Shape shape;       // (rows, cols) or (n,)
  int64_t offset = 0;
  int64_t size = 0;
};

// The tensors of a Llama model in GGUF naming, in a fixed order; output.weight only when the
// embedding is not tied to the output.
std::vector<ParamSlot> LayoutParameters(const ModelConfig& config, bool tied_embeddings,
                                        int64_t* total);

// A loss on a sequence's logits in place of the cross-entropy on its targets (distillation
// uses one). The contract is CrossEntropy's (train/ops.h): the mean over the scored positions
// (targets >= 0) and, with dlogits not null, the gradient of that mean. `seq` is the sequence's
// index in the batch; calls for different sequences may run at once on several threads.
template <typename T>
class LogitLoss {
 public:
  virtual ~LogitLoss() = default;
  virtual T operator()(int64_t seq, const T* logits, const int32_t* targets, T* dlogits, int64_t n,
                       int64_t vocab) const = 0;
};

// What one ForwardBackward pass does beyond reading the data.
template <typename T>
struct PassOptions {
  const LogitLoss<T>* loss = nullptr;  // nullptr: the cross-entropy on the targets.
  // Residual dropout: the outputs of each attention and feed-forward block are zeroed with this
  // probability (and the rest scaled by 1 / (1 - p)) before joining the residual stream. The
  // masks depend on (dropout_seed, sequence index, layer, position) only.
  double dropout = 0;
  uint64_t dropout_seed = 0;
};

template <typename T>
class Transformer {
 public:
  Transformer(const ModelConfig& config, bool tied_embeddings);
  ~Transformer();
  Transformer(Transformer&& other) noexcept;
  Transformer& operator=(Transformer&& other) noexcept;

  // Threads that ForwardBackward splits the sequences among (each with its own gradient
  // buffer, summed in a fixed order: the result depends on the thread count, not on timing).
  // Float models multiply through the packed f32 kernels of kernels/kernels.h.
  void SetThreads(int n_threads);

  const ModelConfig& config() const { return config_; }
  bool tied_embeddings() const { return tied_; }
  const std::vector<ParamSlot>& slots() const { return slots_; }
  std::vector<T>& params() { return params_; }
  const std::vector<T>& params() const { return params_; }
  const ParamSlot* Find(const std::string& name) const;

  // Mean cross-entropy of predicting targets[s][t] from tokens[s][0..t] over n_seq sequences of
  // seq_len tokens (row-major); targets < 0 are not scored. With grads not null, also adds the
  // gradient of that mean into *grads (params().size() values).
  T ForwardBackward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                    int64_t n_seq, int64_t seq_len, std::vector<T>* grads,
                    const PassOptions<T>& options = {});

 private:
  struct Layer {
    int64_t attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down;
  };
  struct Fast;  // Packed weights and the thread pool (float only).
  // Loss of one sequence (sum over its scored positions, not the mean) and its gradient.
  T Sequence(int64_t seq, const int32_t* tokens, const int32_t* targets, int64_t n, T scale,
             std::vector<T>* grads, const PassOptions<T>& options);
  // y = x w^T and its backward pass for the matrix at `offset` of shape (out, in).
  void Linear(int64_t offset, const T* x, T* y, int64_t n, int64_t in, int64_t out) const;
  void LinearGrad(int64_t offset, const T* x, const T* dy, T* dx, T* dw, int64_t n, int64_t in,
                  int64_t out) const;
  void PackWeights();

  ModelConfig config_;
  bool tied_;
  std::vector<ParamSlot> slots_;
  std::vector<T> params_;
  int64_t token_embd_ = 0, output_norm_ = 0, output_ = 0;
  std::vector<Layer> layers_;
  int n_threads_ = 1;
  std::unique_ptr<Fast> fast_;
};

// The float model as a WeightStore (f32 tensors, GGUF names) with `metadata` (architecture keys
// for the config, tokenizer keys) so that it can be written as GGUF and loaded by every command.
WeightStore ToWeightStore(const Transformer<float>& model, const Metadata& metadata);
// Reads the parameters of a model in a WeightStore (any float or quantized type, converted to
// f32) into a Transformer of the same configuration.
Result<Transformer<float>> FromWeightStore(const WeightStore& store);

}  // namespace slimlm::train

#endif  // SLIMLM_TRAIN_TRANSFORMER_H_
