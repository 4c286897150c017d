// llama2.c checkpoint reader: header validation, an exact size check, then per-layer slices of the
// stacked arrays as borrowed GGUF-named tensors (version 2: dequantized copies).
#include "slimlm/formats/llama2c.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <vector>

#include "formats/byte_reader.h"
#include "slimlm/core/file.h"

namespace slimlm {
namespace {

using formats_internal::ByteReader;
using formats_internal::CheckedAdd;
using formats_internal::CheckedMul;

constexpr int64_t kVersionedHeaderBytes = 256;

struct Header {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
  int32_t version = 0;  // 0 = legacy.
  bool shared_classifier = true;
  int32_t group_size = 0;  // Version 2 only.
  uint64_t data_start = 0;

  int64_t head_dim() const { return dim / n_heads; }
  int64_t kv_dim() const { return head_dim() * n_kv_heads; }
  std::string Describe() const {
    return fmt::format(
        "dim={}, hidden_dim={}, n_layers={}, n_heads={}, n_kv_heads={}, "
        "vocab_size={}, seq_len={}",
        dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len);
  }
};

Status ReadHeader(ByteReader& r, Header* h) {
  uint32_t magic = 0;
  if (r.size() >= 8) {
    std::memcpy(&magic, r.current(), 4);
  }
  bool versioned = magic == kLlama2cMagic;
  if (versioned) {
    SLIMLM_RETURN_IF_ERROR(r.Skip(4));
    SLIMLM_RETURN_IF_ERROR(r.ReadPod(&h->version));
    if (h->version != 1 && h->version != 2) {
      return UnsupportedError("{}: llama2.c export version {} is not supported (0, 1 and 2 are)",
                              r.path(), h->version);
    }
  }
  int32_t fields[7];
  SLIMLM_RETURN_IF_ERROR(r.Read(fields, sizeof(fields)));
  h->dim = fields[0];
  h->hidden_dim = fields[1];
  h->n_layers = fields[2];
  h->n_heads = fields[3];
  h->n_kv_heads = fields[4];
  h->vocab_size = fields[5];
  h->seq_len = fields[6];
  if (versioned) {
    uint8_t shared = 0;
    SLIMLM_RETURN_IF_ERROR(r.ReadPod(&shared));
    h->shared_classifier = shared != 0;
    if (h->version == 2) SLIMLM_RETURN_IF_ERROR(r.ReadPod(&h->group_size));
    h->data_start = kVersionedHeaderBytes;
  } else {
    // A negative vocab_size is how the legacy format says that a separate classifier follows.
    h->shared_classifier = h->vocab_size > 0;
    if (h->vocab_size < 0 && h->vocab_size != INT32_MIN) h->vocab_size = -h->vocab_size;
    h->data_start = r.offset();
  }
  return Status::Ok();
}

Status ValidateHeader(const Header& h, const std::string& path) {
  const char* problem = nullptr;
  if (h.dim <= 0 || h.hidden_dim <= 0 || h.n_layers <= 0 || h.n_heads <= 0 || h.n_kv_heads <= 0 ||
      h.vocab_size <= 0 || h.seq_len <= 0) {
    problem = "every size must be positive";
  } else if (h.dim % h.n_heads != 0) {
    problem = "n_heads must divide dim";
  } else if (h.n_heads % h.n_kv_heads != 0) {
    problem = "n_kv_heads must divide n_heads";
  } else if (h.head_dim() % 2 != 0) {
    problem = "the head size dim/n_heads must be even for RoPE";
  } else if (h.version == 2 && h.group_size <= 0) {
    problem = "the quantization group size must be positive";
  }
  if (problem == nullptr) return Status::Ok();
  return CorruptError("{}: not a valid llama2.c checkpoint: {} (header: {})", path, problem,
                      h.Describe());
}

// The arrays of a checkpoint, in no particular file order.
enum Array {
  kTok,
  kRmsAtt,
  kWq,
  kWk,
  kWv,
  kWo,
  kRmsFfn,
  kW1,
  kW2,
  kW3,
  kRmsFinal,
  kFreq,
  kWcls,
  kNumArrays
};

bool IsPerLayer(Array a) { return a != kTok && a != kRmsFinal && a != kFreq && a != kWcls; }
bool IsMatrix(Array a) {
  return a == kTok || a == kWq || a == kWk || a == kWv || a == kWo || a == kW1 || a == kW2 ||
         a == kW3 || a == kWcls;
}

// Where one layer's slice of an array lies.
struct Slice {
  uint64_t offset = 0;        // f32 values, or int8 values in version 2 matrices.
  uint64_t scale_offset = 0;  // Version 2 matrices: the f32 group scales.
};

// Lays the arrays out in file order with overflow-checked sizes. Slices are computed from each
// array's start rather than stored per layer, so a header claiming 2^31 layers costs nothing
// before the size check rejects it.
class Layout {
 public:
  explicit Layout(const Header& h) : h_(h), offset_(h.data_start) {
    uint64_t d = static_cast<uint64_t>(h.dim), f = static_cast<uint64_t>(h.hidden_dim),
             kv = static_cast<uint64_t>(h.kv_dim()), v = static_cast<uint64_t>(h.vocab_size);
    uint64_t rope = static_cast<uint64_t>(h.seq_len) * static_cast<uint64_t>(h.head_dim());
    elements_ = {v * d, d, d * d, kv * d, kv * d, d * d, d, f * d, d * f, f * d, d, rope, v * d};
  }

