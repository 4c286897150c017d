#include "slimlm/plan/layout.h"

#include <algorithm>
#include <filesystem>
#include <map>

namespace slimlm::plan {
namespace {

TensorRole RoleOf(const std::string& name, int rank) {
  if (name == "token_embd.weight") return TensorRole::kEmbedding;
  if (name == "output.weight") return TensorRole::kOutput;
  if (rank == 1) return TensorRole::kVector;
  static const char* const kMatrices[] = {"attn_q.weight",      "attn_k.weight",   "attn_v.weight",
                                          "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
                                          "ffn_down.weight"};
  if (name.starts_with("blk.")) {
    for (const char* m : kMatrices) {
      if (name.ends_with(std::string(".") + m)) return TensorRole::kLayerMatrix;
    }
  }
  return TensorRole::kOther;
}

}  // namespace

uint64_t TensorInfo::bytes() const { return TensorBytes(dtype, shape); }

Result<ModelLayout> ModelLayout::FromStore(const WeightStore& store) {
  ModelLayout layout;
  layout.source = store.source_path;
  const StoredTensor* embd = store.Find("token_embd.weight");
  if (embd == nullptr) {
    return CorruptError("{}: missing tensor 'token_embd.weight'", store.source_path);
  }
  SLIMLM_ASSIGN_OR_RETURN(
      layout.config,
      ModelConfig::FromMetadata(store.metadata(), embd->shape.Rows(), store.source_path));
  for (const StoredTensor& t : store.tensors()) {
    layout.tensors.push_back({t.name, t.dtype, t.shape, RoleOf(t.name, t.shape.rank())});
  }
  layout.tied_embeddings = store.Find("output.weight") == nullptr;
  std::error_code ec;
  const uintmax_t file = std::filesystem::file_size(store.source_path, ec);
  if (!ec && file > layout.TensorBytes()) layout.header_bytes = file - layout.TensorBytes();
  return layout;
}

uint64_t ModelLayout::TensorBytes() const {
  uint64_t bytes = 0;
  for (const TensorInfo& t : tensors) bytes += t.bytes();
  return bytes;
}

int64_t ModelLayout::ParameterCount() const {
  int64_t n = 0;
  for (const TensorInfo& t : tensors) n += t.shape.NumElements();
  return n;
}

std::vector<std::pair<DType, uint64_t>> ModelLayout::BytesByType() const {
  std::map<DType, uint64_t> by_type;
  for (const TensorInfo& t : tensors) by_type[t.dtype] += t.bytes();
  std::vector<std::pair<DType, uint64_t>> out(by_type.begin(), by_type.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

DType ModelLayout::DominantType() const {
  const auto by_type = BytesByType();
  return by_type.empty() ? DType::kF32 : by_type.front().first;
}

Result<ModelLayout> QuantizedLayout(const ModelLayout& layout, const WeightStore& store,
                                    const quant::QuantizeOptions& options) {
  SLIMLM_ASSIGN_OR_RETURN(std::vector<quant::TensorPlan> plans,
                          quant::PlanQuantization(store, options));
  std::map<std::string, DType> types;
  for (const quant::TensorPlan& p : plans) types[p.name] = p.to;
  ModelLayout out = layout;
  for (TensorInfo& t : out.tensors) {
    auto it = types.find(t.name);
    if (it != types.end()) t.dtype = it->second;
  }
  return out;
}

ModelLayout WithLayerMatrixType(const ModelLayout& layout, DType type) {
  ModelLayout out = layout;
  for (TensorInfo& t : out.tensors) {
    if (t.role == TensorRole::kLayerMatrix) t.dtype = type;
  }
  return out;
}

}  // namespace slimlm::plan
