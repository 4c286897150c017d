// A bounds-checked little-endian cursor over a file's bytes, shared by the binary readers
// (GGUF, llama2.c, safetensors). Every read checks the remaining length first, so a truncated or
// corrupt file yields a Status instead of a read past the end.
#ifndef SLIMLM_SRC_FORMATS_BYTE_READER_H_
#define SLIMLM_SRC_FORMATS_BYTE_READER_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "slimlm/core/status.h"

namespace slimlm::formats_internal {

static_assert(std::endian::native == std::endian::little,
              "the binary formats are little-endian; a big-endian host needs byte swaps");

class ByteReader {
 public:
  // `path` names the file in error messages.
  ByteReader(std::span<const uint8_t> bytes, std::string_view path) : bytes_(bytes), path_(path) {}

  uint64_t offset() const { return offset_; }
  uint64_t size() const { return bytes_.size(); }
  uint64_t remaining() const { return bytes_.size() - offset_; }
  const uint8_t* current() const { return bytes_.data() + offset_; }
  const std::string& path() const { return path_; }

  // What is being read, for error messages ("metadata key 'general.name'").
  void set_context(std::string context) { context_ = std::move(context); }

  // Fails with "<path>: truncated: <context> needs N bytes at byte O, file has S bytes".
  Status Need(uint64_t n) const {
    if (n <= remaining()) return Status::Ok();
    return CorruptError("{}: truncated: {} needs {} bytes at byte {}, file has {} bytes", path_,
                        context_, n, offset_, size());
  }

  Status Read(void* out, uint64_t n) {
    SLIMLM_RETURN_IF_ERROR(Need(n));
    if (n > 0) std::memcpy(out, current(), n);
    offset_ += n;
    return Status::Ok();
  }

  template <typename T>
  Status ReadPod(T* out) {
    static_assert(std::is_trivially_copyable_v<T>);
    return Read(out, sizeof(T));
  }

  Status Skip(uint64_t n) {
    SLIMLM_RETURN_IF_ERROR(Need(n));
    offset_ += n;
    return Status::Ok();
  }

  // A u64 length followed by that many bytes (GGUF's string encoding).
  Status ReadString(std::string* out) {
    uint64_t length = 0;
    SLIMLM_RETURN_IF_ERROR(ReadPod(&length));
    SLIMLM_RETURN_IF_ERROR(Need(length));
    out->assign(reinterpret_cast<const char*>(current()), static_cast<size_t>(length));
    offset_ += length;
    return Status::Ok();
  }

 private:
  std::span<const uint8_t> bytes_;
  std::string path_;
  std::string context_ = "header";
  uint64_t offset_ = 0;
};

// Overflow-checked arithmetic on sizes from files: false when the result does not fit.
inline bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool CheckedAdd(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

// A name from a file made safe for a one-line message: control and non-ASCII bytes become '?',
// and long names are cut, since a corrupt file can hold anything where a name should be.
inline std::string Printable(std::string_view text, size_t max_length = 80) {
  std::string out;
  for (char c : text.substr(0, max_length)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (text.size() > max_length) out += "...";
  return out;
}

// Whether `p` may be read as elements of `alignment` bytes without a misaligned access.
inline bool IsAligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

}  // namespace slimlm::formats_internal

#endif  // SLIMLM_SRC_FORMATS_BYTE_READER_H_
