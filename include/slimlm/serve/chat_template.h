// Chat templates: turning a list of messages into the prompt text a chat model was trained on.
//
// Jinja is not interpreted. A model's tokenizer.chat_template is recognized as one of the common
// families by the markers it writes, and the family's layout is written here; --chat-template
// picks one by name. Each family also names the strings that end an assistant turn, used as stop
// strings when the model's vocabulary does not make them end-of-generation tokens.
#ifndef SLIMLM_SERVE_CHAT_TEMPLATE_H_
#define SLIMLM_SERVE_CHAT_TEMPLATE_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "slimlm/core/status.h"

namespace slimlm::serve {

enum class ChatTemplate { kChatMl, kLlama2, kLlama3, kMistral, kZephyr, kGemma, kPhi3 };

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant".
  std::string content;
};

// The names --chat-template takes: chatml, llama2, llama3, mistral, zephyr, gemma, phi3.
std::string_view ChatTemplateName(ChatTemplate t);
Result<ChatTemplate> ParseChatTemplateName(std::string_view name);
// "chatml, llama2, ...": for help texts and errors.
std::string ChatTemplateNames();

// The family of a Jinja template, by the markers it writes; ChatML (the most common) when the
// template is empty or unknown. `known` is set to whether it was recognized.
ChatTemplate DetectChatTemplate(std::string_view jinja, bool* known = nullptr);

// The prompt text for `messages`, ending where the assistant's reply begins. BOS is not
// written (the tokenizer adds it when the vocabulary asks); the text is meant to be encoded with
// control tokens recognized. kInvalidArgument for an unknown role, no message, or roles a family
// cannot express (Llama 2 and Mistral need user and assistant turns to alternate).
Result<std::string> ApplyChatTemplate(ChatTemplate t, std::span<const ChatMessage> messages);

// The strings that end an assistant turn in this family ("<|im_end|>" for ChatML...).
std::vector<std::string> ChatTemplateStops(ChatTemplate t);

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_CHAT_TEMPLATE_H_
