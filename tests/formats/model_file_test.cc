#include "slimlm/formats/model_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/test_files.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/formats/rope_pairing.h"
#include "slimlm/formats/safetensors.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing_formats::ReadBytes;
using testing_formats::WriteBytes;
using testing_formats::WriteText;

constexpr char kBin[] = "models/stories260K/stories260K.bin";
constexpr char kGguf[] = "models/stories260K/stories260K.gguf";
constexpr char kHf[] = "models/stories260K/hf";

LoadOptions NoTokenizer() {
  LoadOptions options;
  options.require_tokenizer = false;
  return options;
}

WeightStore MustLoad(const std::string& path, const LoadOptions& options = NoTokenizer()) {
  Result<WeightStore> store = LoadModel(path, options);
  EXPECT_TRUE(store.ok()) << path << ": " << store.status().message();
  return store.ok() ? std::move(store).value() : WeightStore();
}

float FloatAt(const StoredTensor& t, size_t i) {
  float f;
  std::memcpy(&f, t.data + 4 * i, 4);
  return f;
}

bool SameBytes(const StoredTensor& a, const StoredTensor& b) {
  return a.dtype == b.dtype && a.shape == b.shape && a.nbytes == b.nbytes &&
         std::memcmp(a.data, b.data, a.nbytes) == 0;
}

// Every tensor of `expected` is in `actual` with identical type, shape and bytes, and `actual`
// has no other tensor.
void ExpectSameTensors(const WeightStore& expected, const WeightStore& actual) {
  EXPECT_EQ(expected.tensors().size(), actual.tensors().size());
  for (const StoredTensor& t : expected.tensors()) {
    const StoredTensor* other = actual.Find(t.name);
    ASSERT_NE(other, nullptr) << t.name;
    EXPECT_TRUE(SameBytes(t, *other)) << t.name;
  }
}

TEST(ModelFile, DetectsFormats) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  auto detect = [](const std::string& rel) {
    return DetectModelFormat(testing::SharedDataPath(rel));
  };
  EXPECT_EQ(*detect(kBin), ModelFormat::kLlama2c);
  EXPECT_EQ(*detect(kGguf), ModelFormat::kGguf);
  EXPECT_EQ(*detect(kHf), ModelFormat::kHfFolder);
  EXPECT_EQ(*detect("models/stories260K/hf/model.safetensors"), ModelFormat::kHfFolder);
  EXPECT_EQ(*detect("models/stories260K/hf/config.json"), ModelFormat::kHfFolder);
  EXPECT_EQ(DetectModelFormat("/nonexistent/m.gguf").status().message(),
            "/nonexistent/m.gguf: no such file");
  EXPECT_EQ(LoadModel("/nonexistent/m.gguf").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ModelFormatName(ModelFormat::kHfFolder), "hf");
}

