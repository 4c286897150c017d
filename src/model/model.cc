#include "slimlm/model/model.h"

#include <algorithm>
#include <cstring>
#include <new>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {
namespace {

std::string FormatBytesShort(size_t bytes) {
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
}

}  // namespace

Result<std::unique_ptr<Model>> Model::Load(const std::string& path, const LoadOptions& options) {
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, LoadModel(path, options));
  return FromStore(std::move(store), options.require_tokenizer);
}

Result<std::unique_ptr<Model>> Model::FromStore(WeightStore store, bool require_tokenizer,
                                                const kernels::KernelTable* table) {
  std::unique_ptr<Model> model(new Model());
  model->kernels_ = table != nullptr ? table : &kernels::Kernels();
  model->store_ = std::move(store);
  const std::string& source = model->store_.source_path;
  const StoredTensor* embd = model->store_.Find("token_embd.weight");
  if (embd == nullptr) return CorruptError("{}: missing tensor 'token_embd.weight'", source);
  SLIMLM_ASSIGN_OR_RETURN(
      model->config_,
      ModelConfig::FromMetadata(model->store_.metadata(),
                                embd->shape.rank() == 2 ? embd->shape[0] : 0, source));
  SLIMLM_RETURN_IF_ERROR(model->BindWeights());
  SLIMLM_RETURN_IF_ERROR(model->PackWeights());
  if (model->store_.metadata().Has("tokenizer.ggml.tokens")) {
    auto tokenizer = Tokenizer::FromMetadata(model->store_.metadata());
    if (!tokenizer.ok()) return tokenizer.status().WithContext(source);
    model->tokenizer_ = std::move(*tokenizer);
    if (model->tokenizer_->vocab_size() > model->config_.n_vocab) {
      return CorruptError("{}: tokenizer has {} tokens but the model only {} embeddings", source,
                          model->tokenizer_->vocab_size(), model->config_.n_vocab);
    }
  } else if (require_tokenizer) {
    return NotFoundError("{}: the model has no tokenizer; pass --tokenizer FILE", source);
  }
  return model;
}

Result<Linear> Model::BindLinear(const std::string& name, int64_t rows, int64_t cols) {
  const StoredTensor* t = store_.Find(name);
  if (t == nullptr) return CorruptError("{}: missing tensor '{}'", store_.source_path, name);
  Shape expected{rows, cols};
  if (t->shape != expected) {
    return CorruptError("{}: tensor '{}' has shape {}, expected {}", store_.source_path, name,
                        t->shape.ToString(), expected.ToString());
  }
  if (t->dtype == DType::kF16NM) {
    // Kernels trust each mask byte to keep 4 of 8; a damaged file must not reach them.
    const auto* blocks = reinterpret_cast<const BlockF16NM*>(t->data);
    if (!IsF16NMRowValid(blocks, rows * cols)) {
      return CorruptError("{}: tensor '{}' (f16_nm) has a mask that does not keep 4 of every 8",
                          store_.source_path, name);
    }
  }
  Linear linear;
  linear.weight = t->view();
  linear.matrix.dtype = t->dtype;
  linear.matrix.rows = rows;
  linear.matrix.cols = cols;
  linear.matrix.data = t->data;
  linear.matrix.row_bytes = linear.weight.row_bytes();
  return linear;
}

Result<const float*> Model::VectorF32(const std::string& name, int64_t n, bool required) {
  const StoredTensor* t = store_.Find(name);
  if (t == nullptr) {
    if (!required) return static_cast<const float*>(nullptr);
    return CorruptError("{}: missing tensor '{}'", store_.source_path, name);
  }
  if (t->shape.NumElements() != n || t->shape.Cols() != n) {
    return CorruptError("{}: tensor '{}' has shape {}, expected [{}]", store_.source_path, name,
                        t->shape.ToString(), n);
  }
  if (t->dtype == DType::kF32) return reinterpret_cast<const float*>(t->data);
  // Norms and biases are tiny; keep an f32 copy so kernels see one type.
  std::vector<float>& copy = converted_.emplace_back(static_cast<size_t>(n));
  RowToF32(t->dtype, t->data, copy.data(), n);
  return static_cast<const float*>(copy.data());
}

