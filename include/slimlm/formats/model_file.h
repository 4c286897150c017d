// Loading a model from any supported format into a WeightStore, and saving one.
//
// Formats:
//   - GGUF v3 (a file starting with "GGUF"), tensors mapped without copying.
//   - A Hugging Face folder: config.json, model.safetensors or sharded model-0000N-of-0000M
//     .safetensors with model.safetensors.index.json, tokenizer.json, tokenizer_config.json.
//   - A llama2.c checkpoint (.bin, legacy or versioned header) with its tokenizer.bin.
//
// Whatever the source, the store uses GGUF names and conventions (see weight_store.h) with one
// exception: Llama-architecture q/k weights from an HF folder keep HF's row order for RoPE's
// rotate-half pairing, and the store says so with the key "slimlm.rope.pairing" = "half".
// (GGUF and llama2.c Llama weights pair adjacent dimensions.) Writers convert as their format
// needs, so q/k rows round-trip exactly.
#ifndef SLIMLM_FORMATS_MODEL_FILE_H_
#define SLIMLM_FORMATS_MODEL_FILE_H_

#include <string>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm {

enum class ModelFormat { kGguf, kHfFolder, kLlama2c };

// "gguf", "hf", "llama2c".
std::string_view ModelFormatName(ModelFormat format);

// Guesses the format from the path: a directory is an HF folder, a file starting with "GGUF" is
// GGUF, a .safetensors or config.json file means its folder, anything else is tried as llama2.c.
Result<ModelFormat> DetectModelFormat(const std::string& path);

struct LoadOptions {
  // A tokenizer file to use instead of (or where the model lacks) its own: tokenizer.bin
  // (llama2.c), tokenizer.json (HF), or a GGUF file whose tokenizer.* keys are taken.
  std::string tokenizer_path;
  // When false, a model without any tokenizer loads anyway (for info, convert).
  bool require_tokenizer = true;
};

Result<WeightStore> LoadModel(const std::string& path, const LoadOptions& options = {});

// Writes a GGUF v3 file (atomically: a temporary file renamed into place).
Status SaveGguf(const WeightStore& store, const std::string& path);
// Writes an HF folder: config.json, model.safetensors, tokenizer.json, tokenizer_config.json
// (each file atomically). The folder is created when missing.
Status SaveHfFolder(const WeightStore& store, const std::string& dir);

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_MODEL_FILE_H_
