// The layouts follow each family's reference template (Hugging Face tokenizer_config.json).
#include "slimlm/serve/chat_template.h"

#include <array>
#include <utility>

namespace slimlm::serve {
namespace {

constexpr std::array<std::pair<ChatTemplate, std::string_view>, 7> kNames = {{
    {ChatTemplate::kChatMl, "chatml"},
    {ChatTemplate::kLlama2, "llama2"},
    {ChatTemplate::kLlama3, "llama3"},
    {ChatTemplate::kMistral, "mistral"},
    {ChatTemplate::kZephyr, "zephyr"},
    {ChatTemplate::kGemma, "gemma"},
    {ChatTemplate::kPhi3, "phi3"},
}};

bool Has(std::string_view text, std::string_view marker) {
  return text.find(marker) != std::string_view::npos;
}

Status CheckRoles(std::span<const ChatMessage> messages) {
  if (messages.empty()) return InvalidArgumentError("\"messages\" is empty");
  for (const ChatMessage& m : messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant") {
      return InvalidArgumentError("unknown message role \"{}\" (system, user or assistant)",
                                  m.role);
    }
  }
  return Status::Ok();
}

// For families without a system turn: the user and assistant turns, which must alternate starting
// with the user, and the system text (system messages come first), for the caller to fold into
// the first user turn.
Result<std::vector<ChatMessage>> Turns(std::span<const ChatMessage> messages,
                                       std::string* system_out) {
  std::string system;
  std::vector<ChatMessage> turns;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      if (!turns.empty()) {
        return InvalidArgumentError("this chat template takes system messages first only");
      }
      system += system.empty() ? m.content : "\n" + m.content;
      continue;
    }
    const std::string_view expected = turns.size() % 2 == 0 ? "user" : "assistant";
    if (m.role != expected) {
      return InvalidArgumentError(
          "this chat template needs user and assistant messages to alternate, starting with "
          "user");
    }
    turns.push_back(m);
  }
  if (turns.empty()) return InvalidArgumentError("there is no user message");
  *system_out = std::move(system);
  return turns;
}

// Turns with the system text put before the first user message.
Result<std::vector<ChatMessage>> FoldSystem(std::span<const ChatMessage> messages,
                                            std::string_view separator) {
  std::string system;
  SLIMLM_ASSIGN_OR_RETURN(std::vector<ChatMessage> turns, Turns(messages, &system));
  if (!system.empty()) turns[0].content = system + std::string(separator) + turns[0].content;
  return turns;
}

}  // namespace

std::string_view ChatTemplateName(ChatTemplate t) {
  for (const auto& [value, name] : kNames) {
    if (value == t) return name;
  }
  return "chatml";
}

Result<ChatTemplate> ParseChatTemplateName(std::string_view name) {
  for (const auto& [value, n] : kNames) {
    if (n == name) return value;
  }
  return InvalidArgumentError("unknown chat template \"{}\" (one of {})", name,
                              ChatTemplateNames());
}

std::string ChatTemplateNames() {
  std::string out;
  for (const auto& [value, name] : kNames) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

ChatTemplate DetectChatTemplate(std::string_view jinja, bool* known) {
  ChatTemplate t = ChatTemplate::kChatMl;
  bool found = true;
  if (Has(jinja, "<|start_header_id|>")) {
    t = ChatTemplate::kLlama3;
  } else if (Has(jinja, "<|im_start|>")) {
    t = ChatTemplate::kChatMl;
  } else if (Has(jinja, "<start_of_turn>")) {
    t = ChatTemplate::kGemma;
  } else if (Has(jinja, "<|assistant|>") && Has(jinja, "<|end|>")) {
    t = ChatTemplate::kPhi3;
  } else if (Has(jinja, "<|user|>")) {
    t = ChatTemplate::kZephyr;
  } else if (Has(jinja, "<<SYS>>")) {
    t = ChatTemplate::kLlama2;
  } else if (Has(jinja, "[INST]")) {
    t = ChatTemplate::kMistral;
  } else {
    found = false;
  }
  if (known != nullptr) *known = found;
  return t;
}

Result<std::string> ApplyChatTemplate(ChatTemplate t, std::span<const ChatMessage> messages) {
  SLIMLM_RETURN_IF_ERROR(CheckRoles(messages));
  std::string out;
  switch (t) {
    case ChatTemplate::kChatMl:
      for (const ChatMessage& m : messages) {
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      }
      return out + "<|im_start|>assistant\n";
    case ChatTemplate::kLlama3:
      for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      }
      return out + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case ChatTemplate::kZephyr:
      for (const ChatMessage& m : messages) {
        out += "<|" + m.role + "|>\n" + m.content + "</s>\n";
      }
      return out + "<|assistant|>\n";
    case ChatTemplate::kPhi3:
      for (const ChatMessage& m : messages) {
        out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      }
      return out + "<|assistant|>\n";
    case ChatTemplate::kLlama2: {
      // The system text sits inside the first [INST] in a <<SYS>> block; BOS starts every turn
      // after the first (the tokenizer adds the first).
      std::string system;
      SLIMLM_ASSIGN_OR_RETURN(std::vector<ChatMessage> turns, Turns(messages, &system));
      if (!system.empty()) {
        turns[0].content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + turns[0].content;
      }
      for (size_t i = 0; i < turns.size(); ++i) {
        if (turns[i].role == "user") {
          out += (i > 0 ? "<s>[INST] " : "[INST] ") + turns[i].content + " [/INST]";
        } else {
          out += " " + turns[i].content + " </s>";
        }
      }
      if (turns.back().role == "assistant") {
        return InvalidArgumentError("the last message must be the user's");
      }
      return out;
    }
    case ChatTemplate::kMistral: {
      SLIMLM_ASSIGN_OR_RETURN(std::vector<ChatMessage> turns, FoldSystem(messages, "\n\n"));
      for (const ChatMessage& m : turns) {
        out += m.role == "user" ? "[INST] " + m.content + " [/INST]" : m.content + "</s>";
      }
      if (turns.back().role == "assistant") {
        return InvalidArgumentError("the last message must be the user's");
      }
      return out;
    }
    case ChatTemplate::kGemma: {
      SLIMLM_ASSIGN_OR_RETURN(std::vector<ChatMessage> turns, FoldSystem(messages, "\n\n"));
      for (const ChatMessage& m : turns) {
        out += "<start_of_turn>" + std::string(m.role == "user" ? "user" : "model") + "\n" +
               m.content + "<end_of_turn>\n";
      }
      return out + "<start_of_turn>model\n";
    }
  }
  return InternalError("unknown chat template");
}

std::vector<std::string> ChatTemplateStops(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::kChatMl:
      return {"<|im_end|>", "<|im_start|>"};
    case ChatTemplate::kLlama3:
      return {"<|eot_id|>", "<|start_header_id|>"};
    case ChatTemplate::kZephyr:
      return {"</s>", "<|user|>"};
    case ChatTemplate::kPhi3:
      return {"<|end|>", "<|user|>"};
    case ChatTemplate::kLlama2:
    case ChatTemplate::kMistral:
      return {"</s>", "[INST]"};
    case ChatTemplate::kGemma:
      return {"<end_of_turn>", "<start_of_turn>"};
  }
  return {};
}

}  // namespace slimlm::serve