Status Model::BindWeights() {
  const ModelConfig& c = config_;
  SLIMLM_ASSIGN_OR_RETURN(Linear embd, BindLinear("token_embd.weight", c.n_vocab, c.dim));
  token_embd_ = embd.weight;
  if (store_.Find("output.weight") != nullptr) {
    SLIMLM_ASSIGN_OR_RETURN(output_, BindLinear("output.weight", c.n_vocab, c.dim));
  } else {
    output_ = embd;
    tied_ = true;
  }
  SLIMLM_ASSIGN_OR_RETURN(output_norm_, VectorF32("output_norm.weight", c.dim, true));
  SLIMLM_ASSIGN_OR_RETURN(rope_freq_factors_,
                          VectorF32("rope_freqs.weight", c.rope_dim / 2, false));
  const bool qwen2 = c.arch == Architecture::kQwen2;
  const bool qwen3 = c.arch == Architecture::kQwen3;
  layers_.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights& l = layers_[static_cast<size_t>(i)];
    auto name = [i](const char* suffix) { return fmt::format("blk.{}.{}", i, suffix); };
    SLIMLM_ASSIGN_OR_RETURN(l.attn_norm, VectorF32(name("attn_norm.weight"), c.dim, true));
    SLIMLM_ASSIGN_OR_RETURN(l.wq, BindLinear(name("attn_q.weight"), c.q_dim(), c.dim));
    SLIMLM_ASSIGN_OR_RETURN(l.wk, BindLinear(name("attn_k.weight"), c.kv_dim(), c.dim));
    SLIMLM_ASSIGN_OR_RETURN(l.wv, BindLinear(name("attn_v.weight"), c.kv_dim(), c.dim));
    SLIMLM_ASSIGN_OR_RETURN(l.wo, BindLinear(name("attn_output.weight"), c.dim, c.q_dim()));
    SLIMLM_ASSIGN_OR_RETURN(l.bq, VectorF32(name("attn_q.bias"), c.q_dim(), qwen2));
    SLIMLM_ASSIGN_OR_RETURN(l.bk, VectorF32(name("attn_k.bias"), c.kv_dim(), qwen2));
    SLIMLM_ASSIGN_OR_RETURN(l.bv, VectorF32(name("attn_v.bias"), c.kv_dim(), qwen2));
    SLIMLM_ASSIGN_OR_RETURN(l.q_norm, VectorF32(name("attn_q_norm.weight"), c.head_dim, qwen3));
    SLIMLM_ASSIGN_OR_RETURN(l.k_norm, VectorF32(name("attn_k_norm.weight"), c.head_dim, qwen3));
    SLIMLM_ASSIGN_OR_RETURN(l.ffn_norm, VectorF32(name("ffn_norm.weight"), c.dim, true));
    SLIMLM_ASSIGN_OR_RETURN(l.w_gate, BindLinear(name("ffn_gate.weight"), c.ffn_dim, c.dim));
    SLIMLM_ASSIGN_OR_RETURN(l.w_up, BindLinear(name("ffn_up.weight"), c.ffn_dim, c.dim));
    SLIMLM_ASSIGN_OR_RETURN(l.w_down, BindLinear(name("ffn_down.weight"), c.dim, c.ffn_dim));
  }
  return Status::Ok();
}

// Rows of a matrix packed before their file pages are released.
constexpr size_t kPackSlabBytes = size_t{4} << 20;

Status Model::PackWeights() {
  // In the order a forward pass reads them, so that decoding streams through one buffer.
  std::vector<Linear*> linears;
  for (LayerWeights& l : layers_) {
    for (Linear* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      linears.push_back(m);
    }
  }
  linears.push_back(&output_);
  const kernels::KernelTable& k = *kernels_;
  // One buffer for all packed matrices: every matrix, however small, then sits on huge pages
  // and the next one follows it, so the hardware prefetchers need not start over on each
  // (the 110m model's 768 x 768 matrices are 0.3-0.6 MB).
  // Matrices the path multiplies in the file layout (f16_nm) are copied as they are, for the
  // same reason: on the map's 4 KiB pages they decode measurably slower.
  auto bytes_of = [&k](const kernels::Matrix& m) {
    const size_t packed = k.packed_bytes(m.dtype, m.rows, m.cols);
    const bool copy = packed == 0 && m.dtype == DType::kF16NM;
    return copy ? static_cast<size_t>(m.rows) * m.row_bytes : packed;
  };
  std::vector<size_t> offsets;
  size_t total = 0;
  for (Linear* linear : linears) {
    offsets.push_back(total);
    total += (bytes_of(linear->matrix) + 63) / 64 * 64;
  }
  if (total == 0) return Status::Ok();
  try {
    packed_ = AlignedBytes(total);
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("{}: out of memory packing {} weights for the {} kernels",
                                  store_.source_path, FormatBytesShort(total),
                                  kernels::IsaName(k.isa));
  }
  ThreadPool pool(PhysicalCoreCount());
  for (size_t i = 0; i < linears.size(); ++i) {
    kernels::Matrix& m = linears[i]->matrix;
    const size_t bytes = bytes_of(m);
    if (bytes == 0) continue;
    uint8_t* out = packed_.data() + offsets[i];
    packed_bytes_ += bytes;
    if (k.packed_bytes(m.dtype, m.rows, m.cols) == 0) {
      std::memcpy(out, m.data, bytes);
      ReleaseMappedPages(m.data, bytes);
    } else {
      // Packing reads the matrix's pages of the mapped file; kept, they would sit resident
      // beside the packed copy. Released slab by slab, they never add more than a slab to the
      // load's peak (a large output matrix would otherwise add its whole size). The tied
      // embedding's rows are read again from the file as tokens need them.
      const int64_t groups = (m.rows + k.row_block - 1) / k.row_block;
      const int64_t slab = std::max<int64_t>(
          1,
          static_cast<int64_t>(kPackSlabBytes / (m.row_bytes * static_cast<size_t>(k.row_block))));
      for (int64_t s0 = 0; s0 < groups; s0 += slab) {
        const int64_t s1 = std::min(groups, s0 + slab);
        pool.ParallelFor(s1 - s0, [&](int64_t g0, int64_t g1, int) {
          k.pack(m.dtype, m.data, m.row_bytes, m.rows, m.cols, (s0 + g0) * k.row_block,
                 std::min(m.rows, (s0 + g1) * k.row_block), out);
        });
        const int64_t r0 = s0 * k.row_block;
        const int64_t r1 = std::min(m.rows, s1 * k.row_block);
        ReleaseMappedPages(
            static_cast<const uint8_t*>(m.data) + static_cast<size_t>(r0) * m.row_bytes,
            static_cast<size_t>(r1 - r0) * m.row_bytes);
      }
      m.packed = true;
    }
    m.data = out;
  }
  return Status::Ok();
}

int64_t Model::ParameterCount() const {
  int64_t n = 0;
  for (const StoredTensor& t : store_.tensors()) n += t.shape.NumElements();
  return n;
}

}  // namespace slimlm
