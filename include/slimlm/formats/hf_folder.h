// Hugging Face model folders: config.json plus model.safetensors (or shards listed in
// model.safetensors.index.json). See docs/formats/safetensors.md.
//
// Tensor names map to GGUF's (model.embed_tokens.weight -> token_embd.weight, model.norm.weight
// -> output_norm.weight, lm_head.weight -> output.weight, model.layers.N.input_layernorm ->
// blk.N.attn_norm, self_attn.{q,k,v,o}_proj.{weight,bias} -> attn_{q,k,v,output}.{weight,bias},
// self_attn.{q,k}_norm -> attn_{q,k}_norm, post_attention_layernorm -> ffn_norm,
// mlp.{gate,up,down}_proj -> ffn_{gate,up,down}); *.rotary_emb.inv_freq buffers are skipped.
// Tensors are ordered as llama.cpp orders them. Llama q/k rows keep HF's order and the store
// says so with slimlm.rope.pairing = "half" (see rope_pairing.h).
#ifndef SLIMLM_FORMATS_HF_FOLDER_H_
#define SLIMLM_FORMATS_HF_FOLDER_H_

#include <string>

#include "slimlm/core/status.h"
#include "slimlm/formats/weight_store.h"

namespace slimlm {

// Reads config.json and the weights of `dir` (no tokenizer: see LoadModel). Unknown tensor names
// are an error that lists them. With tie_word_embeddings, lm_head.weight is dropped if present;
// when config.json does not say, a missing lm_head.weight means tied.
Result<WeightStore> ReadHfFolder(const std::string& dir);

// Writes config.json and model.safetensors into `dir` (created when missing; each file
// atomically), permuting Llama q/k rows to HF order when the store pairs adjacent dimensions.
// Only f32, f16 and bf16 tensors with HF names can be written; anything else is an error naming
// the tensor. No tokenizer files (see SaveHfFolder).
Status WriteHfFolder(const WeightStore& store, const std::string& dir);

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_HF_FOLDER_H_
