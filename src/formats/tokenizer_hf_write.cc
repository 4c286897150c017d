// GGUF tokenizer keys -> HF tokenizer.json + tokenizer_config.json.
//
// "gpt2" vocabularies keep their merges and get the ByteLevel pieces of their pre-tokenizer;
// "llama" vocabularies become what HF's own SentencePiece converter writes: a BPE model with
// byte_fallback whose merges are every pair of pieces that concatenate to a piece, ordered by
// that piece's score, behind a Prepend("▁") + Replace(" ", "▁") normalizer.
#include <filesystem>
#include <string>
#include <unordered_set>
#include <vector>

#include "formats/tokenizer_internal.h"
#include "slimlm/core/file.h"
#include "slimlm/formats/tokenizer_files.h"

namespace slimlm {
namespace {

using hf::Json;

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4;

struct Keys {
  std::string model, pre;
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  std::vector<std::string> merges;
  int64_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
  std::string chat_template;
};

Result<Keys> ReadKeys(const Metadata& md, const std::string& dir) {
  Keys k;
  k.model = md.GetString("tokenizer.ggml.model").value_or("");
  k.pre = md.GetString("tokenizer.ggml.pre").value_or("");
  const MetaValue* tokens = md.Find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->AsStringArray() == nullptr || tokens->array_size() == 0) {
    return NotFoundError("{}: no tokenizer.ggml.tokens to write", dir);
  }
  k.tokens = *tokens->AsStringArray();
  const size_t n = k.tokens.size();
  k.scores.assign(n, 0.0f);
  k.types.assign(n, kNormal);
  if (const MetaValue* v = md.Find("tokenizer.ggml.scores")) {
    auto scores = v->AsFloatArray();
    if (!scores || scores->size() != n) return CorruptError("{}: bad tokenizer.ggml.scores", dir);
    k.scores = std::move(*scores);
  }
  if (const MetaValue* v = md.Find("tokenizer.ggml.token_type")) {
    auto types = v->AsIntArray();
    if (!types || types->size() != n) return CorruptError("{}: bad tokenizer.ggml.token_type", dir);
    for (size_t i = 0; i < n; ++i) k.types[i] = static_cast<int32_t>((*types)[i]);
  }
  if (const MetaValue* v = md.Find("tokenizer.ggml.merges"); v && v->AsStringArray()) {
    k.merges = *v->AsStringArray();
  }
  for (auto [key, field] : {std::pair{"tokenizer.ggml.bos_token_id", &k.bos},
                            std::pair{"tokenizer.ggml.eos_token_id", &k.eos},
                            std::pair{"tokenizer.ggml.unknown_token_id", &k.unk},
                            std::pair{"tokenizer.ggml.padding_token_id", &k.pad}}) {
    const int64_t id = md.GetInt(key).value_or(-1);
    *field = id >= 0 && id < static_cast<int64_t>(n) ? id : -1;
  }
  const bool spm = k.model == "llama";
  k.add_bos = md.GetBool("tokenizer.ggml.add_bos_token").value_or(spm) && k.bos >= 0;
  k.add_eos = md.GetBool("tokenizer.ggml.add_eos_token").value_or(false) && k.eos >= 0;
  k.add_space_prefix = md.GetBool("tokenizer.ggml.add_space_prefix").value_or(spm);
  k.chat_template = md.GetString("tokenizer.chat_template").value_or("");
  return k;
}

Json ByteLevel(bool use_regex) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", false},
          {"trim_offsets", true},
          {"use_regex", use_regex}};
}

