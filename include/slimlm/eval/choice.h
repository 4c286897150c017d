// Multiple-choice scoring by log-likelihood (HellaSwag-style), and the comparison of prompt
// templates on the same items.
//
// For each item and template, the prefix is the template with {context} replaced by the item's
// context; each choice's continuation is the choice text, after a space unless the prefix ends
// in whitespace or the choice starts with it. As lm-evaluation-harness does, the continuation's
// tokens are those of tokenize(prefix + continuation) past the tokens of tokenize(prefix). The
// model picks the choice with the highest sum of log-probabilities over its tokens (acc), or the
// highest per byte of continuation text (acc_norm, lm-eval's length normalization).
#ifndef SLIMLM_EVAL_CHOICE_H_
#define SLIMLM_EVAL_CHOICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/op_profile.h"
#include "slimlm/core/status.h"
#include "slimlm/model/model.h"
#include "slimlm/tensor/dtype.h"

namespace slimlm::eval {

struct ChoiceItem {
  std::string context;
  std::vector<std::string> choices;
  int64_t label = 0;  // Index of the right choice.
};

// Reads JSON Lines: one object per line with the context in "context", "ctx" or "query", the
// choices in "choices" or "endings", and the right one's index in "label", "gold" or "answer"
// (a number, or a string holding one). Blank lines are skipped; errors name the line.
Result<std::vector<ChoiceItem>> ReadChoiceTasks(const std::string& path);

// The template with every {context} replaced; a template without {context} is an error.
Result<std::string> ApplyTemplate(const std::string& tmpl, const std::string& context);

struct ChoiceOptions {
  int64_t n_batch = 256;
  int n_threads = 0;
  DType kv_type = DType::kF16;
  OpProfile* profile = nullptr;  // When set, every forward operation adds its figures here.
};

struct TemplateScore {
  std::string tmpl;
  int64_t items = 0;
  double acc = 0, acc_stderr = 0;            // Fraction right by summed log-likelihood.
  double acc_norm = 0, acc_norm_stderr = 0;  // By log-likelihood per byte of continuation.
  std::vector<int64_t> picks;                // The choice picked for each item (acc).
  std::vector<std::vector<double>> loglik;   // Per item, per choice: summed log-likelihood.
};

// Scores every item under every template. progress(items done, items) over all templates.
Result<std::vector<TemplateScore>> ScoreChoices(const Model& model,
                                                const std::vector<ChoiceItem>& items,
                                                const std::vector<std::string>& templates,
                                                const ChoiceOptions& options,
                                                FunctionRef<void(int64_t, int64_t)> progress);

}  // namespace slimlm::eval

#endif  // SLIMLM_EVAL_CHOICE_H_
