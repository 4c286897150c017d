#include <string>
#include <vector>

#include "formats/tokenizer_internal.h"

namespace slimlm {

void ReplaceTokenizerKeys(const Metadata& converted, Metadata* out) {
  std::vector<std::string> stale;
  for (const auto& [key, value] : out->entries()) {
    if (key.rfind("tokenizer.", 0) == 0 && !converted.Has(key)) stale.push_back(key);
  }
  for (const std::string& key : stale) out->Erase(key);
  for (const auto& [key, value] : converted.entries()) out->Set(key, value);
}

}  // namespace slimlm
