// Model shapes by name, and models with random weights made from them (`slimlm init`).
//
// Random models are for benchmarks (speed does not depend on the weights) and as the starting
// point of training. Weights are deterministic in (preset, seed): each tensor has its own
// generator seeded from the seed and the tensor's name, so threads do not change the result.
#ifndef SLIMLM_MODEL_PRESETS_H_
#define SLIMLM_MODEL_PRESETS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"
#include "slimlm/formats/weight_store.h"
#include "slimlm/model/config.h"

namespace slimlm {

struct ModelPreset {
  std::string name;
  std::string description;
  ModelConfig config;
  bool tied_embeddings = true;
};

// tiny, tiny-qwen2, tiny-qwen3, 110m, tinyllama-1.1b.
const std::vector<ModelPreset>& ModelPresets();
Result<ModelPreset> FindPreset(const std::string& name);

struct InitOptions {
  uint64_t seed = 0;
  // Type of the weight matrices; norms and biases stay f32, and a separate output matrix of a
  // q4_0 model is q8_0 (llama.cpp's default mixes keep it at higher precision too).
  DType type = DType::kF32;
  // Tokenizer keys to include (e.g. read from a tokenizer file); null: a synthetic byte-level
  // vocabulary of the preset's size. The model's vocabulary grows to the tokenizer's size.
  const Metadata* tokenizer = nullptr;
  int n_threads = 0;
};

Result<WeightStore> MakeRandomModel(const ModelPreset& preset, const InitOptions& options);

// A SentencePiece-style vocabulary of n_vocab tokens: <unk>, <s>, </s>, the 256 byte tokens,
// "▁" and printable ASCII, then unused tokens. Enough to encode and decode any text.
void AddSyntheticVocab(int64_t n_vocab, Metadata* metadata);

}  // namespace slimlm

#endif  // SLIMLM_MODEL_PRESETS_H_
