// slimlm convert: between model file formats.
#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/progress.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/tensor/quant_blocks.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct ConvertArgs {
  std::string in;
  std::string out;
  std::string to;
  std::string type;
  std::string name;
  std::string tokenizer;
};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Re-types the weight matrices (rank 2); vectors such as norms and biases stay as they are,
// which is what llama.cpp expects too.
Status ConvertMatrices(WeightStore* store, DType type) {
  std::vector<std::string> names;
  for (const StoredTensor& t : store->tensors()) {
    if (t.shape.rank() == 2 && t.dtype != type) names.push_back(t.name);
  }
  Progress progress("convert", static_cast<int64_t>(names.size()), "tensors");
  std::vector<float> row;
  for (const std::string& name : names) {
    const StoredTensor old = *store->Find(name);  // Copy: Replace rewrites the entry.
    const int64_t cols = old.shape.Cols();
    if (!IsRowLengthValid(type, cols)) {
      return InvalidArgumentError(
          "tensor '{}' has rows of {} elements, not a multiple of {}'s "
          "block of {}",
          name, cols, DTypeName(type), Traits(type).block_size);
    }
    uint8_t* dst = store->Replace(name, type, old.shape);
    row.resize(static_cast<size_t>(cols));
    const size_t src_row = RowBytes(old.dtype, cols), dst_row = RowBytes(type, cols);
    for (int64_t r = 0; r < old.shape.Rows(); ++r) {
      RowToF32(old.dtype, old.data + static_cast<size_t>(r) * src_row, row.data(), cols);
      RowFromF32(type, row.data(), dst + static_cast<size_t>(r) * dst_row, cols);
    }
    progress.Add(1);
  }
  progress.Finish();
  return Status::Ok();
}

Status Convert(const ConvertArgs& args) {
  std::string to = args.to;
  if (to.empty()) to = EndsWith(args.out, ".gguf") ? "gguf" : "hf";
  if (to != "gguf" && to != "hf") {
    return InvalidArgumentError("--to '{}' is not one of gguf, hf", to);
  }
  std::optional<DType> type;
  if (!args.type.empty()) {
    type = ParseDType(args.type);
    if (type != DType::kF32 && type != DType::kF16 && type != DType::kBF16) {
      return InvalidArgumentError(
          "--type '{}' is not one of f32, f16, bf16 (quantized types "
          "come from 'slimlm quantize')",
          args.type);
    }
  }
  LoadOptions options;
  options.tokenizer_path = args.tokenizer;
  options.require_tokenizer = false;
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, LoadModel(args.in, options));
  if (!store.metadata().Has("tokenizer.ggml.tokens")) {
    fmt::print(stderr,
               "warning: {} has no tokenizer; the output will have none either (pass "
               "--tokenizer FILE to include one)\n",
               args.in);
  }
  if (type) SLIMLM_RETURN_IF_ERROR(ConvertMatrices(&store, *type));
  // Provenance: where this file came from.
  Metadata& md = store.metadata();
  md.Set("slimlm.version", MetaValue::String(std::string(kSlimlmVersion)));
  md.Set("slimlm.source.file", MetaValue::String(args.in));
  md.Set("slimlm.source.format", MetaValue::String(store.source_format));
  if (!args.name.empty()) md.Set("general.name", MetaValue::String(args.name));
  // A trained model is not random, whatever an older slimlm train left of init's flag.
  if (md.Has("slimlm.train.tokens")) md.Erase("slimlm.init.random_weights");
  if (to == "gguf") {
    SLIMLM_RETURN_IF_ERROR(SaveGguf(store, args.out));
  } else {
    SLIMLM_RETURN_IF_ERROR(SaveHfFolder(store, args.out));
  }
  fmt::print(stderr, "wrote {} ({}, {} tensors, {})\n", args.out, to, store.tensors().size(),
             FormatBytes(static_cast<double>(store.TotalTensorBytes())));
  return Status::Ok();
}

}  // namespace

CommandSpec ConvertCommand() {
  return {
      "convert", "Convert a model between GGUF, HF safetensors folders and llama2.c",
      [](CLI::App* app) {
        auto args = std::make_shared<ConvertArgs>();
        app->add_option("in", args->in, "Input: GGUF file, HF folder or llama2.c .bin")->required();
        app->add_option("out", args->out, "Output: a .gguf file, or a folder for HF")->required();
        app->add_option("--to", args->to, "Output format: gguf or hf (default: from OUT)");
        app->add_option("--type", args->type, "Re-type weight matrices: f32, f16 or bf16");
        app->add_option("--name", args->name, "Set the model's name (general.name)");
        AddTokenizerOption(app, &args->tokenizer);
        return [args] { return Convert(*args); };
      }};
}

}  // namespace slimlm::tools
