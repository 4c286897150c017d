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

// Rows of a group as blocks of `Block`, a zero block for padding rows.
template <typename Block>
Block RowBlock(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t r, int64_t b) {
  Block blk{};
  if (r < rows) {
    std::memcpy(&blk, w + static_cast<size_t>(r) * w_row_bytes + b * sizeof(Block), sizeof(blk));
  }
  return blk;
}

// Writes the 256-byte q4_0-style code record of 32 columns: code(i, c) for row i, column c.
template <typename CodeFn>
void PackNibbleCodes(uint8_t* rec, CodeFn code) {
  for (int64_t i = 0; i < kPackRows; ++i) {
    for (int p = 0; p < 4; ++p) {
      for (int j = 0; j < 4; ++j) {
        rec[p * 64 + i * 4 + j] = static_cast<uint8_t>((code(i, 4 * p + j) & 0x0f) |
                                                       ((code(i, 16 + 4 * p + j) & 0x0f) << 4));
      }
    }
  }
}

void PackQ4KGroup(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t g,
                  uint8_t* out) {
  const int64_t ns = cols / kQK_K;
  uint8_t* group = out + static_cast<size_t>(g * ns) * kQ4KRecord;
  for (int64_t s = 0; s < ns; ++s) {
    uint8_t* rec = group + static_cast<size_t>(s) * kQ4KRecord;
    BlockQ4_K blk[kPackRows];
    for (int64_t i = 0; i < kPackRows; ++i) {
      blk[i] = RowBlock<BlockQ4_K>(w, w_row_bytes, rows, g * kPackRows + i, s);
      uint16_t* d = reinterpret_cast<uint16_t*>(rec + kQ4KD);
      uint16_t* dmin = reinterpret_cast<uint16_t*>(rec + kQ4KDmin);
      d[i] = blk[i].d;
      dmin[i] = blk[i].dmin;
      for (int j = 0; j < 8; ++j) {
        Q4_KScaleMin(blk[i].scales, j, &rec[kQ4KScales + j * 16 + i], &rec[kQ4KMins + j * 16 + i]);
      }
    }
    for (int j = 0; j < 8; ++j) {
      PackNibbleCodes(rec + kQ4KCodes + j * 256, [&](int64_t i, int c) {
        return (blk[i].qs[32 * (j / 2) + c] >> (4 * (j % 2))) & 0x0f;
      });
    }
  }
}

// The 256 codes (0..63) of a q6_k block, decoded once so that packing reads them directly.
void Q6Codes(const BlockQ6_K& b, uint8_t* codes) {
  for (int e = 0; e < kQK_K; ++e) codes[e] = static_cast<uint8_t>(Q6_KCode(b, e));
}

void PackQ6KGroup(const uint8_t* w, size_t w_row_bytes, int64_t rows, int64_t cols, int64_t g,
                  uint8_t* out) {
  const int64_t ns = cols / kQK_K;
  uint8_t* group = out + static_cast<size_t>(g * ns) * kQ6KRecord;
  for (int64_t s = 0; s < ns; ++s) {
    uint8_t* rec = group + static_cast<size_t>(s) * kQ6KRecord;
    uint8_t codes[kPackRows][kQK_K];
    for (int64_t i = 0; i < kPackRows; ++i) {
      const BlockQ6_K blk = RowBlock<BlockQ6_K>(w, w_row_bytes, rows, g * kPackRows + i, s);
      Q6Codes(blk, codes[i]);
      for (int j = 0; j < 16; ++j) {
        rec[kQ6KScales + j * 16 + i] = static_cast<uint8_t>(blk.scales[j]);
      }
      reinterpret_cast<uint16_t*>(rec + kQ6KD)[i] = blk.d;
    }
    for (int b = 0; b < 8; ++b) {
      uint8_t* block = rec + kQ6KBlocks + b * kQ6KBlock;
      PackNibbleCodes(block, [&](int64_t i, int c) { return codes[i][32 * b + c]; });
      for (int64_t i = 0; i < kPackRows; ++i) {
        for (int p = 0; p < 4; ++p) {
          for (int j = 0; j < 4; ++j) {
            const int lo = codes[i][32 * b + 4 * p + j] >> 4;
            const int hi = codes[i][32 * b + 16 + 4 * p + j] >> 4;
            uint8_t& byte = block[256 + (p / 2) * 64 + i * 4 + j];
            if (p % 2 == 0) byte = 0;
            byte = static_cast<uint8_t>(byte | ((lo | (hi << 2)) << (4 * (p % 2))));
          }
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
    case DType::kQ4_K:
      return static_cast<size_t>(cols / kQK_K) * kQ4KRecord;
    case DType::kQ6_K:
      return static_cast<size_t>(cols / kQK_K) * kQ6KRecord;
    case DType::kF16NM:
      return 0;  // Multiplied in the file layout.
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
      case DType::kQ4_K:
        PackQ4KGroup(src, w_row_bytes, rows, cols, g, dst);
        break;
      case DType::kQ6_K:
        PackQ6KGroup(src, w_row_bytes, rows, cols, g, dst);
        break;
      case DType::kF16NM:
        return;  // No packed form (PackedBytes is 0).
    }
  }
}

}  // namespace slimlm::kernels::packed
