// slimlm info: what a model is and what it needs.
#include <sys/stat.h>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/prune/sparsity.h"
#include "slimlm/tensor/quant_blocks.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct InfoArgs {
  std::string model;
  std::string tokenizer;
  int64_t ctx = 0;
  int64_t batch = 1;
  bool json = false;
  bool tensors = false;
  std::string kv_type = "f16";
};

// Exact zeros among the tensor's weights (as the kernels see them: expanded, dequantized), row by
// row so that a large tensor needs no f32 copy.
int64_t CountZeros(const StoredTensor& t) {
  const int64_t cols = t.shape.Cols();
  const int64_t rows = cols > 0 ? t.shape.NumElements() / cols : 0;
  const size_t row_bytes = RowBytes(t.dtype, cols);
  std::vector<float> row(static_cast<size_t>(cols));
  int64_t zeros = 0;
  for (int64_t r = 0; r < rows; ++r) {
    RowToF32(t.dtype, t.data + r * row_bytes, row.data(), cols);
    zeros += prune::CountZeros(row.data(), cols);
  }
  return zeros;
}

bool IsBlockMatrix(const StoredTensor& t) {
  return t.name.starts_with("blk.") && t.shape.rank() == 2;
}

// What pruning did to the model, from its metadata; empty when it was not pruned.
std::string PruneSummary(const Metadata& md) {
  std::optional<std::string> method = md.GetString("slimlm.prune.method");
  if (!method) return "";
  if (*method == "structured") {
    std::string s = "structured " + md.GetString("slimlm.prune.structured").value_or("");
    if (auto layers = md.GetString("slimlm.prune.removed_layers"))
      s += " (removed layers " + *layers + ")";
    return s;
  }
  return *method + " " + md.GetString("slimlm.prune.pattern").value_or("") +
         fmt::format(" at sparsity {:g}", md.GetDouble("slimlm.prune.sparsity").value_or(0));
}

