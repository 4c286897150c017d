// llama2.c tokenizer.bin -> GGUF tokenizer keys.
//
// Layout (little-endian): i32 max_token_length, then per token f32 score, i32 length, `length`
// bytes. The file does not say how many tokens it holds; the model's vocab_size does.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "formats/tokenizer_internal.h"
#include "slimlm/core/file.h"
#include "slimlm/formats/tokenizer_files.h"

namespace slimlm {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581 "▁"

// llama2.c's token types follow from the text alone: ids 0-2 are <unk>, <s>, </s> (spelled
// "\n<s>\n" and "\n</s>\n" by llama2.c's exporter), and <0xNN> are byte-fallback tokens.
bool IsByteToken(std::string_view text) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return text.size() == 6 && text.substr(0, 3) == "<0x" && hex(text[3]) && hex(text[4]) &&
         text[5] == '>';
}

std::string ToGgufSpelling(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == ' ') {
      out += kSpace;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// A token's GGUF text and type.
std::pair<std::string, int32_t> ToGguf(size_t id, std::string_view text) {
  if (id == 0) return {"<unk>", 2};
  if (id == 1) return {"<s>", 3};
  if (id == 2) return {"</s>", 3};
  if (IsByteToken(text)) return {std::string(text), 6};
  return {ToGgufSpelling(text), 1};
}

}  // namespace

Status ReadLlama2cTokenizer(const std::string& path, int n_vocab, Metadata* out) {
  if (n_vocab < 0) return InvalidArgumentError("{}: negative vocabulary size {}", path, n_vocab);
  SLIMLM_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  size_t pos = 0;
  auto read_i32 = [&](int32_t* value) {
    if (bytes.size() - pos < 4) return false;
    std::memcpy(value, bytes.data() + pos, 4);
    pos += 4;
    return true;
  };
  int32_t max_token_length = 0;
  if (!read_i32(&max_token_length)) {
    return CorruptError("{}: truncated: {} bytes, too short for a llama2.c tokenizer header", path,
                        bytes.size());
  }
  if (max_token_length <= 0) {
    return CorruptError("{}: bad max_token_length {} (not a llama2.c tokenizer?)", path,
                        max_token_length);
  }
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
  const size_t expected = static_cast<size_t>(n_vocab);
  while (n_vocab == 0 ? pos < bytes.size() : tokens.size() < expected) {
    const size_t id = tokens.size();
    float score;
    int32_t length;
    if (bytes.size() - pos < 8) {
      return CorruptError("{}: truncated: token {} header at byte {} ends past the file's {} bytes",
                          path, id, pos, bytes.size());
    }
    std::memcpy(&score, bytes.data() + pos, 4);
    std::memcpy(&length, bytes.data() + pos + 4, 4);
    pos += 8;
    if (!std::isfinite(score)) return CorruptError("{}: token {} has score {}", path, id, score);
    if (length < 0 || length > max_token_length) {
      return CorruptError("{}: token {} has length {} (max_token_length is {})", path, id, length,
                          max_token_length);
    }
    if (bytes.size() - pos < static_cast<size_t>(length)) {
      return CorruptError("{}: truncated: token {} ends at byte {}, file has {} bytes", path, id,
                          pos + length, bytes.size());
    }
    std::string_view text(bytes.data() + pos, static_cast<size_t>(length));
    pos += static_cast<size_t>(length);
    auto [gguf, type] = ToGguf(id, text);
    tokens.push_back(std::move(gguf));
    scores.push_back(score);
    types.push_back(type);
  }
  if (pos != bytes.size()) {
    return CorruptError("{}: {} bytes left after the {} tokens the model expects", path,
                        bytes.size() - pos, n_vocab);
  }
  if (tokens.size() < 3) {
    return CorruptError("{}: only {} tokens; llama2.c vocabularies start with <unk>, <s>, </s>",
                        path, tokens.size());
  }
  Metadata md;
  md.Set("tokenizer.ggml.model", MetaValue::String("llama"));
  md.Set("tokenizer.ggml.pre", MetaValue::String("default"));
  md.Set("tokenizer.ggml.tokens", MetaValue::StringArray(std::move(tokens)));
  md.Set("tokenizer.ggml.scores", MetaValue::F32Array(std::move(scores)));
  md.Set("tokenizer.ggml.token_type", MetaValue::I32Array(std::move(types)));
  md.Set("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
  md.Set("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
  md.Set("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));
  md.Set("tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
  md.Set("tokenizer.ggml.add_eos_token", MetaValue::Bool(false));
  md.Set("tokenizer.ggml.add_space_prefix", MetaValue::Bool(true));
  ReplaceTokenizerKeys(md, out);
  return Status::Ok();
}

}  // namespace slimlm