  // Elements per layer (or of the whole array when not per layer).
  uint64_t elements(Array a) const { return elements_[a]; }
  bool overflow() const { return overflow_; }
  uint64_t end() const { return offset_; }

  // Valid once end() has been checked against the file size, so nothing here can overflow.
  Slice slice(Array a, int layer) const {
    uint64_t n = elements_[a];
    uint64_t stride = quantized_[a] ? n + n / static_cast<uint64_t>(h_.group_size) * 4 : n * 4;
    Slice s;
    s.offset = start_[a] + static_cast<uint64_t>(layer) * stride;
    s.scale_offset = s.offset + n;
    return s;
  }

  // An f32 array, stacked over layers when per layer.
  void AddF32(Array a) { Add(a, elements_[a] * 4, false); }
  // A version-2 matrix: per layer, int8 values then one f32 scale per group.
  void AddQuantized(Array a) {
    uint64_t n = elements_[a];
    uint64_t bytes = 0;
    if (!CheckedAdd(n, n / static_cast<uint64_t>(h_.group_size) * 4, &bytes)) overflow_ = true;
    Add(a, bytes, true);
  }

 private:
  void Add(Array a, uint64_t bytes_per_layer, bool quantized) {
    uint64_t layers = IsPerLayer(a) ? static_cast<uint64_t>(h_.n_layers) : 1;
    uint64_t bytes = 0;
    start_[a] = offset_;
    quantized_[a] = quantized;
    if (!CheckedMul(bytes_per_layer, layers, &bytes) || !CheckedAdd(offset_, bytes, &offset_)) {
      overflow_ = true;
    }
  }

