// ReadTokenizerFile: chooses the reader from the file's content, not its name. Kept alone in
// this file because it is the only tokenizer code that needs the GGUF reader.
#include <cstring>
#include <filesystem>

#include "formats/tokenizer_internal.h"
#include "slimlm/core/file.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/formats/tokenizer_files.h"

namespace slimlm {

Status ReadTokenizerFile(const std::string& path, int n_vocab, Metadata* out) {
  // A Hugging Face model folder: its tokenizer.json.
  if (IsDirectory(path)) {
    const std::string json = (std::filesystem::path(path) / "tokenizer.json").string();
    if (!IsRegularFile(json)) return NotFoundError("{}: no tokenizer.json in this folder", path);
    return ReadHfTokenizer(json, out);
  }
  // The map costs nothing even for a multi-gigabyte GGUF model; only the first bytes are read.
  SLIMLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const std::span<const uint8_t> bytes = file.bytes();
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) {
    SLIMLM_ASSIGN_OR_RETURN(Metadata metadata, ReadGgufMetadata(path));
    Metadata tokenizer;
    for (const auto& [key, value] : metadata.entries()) {
      if (key.rfind("tokenizer.", 0) == 0) tokenizer.Set(key, value);
    }
    if (tokenizer.size() == 0) return NotFoundError("{}: this GGUF file has no tokenizer", path);
    ReplaceTokenizerKeys(tokenizer, out);
    return Status::Ok();
  }
  // JSON starts with '{' after optional whitespace and a UTF-8 byte order mark.
  size_t pos = 0;
  if (bytes.size() >= 3 && std::memcmp(bytes.data(), "\xEF\xBB\xBF", 3) == 0) pos = 3;
  while (pos < bytes.size() &&
         (bytes[pos] == ' ' || bytes[pos] == '\t' || bytes[pos] == '\n' || bytes[pos] == '\r')) {
    ++pos;
  }
  if (pos < bytes.size() && bytes[pos] == '{') return ReadHfTokenizer(path, out);
  return ReadLlama2cTokenizer(path, n_vocab, out);
}

}  // namespace slimlm
