#include "slimlm/eval/choice.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <memory>
#include <span>

#include <nlohmann/json.hpp>

#include "eval/chunks.h"
#include "slimlm/model/context.h"
#include "slimlm/model/tokenizer.h"

namespace slimlm::eval {
namespace {

const nlohmann::json* FirstOf(const nlohmann::json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it != j.end()) return &*it;
  }
  return nullptr;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Standard error of a fraction of n independent right/wrong outcomes (the sample standard
// deviation over sqrt(n), as lm-evaluation-harness reports it).
double FractionStderr(double p, int64_t n) {
  if (n < 2) return 0.0;
  const double nn = static_cast<double>(n);
  return std::sqrt(p * (1.0 - p) * nn / (nn - 1.0) / nn);
}

// log softmax(logits)[target].
double LogProb(std::span<const float> logits, int32_t target) {
  return -NegativeLogLikelihood(logits, target);
}

}  // namespace

Result<std::vector<ChoiceItem>> ReadChoiceTasks(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFoundError("{}: cannot open the tasks file", path);
  std::vector<ChoiceItem> items;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (std::all_of(line.begin(), line.end(), IsSpace)) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return InvalidArgumentError("{}:{}: not a JSON object", path, number);
    }
    const nlohmann::json* context = FirstOf(j, {"context", "ctx", "query"});
    const nlohmann::json* choices = FirstOf(j, {"choices", "endings"});
    const nlohmann::json* label = FirstOf(j, {"label", "gold", "answer"});
    if (context == nullptr || !context->is_string()) {
      return InvalidArgumentError("{}:{}: no \"context\" (or \"ctx\", \"query\") string", path,
                                  number);
    }
    if (choices == nullptr || !choices->is_array() || choices->size() < 2) {
      return InvalidArgumentError("{}:{}: \"choices\" (or \"endings\") must list at least two",
                                  path, number);
    }
    ChoiceItem item;
    item.context = context->get<std::string>();
    for (const nlohmann::json& c : *choices) {
      if (!c.is_string())
        return InvalidArgumentError("{}:{}: a choice is not a string", path, number);
      item.choices.push_back(c.get<std::string>());
    }
    const std::string label_text =
        label != nullptr && label->is_string() ? label->get<std::string>() : std::string();
    const bool label_digits = !label_text.empty() && label_text.size() < 10 &&
                              std::all_of(label_text.begin(), label_text.end(), [](char ch) {
                                return std::isdigit(static_cast<unsigned char>(ch)) != 0;
                              });
    if (label != nullptr && label->is_number_integer()) {
      item.label = label->get<int64_t>();
    } else if (label_digits) {
      item.label = std::stoll(label_text);
    } else {
      return InvalidArgumentError("{}:{}: no \"label\" (or \"gold\", \"answer\") index", path,
                                  number);
    }
    if (item.label < 0 || item.label >= static_cast<int64_t>(item.choices.size())) {
      return InvalidArgumentError("{}:{}: label {} is not the index of one of the {} choices", path,
                                  number, item.label, item.choices.size());
    }
    items.push_back(std::move(item));
  }
  if (items.empty()) return InvalidArgumentError("{}: no items", path);
  return items;
}

Result<std::string> ApplyTemplate(const std::string& tmpl, const std::string& context) {
  constexpr std::string_view kSlot = "{context}";
  if (tmpl.find(kSlot) == std::string::npos) {
    return InvalidArgumentError("template '{}' has no {{context}}", tmpl);
  }
  std::string out;
  size_t at = 0;
  for (size_t next; (next = tmpl.find(kSlot, at)) != std::string::npos; at = next + kSlot.size()) {
    out.append(tmpl, at, next - at);
    out += context;
  }
  out.append(tmpl, at);
  return out;
}

