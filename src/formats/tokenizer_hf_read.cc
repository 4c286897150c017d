// HF tokenizer.json (+ tokenizer_config.json) -> GGUF tokenizer keys.
//
// Byte-level BPE files (GPT-2, Llama 3, Qwen2/3, SmolLM) become "gpt2" vocabularies with their
// merges; SentencePiece-style BPE files (Llama 2, Mistral: byte_fallback, "▁" for spaces) become
// "llama" vocabularies whose scores come from the merge ranks (tokenizer_hf_spm.cc).
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/tokenizer_internal.h"
#include "slimlm/core/file.h"
#include "slimlm/core/log.h"
#include "slimlm/formats/tokenizer_files.h"

namespace slimlm {
namespace {

using hf::Json;
using hf::Member;
using hf::StringMember;

constexpr int64_t kMaxTokens = int64_t{1} << 24;
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

struct HfVocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::unordered_map<std::string, int32_t> ids;  // model.vocab and added tokens
};

bool IsByteToken(std::string_view text) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return text.size() == 6 && text.substr(0, 3) == "<0x" && hex(text[3]) && hex(text[4]) &&
         text[5] == '>';
}

Result<int32_t> TokenId(const Json& value, std::string_view text, const std::string& path) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() >= kMaxTokens) {
    return CorruptError("{}: token '{}' has a bad id {}", path, text, value.dump());
  }
  return static_cast<int32_t>(value.get<int64_t>());
}

// model.vocab and added_tokens -> tokens by id. Added tokens are control tokens when special,
// user-defined otherwise; ids nobody uses become unused "[PADn]" tokens, as llama.cpp's
// converter writes them.
Status ReadTokens(const Json& root, const Json& model, const std::string& path, HfVocab* v) {
  const Json* vocab = Member(model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return CorruptError("{}: model.vocab is missing or not an object", path);
  }
  std::vector<std::pair<int32_t, std::string>> entries;
  std::vector<std::pair<int32_t, int32_t>> added;  // id, type
  for (const auto& [text, value] : vocab->items()) {
    SLIMLM_ASSIGN_OR_RETURN(int32_t id, TokenId(value, text, path));
    entries.emplace_back(id, text);
  }
  if (const Json* tokens = Member(root, "added_tokens")) {
    if (!tokens->is_array()) return CorruptError("{}: added_tokens is not an array", path);
    for (const Json& token : *tokens) {
      const Json* content = Member(token, "content");
      const Json* id_value = Member(token, "id");
      if (content == nullptr || !content->is_string() || id_value == nullptr) {
        return CorruptError("{}: added token {} lacks id or content", path, token.dump());
      }
      SLIMLM_ASSIGN_OR_RETURN(int32_t id, TokenId(*id_value, content->get<std::string>(), path));
      entries.emplace_back(id, content->get<std::string>());
      const Json* special = Member(token, "special");
      added.emplace_back(
          id, special && special->is_boolean() && special->get<bool>() ? kControl : kUserDefined);
    }
  }
  if (entries.empty()) return CorruptError("{}: the vocabulary is empty", path);
  int32_t max_id = 0;
  for (const auto& entry : entries) max_id = std::max(max_id, entry.first);
  v->tokens.assign(static_cast<size_t>(max_id) + 1, std::string());
  v->types.assign(v->tokens.size(), -1);
  for (const auto& [id, text] : entries) {
    // An added token may restate a vocab entry (GPT-2's <|endoftext|>); a different text for the
    // same id is a broken file.
    if (v->types[id] >= 0 && v->tokens[id] != text) {
      return CorruptError("{}: id {} is both '{}' and '{}'", path, id, v->tokens[id], text);
    }
    v->tokens[id] = text;
    v->types[id] = kNormal;
  }
  for (const auto& [id, type] : added) v->types[id] = type;
  for (size_t id = 0; id < v->tokens.size(); ++id) {
    if (v->types[id] < 0) {
      v->tokens[id] = "[PAD" + std::to_string(id) + "]";
      v->types[id] = kUnused;
    }
    v->ids.emplace(v->tokens[id], static_cast<int32_t>(id));
  }
  return Status::Ok();
}

