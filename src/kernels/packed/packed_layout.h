// Packed weight layouts shared by the SIMD paths (x86 AVX2 / AVX-512, ARM NEON).
//
// Rows are taken in groups of kPackRows = 16 (a partial last group is padded with zero rows),
// and within a group the data of the 16 rows is interleaved so that one vector load gives one
// value (float types) or four consecutive values (8-bit types) of all 16 rows: a vector lane
// accumulates one output row, the activation is broadcast, and no horizontal sums are needed.
//
// Float types (f32, f16, bf16): for group g and column c, the 16 rows' values are contiguous:
//   element (g * cols + c) * 16 + i   is row g * 16 + i, column c.
//
// 8-bit types, per group and 32-column block b, a record of:
//   q8_0: 8 quads x 16 rows x 4 bytes (512 bytes), then 16 f16 scales (32 bytes) = 544 bytes.
//         Quad q, row i holds columns 32 b + 4 q .. + 3. Stored as signed int8 (kSigned8), or
//         with 128 added as unsigned (kOffset8; for VNNI, whose dot product is unsigned x signed).
//   q4_0: 4 quad pairs x 16 rows x 4 bytes (256 bytes), then 16 f16 scales (32 bytes) = 288
//         bytes. Pair p, row i, byte j holds the 4-bit code (0..15) of column 32 b + 4 p + j in
//         its low nibble and of column 32 b + 16 + 4 p + j in its high nibble; value = d (code-8).
//   Records follow each other block by block, then group by group.
// K-quants, per group and 256-column super-block s, a record of:
//   q4_k: u8 scales sc[j][16 rows] (128 bytes), u8 mins m[j][16 rows] (128), f16 d[16 rows]
//         (32), f16 dmin[16 rows] (32), then 8 sub-block records of 256 bytes laid out as
//         q4_0's codes (code 0..15 of column 256 s + 32 j + c, j the sub-block) = 2368 bytes;
//         value = d sc code - dmin m.
//   q6_k: int8 scales sc[16 sub-blocks][16 rows] (256 bytes), f16 d[16 rows] (32), then 8 block
//         records of 384 bytes for the 32-column blocks b: the low 4 bits of the codes (0..63)
//         laid out as q4_0's (256 bytes), then two 64-byte vectors of their high 2 bits: vector
//         h, row i, byte j holds at bits 4 (p % 2) .. + 1 the high bits of column 32 b + 4 p + j
//         and at bits 4 (p % 2) + 2 .. + 3 those of column 32 b + 16 + 4 p + j, for the pairs
//         p = 2 h and 2 h + 1 = 3360 bytes; value = d sc[(col % 256) / 16] (code - 32).
//   Scales come first so that a record is read front to back: placed after the codes, they
//   cost a cache miss per record that the sequential prefetch does not cover.
//   Both are as large as the file's blocks (q4_k: 2.8% more, the 6-bit scales unpacked to bytes).
// The packed matrix is as large as the file's (f16 scales kept), so decoding reads no more bytes.
// f16_nm (50% N:M-sparse f16) has no packed form: the paths multiply its file layout, whose
// blocks already put a row's kept values next to each other (PackedBytes is 0).
#ifndef SLIMLM_KERNELS_PACKED_PACKED_LAYOUT_H_
#define SLIMLM_KERNELS_PACKED_PACKED_LAYOUT_H_

#include <cstddef>
#include <cstdint>

#include "slimlm/tensor/dtype.h"

namespace slimlm::kernels::packed {

inline constexpr int64_t kPackRows = 16;
inline constexpr size_t kQ8Record = 16 * 32 + 16 * 2;             // 544
inline constexpr size_t kQ4Record = 16 * 16 + 16 * 2;             // 288
inline constexpr size_t kQ4KRecord = 8 * 256 + 2 * 128 + 2 * 32;  // 2368
inline constexpr size_t kQ6KBlock = 256 + 128;                    // 384
inline constexpr size_t kQ6KRecord = 8 * kQ6KBlock + 256 + 32;    // 3360
// Offsets inside the k-quant records.
inline constexpr size_t kQ4KScales = 0, kQ4KMins = 128, kQ4KD = 256, kQ4KDmin = 288,
                        kQ4KCodes = 320;
inline constexpr size_t kQ6KScales = 0, kQ6KD = 256, kQ6KBlocks = 288;

// How q8_0 weights are stored.
enum class Int8Form { kSigned8, kOffset8 };

inline int64_t Groups(int64_t rows) { return (rows + kPackRows - 1) / kPackRows; }

// Bytes of the packed matrix; 0 when the type has no packed form here.
size_t PackedBytes(DType dtype, int64_t rows, int64_t cols);

// Packs the groups covering rows [r0, r1) (r0 a multiple of kPackRows) of w: (rows, cols),
// rows w_row_bytes apart, into out (PackedBytes bytes).
void Pack(DType dtype, Int8Form form, const void* w, size_t w_row_bytes, int64_t rows, int64_t cols,
          int64_t r0, int64_t r1, void* out);

// Bytes of one group: all its columns (float types) or all its block records (8-bit types).
size_t GroupBytes(DType dtype, int64_t cols);

}  // namespace slimlm::kernels::packed

#endif  // SLIMLM_KERNELS_PACKED_PACKED_LAYOUT_H_
