// Reading and writing tokenizer vocabularies in their several file formats, always through the
// GGUF tokenizer keys in a Metadata (docs/tokenizers.md tells what each reader supports):
//
//   tokenizer.ggml.model       "llama" (SentencePiece BPE, scores) or "gpt2" (byte-level BPE)
//   tokenizer.ggml.pre         pre-tokenizer: "default", "gpt-2", "llama-bpe", "qwen2", "smollm"
//   tokenizer.ggml.tokens      [string] token texts ("▁" for a space in "llama" vocabularies)
//   tokenizer.ggml.scores      [f32] merge scores ("llama")
//   tokenizer.ggml.token_type  [i32] 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
//                              6 byte
//   tokenizer.ggml.merges      [string] "left right" merge rules in priority order ("gpt2")
//   tokenizer.ggml.bos_token_id / eos_token_id / unknown_token_id / padding_token_id   u32
//   tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix                  bool
//   tokenizer.chat_template    string (Jinja)
//
// Every function reports a file that contradicts its format as kCorrupt, and a valid file we do
// not handle (another pre-tokenizer, a Unigram model) as kUnsupported, with the path and the
// problem in the message. On success a reader replaces every tokenizer.* key of `out` (keys of a
// tokenizer read before are removed) and leaves other keys alone; on error `out` is unchanged.
#ifndef SLIMLM_FORMATS_TOKENIZER_FILES_H_
#define SLIMLM_FORMATS_TOKENIZER_FILES_H_

#include <string>

#include "slimlm/core/status.h"
#include "slimlm/formats/metadata.h"

namespace slimlm {

// Reads a llama2.c tokenizer.bin (max_token_length, then per token: f32 score, i32 length,
// bytes) into tokenizer.* keys of `out`. n_vocab is the model's vocabulary size (the file does
// not say it); 0 reads to the end of the file.
Status ReadLlama2cTokenizer(const std::string& path, int n_vocab, Metadata* out);

// Reads an HF tokenizer.json (and tokenizer_config.json beside it when present, for BOS/EOS,
// add_bos and the chat template) into tokenizer.* keys of `out`.
Status ReadHfTokenizer(const std::string& tokenizer_json_path, Metadata* out);

// Reads the tokenizer.* keys of any tokenizer file: tokenizer.bin, tokenizer.json, or a GGUF
// file (vocab-only or a whole model). n_vocab as for ReadLlama2cTokenizer.
Status ReadTokenizerFile(const std::string& path, int n_vocab, Metadata* out);

// Writes tokenizer.json and tokenizer_config.json into `dir` from tokenizer.* keys, in the form
// HF's tokenizers library loads and ReadHfTokenizer reads back to an equivalent tokenizer.
Status WriteHfTokenizer(const Metadata& metadata, const std::string& dir);

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_TOKENIZER_FILES_H_
