#include "model/tokenizer_base.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "slimlm/core/log.h"

namespace slimlm {
namespace {

// Texts of tokens that end a turn in the chat formats we know, beyond the declared EOS/EOT.
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<|return|>", "</s>",    "<EOT>",         "<｜end▁of▁sentence｜>",
};

// Longer plain-text fragments are encoded in pieces so that every offset fits 32 bits.
constexpr size_t kMaxFragment = size_t{1} << 30;

// "<0xNN>" -> NN.
bool ParseByteToken(std::string_view text, uint8_t* value) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return false;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(text[3]), lo = hex(text[4]);
  if (hi < 0 || lo < 0) return false;
  *value = static_cast<uint8_t>(hi * 16 + lo);
  return true;
}

bool IsSpecialType(TokenType type) {
  return type == TokenType::kControl || type == TokenType::kUnknown;
}

Status ReadTokenId(const Metadata& md, const char* key, int32_t n_vocab, bool required_in_range,
                   int32_t* out) {
  const MetaValue* value = md.Find(key);
  if (value == nullptr) return Status::Ok();
  std::optional<int64_t> id = value->AsInt();
  if (!id) return CorruptError("{} is not an integer", key);
  // Some converters write -1 (or its u32 image) for "none".
  if (*id == -1 || *id == 0xFFFFFFFFll) return Status::Ok();
  if (*id < 0 || *id >= n_vocab) {
    if (required_in_range) {
      return CorruptError("{} = {} is outside the vocabulary of {} tokens", key, *id, n_vocab);
    }
    SLIMLM_LOG(kWarning, "ignoring {} = {}: outside the vocabulary of {} tokens", key, *id,
               n_vocab);
    return Status::Ok();
  }
  *out = static_cast<int32_t>(*id);
  return Status::Ok();
}

