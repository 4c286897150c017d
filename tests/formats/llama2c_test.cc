#include "slimlm/formats/llama2c.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/test_files.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using ::testing::HasSubstr;
using testing_formats::ByteBuilder;
using testing_formats::ReadBytes;
using testing_formats::WriteBytes;

constexpr char kStoriesBin[] = "models/stories260K/stories260K.bin";

// The stories260K arrays, read independently of the reader with the offsets of SOURCES.md.
struct Checkpoint {
  int dim = 64, hidden = 172, layers = 5, heads = 8, kv_heads = 4, vocab = 512, seq_len = 512;
  std::vector<float> tok, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final;
};

Checkpoint LoadStoriesArrays() {
  std::vector<uint8_t> bytes = ReadBytes(testing::SharedDataPath(kStoriesBin));
  Checkpoint c;
  size_t offset = 28;
  auto take = [&](size_t n) {
    std::vector<float> v(n);
    std::memcpy(v.data(), bytes.data() + offset, n * 4);
    offset += n * 4;
    return v;
  };
  c.tok = take(512 * 64);
  c.rms_att = take(5 * 64);
  c.wq = take(5 * 64 * 64);
  c.wk = take(5 * 32 * 64);
  c.wv = take(5 * 32 * 64);
  c.wo = take(5 * 64 * 64);
  c.rms_ffn = take(5 * 64);
  c.w1 = take(5 * 172 * 64);
  c.w2 = take(5 * 64 * 172);
  c.w3 = take(5 * 172 * 64);
  c.rms_final = take(64);
  return c;
}

// The floats of layer `layer` of a stacked array of `per_layer` values.
std::vector<float> Slice(const std::vector<float>& a, size_t per_layer, int layer) {
  auto begin = a.begin() + static_cast<std::ptrdiff_t>(per_layer * static_cast<size_t>(layer));
  return std::vector<float>(begin, begin + static_cast<std::ptrdiff_t>(per_layer));
}

std::vector<float> Floats(const StoredTensor& t) {
  std::vector<float> v(t.nbytes / 4);
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

TEST(Llama2c, ReadsStories260K) {
  SLIMLM_REQUIRE_SHARED_DATA(kStoriesBin);
  Result<WeightStore> store = ReadLlama2c(testing::SharedDataPath(kStoriesBin));
  ASSERT_TRUE(store.ok()) << store.status().message();
  const Metadata& m = store->metadata();
  testing_formats::ExpectStories260KConfig(m);
  EXPECT_FLOAT_EQ(*m.GetDouble("llama.rope.freq_base"), 10000.0f);
  // Shared classifier: 2 global tensors (no output.weight) and 9 per layer.
  EXPECT_EQ(store->tensors().size(), 2u + 5u * 9u);
  EXPECT_EQ(store->Find("output.weight"), nullptr);
  EXPECT_EQ(store->tensors()[0].name, "token_embd.weight");
  EXPECT_EQ(store->tensors()[2].name, "blk.0.attn_q.weight");
  EXPECT_EQ(store->Find("token_embd.weight")->shape, Shape({512, 64}));
  EXPECT_EQ(store->Find("blk.2.attn_k.weight")->shape, Shape({32, 64}));
  EXPECT_EQ(store->Find("blk.2.ffn_gate.weight")->shape, Shape({172, 64}));
  EXPECT_EQ(store->Find("blk.2.ffn_down.weight")->shape, Shape({64, 172}));

  Checkpoint c = LoadStoriesArrays();
  EXPECT_EQ(Floats(*store->Find("token_embd.weight")), c.tok);
  EXPECT_EQ(Floats(*store->Find("output_norm.weight")), c.rms_final);
  for (int l = 0; l < 5; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    EXPECT_EQ(Floats(*store->Find(p + "attn_norm.weight")), Slice(c.rms_att, 64, l));
    EXPECT_EQ(Floats(*store->Find(p + "attn_q.weight")), Slice(c.wq, 64 * 64, l));
    EXPECT_EQ(Floats(*store->Find(p + "attn_k.weight")), Slice(c.wk, 32 * 64, l));
    EXPECT_EQ(Floats(*store->Find(p + "attn_v.weight")), Slice(c.wv, 32 * 64, l));
    EXPECT_EQ(Floats(*store->Find(p + "attn_output.weight")), Slice(c.wo, 64 * 64, l));
    EXPECT_EQ(Floats(*store->Find(p + "ffn_norm.weight")), Slice(c.rms_ffn, 64, l));
    EXPECT_EQ(Floats(*store->Find(p + "ffn_gate.weight")), Slice(c.w1, 172 * 64, l));
    EXPECT_EQ(Floats(*store->Find(p + "ffn_down.weight")), Slice(c.w2, 64 * 172, l));
    EXPECT_EQ(Floats(*store->Find(p + "ffn_up.weight")), Slice(c.w3, 172 * 64, l));
  }
  // Zero-copy: the first tensor is the mapped file right after the 28-byte header.
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kStoriesBin));
  EXPECT_EQ(std::memcmp(store->Find("token_embd.weight")->data, file.data() + 28, 64), 0);
}