Status Info(const InfoArgs& args) {
  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.model, args.tokenizer, false));
  const ModelConfig& c = model->config();
  const int64_t ctx = args.ctx > 0 ? args.ctx : c.context_length;
  SLIMLM_ASSIGN_OR_RETURN(DType kv_type, ParseKvType(args.kv_type));
  if (!IsRowLengthValid(kv_type, c.head_dim)) {
    return InvalidArgumentError(
        "KV cache type {} needs a head dimension that is a multiple of "
        "{}, this model's is {}",
        DTypeName(kv_type), Traits(kv_type).block_size, c.head_dim);
  }
  // The KV cache holds the keys and values of every layer at every position.
  const double kv_bytes = 2.0 * static_cast<double>(c.n_layers) * static_cast<double>(ctx) *
                          static_cast<double>(RowBytes(kv_type, c.kv_dim())) *
                          static_cast<double>(args.batch);
  struct TypeStats {
    int64_t tensors = 0, elements = 0;
    size_t bytes = 0;
  };
  std::map<std::string, TypeStats> by_type;
  for (const StoredTensor& t : model->store().tensors()) {
    TypeStats& s = by_type[std::string(DTypeName(t.dtype))];
    ++s.tensors;
    s.elements += t.shape.NumElements();
    s.bytes += t.nbytes;
  }
  // Sparsity: per tensor when listing them; over the block matrices for a pruned model.
  const std::string pruned = PruneSummary(model->store().metadata());
  std::map<std::string, int64_t> zeros;
  int64_t block_zeros = 0, block_elements = 0;
  if (args.tensors || !pruned.empty()) {
    for (const StoredTensor& t : model->store().tensors()) {
      if (!args.tensors && !IsBlockMatrix(t)) continue;
      const int64_t z = CountZeros(t);
      zeros[t.name] = z;
      if (IsBlockMatrix(t)) {
        block_zeros += z;
        block_elements += t.shape.NumElements();
      }
    }
  }
  auto fraction = [](int64_t part, int64_t whole) {
    return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 0.0;
  };
  const Tokenizer* tok = model->tokenizer();
  const double weight_bytes = static_cast<double>(model->WeightBytes());
  const double bits_per_weight = 8.0 * weight_bytes / static_cast<double>(model->ParameterCount());
  if (args.json) {
    nlohmann::json types = nlohmann::json::object();
    for (const auto& [name, s] : by_type) {
      types[name] = {{"tensors", s.tensors}, {"elements", s.elements}, {"bytes", s.bytes}};
    }
    nlohmann::json out = {
        {"path", args.model},
        {"name", model->store().metadata().GetString("general.name").value_or("")},
        {"format", model->store().source_format},
        {"architecture", ArchitectureName(c.arch)},
        {"parameters", model->ParameterCount()},
        {"n_vocab", c.n_vocab},
        {"dim", c.dim},
        {"n_layers", c.n_layers},
        {"n_heads", c.n_heads},
        {"n_kv_heads", c.n_kv_heads},
        {"head_dim", c.head_dim},
        {"ffn_dim", c.ffn_dim},
        {"context_length", c.context_length},
        {"rope_theta", c.rope_theta},
        {"tied_embeddings", model->tied_embeddings()},
        {"file_bytes", DiskBytes(args.model)},
        {"weight_bytes", model->WeightBytes()},
        {"bits_per_weight", bits_per_weight},
        {"types", types},
        {"kv_cache",
         {{"ctx", ctx}, {"batch", args.batch}, {"type", DTypeName(kv_type)}, {"bytes", kv_bytes}}},
        {"tokenizer", tok ? nlohmann::json{{"vocab_size", tok->vocab_size()},
                                           {"bos", tok->bos_id()},
                                           {"eos", tok->eos_id()}}
                          : nlohmann::json(nullptr)},
        {"random_weights", HasRandomWeights(*model)}};
    if (!pruned.empty()) {
      out["pruned"] = pruned;
      out["block_sparsity"] = fraction(block_zeros, block_elements);
    }
    if (args.tensors) {
      nlohmann::json list = nlohmann::json::array();
      for (const StoredTensor& t : model->store().tensors()) {
        std::vector<int64_t> dims;
        for (int i = 0; i < t.shape.rank(); ++i) dims.push_back(t.shape[i]);
        list.push_back({{"name", t.name},
                        {"type", DTypeName(t.dtype)},
                        {"shape", dims},
                        {"bytes", t.nbytes},
                        {"sparsity", fraction(zeros[t.name], t.shape.NumElements())}});
      }
      out["tensors"] = list;
    }
    fmt::print("{}\n", out.dump(2));
    return Status::Ok();
  }
  fmt::print("model         {} ({})\n", args.model, model->store().source_format);
  const Metadata& md = model->store().metadata();
  if (std::optional<std::string> name = md.GetString("general.name")) {
    fmt::print("name          {}\n", *name);
  }
  if (std::optional<int64_t> tokens = md.GetInt("slimlm.train.tokens")) {
    fmt::print("trained       by slimlm on {:.2f} M tokens\n", static_cast<double>(*tokens) / 1e6);
  }
  fmt::print("architecture  {}{}\n", ArchitectureName(c.arch),
             HasRandomWeights(*model) ? " (random weights from slimlm init)" : "");
  fmt::print("parameters    {} ({:.2f} M)\n", model->ParameterCount(),
             static_cast<double>(model->ParameterCount()) / 1e6);
  fmt::print("shape         dim {}, {} layers, {} heads ({} kv, head dim {}), ffn {}, vocab {}\n",
             c.dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.ffn_dim, c.n_vocab);
  fmt::print("context       {} positions; RoPE base {}, {} dims{}\n", c.context_length,
             c.rope_theta, c.rope_dim,
             c.rope_scaling.type != RopeScalingType::kNone
                 ? fmt::format(", scaled x{}", c.rope_scaling.factor)
                 : "");
  fmt::print("embeddings    {}\n", model->tied_embeddings() ? "tied (output = token embedding)"
                                                            : "separate output matrix");
  fmt::print("file size     {}\n", FormatBytes(static_cast<double>(DiskBytes(args.model))));
  fmt::print("weights       {} ({:.2f} bits per weight)\n", FormatBytes(weight_bytes),
             bits_per_weight);
  for (const auto& [name, s] : by_type) {
    fmt::print("  {:<6} {:>4} tensors {:>14} elements {:>12}\n", name, s.tensors, s.elements,
               FormatBytes(static_cast<double>(s.bytes)));
  }
  if (!pruned.empty()) {
    fmt::print("pruned        {}: {:.2f}% of the block matrices' weights are zero\n", pruned,
               100.0 * fraction(block_zeros, block_elements));
  }
  fmt::print("KV cache      {} at context {} x batch {} ({})\n", FormatBytes(kv_bytes), ctx,
             args.batch, DTypeName(kv_type));
  fmt::print("memory        {} for weights + KV cache\n", FormatBytes(weight_bytes + kv_bytes));
  if (tok != nullptr) {
    fmt::print("tokenizer     {} tokens, bos {}, eos {}\n", tok->vocab_size(), tok->bos_id(),
               tok->eos_id());
  } else {
    fmt::print("tokenizer     none\n");
  }
  if (args.tensors) {
    fmt::print("\n{:<36} {:<6} {:<16} {:>12} {:>8}\n", "tensor", "type", "shape", "bytes",
               "sparsity");
    for (const StoredTensor& t : model->store().tensors()) {
      fmt::print("{:<36} {:<6} {:<16} {:>12} {:>7.2f}%\n", t.name, DTypeName(t.dtype),
                 t.shape.ToString(), t.nbytes,
                 100.0 * fraction(zeros[t.name], t.shape.NumElements()));
    }
  }
  return Status::Ok();
}

}  // namespace

CommandSpec InfoCommand() {
  return {"info", "Describe a model: shape, parameters, types, memory for weights and KV cache",
          [](CLI::App* app) {
            auto args = std::make_shared<InfoArgs>();
            app->add_option("model", args->model, "Model: GGUF file, HF folder or llama2.c .bin")
                ->required();
            app->add_option("-c,--ctx", args->ctx,
                            "Context for the KV-cache estimate (0: the model's)")
                ->check(CLI::NonNegativeNumber);
            app->add_option("-b,--batch", args->batch, "Sequences for the KV-cache estimate")
                ->check(CLI::PositiveNumber);
            app->add_option("--kv-type", args->kv_type,
                            "KV cache type for the estimate: f32, f16 or q8_0")
                ->capture_default_str();
            AddTokenizerOption(app, &args->tokenizer);
            app->add_flag("--tensors", args->tensors, "List every tensor");
            app->add_flag("--json", args->json, "Print JSON");
            return [args] { return Info(*args); };
          }};
}

}  // namespace slimlm::tools
