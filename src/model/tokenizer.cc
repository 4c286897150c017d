// Tokenizer::FromMetadata and StreamingDecoder; the algorithms live in tokenizer_spm.cc and
// tokenizer_bpe.cc, what they share in tokenizer_base.cc.
#include "slimlm/model/tokenizer.h"

#include "model/tokenizer_base.h"

namespace slimlm {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// How many bytes at s[0, avail) begin a well-formed UTF-8 sequence (0 when s[0] cannot start
// one), and in *need the length of the whole sequence. The bounds on the second byte follow the
// standard's table of well-formed sequences (no overlongs, surrogates or values past U+10FFFF).
size_t WellFormedPrefix(const uint8_t* s, size_t avail, size_t* need) {
  const uint8_t b0 = s[0];
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    *need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    *need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    *need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *need = 1;
    return 0;
  }
  size_t k = 1;
  while (k < *need && k < avail) {
    const uint8_t c = s[k];
    if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) break;
    ++k;
  }
  return k;
}

// Moves the complete characters at the front of *pending to the result; invalid bytes become
// U+FFFD, one per maximal invalid subpart. An unfinished character at the end stays in *pending
// unless flush.
std::string TakeComplete(std::string* pending, bool flush) {
  std::string out;
  const auto* s = reinterpret_cast<const uint8_t*>(pending->data());
  const size_t size = pending->size();
  size_t pos = 0;
  while (pos < size) {
    if (s[pos] < 0x80) {
      out.push_back(static_cast<char>(s[pos++]));
      continue;
    }
    size_t need;
    const size_t valid = WellFormedPrefix(s + pos, size - pos, &need);
    if (valid == need) {
      out.append(pending->data() + pos, need);
      pos += need;
    } else if (valid > 0 && pos + valid == size && !flush) {
      break;  // The rest of this character may come with the next token.
    } else {
      out += kReplacement;
      pos += valid > 0 ? valid : 1;
    }
  }
  pending->erase(0, pos);
  return out;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromMetadata(const Metadata& metadata) {
  SLIMLM_ASSIGN_OR_RETURN(VocabData vocab, ReadVocabData(metadata));
  if (vocab.model == "llama") return MakeSpmTokenizer(std::move(vocab));
  if (vocab.model == "gpt2") return MakeBpeTokenizer(std::move(vocab));
  return UnsupportedError(
      "unsupported tokenizer model '{}' (tokenizer.ggml.model; supported: llama, gpt2)",
      vocab.model);
}

std::string StreamingDecoder::Add(int32_t id) {
  if (first_ && !tokenizer_.IsControl(id)) {
    // Decode of a sequence's first word drops SentencePiece's dummy-prefix space.
    first_ = false;
    pending_ += tokenizer_.Decode(std::span<const int32_t>(&id, 1));
  } else {
    pending_ += tokenizer_.TokenToPiece(id);
  }
  return TakeComplete(&pending_, /*flush=*/false);
}

std::string StreamingDecoder::Flush() { return TakeComplete(&pending_, /*flush=*/true); }

}  // namespace slimlm
