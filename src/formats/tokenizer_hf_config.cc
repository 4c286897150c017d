// BOS/EOS, add_bos/add_eos and the chat template: from tokenizer_config.json beside
// tokenizer.json when present, else from tokenizer.json's post-processor.
#include <filesystem>
#include <string>

#include "formats/tokenizer_internal.h"
#include "slimlm/core/file.h"

namespace slimlm::hf {
namespace {

// A token in tokenizer_config.json is a string or an AddedToken object {"content": ...}.
std::string TokenName(const Json& config, const char* key) {
  const Json* value = Member(config, key);
  if (value == nullptr) return "";
  if (value->is_string()) return value->get<std::string>();
  return StringMember(*value, "content");
}

// TemplateProcessing's "single" template: special tokens before the sequence are BOS, after it
// EOS. Looks inside a Sequence of post-processors too (Llama 3), though not deeply nested ones.
void ReadTemplate(const Json* node, SpecialTokenNames* names, int depth = 0) {
  if (node == nullptr) return;
  if (StringMember(*node, "type") == "Sequence") {
    if (const Json* items = Member(*node, "processors"); items && items->is_array() && depth < 3) {
      for (const Json& item : *items) ReadTemplate(&item, names, depth + 1);
    }
    return;
  }
  if (StringMember(*node, "type") != "TemplateProcessing") return;
  const Json* single = Member(*node, "single");
  if (single == nullptr || !single->is_array()) return;
  bool seen_sequence = false;
  bool bos = false, eos = false;
  for (const Json& item : *single) {
    if (Member(item, "Sequence") != nullptr) {
      seen_sequence = true;
    } else if (const Json* special = Member(item, "SpecialToken")) {
      const std::string id = StringMember(*special, "id");
      if (!seen_sequence && !bos) {
        names->bos = id;
        bos = true;
      } else if (seen_sequence && !eos) {
        names->eos = id;
        eos = true;
      }
    }
  }
  names->add_bos = bos;
  names->add_eos = eos;
}

// chat_template is a string, or a list of {"name", "template"} (the "default" one is used).
std::string ChatTemplate(const Json& config) {
  const Json* value = Member(config, "chat_template");
  if (value == nullptr) return "";
  if (value->is_string()) return value->get<std::string>();
  if (!value->is_array()) return "";
  std::string first;
  for (const Json& item : *value) {
    const std::string name = StringMember(item, "name");
    const std::string text = StringMember(item, "template");
    if (name == "default") return text;
    if (first.empty()) first = text;
  }
  return first;
}

}  // namespace

Status ReadSpecialTokenNames(const Json& root, const std::string& tokenizer_json_path,
                             SpecialTokenNames* names) {
  ReadTemplate(Member(root, "post_processor"), names);
  const std::string config_path =
      (std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json").string();
  if (!IsRegularFile(config_path)) return Status::Ok();
  SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path));
  Json config = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return CorruptError("{}: not a JSON object", config_path);
  }
  // The config overrides the post-processor where it speaks.
  for (auto [key, field] :
       {std::pair{"bos_token", &names->bos}, std::pair{"eos_token", &names->eos},
        std::pair{"unk_token", &names->unk}, std::pair{"pad_token", &names->pad}}) {
    // null means "none" and overrides the post-processor too.
    if (config.contains(key)) *field = TokenName(config, key);
  }
  for (auto [key, field] :
       {std::pair{"add_bos_token", &names->add_bos}, std::pair{"add_eos_token", &names->add_eos}}) {
    if (const Json* value = Member(config, key); value && value->is_boolean()) {
      *field = value->get<bool>();
    }
  }
  names->chat_template = ChatTemplate(config);
  return Status::Ok();
}

}  // namespace slimlm::hf