Result<Json> BytePreTokenizer(const std::string& pre, const std::string& dir) {
  if (pre == "gpt-2" || pre.empty() || pre == "default") return ByteLevel(true);
  if (pre == "smollm") {
    return Json{
        {"type", "Sequence"},
        {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, ByteLevel(true)}}};
  }
  std::string_view regex;
  if (pre == "llama-bpe") regex = hf::kLlama3Regex;
  if (pre == "qwen2") regex = hf::kQwen2Regex;
  if (regex.empty()) {
    return UnsupportedError("{}: cannot write pre-tokenizer '{}' as tokenizer.json", dir, pre);
  }
  Json split = {{"type", "Split"},
                {"pattern", {{"Regex", std::string(regex)}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  return Json{{"type", "Sequence"}, {"pretokenizers", {split, ByteLevel(false)}}};
}

Json SpecialTokenRef(const Keys& k, int64_t id) {
  return {{"SpecialToken", {{"id", k.tokens[id]}, {"type_id", 0}}}};
}

// BOS/EOS around the text, as HF's TemplateProcessing adds them on encode(add_special_tokens).
Json PostProcessor(const Keys& k) {
  if (!k.add_bos && !k.add_eos) return nullptr;
  auto add_sequence = [&](Json* templ, const char* id, int type_id) {
    if (k.add_bos) templ->push_back(SpecialTokenRef(k, k.bos));
    templ->push_back({{"Sequence", {{"id", id}, {"type_id", type_id}}}});
    if (k.add_eos) templ->push_back(SpecialTokenRef(k, k.eos));
  };
  Json single = Json::array(), pair = Json::array(), specials = Json::object();
  add_sequence(&single, "A", 0);
  add_sequence(&pair, "A", 0);
  add_sequence(&pair, "B", 1);
  for (int64_t id : {k.add_bos ? k.bos : -1, k.add_eos ? k.eos : -1}) {
    if (id >= 0) {
      specials[k.tokens[id]] = {{"id", k.tokens[id]}, {"ids", {id}}, {"tokens", {k.tokens[id]}}};
    }
  }
  return {{"type", "TemplateProcessing"},
          {"single", single},
          {"pair", pair},
          {"special_tokens", specials}};
}

Json SpmNormalizer(const Keys& k) {
  Json steps = Json::array();
  if (k.add_space_prefix) steps.push_back({{"type", "Prepend"}, {"prepend", hf::kSpmSpace}});
  steps.push_back(
      {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", hf::kSpmSpace}});
  return {{"type", "Sequence"}, {"normalizers", steps}};
}

Json SpmDecoder(const Keys& k) {
  Json steps = Json::array();
  steps.push_back(
      {{"type", "Replace"}, {"pattern", {{"String", hf::kSpmSpace}}}, {"content", " "}});
  steps.push_back({{"type", "ByteFallback"}});
  steps.push_back({{"type", "Fuse"}});
  if (k.add_space_prefix) {
    steps.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  }
  return {{"type", "Sequence"}, {"decoders", steps}};
}

Result<Json> BuildTokenizerJson(const Keys& k, const std::string& dir) {
  const bool spm = k.model == "llama";
  Json vocab = Json::object(), added = Json::array();
  std::unordered_set<std::string> seen;
  for (size_t id = 0; id < k.tokens.size(); ++id) {
    if (seen.insert(k.tokens[id]).second) vocab[k.tokens[id]] = id;
    const int32_t type = k.types[id];
    if (type == kControl || type == kUnknown || type == kUserDefined) {
      added.push_back({{"id", id},
                       {"content", k.tokens[id]},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", type != kUserDefined}});
    }
  }
  Json merges = Json::array();
  if (spm) {
    for (const auto& [left, right] : hf::MergesFromScores(k.tokens, k.scores, k.types)) {
      merges.push_back(Json::array({k.tokens[left], k.tokens[right]}));
    }
  } else {
    for (const std::string& merge : k.merges) merges.push_back(merge);
  }
  Json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", spm && k.unk >= 0 ? Json(k.tokens[k.unk]) : Json(nullptr)},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", spm},
                {"byte_fallback", spm},
                {"ignore_merges", k.pre == "llama-bpe"},
                {"vocab", std::move(vocab)},
                {"merges", std::move(merges)}};
  Json root = {{"version", "1.0"},          {"truncation", nullptr},
               {"padding", nullptr},        {"added_tokens", std::move(added)},
               {"model", std::move(model)}, {"post_processor", PostProcessor(k)}};
  if (spm) {
    root["normalizer"] = SpmNormalizer(k);
    root["pre_tokenizer"] = nullptr;
    root["decoder"] = SpmDecoder(k);
  } else {
    SLIMLM_ASSIGN_OR_RETURN(Json pre, BytePreTokenizer(k.pre, dir));
    root["normalizer"] = k.pre == "qwen2" ? Json{{"type", "NFC"}} : Json(nullptr);
    root["pre_tokenizer"] = std::move(pre);
    root["decoder"] = ByteLevel(true);
  }
  return root;
}

Json BuildConfigJson(const Keys& k) {
  auto name = [&](int64_t id) { return id >= 0 ? Json(k.tokens[id]) : Json(nullptr); };
  Json config = {{"add_bos_token", k.add_bos},
                 {"add_eos_token", k.add_eos},
                 {"bos_token", name(k.bos)},
                 {"eos_token", name(k.eos)},
                 {"unk_token", name(k.unk)},
                 {"clean_up_tokenization_spaces", false},
                 {"tokenizer_class", "PreTrainedTokenizerFast"}};
  if (k.pad >= 0) config["pad_token"] = name(k.pad);
  if (!k.chat_template.empty()) config["chat_template"] = k.chat_template;
  return config;
}

}  // namespace

Status WriteHfTokenizer(const Metadata& metadata, const std::string& dir) {
  SLIMLM_ASSIGN_OR_RETURN(Keys keys, ReadKeys(metadata, dir));
  if (keys.model != "llama" && keys.model != "gpt2") {
    return UnsupportedError("{}: cannot write tokenizer model '{}' as tokenizer.json", dir,
                            keys.model);
  }
  std::string tokenizer_text, config_text;
  // nlohmann::json throws (on invalid UTF-8 in a token, for one); nothing may leave the module.
  try {
    SLIMLM_ASSIGN_OR_RETURN(Json tokenizer, BuildTokenizerJson(keys, dir));
    tokenizer_text = tokenizer.dump();
    config_text = BuildConfigJson(keys).dump(2);
  } catch (const Json::exception& e) {
    return UnsupportedError("{}: cannot write tokenizer.json: {}", dir, e.what());
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("{}: cannot create the folder: {}", dir, ec.message());
  const std::filesystem::path folder(dir);
  SLIMLM_RETURN_IF_ERROR(WriteFileAtomically((folder / "tokenizer.json").string(), tokenizer_text));
  return WriteFileAtomically((folder / "tokenizer_config.json").string(), config_text);
}

}  // namespace slimlm