void AppendFloats(ByteBuilder* b, const std::vector<float>& v) {
  for (float f : v) b->F32(f);
}

ByteBuilder VersionedHeader(const Checkpoint& c, int version, bool shared, int group_size) {
  ByteBuilder b;
  b.U32(kLlama2cMagic).I32(version);
  for (int v : {c.dim, c.hidden, c.layers, c.heads, c.kv_heads, c.vocab, c.seq_len}) b.I32(v);
  b.U8(shared ? 1 : 0);
  if (version == 2) b.I32(group_size);
  b.PadTo(256);
  return b;
}

TEST(Llama2c, ReadsVersion1Exports) {
  SLIMLM_REQUIRE_SHARED_DATA(kStoriesBin);
  Checkpoint c = LoadStoriesArrays();
  // A separate classifier: the embedding negated, so the two are told apart.
  std::vector<float> wcls = c.tok;
  for (float& f : wcls) f = -f;
  ByteBuilder b = VersionedHeader(c, 1, /*shared=*/false, 0);
  for (const auto* a : {&c.rms_att, &c.rms_ffn, &c.rms_final, &c.tok, &c.wq, &c.wk, &c.wv, &c.wo,
                        &c.w1, &c.w2, &c.w3, &wcls}) {
    AppendFloats(&b, *a);
  }
  Result<WeightStore> store = ParseLlama2c(b.bytes(), "v1.bin", nullptr);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(store->tensors().size(), 3u + 5u * 9u);
  EXPECT_EQ(store->tensors()[2].name, "output.weight");
  EXPECT_EQ(Floats(*store->Find("output.weight")), wcls);
  EXPECT_EQ(Floats(*store->Find("token_embd.weight")), c.tok);
  EXPECT_EQ(Floats(*store->Find("blk.4.ffn_down.weight")), Slice(c.w2, 64 * 172, 4));
  EXPECT_EQ(Floats(*store->Find("blk.1.attn_norm.weight")), Slice(c.rms_att, 64, 1));
}

// llama2.c export.py's quantize_q80: per group, scale = max|w| / 127, q = round(w / scale).
void QuantizeQ80(const std::vector<float>& w, int group, std::vector<int8_t>* q,
                 std::vector<float>* scales) {
  for (size_t g = 0; g < w.size() / static_cast<size_t>(group); ++g) {
    float wmax = 0;
    for (int i = 0; i < group; ++i) wmax = std::max(wmax, std::fabs(w[g * group + i]));
    float scale = wmax / 127.0f;
    scales->push_back(scale);
    for (int i = 0; i < group; ++i) {
      q->push_back(static_cast<int8_t>(std::lround(scale == 0 ? 0 : w[g * group + i] / scale)));
    }
  }
}

TEST(Llama2c, DequantizesVersion2Exports) {
  SLIMLM_REQUIRE_SHARED_DATA(kStoriesBin);
  Checkpoint c = LoadStoriesArrays();
  constexpr int kGroup = 64;
  ByteBuilder b = VersionedHeader(c, 2, /*shared=*/true, kGroup);
  for (const auto* a : {&c.rms_att, &c.rms_ffn, &c.rms_final}) AppendFloats(&b, *a);
  // Expected values by tensor name: q * scale, computed here.
  std::vector<std::pair<std::string, std::vector<float>>> expected;
  auto add = [&](const std::string& name, const std::vector<float>& w) {
    std::vector<int8_t> q;
    std::vector<float> s;
    QuantizeQ80(w, kGroup, &q, &s);
    for (int8_t v : q) b.Pod(v);
    AppendFloats(&b, s);
    std::vector<float> deq(w.size());
    for (size_t i = 0; i < w.size(); ++i) deq[i] = static_cast<float>(q[i]) * s[i / kGroup];
    expected.emplace_back(name, deq);
  };
  add("token_embd.weight", c.tok);
  struct Matrix {
    const char* name;
    const std::vector<float>* values;
    size_t per_layer;
  };
  const Matrix matrices[] = {{"attn_q", &c.wq, 64 * 64},    {"attn_k", &c.wk, 32 * 64},
                             {"attn_v", &c.wv, 32 * 64},    {"attn_output", &c.wo, 64 * 64},
                             {"ffn_gate", &c.w1, 172 * 64}, {"ffn_down", &c.w2, 64 * 172},
                             {"ffn_up", &c.w3, 172 * 64}};
  for (const Matrix& mat : matrices) {
    for (int l = 0; l < 5; ++l) {
      add("blk." + std::to_string(l) + "." + mat.name + ".weight",
          Slice(*mat.values, mat.per_layer, l));
    }
  }
  Result<WeightStore> store = ParseLlama2c(b.bytes(), "v2.bin", nullptr);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(store->tensors().size(), 2u + 5u * 9u);
  for (const auto& [name, values] : expected) {
    ASSERT_NE(store->Find(name), nullptr) << name;
    EXPECT_EQ(Floats(*store->Find(name)), values) << name;
  }
  // Norms stay exact, and quantization error is small.
  EXPECT_EQ(Floats(*store->Find("blk.3.ffn_norm.weight")), Slice(c.rms_ffn, 64, 3));
  EXPECT_NEAR(Floats(*store->Find("token_embd.weight"))[5], c.tok[5], 0.05);

  std::vector<uint8_t> bad_group = b.bytes();
  int32_t group = 48;  // Does not divide 32 x 64.
  std::memcpy(bad_group.data() + 37, &group, 4);
  EXPECT_THAT(ParseLlama2c(bad_group, "v2.bin", nullptr).status().message(),
              HasSubstr("group size 48 does not divide"));
}

