#include "slimlm/formats/hf_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "formats/test_files.h"
#include "slimlm/core/file.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using ::testing::HasSubstr;

Metadata Parse(const std::string& json, HfConfigInfo* info = nullptr) {
  Metadata m;
  Result<HfConfigInfo> r = HfConfigToMetadata(json, "config.json", &m);
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (info != nullptr && r.ok()) *info = *r;
  return m;
}

std::string Error(const std::string& json) {
  Metadata m;
  return HfConfigToMetadata(json, "config.json", &m).status().message();
}

TEST(HfConfig, MapsTheStories260KConfig) {
  SLIMLM_REQUIRE_SHARED_DATA("models/stories260K/hf/config.json");
  std::string text =
      *ReadFileToString(testing::SharedDataPath("models/stories260K/hf/config.json"));
  HfConfigInfo info;
  Metadata m = Parse(text, &info);
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.model_type, "llama");
  EXPECT_EQ(info.tie_word_embeddings, true);
  testing_formats::ExpectStories260KConfig(m);
  EXPECT_EQ(m.GetInt("llama.attention.key_length"), 8);
  EXPECT_EQ(m.GetInt("llama.attention.value_length"), 8);
  EXPECT_EQ(m.Find("llama.attention.layer_norm_rms_epsilon")->type(), MetaType::kF32);
  EXPECT_FLOAT_EQ(*m.GetDouble("llama.rope.freq_base"), 10000.0f);
  EXPECT_EQ(m.GetInt("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(m.GetInt("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(m.entries()[0].first, "general.architecture");
}

TEST(HfConfig, MapsMistralQwen2AndQwen3) {
  HfConfigInfo info;
  Metadata mistral = Parse(R"({"model_type":"mistral","hidden_size":4096,"intermediate_size":14336,
      "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"head_dim":null,
      "max_position_embeddings":32768,"rms_norm_eps":1e-05,"rope_theta":1000000.0,
      "sliding_window":null,"vocab_size":32768,"bos_token_id":1,"eos_token_id":2,
      "tie_word_embeddings":false,"hidden_act":"silu"})",
                           &info);
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.model_type, "mistral");
  EXPECT_EQ(info.tie_word_embeddings, false);
  EXPECT_EQ(mistral.GetInt("llama.rope.dimension_count"), 128);
  EXPECT_FALSE(mistral.Has("llama.attention.key_length"));
  EXPECT_FLOAT_EQ(*mistral.GetDouble("llama.rope.freq_base"), 1e6f);

  Metadata qwen2 = Parse(R"({"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,
      "num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,
      "max_position_embeddings":32768,"rms_norm_eps":1e-06,"rope_theta":1000000.0,
      "vocab_size":151936,"bos_token_id":151643,"eos_token_id":151645,"tie_word_embeddings":true,
      "use_sliding_window":false})",
                         &info);
  EXPECT_EQ(info.architecture, "qwen2");
  EXPECT_EQ(qwen2.GetString("general.architecture"), "qwen2");
  EXPECT_EQ(qwen2.GetInt("qwen2.rope.dimension_count"), 64);
  EXPECT_EQ(qwen2.GetInt("qwen2.attention.head_count_kv"), 2);
  EXPECT_EQ(qwen2.GetInt("tokenizer.ggml.eos_token_id"), 151645);

  Metadata qwen3 = Parse(R"({"model_type":"qwen3","hidden_size":1024,"intermediate_size":3072,
      "num_hidden_layers":28,"num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,
      "max_position_embeddings":40960,"rms_norm_eps":1e-06,"rope_theta":1000000,
      "vocab_size":151936,"eos_token_id":[151645,151643]})");
  EXPECT_EQ(qwen3.GetInt("qwen3.embedding_length"), 1024);
  EXPECT_EQ(qwen3.GetInt("qwen3.rope.dimension_count"), 128);
  EXPECT_EQ(qwen3.GetInt("qwen3.attention.key_length"), 128);
  EXPECT_EQ(qwen3.GetInt("qwen3.context_length"), 40960);
  EXPECT_EQ(qwen3.GetInt("tokenizer.ggml.eos_token_id"), 151645);
  EXPECT_FALSE(qwen3.Has("tokenizer.ggml.bos_token_id"));
}

