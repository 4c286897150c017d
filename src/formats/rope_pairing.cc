#include "slimlm/formats/rope_pairing.h"

#include <cstring>

namespace slimlm {

RopePairing StoredRopePairing(const Metadata& metadata) {
  std::optional<std::string> pairing = metadata.GetString(kRopePairingKey);
  return pairing == "half" ? RopePairing::kHalf : RopePairing::kAdjacent;
}

bool ArchitectureUsesAdjacentPairingInGguf(std::string_view architecture) {
  return architecture == "llama";
}

int64_t RopeHeadsOfTensor(const Metadata& metadata, std::string_view tensor_name) {
  if (!tensor_name.starts_with("blk.")) return 0;
  bool is_q = tensor_name.ends_with(".attn_q.weight") || tensor_name.ends_with(".attn_q.bias");
  bool is_k = tensor_name.ends_with(".attn_k.weight") || tensor_name.ends_with(".attn_k.bias");
  if (!is_q && !is_k) return 0;
  std::string arch = metadata.GetString("general.architecture").value_or("");
  std::optional<int64_t> heads = metadata.GetInt(arch + ".attention.head_count");
  if (!heads || *heads <= 0) return -1;
  if (is_q) return *heads;
  return metadata.GetInt(arch + ".attention.head_count_kv").value_or(*heads);
}

void PermuteRopeRows(const uint8_t* src, uint8_t* dst, int64_t n_heads, int64_t head_dim,
                     size_t row_bytes, RopePairing from, RopePairing to) {
  SLIMLM_CHECK(head_dim % 2 == 0) << "head_dim " << head_dim;
  int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        int64_t adjacent = h * head_dim + 2 * i + j;
        int64_t halved = h * head_dim + half * j + i;
        int64_t src_row = from == RopePairing::kAdjacent ? adjacent : halved;
        int64_t dst_row = to == RopePairing::kAdjacent ? adjacent : halved;
        std::memcpy(dst + static_cast<size_t>(dst_row) * row_bytes,
                    src + static_cast<size_t>(src_row) * row_bytes, row_bytes);
      }
    }
  }
}

Status PermuteRopeTensor(const StoredTensor& t, int64_t n_heads, RopePairing from, RopePairing to,
                         std::vector<uint8_t>* out) {
  // A weight permutes whole rows; a bias (rank 1) permutes single elements.
  bool is_bias = t.shape.rank() == 1;
  if (is_bias && Traits(t.dtype).quantized) {
    return UnsupportedError("tensor '{}': cannot permute a {} bias for RoPE pairing", t.name,
                            DTypeName(t.dtype));
  }
  int64_t rows = is_bias ? t.shape.Cols() : t.shape.Rows();
  size_t row_bytes = is_bias ? static_cast<size_t>(Traits(t.dtype).block_bytes)
                             : RowBytes(t.dtype, t.shape.Cols());
  if (n_heads <= 0 || rows % n_heads != 0 || (rows / n_heads) % 2 != 0) {
    return InvalidArgumentError(
        "tensor '{}' with shape {} cannot be split into {} heads of an even size", t.name,
        t.shape.ToString(), n_heads);
  }
  out->resize(t.nbytes);
  if (from == to) {
    std::memcpy(out->data(), t.data, t.nbytes);
    return Status::Ok();
  }
  PermuteRopeRows(t.data, out->data(), n_heads, rows / n_heads, row_bytes, from, to);
  return Status::Ok();
}

}  // namespace slimlm