Status ReadScoresAndTypes(const Metadata& md, VocabData* v) {
  const size_t n = v->tokens.size();
  v->scores.assign(n, 0.0f);
  v->types.assign(n, TokenType::kNormal);
  if (const MetaValue* value = md.Find("tokenizer.ggml.scores")) {
    std::optional<std::vector<float>> scores = value->AsFloatArray();
    if (!scores) return CorruptError("tokenizer.ggml.scores is not a numeric array");
    if (scores->size() != n) {
      return CorruptError("tokenizer.ggml.scores has {} entries for {} tokens", scores->size(), n);
    }
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite((*scores)[i])) {
        return CorruptError("tokenizer.ggml.scores: score of token {} is {}", i, (*scores)[i]);
      }
    }
    v->scores = std::move(*scores);
  }
  if (const MetaValue* value = md.Find("tokenizer.ggml.token_type")) {
    std::optional<std::vector<int64_t>> types = value->AsIntArray();
    if (!types) return CorruptError("tokenizer.ggml.token_type is not an integer array");
    if (types->size() != n) {
      return CorruptError("tokenizer.ggml.token_type has {} entries for {} tokens", types->size(),
                          n);
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = (*types)[i];
      if (t < 0 || t > 6)
        return CorruptError("tokenizer.ggml.token_type: token {} has type {}", i, t);
      v->types[i] = static_cast<TokenType>(t);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<VocabData> ReadVocabData(const Metadata& md) {
  VocabData v;
  std::optional<std::string> model = md.GetString("tokenizer.ggml.model");
  if (!model) return NotFoundError("tokenizer.ggml.model is missing");
  v.model = *model;
  const MetaValue* tokens = md.Find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->AsStringArray() == nullptr) {
    return NotFoundError("tokenizer.ggml.tokens is missing or not a string array");
  }
  v.tokens = *tokens->AsStringArray();
  if (v.tokens.empty()) return CorruptError("tokenizer.ggml.tokens is empty");
  if (v.tokens.size() >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return UnsupportedError("tokenizer.ggml.tokens has {} tokens", v.tokens.size());
  }
  SLIMLM_RETURN_IF_ERROR(ReadScoresAndTypes(md, &v));
  if (const MetaValue* merges = md.Find("tokenizer.ggml.merges")) {
    if (merges->AsStringArray() == nullptr) {
      return CorruptError("tokenizer.ggml.merges is not a string array");
    }
    v.merges = *merges->AsStringArray();
  }
  v.pre = md.GetString("tokenizer.ggml.pre").value_or("");
  const auto n = static_cast<int32_t>(v.tokens.size());
  SLIMLM_RETURN_IF_ERROR(ReadTokenId(md, "tokenizer.ggml.bos_token_id", n, true, &v.bos));
  SLIMLM_RETURN_IF_ERROR(ReadTokenId(md, "tokenizer.ggml.eos_token_id", n, true, &v.eos));
  SLIMLM_RETURN_IF_ERROR(ReadTokenId(md, "tokenizer.ggml.unknown_token_id", n, true, &v.unk));
  SLIMLM_RETURN_IF_ERROR(ReadTokenId(md, "tokenizer.ggml.padding_token_id", n, false, &v.pad));
  SLIMLM_RETURN_IF_ERROR(ReadTokenId(md, "tokenizer.ggml.eot_token_id", n, false, &v.eot));
  SLIMLM_RETURN_IF_ERROR(ReadTokenId(md, "tokenizer.ggml.eom_token_id", n, false, &v.eom));
  // llama.cpp's defaults when the keys are absent: SentencePiece vocabularies add BOS and the
  // dummy prefix, byte-level ones neither.
  const bool spm = v.model == "llama";
  v.add_bos = md.GetBool("tokenizer.ggml.add_bos_token").value_or(spm);
  v.add_eos = md.GetBool("tokenizer.ggml.add_eos_token").value_or(false);
  v.add_space_prefix = md.GetBool("tokenizer.ggml.add_space_prefix").value_or(spm);
  return v;
}

TokenizerBase::TokenizerBase(VocabData vocab) : vocab_(std::move(vocab)) {
  index_.Build(&vocab_.tokens, [](size_t) { return true; });
  for (int b = 0; b < 256; ++b) {
    byte_tokens_[b] = index_.Find(fmt::format("<0x{:02X}>", b));
  }
  const size_t n = vocab_.tokens.size();
  end_of_generation_.assign(n, 0);
  for (int32_t id : {vocab_.eos, vocab_.eot, vocab_.eom}) {
    if (id >= 0) end_of_generation_[id] = 1;
  }
  for (std::string_view text : kEndOfGenerationTexts) {
    const int32_t id = index_.Find(text);
    if (id >= 0 &&
        (vocab_.types[id] == TokenType::kControl || vocab_.types[id] == TokenType::kUserDefined)) {
      end_of_generation_[id] = 1;
    }
  }
  BuildSpecialMatcher();
}

void TokenizerBase::BuildSpecialMatcher() {
  for (size_t id = 0; id < vocab_.tokens.size(); ++id) {
    const TokenType type = vocab_.types[id];
    const std::string& text = vocab_.tokens[id];
    if (text.empty() || !(IsSpecialType(type) || type == TokenType::kUserDefined)) continue;
    specials_by_byte_[static_cast<uint8_t>(text[0])].push_back(static_cast<int32_t>(id));
  }
  for (auto& ids : specials_by_byte_) {
    std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
      return vocab_.tokens[a].size() > vocab_.tokens[b].size();
    });
  }
}

void TokenizerBase::InitPieces() {
  const size_t n = vocab_.tokens.size();
  pieces_.resize(n);
  for (size_t id = 0; id < n; ++id) {
    const std::string& text = vocab_.tokens[id];
    switch (vocab_.types[id]) {
      case TokenType::kControl:
      case TokenType::kUnknown:
        break;  // Rendered only on request, from the text itself.
      case TokenType::kUserDefined:
        pieces_[id] = text;
        break;
      case TokenType::kByte: {
        uint8_t value = 0;
        if (ParseByteToken(text, &value)) {
          pieces_[id] = std::string(1, static_cast<char>(value));
        } else {
          pieces_[id] = NormalPiece(text);
        }
        break;
      }
      default:
        pieces_[id] = NormalPiece(text);
        break;
    }
  }
}