  const Header& h_;
  uint64_t offset_;
  bool overflow_ = false;
  std::array<uint64_t, kNumArrays> elements_{};
  std::array<uint64_t, kNumArrays> start_{};
  std::array<bool, kNumArrays> quantized_{};
};

void PlanLayout(const Header& h, Layout* layout) {
  static constexpr Array kLayerMatrices[] = {kWq, kWk, kWv, kWo, kW1, kW2, kW3};
  if (h.version == 0) {
    for (Array a : {kTok, kRmsAtt, kWq, kWk, kWv, kWo, kRmsFfn, kW1, kW2, kW3, kRmsFinal, kFreq}) {
      layout->AddF32(a);
    }
    if (!h.shared_classifier) layout->AddF32(kWcls);
    return;
  }
  for (Array a : {kRmsAtt, kRmsFfn, kRmsFinal}) layout->AddF32(a);
  if (h.version == 1) {
    layout->AddF32(kTok);
    for (Array a : kLayerMatrices) layout->AddF32(a);
    if (!h.shared_classifier) layout->AddF32(kWcls);
  } else {
    layout->AddQuantized(kTok);
    for (Array a : kLayerMatrices) layout->AddQuantized(a);
    if (!h.shared_classifier) layout->AddQuantized(kWcls);
  }
}

void SetMetadata(const Header& h, Metadata* m) {
  auto u32 = [](int64_t v) { return MetaValue::U32(static_cast<uint32_t>(v)); };
  m->Set("general.architecture", MetaValue::String("llama"));
  m->Set("llama.context_length", u32(h.seq_len));
  m->Set("llama.embedding_length", u32(h.dim));
  m->Set("llama.feed_forward_length", u32(h.hidden_dim));
  m->Set("llama.block_count", u32(h.n_layers));
  m->Set("llama.attention.head_count", u32(h.n_heads));
  m->Set("llama.attention.head_count_kv", u32(h.n_kv_heads));
  m->Set("llama.rope.dimension_count", u32(h.head_dim()));
  // llama2.c hard-codes these in run.c; the file does not carry them.
  m->Set("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-5f));
  m->Set("llama.rope.freq_base", MetaValue::F32(10000.0f));
  m->Set("llama.vocab_size", u32(h.vocab_size));
}

// x[i] = q[i] * scale[i / group_size], as llama2.c's runq.c dequantizes.
void Dequantize(const uint8_t* base, const Slice& s, uint64_t n, uint64_t group_size, float* out) {
  const int8_t* q = reinterpret_cast<const int8_t*>(base + s.offset);
  const uint8_t* scales = base + s.scale_offset;  // Not 4-byte aligned in general.
  for (uint64_t g = 0; g < n / group_size; ++g) {
    float scale;
    std::memcpy(&scale, scales + g * 4, 4);
    for (uint64_t i = g * group_size; i < (g + 1) * group_size; ++i) {
      out[i] = static_cast<float>(q[i]) * scale;
    }
  }
}

struct TensorSpec {
  const char* name;  // "blk.{}.x" for per-layer tensors.
  Array array;
};

// The store's tensor order, the one llama.cpp's converter writes.
constexpr TensorSpec kGlobalTensors[] = {
    {"token_embd.weight", kTok}, {"output_norm.weight", kRmsFinal}, {"output.weight", kWcls}};
constexpr TensorSpec kLayerTensors[] = {
    {"blk.{}.attn_q.weight", kWq},        {"blk.{}.attn_k.weight", kWk},
    {"blk.{}.attn_v.weight", kWv},        {"blk.{}.attn_output.weight", kWo},
    {"blk.{}.attn_norm.weight", kRmsAtt}, {"blk.{}.ffn_gate.weight", kW1},
    {"blk.{}.ffn_down.weight", kW2},      {"blk.{}.ffn_up.weight", kW3},
    {"blk.{}.ffn_norm.weight", kRmsFfn}};

Shape ShapeOf(const Header& h, Array a) {
  int64_t d = h.dim, f = h.hidden_dim, kv = h.kv_dim(), v = h.vocab_size;
  switch (a) {
    case kTok:
    case kWcls:
      return Shape({v, d});
    case kWk:
    case kWv:
      return Shape({kv, d});
    case kWq:
    case kWo:
      return Shape({d, d});
    case kW1:
    case kW3:
      return Shape({f, d});
    case kW2:
      return Shape({d, f});
    default:
      return Shape({d});
  }
}

void AddTensor(const Header& h, const Layout& layout, std::span<const uint8_t> bytes,
               const std::shared_ptr<const void>& owner, std::string name, Array a, int layer,
               WeightStore* store) {
  Slice s = layout.slice(a, layer);
  Shape shape = ShapeOf(h, a);
  if (h.version == 2 && IsMatrix(a)) {
    auto* out = reinterpret_cast<float*>(store->AddOwned(std::move(name), DType::kF32, shape));
    Dequantize(bytes.data(), s, layout.elements(a), static_cast<uint64_t>(h.group_size), out);
    return;
  }
  store->AddBorrowed(std::move(name), DType::kF32, shape, bytes.data() + s.offset, owner);
}

}  // namespace

Result<WeightStore> ParseLlama2c(std::span<const uint8_t> bytes, const std::string& name,
                                 std::shared_ptr<const void> owner) {
  ByteReader r(bytes, name);
  r.set_context("llama2.c header");
  Header h;
  SLIMLM_RETURN_IF_ERROR(ReadHeader(r, &h));
  SLIMLM_RETURN_IF_ERROR(ValidateHeader(h, name));
  Layout layout(h);
  if (h.version == 2) {
    for (Array a : {kTok, kWq, kWk, kWv, kWo, kW1, kW2, kW3}) {
      if (layout.elements(a) % static_cast<uint64_t>(h.group_size) != 0) {
        return CorruptError("{}: group size {} does not divide a {}-value matrix", name,
                            h.group_size, layout.elements(a));
      }
    }
  }
  PlanLayout(h, &layout);
  if (layout.overflow() || layout.end() != bytes.size()) {
    return CorruptError(
        "{}: file size {} bytes does not match the llama2.c header, which needs {} "
        "bytes ({}{})",
        name, bytes.size(),
        layout.overflow() ? std::string("more than 2^64") : std::to_string(layout.end()),
        h.Describe(), h.shared_classifier ? ", shared classifier" : ", separate classifier");
  }
  WeightStore store;
  SetMetadata(h, &store.metadata());
  for (const TensorSpec& spec : kGlobalTensors) {
    if (spec.array == kWcls && h.shared_classifier) continue;
    AddTensor(h, layout, bytes, owner, spec.name, spec.array, 0, &store);
  }
  for (int layer = 0; layer < h.n_layers; ++layer) {
    for (const TensorSpec& spec : kLayerTensors) {
      AddTensor(h, layout, bytes, owner, fmt::format(fmt::runtime(spec.name), layer), spec.array,
                layer, &store);
    }
  }
  store.KeepAlive(std::move(owner));
  store.source_path = name;
  store.source_format = "llama2c";
  return store;
}

Result<WeightStore> ReadLlama2c(const std::string& path) {
  SLIMLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  auto map = std::make_shared<const MappedFile>(std::move(file));
  return ParseLlama2c(map->bytes(), path, map);
}

std::string FindLlama2cTokenizer(const std::string& checkpoint_path) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(checkpoint_path).parent_path();
  if (dir.empty()) dir = ".";
  if (IsRegularFile((dir / "tokenizer.bin").string())) return (dir / "tokenizer.bin").string();
  std::vector<std::string> candidates;
  std::error_code ec;
  fs::path self = fs::path(checkpoint_path).filename();
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string file = it->path().filename().string();
    if (file.size() >= 7 && file.starts_with("tok") && file.ends_with(".bin") && file != self &&
        IsRegularFile(it->path().string())) {
      candidates.push_back(it->path().string());
    }
  }
  if (candidates.empty()) return "";
  return *std::min_element(candidates.begin(), candidates.end());
}

}  // namespace slimlm
