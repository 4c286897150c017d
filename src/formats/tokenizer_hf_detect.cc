// Which tokenizer a tokenizer.json describes, from its pre_tokenizer and normalizer.
#include <string>

#include "formats/tokenizer_internal.h"

namespace slimlm::hf {
namespace {

bool IsType(const Json* node, std::string_view type) {
  return node != nullptr && StringMember(*node, "type") == type;
}

bool BoolMember(const Json& node, const char* key, bool fallback) {
  const Json* value = Member(node, key);
  return value != nullptr && value->is_boolean() ? value->get<bool>() : fallback;
}

// A short description of a JSON node for messages: its type and, for a Split, its pattern.
// Nested sequences are cut off after a few levels (a hostile file could nest them deeply).
std::string Describe(const Json* node, int depth = 0) {
  if (node == nullptr) return "none";
  std::string type = StringMember(*node, "type");
  if (type == "Sequence") {
    if (depth >= 3) return "Sequence[...]";
    std::string out = "Sequence[";
    if (const Json* items = Member(*node, "pretokenizers"); items && items->is_array()) {
      for (size_t i = 0; i < items->size(); ++i) {
        out += (i ? ", " : "") + Describe(&(*items)[i], depth + 1);
      }
    }
    return out + "]";
  }
  if (type == "Split") {
    if (const Json* pattern = Member(*node, "pattern")) {
      std::string regex = StringMember(*pattern, "Regex");
      if (regex.empty()) regex = StringMember(*pattern, "String");
      return "Split(" + regex + ")";
    }
  }
  return type.empty() ? std::string("(no type)") : type;
}

// ByteLevel without add_prefix_space (which no supported vocabulary uses).
bool IsPlainByteLevel(const Json* node, bool use_regex) {
  return IsType(node, "ByteLevel") && !BoolMember(*node, "add_prefix_space", false) &&
         BoolMember(*node, "use_regex", true) == use_regex;
}

// Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)] (Llama 3, Qwen2) or
// Sequence[Digits(individual), ByteLevel(use_regex=true)] (SmolLM): the pre name, "" otherwise.
std::string PreOfSequence(const Json& node) {
  const Json* items = Member(node, "pretokenizers");
  if (items == nullptr || !items->is_array() || items->size() != 2) return "";
  const Json& first = (*items)[0];
  const Json& second = (*items)[1];
  if (IsType(&first, "Digits") && BoolMember(first, "individual_digits", false) &&
      IsPlainByteLevel(&second, /*use_regex=*/true)) {
    return "smollm";
  }
  if (!IsType(&first, "Split") || !IsPlainByteLevel(&second, /*use_regex=*/false)) return "";
  if (StringMember(first, "behavior") != "Isolated" || BoolMember(first, "invert", false)) {
    return "";
  }
  const Json* pattern = Member(first, "pattern");
  const std::string regex = pattern ? StringMember(*pattern, "Regex") : "";
  if (regex == kLlama3Regex) return "llama-bpe";
  if (regex == kQwen2Regex) return "qwen2";
  return "";
}

// Normalizer of SentencePiece-style BPE: Replace(" ", "▁"), optionally after Prepend("▁").
// Returns false for anything else; *prepend tells whether Prepend was there.
bool IsSpmNormalizer(const Json* node, bool* prepend) {
  if (node == nullptr) return false;
  std::vector<const Json*> steps;
  if (IsType(node, "Sequence")) {
    const Json* items = Member(*node, "normalizers");
    if (items == nullptr || !items->is_array()) return false;
    for (const Json& item : *items) steps.push_back(&item);
  } else {
    steps.push_back(node);
  }
  bool replace = false;
  *prepend = false;
  for (const Json* step : steps) {
    if (IsType(step, "Prepend") && StringMember(*step, "prepend") == kSpmSpace) {
      *prepend = true;
    } else if (IsType(step, "Replace") && StringMember(*step, "content") == kSpmSpace &&
               Member(*step, "pattern") != nullptr &&
               StringMember(*Member(*step, "pattern"), "String") == " ") {
      replace = true;
    } else {
      return false;
    }
  }
  return replace;
}

}  // namespace

const Json* Member(const Json& node, const char* key) {
  if (!node.is_object()) return nullptr;
  auto it = node.find(key);
  if (it == node.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string StringMember(const Json& node, const char* key) {
  const Json* value = Member(node, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

Result<TextProcessing> DetectTextProcessing(const Json& root, const std::string& path) {
  const Json* pre = Member(root, "pre_tokenizer");
  const Json* normalizer = Member(root, "normalizer");
  TextProcessing out;
  if (IsPlainByteLevel(pre, /*use_regex=*/true)) {
    out.byte_level = true;
    out.pre = "gpt-2";
  } else if (IsType(pre, "Sequence")) {
    out.byte_level = true;
    out.pre = PreOfSequence(*pre);
    if (out.pre.empty()) {
      return UnsupportedError("{}: unsupported pre-tokenizer {}", path, Describe(pre));
    }
  } else if (IsType(pre, "Metaspace")) {
    // Newer HF Llama/Mistral files: Metaspace replaces spaces and prepends "▁" unless its
    // prepend_scheme is "never" (older files say add_prefix_space instead).
    if (normalizer != nullptr) {
      return UnsupportedError("{}: unsupported normalizer {} with Metaspace", path,
                              Describe(normalizer));
    }
    const std::string scheme = StringMember(*pre, "prepend_scheme");
    out.add_space_prefix =
        scheme.empty() ? BoolMember(*pre, "add_prefix_space", true) : scheme != "never";
    out.pre = "default";
    return out;
  } else if (pre == nullptr && IsSpmNormalizer(normalizer, &out.add_space_prefix)) {
    out.pre = "default";
    return out;
  } else {
    return UnsupportedError("{}: unsupported pre-tokenizer {}", path, Describe(pre));
  }
  // Byte-level vocabularies: Qwen2 normalizes to NFC, the others not at all.
  const bool nfc = IsType(normalizer, "NFC");
  if ((normalizer != nullptr && !nfc) || (nfc && out.pre != "qwen2")) {
    return UnsupportedError("{}: unsupported normalizer {} with pre-tokenizer {}", path,
                            Describe(normalizer), out.pre);
  }
  return out;
}

}  // namespace slimlm::hf