// model.merges in either form, "left right" or ["left", "right"], checked against the vocab.
Status ReadMerges(const Json& model, const HfVocab& v, const std::string& path,
                  std::vector<hf::MergeIds>* merges,
                  std::vector<std::pair<std::string, std::string>>* texts) {
  const Json* list = Member(model, "merges");
  if (list == nullptr) return Status::Ok();
  if (!list->is_array()) return CorruptError("{}: model.merges is not an array", path);
  for (size_t rank = 0; rank < list->size(); ++rank) {
    const Json& merge = (*list)[rank];
    std::string left, right;
    if (merge.is_string()) {
      const std::string& text = merge.get_ref<const std::string&>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        return CorruptError("{}: bad merge {} '{}': not two tokens separated by a space", path,
                            rank, text);
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      return CorruptError("{}: bad merge {} {}: not a pair of tokens", path, rank, merge.dump());
    }
    auto l = v.ids.find(left);
    auto r = v.ids.find(right);
    auto m = v.ids.find(left + right);
    if (l == v.ids.end() || r == v.ids.end() || m == v.ids.end()) {
      const std::string missing = l == v.ids.end() ? left : r == v.ids.end() ? right : left + right;
      return CorruptError("{}: bad merge {} '{} {}': '{}' is not in the vocabulary", path, rank,
                          left, right, missing);
    }
    merges->push_back(hf::MergeIds{l->second, r->second, m->second});
    texts->emplace_back(std::move(left), std::move(right));
  }
  return Status::Ok();
}

int32_t FindId(const HfVocab& v, const std::string& text, const char* what,
               const std::string& path) {
  if (text.empty()) return -1;
  auto it = v.ids.find(text);
  if (it != v.ids.end()) return it->second;
  SLIMLM_LOG(kWarning, "{}: {} '{}' is not in the vocabulary; ignoring it", path, what, text);
  return -1;
}

void SetSpecialKeys(const HfVocab& v, const hf::SpecialTokenNames& names, bool spm,
                    const std::string& path, Metadata* out) {
  const std::pair<const char*, const std::string*> keys[] = {
      {"tokenizer.ggml.bos_token_id", &names.bos},
      {"tokenizer.ggml.eos_token_id", &names.eos},
      {"tokenizer.ggml.unknown_token_id", &names.unk},
      {"tokenizer.ggml.padding_token_id", &names.pad}};
  for (const auto& [key, name] : keys) {
    const int32_t id = FindId(v, *name, key, path);
    if (id >= 0) out->Set(key, MetaValue::U32(static_cast<uint32_t>(id)));
  }
  // HF's slow Llama tokenizer adds BOS by default; byte-level tokenizers add nothing.
  out->Set("tokenizer.ggml.add_bos_token", MetaValue::Bool(names.add_bos.value_or(spm)));
  out->Set("tokenizer.ggml.add_eos_token", MetaValue::Bool(names.add_eos.value_or(false)));
  if (!names.chat_template.empty()) {
    out->Set("tokenizer.chat_template", MetaValue::String(names.chat_template));
  }
}