void TokenizerBase::SplitSpecial(std::string_view text, bool parse_special,
                                 std::vector<Fragment>* out) const {
  size_t start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    int32_t match = -1;
    for (int32_t id : specials_by_byte_[static_cast<uint8_t>(text[pos])]) {
      if (!parse_special && vocab_.types[id] != TokenType::kUserDefined) continue;
      const std::string& token = vocab_.tokens[id];
      if (token.size() <= text.size() - pos &&
          std::memcmp(token.data(), text.data() + pos, token.size()) == 0) {
        match = id;
        break;
      }
    }
    if (match < 0) {
      ++pos;
      continue;
    }
    if (pos > start) out->push_back(Fragment{-1, text.substr(start, pos - start)});
    out->push_back(Fragment{match, {}});
    pos += vocab_.tokens[match].size();
    start = pos;
  }
  if (start < text.size()) out->push_back(Fragment{-1, text.substr(start)});
}

std::vector<int32_t> TokenizerBase::Encode(std::string_view text, bool add_special,
                                           bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  std::vector<Fragment> fragments;
  SplitSpecial(text, parse_special, &fragments);
  std::unique_ptr<Scratch> scratch = MakeScratch();
  bool after_special = true;
  for (const Fragment& fragment : fragments) {
    if (fragment.token >= 0) {
      out.push_back(fragment.token);
      after_special = true;
      continue;
    }
    std::string_view rest = fragment.text;
    while (!rest.empty()) {
      // Cut beyond 1 GiB after a newline (or at least between characters); no real text has a
      // gigabyte without one, and the cut keeps every index within 32 bits.
      size_t cut = rest.size();
      if (cut > kMaxFragment) {
        cut = rest.rfind('\n', kMaxFragment);
        cut = cut == std::string_view::npos ? kMaxFragment : cut + 1;
        while (cut > 1 && (static_cast<uint8_t>(rest[cut]) & 0xC0) == 0x80) --cut;
      }
      EncodeRaw(rest.substr(0, cut), after_special, scratch.get(), &out);
      after_special = false;
      rest.remove_prefix(cut);
    }
  }
  if (add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string TokenizerBase::TokenToPiece(int32_t id, bool render_special) const {
  if (id < 0 || id >= vocab_size()) return "";
  if (render_special && IsSpecialType(vocab_.types[id])) return vocab_.tokens[id];
  return pieces_[id];
}

std::string TokenizerBase::Decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  bool strip = StripsLeadingSpace();
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const TokenType type = vocab_.types[id];
    if (render_special && IsSpecialType(type)) {
      out += vocab_.tokens[id];
      continue;
    }
    const std::string& piece = pieces_[id];
    // SentencePiece removes the dummy prefix from the first word, after any BOS.
    if (strip && type != TokenType::kControl) {
      strip = false;
      if (type == TokenType::kNormal && !piece.empty() && piece[0] == ' ') {
        out.append(piece, 1);
        continue;
      }
    }
    out += piece;
  }
  return out;
}

const std::string& TokenizerBase::TokenText(int32_t id) const {
  static const std::string kEmpty;
  if (id < 0 || id >= vocab_size()) return kEmpty;
  return vocab_.tokens[id];
}

TokenType TokenizerBase::token_type(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return TokenType::kUndefined;
  return vocab_.types[id];
}

int32_t TokenizerBase::FindToken(std::string_view text) const { return index_.Find(text); }

bool TokenizerBase::IsEndOfGeneration(int32_t id) const {
  return id >= 0 && id < vocab_size() && end_of_generation_[id] != 0;
}

bool TokenizerBase::IsControl(int32_t id) const { return token_type(id) == TokenType::kControl; }

}  // namespace slimlm
