// Format detection, loading with tokenizer lookup, and saving with the RoPE pairing conversion
// each format needs.
#include "slimlm/formats/model_file.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "slimlm/core/file.h"
#include "slimlm/core/log.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/formats/hf_folder.h"
#include "slimlm/formats/llama2c.h"
#include "slimlm/formats/rope_pairing.h"
#include "slimlm/formats/tokenizer_files.h"

namespace slimlm {
namespace {

namespace fs = std::filesystem;

bool IsHfFileName(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  return name.ends_with(".safetensors") || name == "config.json" ||
         name.ends_with(".safetensors.index.json");
}

std::string FolderOf(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  return dir.empty() ? "." : dir.string();
}

// The model's vocabulary size, for tokenizer files that do not say it; 0 when unknown.
int VocabSize(const WeightStore& store) {
  std::string arch = store.metadata().GetString("general.architecture").value_or("");
  if (auto n = store.metadata().GetInt(arch + ".vocab_size")) return static_cast<int>(*n);
  const StoredTensor* embd = store.Find("token_embd.weight");
  return embd != nullptr && embd->shape.rank() == 2 ? static_cast<int>(embd->shape[0]) : 0;
}

bool HasTokenizer(const WeightStore& store) {
  return store.metadata().Has("tokenizer.ggml.tokens");
}

// Replaces the store's tokenizer.* keys with those in `tokenizer`.
void MergeTokenizer(const Metadata& tokenizer, WeightStore* store) {
  std::vector<std::string> stale;
  for (const auto& [key, value] : store->metadata().entries()) {
    if (key.starts_with("tokenizer.") && !tokenizer.Has(key)) stale.push_back(key);
  }
  for (const std::string& key : stale) store->metadata().Erase(key);
  for (const auto& [key, value] : tokenizer.entries()) store->metadata().Set(key, value);
}

using TokenizerReader = Status (*)(const std::string& path, int n_vocab, Metadata* out);

Status ReadHfTokenizerIgnoringVocab(const std::string& path, int, Metadata* out) {
  return ReadHfTokenizer(path, out);
}

// Adds a tokenizer: LoadOptions::tokenizer_path when given (its errors always count), else the
// one found beside the model (`found`, may be empty). A found tokenizer that fails to read is an
// error only when one is required; otherwise the model loads without it and a warning says why,
// so that `info` and `convert` work on a model whose tokenizer we cannot read.
Status AttachTokenizer(const LoadOptions& options, const std::string& found, TokenizerReader read,
                       const std::string& missing_message, WeightStore* store) {
  Metadata tokenizer;
  if (!options.tokenizer_path.empty()) {
    SLIMLM_RETURN_IF_ERROR(
        ReadTokenizerFile(options.tokenizer_path, VocabSize(*store), &tokenizer));
    MergeTokenizer(tokenizer, store);
    return Status::Ok();
  }
  if (!found.empty()) {
    Status s = read(found, VocabSize(*store), &tokenizer);
    if (s.ok()) {
      MergeTokenizer(tokenizer, store);
      return Status::Ok();
    }
    if (options.require_tokenizer) return s;
    SLIMLM_LOG(kWarning, "loading without a tokenizer: {}", s.message());
    return Status::Ok();
  }
  if (options.require_tokenizer && !HasTokenizer(*store)) {
    return NotFoundError("{}", missing_message);
  }
  return Status::Ok();
}

// When a Llama store's q/k rows are not in `to` order, the number of heads of tensor `t` to
// permute (0 for tensors that stay as they are).
Result<int64_t> HeadsToPermute(const Metadata& m, const StoredTensor& t, RopePairing to) {
  if (!ArchitectureUsesAdjacentPairingInGguf(m.GetString("general.architecture").value_or("")) ||
      StoredRopePairing(m) == to) {
    return int64_t{0};
  }
  int64_t heads = RopeHeadsOfTensor(m, t.name);
  if (heads < 0) return InvalidArgumentError("metadata lacks the attention head count");
  return heads;
}

}  // namespace

std::string_view ModelFormatName(ModelFormat format) {
  switch (format) {
    case ModelFormat::kGguf:
      return "gguf";
    case ModelFormat::kHfFolder:
      return "hf";
    case ModelFormat::kLlama2c:
      return "llama2c";
  }
  return "unknown";
}

Result<ModelFormat> DetectModelFormat(const std::string& path) {
  if (IsDirectory(path)) return ModelFormat::kHfFolder;
  std::error_code ec;
  if (!fs::exists(path, ec)) return NotFoundError("{}: no such file", path);
  if (!IsRegularFile(path)) return InvalidArgumentError("{}: not a regular file or folder", path);
  if (IsHfFileName(path)) return ModelFormat::kHfFolder;
  char magic[4] = {};
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return IoError("{}: cannot open", path);
  size_t n = std::fread(magic, 1, sizeof(magic), f);
  std::fclose(f);
  if (n == 4 && std::memcmp(magic, "GGUF", 4) == 0) return ModelFormat::kGguf;
  return ModelFormat::kLlama2c;
}

Result<WeightStore> LoadModel(const std::string& path, const LoadOptions& options) {
  SLIMLM_ASSIGN_OR_RETURN(ModelFormat format, DetectModelFormat(path));
  switch (format) {
    case ModelFormat::kGguf: {
      SLIMLM_ASSIGN_OR_RETURN(WeightStore store, ReadGguf(path));
      SLIMLM_RETURN_IF_ERROR(AttachTokenizer(
          options, "", nullptr,
          fmt::format("{}: no tokenizer in the file; pass --tokenizer FILE", path), &store));
      return store;
    }
    case ModelFormat::kLlama2c: {
      SLIMLM_ASSIGN_OR_RETURN(WeightStore store, ReadLlama2c(path));
      SLIMLM_RETURN_IF_ERROR(AttachTokenizer(
          options, FindLlama2cTokenizer(path), ReadLlama2cTokenizer,
          fmt::format("no tokenizer found beside {}; pass --tokenizer FILE", path), &store));
      return store;
    }
    case ModelFormat::kHfFolder: {
      std::string dir = IsDirectory(path) ? path : FolderOf(path);
      SLIMLM_ASSIGN_OR_RETURN(WeightStore store, ReadHfFolder(dir));
      std::string tokenizer_json = (fs::path(dir) / "tokenizer.json").string();
      SLIMLM_RETURN_IF_ERROR(AttachTokenizer(
          options, IsRegularFile(tokenizer_json) ? tokenizer_json : "",
          ReadHfTokenizerIgnoringVocab,
          fmt::format("no tokenizer.json in {}; pass --tokenizer FILE", dir), &store));
      return store;
    }
  }
  return InternalError("{}: unhandled model format", path);
}

Status SaveGguf(const WeightStore& store, const std::string& path) {
  // GGUF Llama weights pair adjacent dimensions: HF-ordered q/k rows are permuted back, one
  // tensor at a time into one reused buffer, and the pairing key, which only describes
  // in-memory stores, is not written.
  Metadata metadata = store.metadata();
  metadata.Erase(std::string(kRopePairingKey));
  std::vector<GgufTensorInfo> infos;
  for (const StoredTensor& t : store.tensors()) infos.push_back({t.name, t.dtype, t.shape});
  SLIMLM_ASSIGN_OR_RETURN(auto writer, GgufStreamWriter::Create(path, metadata, std::move(infos)));
  std::vector<uint8_t> permuted;
  for (const StoredTensor& t : store.tensors()) {
    Result<int64_t> heads = HeadsToPermute(store.metadata(), t, RopePairing::kAdjacent);
    if (!heads.ok()) return heads.status().WithContext(path);
    const void* data = t.data;
    if (*heads > 0) {
      SLIMLM_RETURN_IF_ERROR(PermuteRopeTensor(t, *heads, StoredRopePairing(store.metadata()),
                                               RopePairing::kAdjacent, &permuted)
                                 .WithContext(path));
      data = permuted.data();
    }
    SLIMLM_RETURN_IF_ERROR(writer->Append(data, t.nbytes));
  }
  return writer->Finish();
}

Status SaveHfFolder(const WeightStore& store, const std::string& dir) {
  SLIMLM_RETURN_IF_ERROR(WriteHfFolder(store, dir));
  // A store without a vocabulary (a model loaded with require_tokenizer = false) gets no
  // tokenizer files; the weights and config are still a loadable folder.
  if (!HasTokenizer(store)) return Status::Ok();
  return WriteHfTokenizer(store.metadata(), dir);
}

}  // namespace slimlm