constexpr char kBase[] = R"("model_type":"llama","hidden_size":64,"intermediate_size":172,
    "num_hidden_layers":2,"num_attention_heads":8,"vocab_size":512,
    "max_position_embeddings":8192)";

TEST(HfConfig, MapsRopeScaling) {
  Metadata llama3 = Parse(std::string("{") + kBase + R"(,"rope_scaling":{"factor":8.0,
      "low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,
      "rope_type":"llama3"}})");
  EXPECT_EQ(llama3.GetString("llama.rope.scaling.type"), "llama3");
  EXPECT_FLOAT_EQ(*llama3.GetDouble("llama.rope.scaling.factor"), 8.0f);
  EXPECT_EQ(llama3.GetInt("llama.rope.scaling.original_context_length"), 8192);
  EXPECT_FLOAT_EQ(*llama3.GetDouble("slimlm.rope.scaling.low_freq_factor"), 1.0f);
  EXPECT_FLOAT_EQ(*llama3.GetDouble("slimlm.rope.scaling.high_freq_factor"), 4.0f);
  // Absent head_count_kv defaults to the head count.
  EXPECT_EQ(llama3.GetInt("llama.attention.head_count_kv"), 8);

  Metadata linear =
      Parse(std::string("{") + kBase + R"(,"rope_scaling":{"type":"linear","factor":2}})");
  EXPECT_EQ(linear.GetString("llama.rope.scaling.type"), "linear");
  EXPECT_FLOAT_EQ(*linear.GetDouble("llama.rope.scaling.factor"), 2.0f);
  EXPECT_FALSE(linear.Has("llama.rope.scaling.original_context_length"));

  Metadata yarn = Parse(std::string("{") + kBase +
                        R"(,"rope_scaling":{"rope_type":"yarn","factor":4.0,
      "original_max_position_embeddings":32768}})");
  EXPECT_EQ(yarn.GetString("llama.rope.scaling.type"), "yarn");
  EXPECT_EQ(yarn.GetInt("llama.rope.scaling.original_context_length"), 32768);

  Metadata dynamic =
      Parse(std::string("{") + kBase + R"(,"rope_scaling":{"type":"dynamic","factor":2.0}})");
  EXPECT_EQ(dynamic.GetString("llama.rope.scaling.type"), "dynamic");

  Metadata none = Parse(std::string("{") + kBase + R"(,"rope_scaling":{"rope_type":"default"}})");
  EXPECT_FALSE(none.Has("llama.rope.scaling.type"));
  Metadata null_scaling = Parse(std::string("{") + kBase + R"(,"rope_scaling":null})");
  EXPECT_FALSE(null_scaling.Has("llama.rope.scaling.type"));

  EXPECT_THAT(Error(std::string("{") + kBase + R"(,"rope_scaling":{"rope_type":"longrope"}})"),
              HasSubstr("rope_scaling type 'longrope' is not supported"));
  EXPECT_THAT(
      Error(std::string("{") + kBase + R"(,"rope_scaling":{"rope_type":"llama3","factor":8.0}})"),
      HasSubstr("needs original_max_position_embeddings, low_freq_factor"));
  EXPECT_THAT(Error(std::string("{") + kBase + R"(,"rope_scaling":{"rope_type":"linear"}})"),
              HasSubstr("needs a positive \"factor\""));
}