Status ConvertHfTokenizer(const Json& root, const std::string& path, Metadata* out) {
  if (!root.is_object()) return CorruptError("{}: not a JSON object", path);
  const Json* model = Member(root, "model");
  if (model == nullptr || !model->is_object()) return CorruptError("{}: no model", path);
  const std::string type = StringMember(*model, "type");
  if (!type.empty() && type != "BPE") {
    return UnsupportedError("{}: unsupported model type '{}' (only BPE)", path, type);
  }
  SLIMLM_ASSIGN_OR_RETURN(hf::TextProcessing processing, hf::DetectTextProcessing(root, path));
  HfVocab v;
  SLIMLM_RETURN_IF_ERROR(ReadTokens(root, *model, path, &v));
  std::vector<hf::MergeIds> merges;
  std::vector<std::pair<std::string, std::string>> merge_texts;
  SLIMLM_RETURN_IF_ERROR(ReadMerges(*model, v, path, &merges, &merge_texts));
  hf::SpecialTokenNames names;
  names.unk = StringMember(*model, "unk_token");
  if (!processing.byte_level) {
    names.bos = v.ids.count("<s>") ? "<s>" : "";
    names.eos = v.ids.count("</s>") ? "</s>" : "";
  }
  SLIMLM_RETURN_IF_ERROR(hf::ReadSpecialTokenNames(root, path, &names));

  out->Set("tokenizer.ggml.model", MetaValue::String(processing.byte_level ? "gpt2" : "llama"));
  out->Set("tokenizer.ggml.pre", MetaValue::String(processing.pre));
  if (processing.byte_level) {
    std::vector<std::string> gguf_merges;
    gguf_merges.reserve(merge_texts.size());
    for (const auto& [left, right] : merge_texts) {
      if (left.find(' ') != std::string::npos || right.find(' ') != std::string::npos) {
        return UnsupportedError("{}: merge '{}' + '{}' has a space, which GGUF merges cannot hold",
                                path, left, right);
      }
      gguf_merges.push_back(left + " " + right);
    }
    out->Set("tokenizer.ggml.tokens", MetaValue::StringArray(v.tokens));
    out->Set("tokenizer.ggml.token_type", MetaValue::I32Array(v.types));
    out->Set("tokenizer.ggml.merges", MetaValue::StringArray(std::move(gguf_merges)));
  } else {
    const int32_t unk = names.unk.empty() ? -1 : FindId(v, names.unk, "unk_token", path);
    const Json* fallback = Member(*model, "byte_fallback");
    const bool byte_fallback = fallback && fallback->is_boolean() && fallback->get<bool>();
    for (size_t id = 0; id < v.tokens.size(); ++id) {
      if (static_cast<int32_t>(id) == unk) {
        v.types[id] = kUnknown;  // HF lists <unk> among the special added tokens too.
      } else if (v.types[id] == kNormal && byte_fallback && IsByteToken(v.tokens[id])) {
        v.types[id] = kByte;
      }
    }
    std::vector<float> scores;
    const size_t inexpressible = hf::ScoresFromMerges(v.tokens, merges, &scores, &v.types);
    if (inexpressible > 0) {
      SLIMLM_LOG(kWarning,
                 "{}: {} merges do not follow SentencePiece's order; rare words may tokenize "
                 "differently from HF",
                 path, inexpressible);
    }
    out->Set("tokenizer.ggml.tokens", MetaValue::StringArray(v.tokens));
    out->Set("tokenizer.ggml.scores", MetaValue::F32Array(std::move(scores)));
    out->Set("tokenizer.ggml.token_type", MetaValue::I32Array(v.types));
    out->Set("tokenizer.ggml.add_space_prefix", MetaValue::Bool(processing.add_space_prefix));
  }
  SetSpecialKeys(v, names, !processing.byte_level, path, out);
  return Status::Ok();
}

}  // namespace

Status ReadHfTokenizer(const std::string& tokenizer_json_path, Metadata* out) {
  SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(tokenizer_json_path));
  // nlohmann::json reports errors by exception; none may leave this module.
  try {
    Json root = Json::parse(text);
    Metadata converted;
    SLIMLM_RETURN_IF_ERROR(ConvertHfTokenizer(root, tokenizer_json_path, &converted));
    ReplaceTokenizerKeys(converted, out);
    return Status::Ok();
  } catch (const Json::parse_error& e) {
    return CorruptError("{}: invalid JSON: {}", tokenizer_json_path, e.what());
  } catch (const Json::exception& e) {
    return CorruptError("{}: unexpected JSON content: {}", tokenizer_json_path, e.what());
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("{}: out of memory", tokenizer_json_path);
  } catch (const std::exception& e) {
    return InternalError("{}: {}", tokenizer_json_path, e.what());
  }
}

}  // namespace slimlm
