#include "slimlm/plan/candidates.h"

#include <fmt/core.h>

namespace slimlm::plan {
namespace {

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// f16_nm stores rows in blocks of 32 weights.
bool LayerMatricesFitBlocks(const ModelLayout& layout, int64_t block) {
  for (const TensorInfo& t : layout.tensors) {
    if (t.role == TensorRole::kLayerMatrix && (t.cols() % block != 0 || !IsFloat(t.dtype))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<std::string> Candidate::ProduceArgs(const std::string& source, const std::string& out,
                                                const std::string& calib, int64_t calib_ctx,
                                                int64_t calib_chunks) const {
  std::vector<std::string> args;
  auto add_calib = [&] {
    args.insert(args.end(), {"--calib", calib, "--calib-ctx", std::to_string(calib_ctx),
                             "--calib-chunks", std::to_string(calib_chunks)});
  };
  switch (kind) {
    case Kind::kSource:
      break;
    case Kind::kQuantize:
      args = {"quantize", source, out, "--type", std::string(DTypeName(type))};
      if (calibrated) add_calib();
      break;
    case Kind::kPrune:
      args = {"prune",    source,   out,
              "--method", method,   "--pattern",
              pattern,    "--type", std::string(DTypeName(type))};
      if (method != "magnitude") add_calib();
      break;
  }
  return args;
}

std::vector<Candidate> BuildCandidates(const ModelLayout& layout, const WeightStore& store,
                                       const CandidateOptions& options) {
  std::vector<Candidate> models;
  Candidate source;
  source.name = fmt::format("source ({})", DTypeName(layout.DominantType()));
  source.model_key = "source";
  source.type = layout.DominantType();
  source.layout = layout;
  models.push_back(source);
  std::vector<DType> types = options.types;
  if (types.empty()) {
    types = {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ6_K, DType::kQ4_K, DType::kQ4_0};
  }
  for (DType type : types) {
    if (type == layout.DominantType()) continue;
    quant::QuantizeOptions q;
    q.type = type;
    Result<ModelLayout> quantized = QuantizedLayout(layout, store, q);
    if (!quantized.ok()) continue;  // The source cannot be written in this type.
    Candidate c;
    c.kind = Candidate::Kind::kQuantize;
    c.type = type;
    c.name = std::string(DTypeName(type));
    c.model_key = c.name;
    c.layout = *quantized;
    models.push_back(c);
    // Importance-weighted rounding matters where the rounding is coarse.
    if (options.calibrated && (type == DType::kQ4_0 || type == DType::kQ4_K)) {
      c.calibrated = true;
      c.name += " calibrated";
      c.model_key += "-cal";
      models.push_back(c);
    }
  }
  if (options.prune && LayerMatricesFitBlocks(layout, 32)) {
    for (const char* method : {"wanda", "sparsegpt"}) {
      if (!options.calibrated) break;
      Candidate c;
      c.kind = Candidate::Kind::kPrune;
      c.type = DType::kF16NM;
      c.method = method;
      c.pattern = "2:4";
      c.name = fmt::format("{} 2:4 f16_nm", method);
      c.model_key = fmt::format("{}-2-4", method);
      c.layout = WithLayerMatrixType(layout, DType::kF16NM);
      models.push_back(c);
    }
  }
  std::vector<Candidate> out;
  const bool kv_q8 = options.kv_q8 && layout.config.head_dim % 32 == 0;
  for (const Candidate& m : models) {
    out.push_back(m);
    if (!kv_q8) continue;
    Candidate q8 = m;
    q8.kv_type = DType::kQ8_0;
    q8.name += ", kv q8_0";
    out.push_back(q8);
  }
  return out;
}

}  // namespace slimlm::plan