TEST(HfConfig, ClearErrors) {
  EXPECT_EQ(Error("{"), "config.json: not valid JSON");
  EXPECT_EQ(Error("[]"), "config.json: not a JSON object");
  EXPECT_EQ(Error(R"({"hidden_size":1})"), "config.json: missing \"model_type\"");
  EXPECT_EQ(Error(R"({"model_type":"gpt2"})"),
            "config.json: model_type 'gpt2' is not supported (llama, mistral, qwen2 and qwen3 "
            "are)");
  EXPECT_EQ(Error(R"({"model_type":"llama"})"), "config.json: missing \"hidden_size\"");
  EXPECT_EQ(Error(R"({"model_type":"llama","hidden_size":"64"})"),
            "config.json: \"hidden_size\" must be a positive integer (it is \"64\")");
  EXPECT_THAT(Error(std::string("{") + kBase + R"(,"hidden_act":"gelu"})"),
              HasSubstr("hidden_act \"gelu\" is not supported"));
  EXPECT_THAT(Error(std::string("{") + kBase + R"(,"num_key_value_heads":3})"),
              HasSubstr("num_key_value_heads 3 does not divide num_attention_heads 8"));
  EXPECT_THAT(Error(std::string("{") + kBase + R"(,"tie_word_embeddings":"yes"})"),
              HasSubstr("\"tie_word_embeddings\" is not a bool"));
  EXPECT_THAT(Error(std::string("{") + kBase + R"(,"eos_token_id":-2})"),
              HasSubstr("\"eos_token_id\" must be a token id"));
  EXPECT_THAT(Error(std::string("{") + kBase + R"(,"rms_norm_eps":"small"})"),
              HasSubstr("\"rms_norm_eps\" must be a number"));
}

TEST(HfConfig, ConfigFromStoreRoundTrips) {
  SLIMLM_REQUIRE_SHARED_DATA("models/stories260K/hf/config.json");
  std::string text =
      *ReadFileToString(testing::SharedDataPath("models/stories260K/hf/config.json"));
  WeightStore store;
  ASSERT_TRUE(HfConfigToMetadata(text, "config.json", &store.metadata()).ok());
  store.metadata().Set("llama.rope.scaling.type", MetaValue::String("llama3"));
  store.metadata().Set("llama.rope.scaling.factor", MetaValue::F32(8.0f));
  store.metadata().Set("llama.rope.scaling.original_context_length", MetaValue::U32(8192));
  store.metadata().Set("slimlm.rope.scaling.low_freq_factor", MetaValue::F32(1.0f));
  store.metadata().Set("slimlm.rope.scaling.high_freq_factor", MetaValue::F32(4.0f));
  store.AddOwned("token_embd.weight", DType::kF32, Shape({512, 64}));
  Result<std::string> config = HfConfigFromStore(store);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_THAT(*config, HasSubstr("\"rms_norm_eps\": 1e-05,"));
  EXPECT_THAT(*config, HasSubstr("\"rope_theta\": 10000.0,"));
  EXPECT_THAT(*config, HasSubstr("\"tie_word_embeddings\": true,"));
  EXPECT_THAT(*config, HasSubstr("\"architectures\": [\n    \"LlamaForCausalLM\"\n  ]"));
  EXPECT_THAT(*config, HasSubstr("\"torch_dtype\": \"float32\""));
  Metadata back;
  ASSERT_TRUE(HfConfigToMetadata(*config, "out.json", &back).ok());
  // The same keys and values (the order differs: scaling keys were appended above).
  EXPECT_EQ(back.size(), store.metadata().size());
  for (const auto& [key, value] : store.metadata().entries()) {
    ASSERT_NE(back.Find(key), nullptr) << key;
    EXPECT_TRUE(*back.Find(key) == value) << key;
  }

  WeightStore gpt2;
  gpt2.metadata().Set("general.architecture", MetaValue::String("gpt2"));
  EXPECT_THAT(HfConfigFromStore(gpt2).status().message(),
              HasSubstr("architecture 'gpt2' cannot be written as a Hugging Face config"));
}

}  // namespace
}  // namespace slimlm