// The three published forms of stories260K hold the same weights: GGUF and llama2.c exactly, the
// HF folder after its q/k rows are permuted back to adjacent pairing.
TEST(ModelFile, ThreeFormatsHoldTheSameTensors) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  WeightStore bin = MustLoad(testing::SharedDataPath(kBin));
  WeightStore gguf = MustLoad(testing::SharedDataPath(kGguf));
  WeightStore hf = MustLoad(testing::SharedDataPath(kHf));
  EXPECT_EQ(bin.source_format, "llama2c");
  EXPECT_EQ(gguf.source_format, "gguf");
  EXPECT_EQ(hf.source_format, "hf");
  EXPECT_EQ(hf.metadata().GetString("slimlm.rope.pairing"), "half");
  EXPECT_FALSE(bin.metadata().Has("slimlm.rope.pairing"));
  ASSERT_EQ(bin.tensors().size(), 47u);
  EXPECT_EQ(hf.tensors().size(), 47u);
  EXPECT_EQ(gguf.tensors().size(), 48u);  // Plus a copy of the embedding as output.weight.
  EXPECT_TRUE(SameBytes(*gguf.Find("output.weight"), *gguf.Find("token_embd.weight")));

  for (const StoredTensor& t : bin.tensors()) {
    ASSERT_NE(gguf.Find(t.name), nullptr) << t.name;
    EXPECT_TRUE(SameBytes(t, *gguf.Find(t.name))) << t.name;
    const StoredTensor* h = hf.Find(t.name);
    ASSERT_NE(h, nullptr) << t.name;
    int64_t heads = RopeHeadsOfTensor(hf.metadata(), t.name);
    if (heads == 0) {
      EXPECT_TRUE(SameBytes(t, *h)) << t.name;
      continue;
    }
    std::vector<uint8_t> adjacent;
    ASSERT_TRUE(
        PermuteRopeTensor(*h, heads, RopePairing::kHalf, RopePairing::kAdjacent, &adjacent).ok());
    EXPECT_EQ(std::memcmp(adjacent.data(), t.data, t.nbytes), 0) << t.name;
    EXPECT_NE(std::memcmp(h->data, t.data, t.nbytes), 0) << t.name << " should be permuted";
  }
  // Known values, read from the file with an independent script.
  for (const WeightStore* s : {&bin, &gguf, &hf}) {
    const StoredTensor& embd = *s->Find("token_embd.weight");
    EXPECT_EQ(embd.shape, Shape({512, 64}));
    EXPECT_FLOAT_EQ(FloatAt(embd, 0), -0.29474878311157227f);
    EXPECT_FLOAT_EQ(FloatAt(embd, 1), 0.5618956089019775f);
    EXPECT_FLOAT_EQ(FloatAt(*s->Find("output_norm.weight"), 0), 2.4583089351654053f);
    EXPECT_EQ(s->metadata().GetInt("llama.block_count"), 5);
    EXPECT_EQ(s->metadata().GetInt("llama.attention.head_count_kv"), 4);
  }
  EXPECT_FLOAT_EQ(FloatAt(*bin.Find("blk.0.attn_q.weight"), 0), 0.04439278692007065f);
}

// bin -> GGUF -> HF -> GGUF keeps every tensor bit-identical, and the HF folder written from the
// llama2.c weights has the same model.safetensors bytes as the published derived folder.
TEST(ModelFile, ConvertChainKeepsEveryTensor) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  std::string dir = testing::MakeTempDir();
  WeightStore bin = MustLoad(testing::SharedDataPath(kBin));
  ASSERT_TRUE(SaveGguf(bin, dir + "/a.gguf").ok());
  WeightStore a = MustLoad(dir + "/a.gguf");
  ExpectSameTensors(bin, a);
  EXPECT_EQ(a.metadata().GetInt("llama.context_length"), 512);
  ASSERT_TRUE(SaveHfFolder(a, dir + "/hf").ok());
  EXPECT_TRUE(ReadBytes(dir + "/hf/model.safetensors") ==
              ReadBytes(testing::SharedDataPath("models/stories260K/hf/model.safetensors")));
  WeightStore hf = MustLoad(dir + "/hf");
  EXPECT_EQ(hf.metadata().GetString("slimlm.rope.pairing"), "half");
  EXPECT_EQ(hf.metadata().GetInt("llama.context_length"), 512);
  ASSERT_TRUE(SaveGguf(hf, dir + "/b.gguf").ok());
  WeightStore b = MustLoad(dir + "/b.gguf");
  ExpectSameTensors(bin, b);
  EXPECT_FALSE(b.metadata().Has("slimlm.rope.pairing"));
  // Same tensor order, hence the same data section, as the first GGUF.
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    EXPECT_EQ(a.tensors()[i].name, b.tensors()[i].name);
  }
  // HF -> HF leaves the weights byte-identical (no permutation: the store is already half).
  WeightStore published = MustLoad(testing::SharedDataPath(kHf));
  ASSERT_TRUE(SaveHfFolder(published, dir + "/hf2").ok());
  EXPECT_TRUE(ReadBytes(dir + "/hf2/model.safetensors") ==
              ReadBytes(testing::SharedDataPath("models/stories260K/hf/model.safetensors")));
  // GGUF -> GGUF through LoadModel/SaveGguf is byte-identical too.
  ASSERT_TRUE(SaveGguf(MustLoad(testing::SharedDataPath(kGguf)), dir + "/c.gguf").ok());
  EXPECT_TRUE(ReadBytes(dir + "/c.gguf") == ReadBytes(testing::SharedDataPath(kGguf)));
}

