// What a model holds, as the memory and speed estimates need it: its shape and the type and shape
// of every tensor, read from the file's header without loading, packing or reading the weights.
// Compression plans are layouts too: the same model with other types (quantization) or other
// shapes (structured pruning), estimated before anything is produced.
#ifndef SLIMLM_PLAN_LAYOUT_H_
#define SLIMLM_PLAN_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/model/config.h"
#include "slimlm/quant/quantize.h"
#include "slimlm/tensor/dtype.h"
#include "slimlm/tensor/tensor.h"

namespace slimlm::plan {

// The role of a tensor in the forward pass.
enum class TensorRole {
  kLayerMatrix,  // blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight
  kOutput,       // output.weight
  kEmbedding,    // token_embd.weight
  kVector,       // norms and biases
  kOther,
};

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  TensorRole role = TensorRole::kOther;

  int64_t rows() const { return shape.Rows(); }
  int64_t cols() const { return shape.Cols(); }
  uint64_t bytes() const;
};

struct ModelLayout {
  std::string source;  // Path it was read from.
  ModelConfig config;
  std::vector<TensorInfo> tensors;
  bool tied_embeddings = false;  // No output.weight: the embedding is the output matrix.
  // The file's bytes besides the tensors: the header and metadata (the tokenizer's vocabulary),
  // read whole at load. 0 when unknown (not one file).
  uint64_t header_bytes = 0;

  static Result<ModelLayout> FromStore(const WeightStore& store);

  uint64_t TensorBytes() const;
  int64_t ParameterCount() const;
  // Bytes of the tensors of each type, largest first.
  std::vector<std::pair<DType, uint64_t>> BytesByType() const;
  // The type holding most of the bytes ("q4_k" for a q4_k mix).
  DType DominantType() const;
};

// The layout `slimlm quantize` would write with these options (PlanQuantization's types).
Result<ModelLayout> QuantizedLayout(const ModelLayout& layout, const WeightStore& store,
                                    const quant::QuantizeOptions& options);

// The layout with every layer matrix in `type` (f16_nm: what `prune --pattern N:M --type
// f16_nm` writes; its bytes do not depend on N:M).
ModelLayout WithLayerMatrixType(const ModelLayout& layout, DType type);

}  // namespace slimlm::plan

#endif  // SLIMLM_PLAN_LAYOUT_H_
