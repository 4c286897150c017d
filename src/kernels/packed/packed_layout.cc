#include "kernels/packed/packed_layout.h"

#include <cstring>

#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels::packed {
namespace {

// 4-bit code of element e (0..31) of a q4_0 block.
inline uint8_t Q4Code(const BlockQ4_0& b, int e) {
  return e < 16 ? (b.qs[e] & 0x0f) : (b.qs[e - 16] >> 4);
}

template <typename T>
void PackFloatGroup(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t g,
                    uint8_t* out) {
  T* dst = reinterpret_cast<T*>(out) + g * cols * kPackRows;
  for (int64_t i = 0; i < kPackRows; ++i) {
    const int64_t r = g * kPackRows + i;
    const T* src =
        r < rows ? reinterpret_cast<const T*>(w + static_cast<size_t>(r) * w_row_bytes) : nullptr;
    for (int64_t c = 0; c < cols; ++c) dst[c * kPackRows + i] = src ? src[c] : T{};
  }
}

void PackQ8Group(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t g,
                 Int8Form form, uint8_t* out) {
  const int64_t nb = cols / 32;
  uint8_t* group = out + static_cast<size_t>(g * nb) * kQ8Record;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* rec = group + static_cast<size_t>(b) * kQ8Record;
    uint16_t* scales = reinterpret_cast<uint16_t*>(rec + 512);
    for (int64_t i = 0; i < kPackRows; ++i) {
      const int64_t r = g * kPackRows + i;
      BlockQ8_0 blk{};
      if (r < rows) {
        std::memcpy(&blk, w + static_cast<size_t>(r) * w_row_bytes + b * sizeof(BlockQ8_0),
                    sizeof(blk));
      }
      scales[i] = blk.d;
      for (int q = 0; q < 8; ++q) {
        for (int j = 0; j < 4; ++j) {
          const int8_t v = blk.qs[4 * q + j];
          rec[q * 64 + i * 4 + j] =
              form == Int8Form::kOffset8 ? static_cast<uint8_t>(v + 128) : static_cast<uint8_t>(v);
        }
      }
    }
  }
}

void PackQ4Group(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t g,
                 uint8_t* out) {
  const int64_t nb = cols / 32;
  uint8_t* group = out + static_cast<size_t>(g * nb) * kQ4Record;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* rec = group + static_cast<size_t>(b) * kQ4Record;
    uint16_t* scales = reinterpret_cast<uint16_t*>(rec + 256);
    for (int64_t i = 0; i < kPackRows; ++i) {
      const int64_t r = g * kPackRows + i;
      BlockQ4_0 blk{};
      // A padding row has scale 0 and code 8 (value 0), like a zero row quantized.
      std::memset(blk.qs, 0x88, sizeof(blk.qs));
      if (r < rows) {
        std::memcpy(&blk, w + static_cast<size_t>(r) * w_row_bytes + b * sizeof(BlockQ4_0),
                    sizeof(blk));
      }
      scales[i] = blk.d;
      for (int p = 0; p < 4; ++p) {
        for (int j = 0; j < 4; ++j) {
          rec[p * 64 + i * 4 + j] =
              static_cast<uint8_t>(Q4Code(blk, 4 * p + j) | (Q4Code(blk, 16 + 4 * p + j) << 4));
        }
      }
    }
  }
}

}  // namespace

size_t GroupBytes(DType dtype, int64_t cols) {
  switch (dtype) {
    case DType::kF32:
      return static_cast<size_t>(cols * kPackRows) * 4;
    case DType::kF16:
    case DType::kBF16:
      return static_cast<size_t>(cols * kPackRows) * 2;
    case DType::kQ8_0:
      return static_cast<size_t>(cols / 32) * kQ8Record;
    case DType::kQ4_0:
      return static_cast<size_t>(cols / 32) * kQ4Record;
  }
  return 0;
}

size_t PackedBytes(DType dtype, int64_t rows, int64_t cols) {
  return static_cast<size_t>(Groups(rows)) * GroupBytes(dtype, cols);
}

void Pack(DType dtype, Int8Form form, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols,
          int64_t r0, int64_t r1, void* out) {
  const uint8_t* src = static_cast<const uint8_t*>(w);
  uint8_t* dst = static_cast<uint8_t*>(out);
  for (int64_t g = r0 / kPackRows; g < Groups(r1); ++g) {
    switch (dtype) {
      case DType::kF32:
        PackFloatGroup<uint32_t>(src, w_row_bytes, rows, cols, g, dst);
        break;
      case DType::kF16:
      case DType::kBF16:
        PackFloatGroup<uint16_t>(src, w_row_bytes, rows, cols, g, dst);
        break;
      case DType::kQ8_0:
        PackQ8Group(src, w_row_bytes, rows, cols, g, form, dst);
        break;
      case DType::kQ4_0:
        PackQ4Group(src, w_row_bytes, rows, cols, g, dst);
        break;
    }
  }
}

}  // namespace slimlm::kernels::packed