TEST(ModelFile, MissingTokenizerErrors) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  std::string dir = testing::MakeTempDir();
  fs::copy_file(testing::SharedDataPath(kBin), dir + "/m.bin");
  EXPECT_EQ(LoadModel(dir + "/m.bin").status().message(),
            "no tokenizer found beside " + dir + "/m.bin; pass --tokenizer FILE");
  EXPECT_TRUE(LoadModel(dir + "/m.bin", NoTokenizer()).ok());

  fs::copy(testing::SharedDataPath(kHf), dir + "/hf");
  EXPECT_EQ(LoadModel(dir + "/hf").status().message(),
            "no tokenizer.json in " + dir + "/hf; pass --tokenizer FILE");
  // A safetensors or config.json path means its folder.
  EXPECT_EQ(LoadModel(dir + "/hf/model.safetensors", NoTokenizer())->source_path, dir + "/hf");
  EXPECT_EQ(LoadModel(dir + "/hf/config.json", NoTokenizer())->source_path, dir + "/hf");

  WeightStore bin = MustLoad(dir + "/m.bin");
  ASSERT_TRUE(SaveGguf(bin, dir + "/m.gguf").ok());
  EXPECT_EQ(LoadModel(dir + "/m.gguf").status().message(),
            dir + "/m.gguf: no tokenizer in the file; pass --tokenizer FILE");
  // An explicit tokenizer that cannot be read is an error even when none is required.
  EXPECT_FALSE(LoadModel(dir + "/m.gguf", {"/nonexistent/tok.bin", false}).ok());
}

// With the tokenizer readers in place, tokenizers come from beside the model or from
// LoadOptions::tokenizer_path. Skipped while those readers are stubs.
TEST(ModelFile, AttachesTokenizers) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  Result<WeightStore> bin = LoadModel(testing::SharedDataPath(kBin));
  if (bin.status().code() == StatusCode::kUnsupported) GTEST_SKIP() << bin.status().message();
  ASSERT_TRUE(bin.ok()) << bin.status().message();
  const MetaValue* tokens = bin->metadata().Find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->array_size(), 512u);
  LoadOptions options;
  options.tokenizer_path = testing::SharedDataPath(kGguf);
  Result<WeightStore> hf = LoadModel(testing::SharedDataPath(kHf), options);
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  EXPECT_EQ(hf->metadata().Find("tokenizer.ggml.tokens")->array_size(), 512u);
}

TEST(ModelFile, HfOutputRejectsQuantizedTensors) {
  WeightStore store;
  Metadata& m = store.metadata();
  m.Set("general.architecture", MetaValue::String("llama"));
  m.Set("llama.embedding_length", MetaValue::U32(32));
  m.Set("llama.feed_forward_length", MetaValue::U32(64));
  m.Set("llama.block_count", MetaValue::U32(1));
  m.Set("llama.attention.head_count", MetaValue::U32(4));
  store.AddOwned("token_embd.weight", DType::kF32, Shape({16, 32}));
  store.AddOwned("blk.0.ffn_up.weight", DType::kQ8_0, Shape({64, 32}));
  std::string dir = testing::MakeTempDir() + "/out";
  EXPECT_THAT(SaveHfFolder(store, dir).message(),
              HasSubstr("tensor 'blk.0.ffn_up.weight' is q8_0; HF folders hold f32, f16 and bf16"));
  store.Remove("blk.0.ffn_up.weight");
  store.AddOwned("rope_freqs.weight", DType::kF32, Shape({4}));
  EXPECT_THAT(SaveHfFolder(store, dir).message(),
              HasSubstr("tensor 'rope_freqs.weight' has no Hugging Face Llama/Qwen name"));
}

