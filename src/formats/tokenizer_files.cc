// Placeholder until the tokenizer file readers land.
#include "slimlm/formats/tokenizer_files.h"

namespace slimlm {

Status ReadLlama2cTokenizer(const std::string& path, int, Metadata*) {
  return UnsupportedError("{}: llama2.c tokenizers are not readable yet", path);
}
Status ReadHfTokenizer(const std::string& path, Metadata*) {
  return UnsupportedError("{}: tokenizer.json is not readable yet", path);
}
Status ReadTokenizerFile(const std::string& path, int, Metadata*) {
  return UnsupportedError("{}: tokenizer files are not readable yet", path);
}
Status WriteHfTokenizer(const Metadata&, const std::string& dir) {
  return UnsupportedError("{}: tokenizer.json cannot be written yet", dir);
}

}  // namespace slimlm
