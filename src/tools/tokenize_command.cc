// slimlm tokenize: token ids and pieces of a text.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/core/file.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/model/tokenizer.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string file;
  std::string tokenizer;
  bool json = false;
  bool no_bos = false;
  bool no_special = false;
  bool ids_only = false;
};

// A piece made printable: control characters escaped, invalid UTF-8 shown as bytes.
std::string Printable(const std::string& piece) {
  std::string out;
  for (unsigned char ch : piece) {
    switch (ch) {
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (ch < 0x20 || ch == 0x7f) {
          out += fmt::format("\\x{:02x}", ch);
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out;
}

Status Tokenize(TokenizeArgs args) {
  if (!args.file.empty()) {
    if (!args.text.empty()) return InvalidArgumentError("give either TEXT or --file, not both");
    SLIMLM_ASSIGN_OR_RETURN(args.text, ReadFileToString(args.file));
  }
  // Only the tokenizer is needed, so vocab-only GGUF files work too.
  LoadOptions options;
  options.tokenizer_path = args.tokenizer;
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, LoadModel(args.model, options));
  auto tokenizer = Tokenizer::FromMetadata(store.metadata());
  if (!tokenizer.ok()) return tokenizer.status().WithContext(args.model);
  const Tokenizer& tok = **tokenizer;
  std::vector<int32_t> ids = tok.Encode(args.text, !args.no_bos, !args.no_special);
  if (args.json) {
    nlohmann::json pieces = nlohmann::json::array();
    for (int32_t id : ids) pieces.push_back(tok.TokenText(id));
    nlohmann::json out = {{"n_tokens", ids.size()}, {"ids", ids}, {"pieces", pieces}};
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else if (args.ids_only) {
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    fmt::print("{}\n", line);
  } else {
    for (int32_t id : ids) {
      fmt::print("{:>7} {}\n", id, Printable(tok.TokenToPiece(id, true)));
    }
    fmt::print(stderr, "{} tokens\n", ids.size());
  }
  return Status::Ok();
}

}  // namespace

CommandSpec TokenizeCommand() {
  return {"tokenize", "Show the token ids and pieces of a text", [](CLI::App* app) {
            auto args = std::make_shared<TokenizeArgs>();
            app->add_option("model", args->model, "Model, or a GGUF file with only a vocabulary")
                ->required();
            app->add_option("text", args->text, "Text to tokenize");
            app->add_option("-f,--file", args->file, "Tokenize a text file instead");
            AddTokenizerOption(app, &args->tokenizer);
            app->add_flag("--no-bos", args->no_bos, "Do not add the beginning-of-text token");
            app->add_flag("--no-special", args->no_special,
                          "Treat special-token text such as <|im_start|> as plain text");
            app->add_flag("--ids", args->ids_only, "Print only the ids, on one line");
            app->add_flag("--json", args->json, "Print JSON: ids and pieces");
            return [args] { return Tokenize(*args); };
          }};
}

}  // namespace slimlm::tools