// Qwen2 uses rotate-half pairing in GGUF as in HF: its q/k rows and biases are never permuted.
TEST(ModelFile, Qwen2IsNeverPermuted) {
  WeightStore store;
  Metadata& m = store.metadata();
  m.Set("general.architecture", MetaValue::String("qwen2"));
  m.Set("qwen2.context_length", MetaValue::U32(64));
  m.Set("qwen2.embedding_length", MetaValue::U32(16));
  m.Set("qwen2.feed_forward_length", MetaValue::U32(32));
  m.Set("qwen2.block_count", MetaValue::U32(1));
  m.Set("qwen2.attention.head_count", MetaValue::U32(2));
  m.Set("qwen2.attention.head_count_kv", MetaValue::U32(1));
  m.Set("qwen2.rope.dimension_count", MetaValue::U32(8));
  m.Set("qwen2.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-6f));
  m.Set("qwen2.rope.freq_base", MetaValue::F32(1e6f));
  m.Set("qwen2.vocab_size", MetaValue::U32(10));
  auto add = [&](const std::string& name, Shape shape) {
    auto* f = reinterpret_cast<float*>(store.AddOwned(name, DType::kF32, shape));
    for (int64_t i = 0; i < shape.NumElements(); ++i) f[i] = static_cast<float>(i) * 0.5f;
  };
  add("token_embd.weight", Shape({10, 16}));
  add("output_norm.weight", Shape({16}));
  add("blk.0.attn_q.weight", Shape({16, 16}));
  add("blk.0.attn_q.bias", Shape({16}));
  add("blk.0.attn_k.weight", Shape({8, 16}));
  add("blk.0.attn_k.bias", Shape({8}));
  add("blk.0.attn_v.weight", Shape({8, 16}));
  add("blk.0.attn_v.bias", Shape({8}));
  add("blk.0.attn_output.weight", Shape({16, 16}));
  add("blk.0.attn_norm.weight", Shape({16}));
  add("blk.0.ffn_gate.weight", Shape({32, 16}));
  add("blk.0.ffn_down.weight", Shape({16, 32}));
  add("blk.0.ffn_up.weight", Shape({32, 16}));
  add("blk.0.ffn_norm.weight", Shape({16}));
  std::string dir = testing::MakeTempDir();
  ASSERT_TRUE(SaveHfFolder(store, dir + "/hf").ok());
  WeightStore hf = MustLoad(dir + "/hf");
  EXPECT_FALSE(hf.metadata().Has("slimlm.rope.pairing"));
  ExpectSameTensors(store, hf);
  ASSERT_TRUE(SaveGguf(hf, dir + "/q.gguf").ok());
  WeightStore back = MustLoad(dir + "/q.gguf");
  ExpectSameTensors(store, back);
  for (size_t i = 0; i < m.size(); ++i) {
    const auto& [key, value] = m.entries()[i];
    ASSERT_NE(back.metadata().Find(key), nullptr) << key;
    EXPECT_TRUE(*back.metadata().Find(key) == value) << key;
  }
}

TEST(ModelFile, HfFolderErrors) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  std::string dir = testing::MakeTempDir();
  EXPECT_EQ(LoadModel(dir, NoTokenizer()).status().message(),
            dir + ": no config.json (not a Hugging Face model folder)");
  fs::copy_file(testing::SharedDataPath("models/stories260K/hf/config.json"), dir + "/config.json");
  EXPECT_EQ(LoadModel(dir, NoTokenizer()).status().message(),
            dir + ": no model.safetensors or model.safetensors.index.json");
  std::vector<float> x = {1, 2};
  std::vector<StoredTensor> tensors = {
      {"model.embed_tokens.weight", DType::kF32, Shape({1, 2}),
       reinterpret_cast<const uint8_t*>(x.data()), 8, nullptr},
      {"model.layers.0.mlp.experts.0.weight", DType::kF32, Shape({2}),
       reinterpret_cast<const uint8_t*>(x.data()), 8, nullptr},
      {"model.layers.0.self_attn.rotary_emb.inv_freq", DType::kF32, Shape({2}),
       reinterpret_cast<const uint8_t*>(x.data()), 8, nullptr}};
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors, {}).ok());
  EXPECT_EQ(LoadModel(dir, NoTokenizer()).status().message(),
            dir + ": unknown tensor names for a llama model: model.layers.0.mlp.experts.0.weight");
  tensors.erase(tensors.begin() + 1);
  ASSERT_TRUE(WriteSafetensors(dir + "/model.safetensors", tensors, {}).ok());
  Result<WeightStore> ok = LoadModel(dir, NoTokenizer());
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->tensors().size(), 1u);  // inv_freq is skipped.
  WriteText(dir + "/config.json", R"({"model_type":"llama","hidden_size":2,"intermediate_size":4,
      "num_hidden_layers":1,"num_attention_heads":1,"vocab_size":1,"tie_word_embeddings":false})");
  EXPECT_THAT(LoadModel(dir, NoTokenizer()).status().message(),
              HasSubstr("tie_word_embeddings=false but there is no lm_head.weight"));
}

}  // namespace
}  // namespace slimlm
