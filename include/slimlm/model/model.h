// A loaded Llama-family model: its configuration, typed views of its weights, and its tokenizer.
//
// A Model is immutable after loading and may be shared by many Contexts (sequences) at once.
// Weight data stays where the reader put it (usually a read-only memory map of the file).
#ifndef SLIMLM_MODEL_MODEL_H_
#define SLIMLM_MODEL_MODEL_H_

#include <memory>
#include <string>
#include <vector>

#include "slimlm/core/aligned_bytes.h"
#include "slimlm/core/status.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/model/config.h"
#include "slimlm/model/tokenizer.h"
#include "slimlm/tensor/tensor.h"

namespace slimlm {

// A weight matrix (out, in): its tensor as stored, and the form the kernel path multiplies
// (the same bytes, or a packed copy made at load time).
struct Linear {
  TensorView weight;
  kernels::Matrix matrix;
};

// The weights of one transformer block. Matrices are (out, in) row-major in any dtype;
// vectors are f32 (converted at load when stored otherwise).
struct LayerWeights {
  const float* attn_norm = nullptr;  // (dim)
  Linear wq;                         // (q_dim, dim)
  Linear wk;                         // (kv_dim, dim)
  Linear wv;                         // (kv_dim, dim)
  Linear wo;                         // (dim, q_dim)
  const float* bq = nullptr;         // (q_dim), Qwen2 only
  const float* bk = nullptr;         // (kv_dim), Qwen2 only
  const float* bv = nullptr;         // (kv_dim), Qwen2 only
  const float* q_norm = nullptr;     // (head_dim), Qwen3 only
  const float* k_norm = nullptr;     // (head_dim), Qwen3 only
  const float* ffn_norm = nullptr;   // (dim)
  Linear w_gate;                     // (ffn_dim, dim)
  Linear w_up;                       // (ffn_dim, dim)
  Linear w_down;                     // (dim, ffn_dim)
};

class Model {
 public:
  // Loads any supported format (see formats/model_file.h) and checks every tensor's presence,
  // type and shape against the configuration. Weights are prepared for the kernel path in use
  // (kernels::Kernels()).
  static Result<std::unique_ptr<Model>> Load(const std::string& path,
                                             const LoadOptions& options = {});
  // Builds a model over an already loaded store. The tokenizer is built when the store has
  // tokenizer keys; require_tokenizer makes its absence an error. `table` chooses the kernel
  // path (null: kernels::Kernels()); every Context of this model uses it.
  static Result<std::unique_ptr<Model>> FromStore(WeightStore store, bool require_tokenizer,
                                                  const kernels::KernelTable* table = nullptr);

  const ModelConfig& config() const { return config_; }
  const WeightStore& store() const { return store_; }
  // Null when the model was loaded without a tokenizer.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  const std::string& path() const { return store_.source_path; }

  const kernels::KernelTable& kernels() const { return *kernels_; }
  const TensorView& token_embd() const { return token_embd_; }  // (n_vocab, dim)
  // (n_vocab, dim); the token embedding when tied.
  const Linear& output() const { return output_; }
  bool tied_embeddings() const { return tied_; }
  const float* output_norm() const { return output_norm_; }  // (dim)
  const std::vector<LayerWeights>& layers() const { return layers_; }
  // Per-pair divisors of RoPE frequencies (GGUF's rope_freqs.weight, Llama 3.1); null if none.
  const float* rope_freq_factors() const { return rope_freq_factors_; }

  // Parameters (elements of all tensors) and bytes of tensor data.
  int64_t ParameterCount() const;
  size_t WeightBytes() const { return store_.TotalTensorBytes(); }
  // Bytes of packed copies made for the kernel path (0 when it multiplies the file layout).
  size_t PackedBytes() const { return packed_bytes_; }

 private:
  Model() = default;
  Status BindWeights();
  Status PackWeights();
  Result<const float*> VectorF32(const std::string& name, int64_t n, bool required);
  Result<Linear> BindLinear(const std::string& name, int64_t rows, int64_t cols);

  WeightStore store_;
  ModelConfig config_;
  std::unique_ptr<Tokenizer> tokenizer_;
  const kernels::KernelTable* kernels_ = nullptr;
  TensorView token_embd_;
  Linear output_;
  bool tied_ = false;
  const float* output_norm_ = nullptr;
  const float* rope_freq_factors_ = nullptr;
  std::vector<LayerWeights> layers_;
  std::vector<std::vector<float>> converted_;  // f32 copies of vectors stored as f16 / bf16.
  AlignedBytes packed_;  // Packed copies of the weight matrices, one after the other.
  size_t packed_bytes_ = 0;
};

}  // namespace slimlm

#endif  // SLIMLM_MODEL_MODEL_H_