Result<std::vector<TemplateScore>> ScoreChoices(const Model& model,
                                                const std::vector<ChoiceItem>& items,
                                                const std::vector<std::string>& templates,
                                                const ChoiceOptions& options,
                                                FunctionRef<void(int64_t, int64_t)> progress) {
  const Tokenizer* tokenizer = model.tokenizer();
  if (tokenizer == nullptr) return InvalidArgumentError("the model has no tokenizer");
  if (templates.empty()) return InvalidArgumentError("no template");
  const int64_t n_ctx = model.config().context_length > 0 ? model.config().context_length : 2048;
  ContextOptions copts;
  copts.n_ctx = n_ctx;
  copts.n_threads = options.n_threads;
  copts.n_batch = std::min(options.n_batch, n_ctx);
  copts.all_logits = true;
  copts.kv_type_k = copts.kv_type_v = options.kv_type;
  copts.profile = options.profile;
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<Context> ctx, Context::Create(model, copts));

  // Summed log-probabilities of tokens[from, end) given tokens[0, from); the cache keeps
  // tokens[0, keep) from the previous call when they are the same.
  std::vector<int32_t> cached;
  auto loglik = [&](const std::vector<int32_t>& tokens, int64_t from) -> Result<double> {
    const int64_t n = static_cast<int64_t>(tokens.size());
    if (n > n_ctx) {
      return InvalidArgumentError("an item of {} tokens does not fit the context of {}", n, n_ctx);
    }
    // Reuse the cached prefix (the template and context shared by an item's choices), but
    // evaluate at least the token before `from`, whose logits predict the first scored token.
    int64_t keep = 0;
    while (keep < static_cast<int64_t>(cached.size()) && keep < from - 1 &&
           cached[static_cast<size_t>(keep)] == tokens[static_cast<size_t>(keep)]) {
      ++keep;
    }
    ctx->Truncate(keep);
    double sum = 0;
    for (int64_t start = keep; start < n - 1; start += copts.n_batch) {
      const int64_t count = std::min(copts.n_batch, n - 1 - start);
      SLIMLM_RETURN_IF_ERROR(ctx->Eval(std::span<const int32_t>(tokens).subspan(
          static_cast<size_t>(start), static_cast<size_t>(count))));
      for (int64_t j = std::max(start, from - 1); j < start + count; ++j) {
        sum += LogProb(ctx->logits_at(j - start), tokens[static_cast<size_t>(j + 1)]);
      }
    }
    cached.assign(tokens.begin(), tokens.end() - 1);
    return sum;
  };

  std::vector<TemplateScore> scores;
  const int64_t total = static_cast<int64_t>(items.size() * templates.size());
  int64_t done = 0;
  progress(0, total);
  for (const std::string& tmpl : templates) {
    TemplateScore score;
    score.tmpl = tmpl;
    int64_t right = 0, right_norm = 0;
    for (const ChoiceItem& item : items) {
      SLIMLM_ASSIGN_OR_RETURN(std::string prefix, ApplyTemplate(tmpl, item.context));
      const std::vector<int32_t> prefix_tokens = tokenizer->Encode(prefix, true, false);
      std::vector<double> sums, per_byte;
      for (const std::string& choice : item.choices) {
        const bool space = !prefix.empty() && !IsSpace(prefix.back()) && !choice.empty() &&
                           !IsSpace(choice.front());
        const std::string continuation = (space ? " " : "") + choice;
        const std::vector<int32_t> whole = tokenizer->Encode(prefix + continuation, true, false);
        const int64_t from = std::min(static_cast<int64_t>(prefix_tokens.size()),
                                      static_cast<int64_t>(whole.size()) - 1);
        if (from < 1) return InvalidArgumentError("an empty prefix and choice");
        SLIMLM_ASSIGN_OR_RETURN(double sum, loglik(whole, from));
        sums.push_back(sum);
        per_byte.push_back(sum / static_cast<double>(std::max<size_t>(1, continuation.size())));
      }
      const int64_t pick = std::max_element(sums.begin(), sums.end()) - sums.begin();
      const int64_t pick_norm =
          std::max_element(per_byte.begin(), per_byte.end()) - per_byte.begin();
      right += pick == item.label ? 1 : 0;
      right_norm += pick_norm == item.label ? 1 : 0;
      score.picks.push_back(pick);
      score.loglik.push_back(std::move(sums));
      progress(++done, total);
    }
    score.items = static_cast<int64_t>(items.size());
    score.acc = static_cast<double>(right) / static_cast<double>(score.items);
    score.acc_norm = static_cast<double>(right_norm) / static_cast<double>(score.items);
    score.acc_stderr = FractionStderr(score.acc, score.items);
    score.acc_norm_stderr = FractionStderr(score.acc_norm, score.items);
    scores.push_back(std::move(score));
  }
  return scores;
}

}  // namespace slimlm::eval