std::vector<uint8_t> LegacyHeader(std::vector<int32_t> fields) {
  ByteBuilder b;
  for (int32_t v : fields) b.I32(v);
  return b.bytes();
}

TEST(Llama2c, ClearErrorsForBadHeadersAndSizes) {
  auto message = [](const std::vector<uint8_t>& bytes) {
    return ParseLlama2c(bytes, "m.bin", nullptr).status().message();
  };
  EXPECT_EQ(message(LegacyHeader({64, 172, 5, 8, 4, 512})),
            "m.bin: truncated: llama2.c header needs 28 bytes at byte 0, file has 24 bytes");
  EXPECT_THAT(message(LegacyHeader({0, 172, 5, 8, 4, 512, 512})),
              HasSubstr("m.bin: not a valid llama2.c checkpoint: every size must be positive "
                        "(header: dim=0, hidden_dim=172"));
  EXPECT_THAT(message(LegacyHeader({64, 172, 5, 7, 7, 512, 512})),
              HasSubstr("n_heads must divide dim"));
  EXPECT_THAT(message(LegacyHeader({64, 172, 5, 8, 3, 512, 512})),
              HasSubstr("n_kv_heads must divide n_heads"));
  EXPECT_THAT(message(LegacyHeader({64, 172, 5, 64, 64, 512, 512})), HasSubstr("must be even"));
  // Valid header, no weights: the size check names both sizes.
  EXPECT_EQ(message(LegacyHeader({64, 172, 5, 8, 4, 512, 512})),
            "m.bin: file size 28 bytes does not match the llama2.c header, which needs 1056540 "
            "bytes (dim=64, hidden_dim=172, n_layers=5, n_heads=8, n_kv_heads=4, vocab_size=512, "
            "seq_len=512, shared classifier)");
  EXPECT_THAT(message(LegacyHeader({64, 172, 5, 8, 4, -512, 512})),
              HasSubstr("which needs 1187612 bytes"));
  EXPECT_THAT(message(LegacyHeader({1 << 30, 1 << 30, 1 << 30, 2, 2, 1 << 30, 1 << 30})),
              HasSubstr("which needs more than 2^64 bytes"));
  ByteBuilder v9;
  v9.U32(kLlama2cMagic).I32(9);
  EXPECT_EQ(message(v9.bytes()),
            "m.bin: llama2.c export version 9 is not supported (0, 1 and 2 are)");
}

TEST(Llama2c, SizeMismatchOfTheRealFile) {
  SLIMLM_REQUIRE_SHARED_DATA(kStoriesBin);
  std::vector<uint8_t> bytes = ReadBytes(testing::SharedDataPath(kStoriesBin));
  bytes.push_back(0);
  EXPECT_THAT(ParseLlama2c(bytes, "m.bin", nullptr).status().message(),
              HasSubstr("file size 1056541 bytes does not match the llama2.c header, which needs "
                        "1056540 bytes"));
}

TEST(Llama2c, FindsTheTokenizerBesideTheCheckpoint) {
  std::string dir = testing::MakeTempDir();
  WriteBytes(dir + "/model.bin", {1});
  EXPECT_EQ(FindLlama2cTokenizer(dir + "/model.bin"), "");
  WriteBytes(dir + "/tok512.bin", {1});
  WriteBytes(dir + "/tok32000.bin", {1});
  EXPECT_EQ(FindLlama2cTokenizer(dir + "/model.bin"), dir + "/tok32000.bin");
  WriteBytes(dir + "/tokenizer.bin", {1});
  EXPECT_EQ(FindLlama2cTokenizer(dir + "/model.bin"), dir + "/tokenizer.bin");
  SLIMLM_REQUIRE_SHARED_DATA(kStoriesBin);
  EXPECT_EQ(
      std::filesystem::path(FindLlama2cTokenizer(testing::SharedDataPath(kStoriesBin))).filename(),
      "tok512.bin");
}

}  // namespace
}  // namespace slimlm
