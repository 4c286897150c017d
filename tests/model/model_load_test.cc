// Model::FromStore and ModelConfig::FromMetadata reject inconsistent models with messages that
// name the file, the key or tensor, and what was expected.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "slimlm/model/model.h"
#include "slimlm/model/presets.h"

namespace slimlm {
namespace {

using ::testing::HasSubstr;

WeightStore TinyStore(const std::string& preset = "tiny") {
  InitOptions options;
  options.seed = 1;
  return std::move(*MakeRandomModel(*FindPreset(preset), options));
}

TEST(ModelLoad, RandomPresetsLoadWithTheirShapes) {
  for (const ModelPreset& p : ModelPresets()) {
    if (p.config.dim > 256) continue;  // Keep the test fast: only the tiny presets.
    auto model = Model::FromStore(TinyStore(p.name), true);
    ASSERT_TRUE(model.ok()) << p.name << ": " << model.status().message();
    EXPECT_EQ((*model)->config().arch, p.config.arch);
    EXPECT_EQ((*model)->tied_embeddings(), p.tied_embeddings);
    EXPECT_EQ((*model)->tokenizer()->vocab_size(), p.config.n_vocab);
  }
}

TEST(ModelLoad, UnknownArchitectureIsUnsupported) {
  WeightStore store = TinyStore();
  store.source_path = "m.gguf";
  store.metadata().Set("general.architecture", MetaValue::String("gpt-neox"));
  auto model = Model::FromStore(std::move(store), false);
  EXPECT_EQ(model.status().code(), StatusCode::kUnsupported);
  EXPECT_THAT(model.status().message(), HasSubstr("m.gguf: unsupported architecture 'gpt-neox'"));
}

TEST(ModelLoad, MissingKeyAndInconsistentHeadsAreNamed) {
  WeightStore a = TinyStore();
  a.source_path = "m.gguf";
  a.metadata().Erase("llama.block_count");
  EXPECT_EQ(Model::FromStore(std::move(a), false).status().message(),
            "m.gguf: missing metadata key 'llama.block_count'");
  WeightStore b = TinyStore();
  b.source_path = "m.gguf";
  b.metadata().Set("llama.attention.head_count_kv", MetaValue::U32(3));
  EXPECT_THAT(Model::FromStore(std::move(b), false).status().message(),
              HasSubstr("head count 4 is not a multiple of the key/value head count 3"));
  WeightStore c = TinyStore();
  c.source_path = "m.gguf";
  c.metadata().Set("llama.block_count", MetaValue::String("two"));
  EXPECT_THAT(Model::FromStore(std::move(c), false).status().message(),
              HasSubstr("'llama.block_count' is a string, expected an integer"));
}

TEST(ModelLoad, WrongTensorShapeOrMissingTensorIsNamed) {
  WeightStore store = TinyStore();
  store.source_path = "m.gguf";
  store.Replace("blk.1.attn_k.weight", DType::kF32, Shape{64, 64});
  EXPECT_EQ(Model::FromStore(std::move(store), false).status().message(),
            "m.gguf: tensor 'blk.1.attn_k.weight' has shape [64, 64], expected [32, 64]");
  WeightStore missing = TinyStore();
  missing.source_path = "m.gguf";
  missing.Remove("blk.0.ffn_down.weight");
  EXPECT_EQ(Model::FromStore(std::move(missing), false).status().message(),
            "m.gguf: missing tensor 'blk.0.ffn_down.weight'");
  WeightStore qwen2 = TinyStore("tiny-qwen2");
  qwen2.source_path = "q.gguf";
  qwen2.Remove("blk.0.attn_q.bias");
  EXPECT_EQ(Model::FromStore(std::move(qwen2), false).status().message(),
            "q.gguf: missing tensor 'blk.0.attn_q.bias'");
}

TEST(ModelLoad, MissingTokenizerIsAnErrorOnlyWhenRequired) {
  WeightStore store = TinyStore();
  store.source_path = "m.gguf";
  std::vector<std::string> keys;
  for (const auto& [key, value] : store.metadata().entries()) {
    if (key.starts_with("tokenizer.")) keys.push_back(key);
  }
  for (const auto& key : keys) store.metadata().Erase(key);
  WeightStore copy;
  copy.metadata() = store.metadata();
  for (const StoredTensor& t : store.tensors()) {
    copy.AddBorrowed(t.name, t.dtype, t.shape, t.data, t.owner);
  }
  copy.source_path = "m.gguf";
  auto required = Model::FromStore(std::move(store), true);
  EXPECT_EQ(required.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(required.status().message(), HasSubstr("--tokenizer"));
  auto optional = Model::FromStore(std::move(copy), false);
  ASSERT_TRUE(optional.ok());
  EXPECT_EQ((*optional)->tokenizer(), nullptr);
}

TEST(ModelLoad, F16NormsAreConvertedToF32) {
  WeightStore store = TinyStore();
  uint8_t* norm = store.Replace("output_norm.weight", DType::kF16, Shape{64});
  for (int i = 0; i < 64; ++i) {
    norm[2 * i] = 0x00;
    norm[2 * i + 1] = 0x40;  // f16 2.0
  }
  auto model = Model::FromStore(std::move(store), false);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->output_norm()[0], 2.0f);
  EXPECT_EQ((*model)->output_norm()[63], 2.0f);
}

}  // namespace
}  // namespace slimlm
