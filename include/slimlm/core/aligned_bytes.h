#pragma once

#include <cstddef>
#include <cstdint>

namespace slimlm {

// A fixed-size byte buffer, uninitialized, 64-byte aligned. From 2 MiB up it starts on a 2 MiB
// boundary and asks for transparent huge pages: buffers that kernels stream through every token
// (packed weights, the KV cache) then spare the TLB misses of 4 KiB pages, and the hardware
// prefetchers, which stop at page boundaries, run on. Move-only.
class AlignedBytes {
 public:
  AlignedBytes() = default;
  // Throws std::bad_alloc when the memory is not there.
  explicit AlignedBytes(size_t bytes);
  ~AlignedBytes();
  AlignedBytes(AlignedBytes&& other) noexcept;
  AlignedBytes& operator=(AlignedBytes&& other) noexcept;
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace slimlm
