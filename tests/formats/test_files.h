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

#include <gtest/gtest.h>

#include "slimlm/formats/metadata.h"

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

// The GGUF keys every reader must produce for stories260K (SOURCES.md gives the header).
inline void ExpectStories260KConfig(const Metadata& m) {
  EXPECT_EQ(m.GetString("general.architecture"), "llama");
  EXPECT_EQ(m.GetInt("llama.context_length"), 512);
  EXPECT_EQ(m.GetInt("llama.embedding_length"), 64);
  EXPECT_EQ(m.GetInt("llama.feed_forward_length"), 172);
  EXPECT_EQ(m.GetInt("llama.block_count"), 5);
  EXPECT_EQ(m.GetInt("llama.attention.head_count"), 8);
  EXPECT_EQ(m.GetInt("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(m.GetInt("llama.rope.dimension_count"), 8);
  EXPECT_EQ(m.GetInt("llama.vocab_size"), 512);
  EXPECT_FLOAT_EQ(*m.GetDouble("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
}

}  // namespace slimlm::testing_formats

#endif  // SLIMLM_TESTS_FORMATS_TEST_FILES_H_
