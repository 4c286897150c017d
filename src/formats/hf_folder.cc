// HF folder reader and writer: config.json through hf_config, weights through safetensors, names
// through hf_names, and the Llama q/k row permutation through rope_pairing.
#include "slimlm/formats/hf_folder.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <vector>

#include "formats/byte_reader.h"
#include "formats/hf_names.h"
#include "slimlm/core/file.h"
#include "slimlm/formats/hf_config.h"
#include "slimlm/formats/rope_pairing.h"
#include "slimlm/formats/safetensors.h"

namespace slimlm {
namespace {

namespace fs = std::filesystem;
using formats_internal::Printable;

Result<SafetensorsContents> ReadWeights(const std::string& dir) {
  std::string index = (fs::path(dir) / "model.safetensors.index.json").string();
  std::string single = (fs::path(dir) / "model.safetensors").string();
  if (IsRegularFile(index)) return ReadShardedSafetensors(index);
  if (IsRegularFile(single)) return ReadSafetensors(single);
  return NotFoundError("{}: no model.safetensors or model.safetensors.index.json", dir);
}

std::string ListNames(const std::vector<std::string>& names) {
  constexpr size_t kShown = 5;
  std::string out;
  for (size_t i = 0; i < names.size() && i < kShown; ++i) {
    out += (i > 0 ? ", " : "") + Printable(names[i]);
  }
  if (names.size() > kShown) out += fmt::format(" (and {} more)", names.size() - kShown);
  return out;
}

}  // namespace

Result<WeightStore> ReadHfFolder(const std::string& dir) {
  std::string config_path = (fs::path(dir) / "config.json").string();
  if (!IsRegularFile(config_path)) {
    return NotFoundError("{}: no config.json (not a Hugging Face model folder)", dir);
  }
  SLIMLM_ASSIGN_OR_RETURN(std::string config_text, ReadFileToString(config_path));
  WeightStore store;
  SLIMLM_ASSIGN_OR_RETURN(HfConfigInfo info,
                          HfConfigToMetadata(config_text, config_path, &store.metadata()));
  SLIMLM_ASSIGN_OR_RETURN(SafetensorsContents contents, ReadWeights(dir));

  std::vector<std::pair<std::string, StoredTensor*>> mapped;
  std::vector<std::string> unknown;
  bool has_lm_head = false;
  for (StoredTensor& t : contents.tensors) {
    if (formats_internal::IsIgnoredHfTensor(t.name)) continue;
    std::optional<std::string> name = formats_internal::HfToGgufTensorName(t.name);
    if (!name) {
      unknown.push_back(t.name);
      continue;
    }
    has_lm_head = has_lm_head || *name == "output.weight";
    mapped.emplace_back(std::move(*name), &t);
  }
  if (!unknown.empty()) {
    return UnsupportedError("{}: unknown tensor names for a {} model: {}", dir, info.model_type,
                            ListNames(unknown));
  }
  bool tied = info.tie_word_embeddings.value_or(!has_lm_head);
  if (!tied && !has_lm_head) {
    return CorruptError(
        "{}: config.json sets tie_word_embeddings=false but there is no "
        "lm_head.weight",
        dir);
  }
  std::stable_sort(mapped.begin(), mapped.end(), [](const auto& a, const auto& b) {
    return formats_internal::GgufTensorOrderKey(a.first) <
           formats_internal::GgufTensorOrderKey(b.first);
  });
  for (auto& [name, t] : mapped) {
    // A tied model's lm_head, when a checkpoint carries one anyway, is not what HF uses.
    if (tied && name == "output.weight") continue;
    store.AddBorrowed(std::move(name), t->dtype, t->shape, t->data, t->owner);
  }
  if (store.Find("token_embd.weight") == nullptr) {
    return CorruptError("{}: no model.embed_tokens.weight", dir);
  }
  if (ArchitectureUsesAdjacentPairingInGguf(info.architecture)) {
    store.metadata().Set(std::string(kRopePairingKey), MetaValue::String("half"));
  }
  store.source_path = dir;
  store.source_format = "hf";
  return store;
}

Status WriteHfFolder(const WeightStore& store, const std::string& dir) {
  Result<std::string> config = HfConfigFromStore(store);
  if (!config.ok()) return config.status().WithContext(dir);
  const Metadata& m = store.metadata();
  bool permute =
      ArchitectureUsesAdjacentPairingInGguf(m.GetString("general.architecture").value_or("")) &&
      StoredRopePairing(m) == RopePairing::kAdjacent;
  std::deque<std::vector<uint8_t>> permuted;  // Owns the permuted q/k bytes until written.
  std::vector<StoredTensor> tensors;
  for (const StoredTensor& t : store.tensors()) {
    std::optional<std::string> hf_name = formats_internal::GgufToHfTensorName(t.name);
    if (!hf_name) {
      return UnsupportedError("{}: tensor '{}' has no Hugging Face Llama/Qwen name", dir, t.name);
    }
    if (!SafetensorsDTypeName(t.dtype)) {
      return UnsupportedError(
          "{}: tensor '{}' is {}; HF folders hold f32, f16 and bf16 tensors "
          "(save as GGUF instead)",
          dir, t.name, DTypeName(t.dtype));
    }
    StoredTensor out{*hf_name, t.dtype, t.shape, t.data, t.nbytes, nullptr};
    int64_t heads = RopeHeadsOfTensor(m, t.name);
    if (permute && heads != 0) {
      if (heads < 0)
        return InvalidArgumentError("{}: metadata lacks the attention head count", dir);
      SLIMLM_RETURN_IF_ERROR(PermuteRopeTensor(t, heads, RopePairing::kAdjacent, RopePairing::kHalf,
                                               &permuted.emplace_back())
                                 .WithContext(dir));
      out.data = permuted.back().data();
    }
    tensors.push_back(std::move(out));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IoError("{}: cannot create the folder: {}", dir, ec.message());
  SLIMLM_RETURN_IF_ERROR(WriteSafetensors((fs::path(dir) / "model.safetensors").string(), tensors,
                                          {{"format", "pt"}}));
  return WriteFileAtomically((fs::path(dir) / "config.json").string(), *config);
}

}  // namespace slimlm
