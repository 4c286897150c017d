// Helpers for the formats tests: whole-file reads and writes, and a builder for hand-made binary
// files (little-endian), used to corrupt one field at a time.
#ifndef SLIMLM_TESTS_FORMATS_TEST_FILES_H_
#define SLIMLM_TESTS_FORMATS_TEST_FILES_H_

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace slimlm::testing_formats {

inline std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline void WriteText(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

class ByteBuilder {
 public:
  ByteBuilder& Bytes(std::string_view s) {
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  template <typename T>
  ByteBuilder& Pod(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
    return *this;
  }
  ByteBuilder& U8(uint8_t v) { return Pod(v); }
  ByteBuilder& U32(uint32_t v) { return Pod(v); }
  ByteBuilder& I32(int32_t v) { return Pod(v); }
  ByteBuilder& U64(uint64_t v) { return Pod(v); }
  ByteBuilder& F32(float v) { return Pod(v); }
  // A GGUF string: u64 length, bytes.
  ByteBuilder& Str(std::string_view s) { return U64(s.size()).Bytes(s); }
  ByteBuilder& PadTo(size_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace slimlm::testing_formats

#endif  // SLIMLM_TESTS_FORMATS_TEST_FILES_H_
