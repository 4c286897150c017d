// slimlm train-tokenizer: learn a byte-fallback BPE vocabulary (SentencePiece style) from text
// and write it as a vocab-only GGUF file.
#include <optional>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/core/file.h"
#include "slimlm/core/progress.h"
#include "slimlm/core/timer.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/train/bpe_trainer.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct TrainTokenizerArgs {
  std::vector<std::string> texts;
  std::string out;
  int32_t vocab_size = 4096;
  int64_t min_char_count = 2;
  int64_t min_pair_count = 2;
  uint64_t max_bytes = 0;
  bool json = false;
};

void SetProvenance(const TrainTokenizerArgs& args, const train::BpeVocabulary& v, Metadata* md) {
  std::string sources;
  for (const std::string& path : args.texts) sources += (sources.empty() ? "" : ",") + path;
  md->Set("general.name", MetaValue::String("slimlm tokenizer"));
  md->Set("slimlm.version", MetaValue::String(std::string(kSlimlmVersion)));
  md->Set("slimlm.train_tokenizer.source", MetaValue::String(sources));
  md->Set("slimlm.train_tokenizer.source_hash",
          MetaValue::String(fmt::format("{:016x}", v.text_hash)));
  md->Set("slimlm.train_tokenizer.text_bytes", MetaValue::U64(v.text_bytes));
  md->Set("slimlm.train_tokenizer.vocab_size",
          MetaValue::U32(static_cast<uint32_t>(args.vocab_size)));
  md->Set("slimlm.train_tokenizer.min_char_count", MetaValue::I64(args.min_char_count));
  md->Set("slimlm.train_tokenizer.min_pair_count", MetaValue::I64(args.min_pair_count));
}

void PrintSummary(const TrainTokenizerArgs& args, const train::BpeVocabulary& v, double seconds) {
  const double bytes = static_cast<double>(v.text_bytes);
  const double tokens = static_cast<double>(v.n_tokens);
  if (args.json) {
    nlohmann::json out = {{"output", args.out},
                          {"vocab_size", v.tokens.size()},
                          {"reserved_tokens", train::kBpeReservedTokens},
                          {"base_characters", v.n_base_chars},
                          {"merges", v.n_merges},
                          {"text_bytes", v.text_bytes},
                          {"words", v.n_words},
                          {"distinct_words", v.n_distinct_words},
                          {"tokens", v.n_tokens},
                          {"byte_tokens", v.n_byte_tokens},
                          {"bytes_per_token", bytes / tokens},
                          {"tokens_per_byte", tokens / bytes},
                          {"seconds", seconds}};
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  fmt::print("wrote {}: {} tokens ({} reserved, {} characters, {} merges) in {:.2f} s\n", args.out,
             v.tokens.size(), train::kBpeReservedTokens, v.n_base_chars, v.n_merges, seconds);
  fmt::print("text: {} in {} file(s), {} words ({} distinct)\n", FormatBytes(bytes),
             args.texts.size(), v.n_words, v.n_distinct_words);
  fmt::print(
      "encoded: {} tokens, {:.3f} bytes/token, {:.4f} tokens/byte, {} byte-fallback tokens\n",
      v.n_tokens, bytes / tokens, tokens / bytes, v.n_byte_tokens);
  if (static_cast<int64_t>(v.tokens.size()) < args.vocab_size) {
    fmt::print(
        "note: the text has no more pairs seen at least {} times; the vocabulary has {} tokens, "
        "not {}\n",
        args.min_pair_count, v.tokens.size(), args.vocab_size);
  }
}

Status TrainTokenizer(const TrainTokenizerArgs& args) {
  SLIMLM_RETURN_IF_ERROR(CheckWritable(args.out));
  train::BpeTrainerOptions options;
  options.vocab_size = args.vocab_size;
  options.min_char_count = args.min_char_count;
  options.min_pair_count = args.min_pair_count;
  options.max_text_bytes = args.max_bytes;
  std::optional<Progress> progress;
  if (!args.json) {
    options.progress = [&](int64_t done, int64_t total) {
      if (!progress) progress.emplace("merges", total, "merges");
      progress->Update(done);
    };
  }
  Timer timer;
  Result<train::BpeVocabulary> vocabulary = train::TrainBpeFromFiles(args.texts, options);
  if (progress) progress->Finish();
  if (!vocabulary.ok()) return vocabulary.status();
  const double seconds = timer.Seconds();

  WeightStore store;
  SetProvenance(args, *vocabulary, &store.metadata());
  train::SetTokenizerMetadata(*vocabulary, &store.metadata());
  SLIMLM_RETURN_IF_ERROR(WriteGguf(store, args.out));
  PrintSummary(args, *vocabulary, seconds);
  return Status::Ok();
}

}  // namespace

CommandSpec TrainTokenizerCommand() {
  return {"train-tokenizer",
          "Learn a byte-fallback BPE vocabulary (SentencePiece style) from text files",
          [](CLI::App* app) {
            auto args = std::make_shared<TrainTokenizerArgs>();
            app->add_option("text", args->texts, "Text files to learn from (UTF-8)")->required();
            app->add_option("-o,--output", args->out, "Output: a vocab-only GGUF file")->required();
            app->add_option("--vocab-size", args->vocab_size,
                            fmt::format("Total tokens, including the {} reserved ones (<unk>, "
                                        "<s>, </s>, 256 byte tokens); {} to {}",
                                        train::kBpeReservedTokens, train::kBpeMinVocabSize,
                                        train::kBpeMaxVocabSize))
                ->capture_default_str();
            app->add_option("--min-char-count", args->min_char_count,
                            "Characters seen fewer times are spelled as bytes")
                ->capture_default_str();
            app->add_option("--min-pair-count", args->min_pair_count,
                            "Pairs seen fewer times are not merged")
                ->capture_default_str();
            app->add_option("--max-bytes", args->max_bytes,
                            "Read at most this many bytes of text in all (0: everything)")
                ->capture_default_str();
            app->add_flag("--json", args->json, "Print the summary as JSON");
            return [args] { return TrainTokenizer(*args); };
          }};
}

}  // namespace slimlm::tools
