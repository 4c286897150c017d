// Chat templates: each family's exact layout for one conversation (as the family's reference
// Jinja template renders it), recognition of real templates, and refused conversations.
#include "slimlm/serve/chat_template.h"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/test_data.h"

namespace slimlm::serve {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."},
    {"user", "Hi"},
    {"assistant", "Hello."},
    {"user", "Name a color."},
};

std::string Apply(ChatTemplate t, const std::vector<ChatMessage>& messages = kConversation) {
  Result<std::string> text = ApplyChatTemplate(t, messages);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : "";
}

bool Try(ChatTemplate t, const std::vector<ChatMessage>& messages) {
  return ApplyChatTemplate(t, messages).ok();
}

TEST(ChatTemplateTest, EachFamilyWritesItsLayout) {
  EXPECT_EQ(Apply(ChatTemplate::kChatMl),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nName a color.<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(Apply(ChatTemplate::kLlama3),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nName a color.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(Apply(ChatTemplate::kLlama2),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Name a color. "
            "[/INST]");
  EXPECT_EQ(Apply(ChatTemplate::kMistral),
            "[INST] Be brief.\n\nHi [/INST]Hello.</s>[INST] Name a color. [/INST]");
  EXPECT_EQ(Apply(ChatTemplate::kZephyr),
            "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\n"
            "Name a color.</s>\n<|assistant|>\n");
  EXPECT_EQ(Apply(ChatTemplate::kPhi3),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n"
            "<|user|>\nName a color.<|end|>\n<|assistant|>\n");
  EXPECT_EQ(Apply(ChatTemplate::kGemma),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello."
            "<end_of_turn>\n<start_of_turn>user\nName a color.<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(ChatTemplateTest, NamesRoundTrip) {
  for (ChatTemplate t :
       {ChatTemplate::kChatMl, ChatTemplate::kLlama2, ChatTemplate::kLlama3, ChatTemplate::kMistral,
        ChatTemplate::kZephyr, ChatTemplate::kGemma, ChatTemplate::kPhi3}) {
    Result<ChatTemplate> parsed = ParseChatTemplateName(ChatTemplateName(t));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, t);
    EXPECT_FALSE(ChatTemplateStops(t).empty());
  }
  Result<ChatTemplate> bad = ParseChatTemplateName("vicuna");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("chatml, llama2"), std::string::npos);
}

TEST(ChatTemplateTest, RecognizesFamiliesByTheirMarkers) {
  bool known = false;
  EXPECT_EQ(DetectChatTemplate("{{ '<|start_header_id|>' + message['role'] }}", &known),
            ChatTemplate::kLlama3);
  EXPECT_TRUE(known);
  EXPECT_EQ(DetectChatTemplate("{{ '<|im_start|>' }}"), ChatTemplate::kChatMl);
  EXPECT_EQ(DetectChatTemplate("{{ bos_token + '[INST] <<SYS>>\\n' }}"), ChatTemplate::kLlama2);
  EXPECT_EQ(DetectChatTemplate("{{ '[INST] ' + message['content'] + ' [/INST]' }}"),
            ChatTemplate::kMistral);
  EXPECT_EQ(DetectChatTemplate("{{ '<|user|>\\n' + message['content'] + eos_token }}"),
            ChatTemplate::kZephyr);
  EXPECT_EQ(DetectChatTemplate("{{ '<|user|>' }}{{ '<|end|>' }}{{ '<|assistant|>' }}"),
            ChatTemplate::kPhi3);
  EXPECT_EQ(DetectChatTemplate("{{ '<start_of_turn>' + role }}"), ChatTemplate::kGemma);
  EXPECT_EQ(DetectChatTemplate("", &known), ChatTemplate::kChatMl);
  EXPECT_FALSE(known);
  EXPECT_EQ(DetectChatTemplate("{{ messages }}", &known), ChatTemplate::kChatMl);
  EXPECT_FALSE(known);
}

TEST(ChatTemplateTest, RecognizesQwen3sRealTemplate) {
  SLIMLM_REQUIRE_SHARED_DATA("tokenizers/hf/qwen3/tokenizer_config.json");
  std::ifstream in(testing::SharedDataPath("tokenizers/hf/qwen3/tokenizer_config.json"));
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json config = nlohmann::json::parse(text.str());
  bool known = false;
  EXPECT_EQ(DetectChatTemplate(config["chat_template"].get<std::string>(), &known),
            ChatTemplate::kChatMl);
  EXPECT_TRUE(known);
}

TEST(ChatTemplateTest, RefusesWhatAFamilyCannotSay) {
  EXPECT_FALSE(Try(ChatTemplate::kChatMl, {}));
  EXPECT_FALSE(Try(ChatTemplate::kChatMl, {{"tool", "x"}}));
  // Llama 2 and Mistral: turns alternate, starting with the user, ending with the user.
  EXPECT_FALSE(Try(ChatTemplate::kLlama2, {{"assistant", "x"}}));
  EXPECT_FALSE(Try(ChatTemplate::kMistral, {{"user", "a"}, {"user", "b"}}));
  EXPECT_FALSE(Try(ChatTemplate::kMistral, {{"user", "a"}, {"assistant", "b"}}));
  EXPECT_FALSE(Try(ChatTemplate::kGemma, {{"system", "s"}}));
  EXPECT_FALSE(Try(ChatTemplate::kLlama2, {{"user", "a"}, {"system", "late"}}));
}

}  // namespace
}  // namespace slimlm::serve
