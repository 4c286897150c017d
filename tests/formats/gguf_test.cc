#include "slimlm/formats/gguf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "formats/test_files.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using ::testing::HasSubstr;
using testing_formats::ReadBytes;
using testing_formats::WriteBytes;

constexpr char kStories[] = "models/stories260K/stories260K.gguf";

float FirstFloat(const StoredTensor& t) {
  float f;
  std::memcpy(&f, t.data, sizeof(f));
  return f;
}

TEST(Gguf, ReadsStories260K) {
  SLIMLM_REQUIRE_SHARED_DATA(kStories);
  Result<WeightStore> store = ReadGguf(testing::SharedDataPath(kStories));
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(store->source_format, "gguf");
  EXPECT_EQ(store->tensors().size(), 48u);
  EXPECT_EQ(store->metadata().size(), 19u);
  EXPECT_EQ(store->metadata().GetString("general.architecture"), "llama");
  EXPECT_EQ(store->metadata().GetInt("llama.block_count"), 5);
  EXPECT_EQ(store->metadata().GetInt("llama.embedding_length"), 64);
  EXPECT_EQ(store->metadata().GetInt("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(store->metadata().GetInt("tokenizer.ggml.seperator_token_id"), 4294967295);
  EXPECT_FLOAT_EQ(*store->metadata().GetDouble("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  const MetaValue* tokens = store->metadata().Find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_NE(tokens->AsStringArray(), nullptr);
  EXPECT_EQ(tokens->array_size(), 512u);
  EXPECT_EQ((*tokens->AsStringArray())[0], "<unk>");
  EXPECT_EQ((*tokens->AsStringArray())[3], "<0x00>");

  const StoredTensor* embd = store->Find("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->shape, Shape({512, 64}));
  EXPECT_EQ(embd->dtype, DType::kF32);
  EXPECT_EQ(embd->nbytes, 512u * 64 * 4);
  EXPECT_EQ(store->tensors()[0].name, "token_embd.weight");
  EXPECT_EQ(store->Find("blk.0.attn_k.weight")->shape, Shape({32, 64}));
  EXPECT_EQ(store->Find("blk.4.ffn_down.weight")->shape, Shape({64, 172}));
  EXPECT_EQ(store->Find("output_norm.weight")->shape, Shape({64}));
  // The data is the mapped file's bytes: the first tensor starts at the 32-aligned header end.
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kStories));
  EXPECT_EQ(std::memcmp(embd->data, file.data() + 14176, 16), 0);
  EXPECT_NE(FirstFloat(*embd), 0.0f);
}

TEST(Gguf, RoundTripIsByteIdentical) {
  SLIMLM_REQUIRE_SHARED_DATA(kStories);
  std::string source = testing::SharedDataPath(kStories);
  Result<WeightStore> store = ReadGguf(source);
  ASSERT_TRUE(store.ok()) << store.status().message();
  std::string out = testing::MakeTempDir() + "/copy.gguf";
  ASSERT_TRUE(WriteGguf(*store, out).ok());
  std::vector<uint8_t> a = ReadBytes(source);
  std::vector<uint8_t> b = ReadBytes(out);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b);
}

TEST(Gguf, VocabOnlyFilesRoundTrip) {
  for (const char* name : {"tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf",
                           "tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf"}) {
    SLIMLM_REQUIRE_SHARED_DATA(name);
    std::string path = testing::SharedDataPath(name);
    Result<Metadata> metadata = ReadGgufMetadata(path);
    ASSERT_TRUE(metadata.ok()) << metadata.status().message();
    Result<WeightStore> store = ReadGguf(path);
    ASSERT_TRUE(store.ok()) << store.status().message();
    EXPECT_TRUE(store->tensors().empty());
    EXPECT_TRUE(*metadata == store->metadata());
    std::string out = testing::MakeTempDir() + "/vocab.gguf";
    ASSERT_TRUE(WriteGguf(*store, out).ok());
    EXPECT_TRUE(ReadBytes(path) == ReadBytes(out)) << name;
  }
  std::string spm = testing::SharedDataPath("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf");
  Metadata m = *ReadGgufMetadata(spm);
  EXPECT_EQ(m.size(), 22u);
  EXPECT_EQ(m.GetString("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(m.Find("tokenizer.ggml.tokens")->array_size(), 32000u);
  EXPECT_EQ(m.GetBool("tokenizer.ggml.add_bos_token"), true);
  Metadata g =
      *ReadGgufMetadata(testing::SharedDataPath("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf"));
  EXPECT_EQ(g.Find("tokenizer.ggml.merges")->array_size(), 50000u);
  EXPECT_EQ(g.GetInt("tokenizer.ggml.bos_token_id"), 50256);
}

// Every value type, nested arrays and empty values survive a write and a read.
TEST(Gguf, AllMetadataTypesRoundTrip) {
  WeightStore store;
  Metadata& m = store.metadata();
  m.Set("u8", MetaValue::U8(200));
  m.Set("i8", MetaValue::I8(-100));
  m.Set("u16", MetaValue::U16(60000));
  m.Set("i16", MetaValue::I16(-30000));
  m.Set("u32", MetaValue::U32(4000000000u));
  m.Set("i32", MetaValue::I32(-2000000000));
  m.Set("u64", MetaValue::U64(std::numeric_limits<uint64_t>::max()));
  m.Set("i64", MetaValue::I64(std::numeric_limits<int64_t>::min()));
  m.Set("f32", MetaValue::F32(-1.5e-7f));
  m.Set("f64", MetaValue::F64(3.141592653589793));
  m.Set("bool_true", MetaValue::Bool(true));
  m.Set("bool_false", MetaValue::Bool(false));
  m.Set("string", MetaValue::String("h\xc3\xa9llo\n\0x"));
  m.Set("empty_string", MetaValue::String(""));
  m.Set("a_u8", MetaValue::U8Array({1, 2, 255}));
  m.Set("a_i8", MetaValue::I8Array({-128, 0, 127}));
  m.Set("a_u16", MetaValue::U16Array({1, 65535}));
  m.Set("a_i16", MetaValue::I16Array({-32768, 5}));
  m.Set("a_u32", MetaValue::U32Array({7}));
  m.Set("a_i32", MetaValue::I32Array({-1, 1}));
  m.Set("a_u64", MetaValue::U64Array({1ull << 63}));
  m.Set("a_i64", MetaValue::I64Array({-(1ll << 62)}));
  m.Set("a_f32", MetaValue::F32Array({0.5f, -0.0f, 1e30f}));
  m.Set("a_f64", MetaValue::F64Array({1e-300}));
  m.Set("a_bool", MetaValue::BoolArray({1, 0, 1}));
  m.Set("a_string", MetaValue::StringArray({"a", "", "\xe2\x96\x81the"}));
  m.Set("a_empty_u32", MetaValue::U32Array({}));
  m.Set("a_empty_string", MetaValue::StringArray({}));
  m.Set("a_nested",
        MetaValue::ArrayOfArrays(
            {MetaValue::I32Array({1, 2}), MetaValue::StringArray({"x"}),
             MetaValue::ArrayOfArrays({MetaValue::F32Array({}), MetaValue::U8Array({9})}),
             MetaValue::U64Array({})}));
  m.Set("a_empty_nested", MetaValue::ArrayOfArrays({}));
  std::string path = testing::MakeTempDir() + "/meta.gguf";
  ASSERT_TRUE(WriteGguf(store, path).ok());
  Result<Metadata> back = ReadGgufMetadata(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->size(), m.size());
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ(back->entries()[i].first, m.entries()[i].first);
    EXPECT_TRUE(back->entries()[i].second == m.entries()[i].second) << m.entries()[i].first;
  }
  EXPECT_EQ(back->GetInt("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*back->Find("a_string")->AsStringArray(),
            (std::vector<std::string>{"a", "", "\xe2\x96\x81the"}));
  const auto* nested = back->Find("a_nested")->AsArrayOfArrays();
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->size(), 4u);
  EXPECT_EQ(*(*nested)[0].ArrayOf<int32_t>(), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ((*nested)[2].AsArrayOfArrays()->at(1).ArrayOf<uint8_t>()->at(0), 9);
  EXPECT_EQ((*nested)[3].array_type(), MetaType::kU64);
}

TEST(Gguf, TensorsRoundTripWithOtherAlignments) {
  WeightStore store;
  store.metadata().Set("general.architecture", MetaValue::String("llama"));
  float* a = reinterpret_cast<float*>(store.AddOwned("a", DType::kF32, Shape({3, 5})));
  for (int i = 0; i < 15; ++i) a[i] = static_cast<float>(i) - 7.5f;
  uint8_t* b = store.AddOwned("b", DType::kQ8_0, Shape({2, 64}));
  for (int i = 0; i < 4 * 34; ++i) b[i] = static_cast<uint8_t>(i * 7);
  store.AddOwned("c", DType::kF16, Shape({7}));
  for (uint32_t alignment : {1u, 8u, 32u, 64u, 4096u}) {
    std::string path = testing::MakeTempDir() + "/t.gguf";
    ASSERT_TRUE(WriteGguf(store, path, {alignment}).ok());
    Result<WeightStore> back = ReadGguf(path);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->metadata().GetInt("general.alignment"),
              alignment == 32 ? std::nullopt : std::optional<int64_t>(alignment));
    ASSERT_EQ(back->tensors().size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      const StoredTensor& x = store.tensors()[i];
      const StoredTensor& y = back->tensors()[i];
      EXPECT_EQ(x.name, y.name);
      EXPECT_EQ(x.dtype, y.dtype);
      EXPECT_EQ(x.shape, y.shape);
      ASSERT_EQ(x.nbytes, y.nbytes);
      EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0);
    }
    // Writing again with the default options keeps the file's alignment, byte for byte.
    std::string again = testing::MakeTempDir() + "/again.gguf";
    ASSERT_TRUE(WriteGguf(*back, again).ok());
    EXPECT_TRUE(ReadBytes(path) == ReadBytes(again)) << alignment;
  }
  EXPECT_EQ(WriteGguf(store, testing::MakeTempDir() + "/x.gguf", {24}).code(),
            StatusCode::kInvalidArgument);
}

TEST(GgufStreamWriter, WritesTensorsInPiecesAndChecksCompleteness) {
  Metadata m;
  m.Set("general.architecture", MetaValue::String("llama"));
  std::vector<GgufTensorInfo> infos = {{"x", DType::kF32, Shape({2, 3})},
                                       {"y", DType::kF32, Shape({5})}};
  std::vector<float> values = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  std::string dir = testing::MakeTempDir();
  {
    auto writer = GgufStreamWriter::Create(dir + "/s.gguf", m, infos);
    ASSERT_TRUE(writer.ok());
    // Pieces of 5, 4 and 2 floats: the first two cross the boundary between x and y.
    ASSERT_TRUE((*writer)->Append(values.data(), 5 * 4).ok());
    EXPECT_EQ((*writer)->current_tensor(), 0u);
    ASSERT_TRUE((*writer)->Append(values.data() + 5, 4 * 4).ok());
    EXPECT_EQ((*writer)->current_tensor(), 1u);
    ASSERT_TRUE((*writer)->Append(values.data() + 9, 2 * 4).ok());
    EXPECT_EQ((*writer)->Append(values.data(), 4).code(), StatusCode::kFailedPrecondition);
    ASSERT_TRUE((*writer)->Finish().ok());
  }
  Result<WeightStore> back = ReadGguf(dir + "/s.gguf");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(std::memcmp(back->Find("x")->data, values.data(), 24), 0);
  EXPECT_EQ(std::memcmp(back->Find("y")->data, values.data() + 6, 20), 0);
  {
    auto writer = GgufStreamWriter::Create(dir + "/partial.gguf", m, infos);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append(values.data(), 8 * 4).ok());
    Status s = (*writer)->Finish();
    EXPECT_THAT(s.message(), HasSubstr("tensor 'y' is missing 12 of its 20 bytes"));
  }
  // An unfinished writer leaves nothing behind.
  EXPECT_FALSE(IsRegularFile(dir + "/partial.gguf"));
  infos.push_back({"x", DType::kF32, Shape({1})});
  EXPECT_THAT(GgufStreamWriter::Create(dir + "/dup.gguf", m, infos).status().message(),
              HasSubstr("duplicate tensor name 'x'"));
  EXPECT_THAT(GgufStreamWriter::Create(dir + "/q.gguf", m, {{"q", DType::kQ8_0, Shape({33})}})
                  .status()
                  .message(),
              HasSubstr("not whole q8_0 blocks"));
}

// A small valid file built by hand, to corrupt one field at a time.
std::vector<uint8_t> TinyGguf(uint32_t type = 0, uint64_t dim0 = 4, uint64_t offset = 0) {
  testing_formats::ByteBuilder b;
  b.Bytes("GGUF").U32(3).U64(1).U64(1);
  b.Str("general.architecture").U32(8).Str("llama");
  b.Str("w").U32(2).U64(dim0).U64(2).U32(type).U64(offset);
  b.PadTo(32);
  for (int i = 0; i < 8; ++i) b.F32(static_cast<float>(i));
  return b.bytes();
}

Status ParseStatus(const std::vector<uint8_t>& bytes) {
  return ParseGguf(bytes, "m.gguf", nullptr).status();
}

TEST(Gguf, SpecificErrors) {
  ASSERT_TRUE(ParseStatus(TinyGguf()).ok()) << ParseStatus(TinyGguf()).message();
  std::vector<uint8_t> elf = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
  EXPECT_EQ(ParseStatus(elf).message(),
            "m.gguf: not a GGUF file (magic 0x7f454c46, expected \"GGUF\")");
  EXPECT_EQ(ParseStatus({'G', 'G'}).message(), "m.gguf: not a GGUF file (only 2 bytes)");
  Status q5k = ParseStatus(TinyGguf(13));
  EXPECT_EQ(q5k.code(), StatusCode::kUnsupported);
  EXPECT_EQ(q5k.message(), "m.gguf: tensor 'w' has unsupported tensor type q5_k (ggml type 13)");
  EXPECT_EQ(ParseStatus(TinyGguf(12)).message(),
            "m.gguf: tensor 'w' has rows of 4 elements, not a multiple of q4_k's block size 256");
  EXPECT_THAT(ParseStatus(TinyGguf(200)).message(), HasSubstr("unsupported tensor type unknown"));
  // 4 x 3 f32 elements need 48 bytes at offset 0, but only 32 follow the header.
  EXPECT_EQ(ParseStatus(TinyGguf(0, 6)).message(),
            "m.gguf: truncated: tensor 'w' data ends at byte 176, file has 160 bytes");
  EXPECT_THAT(ParseStatus(TinyGguf(0, 4, 4)).message(),
              HasSubstr("tensor 'w' data offset 4 is not a multiple of the alignment 32"));
  EXPECT_THAT(ParseStatus(TinyGguf(8, 4)).message(),
              HasSubstr("rows of 4 elements, not a multiple of q8_0's block size 32"));
  EXPECT_THAT(ParseStatus(TinyGguf(0, 0)).message(), HasSubstr("invalid dimension 0 = 0"));
  EXPECT_THAT(ParseStatus(TinyGguf(0, 1ull << 62)).message(), HasSubstr("overflow"));
  std::vector<uint8_t> v1 = TinyGguf();
  v1[4] = 1;
  EXPECT_EQ(ParseStatus(v1).message(), "m.gguf: GGUF version 1 is not supported (2 and 3 are)");
  std::vector<uint8_t> truncated = TinyGguf();
  truncated.resize(54);
  EXPECT_EQ(ParseStatus(truncated).message(),
            "m.gguf: truncated: metadata key 'general.architecture' needs 4 bytes at byte 52, "
            "file has 54 bytes");
  truncated.resize(40);
  EXPECT_EQ(ParseStatus(truncated).message(),
            "m.gguf: truncated or corrupt: the header announces 1 tensors, more than a file of 40 "
            "bytes can hold");

  testing_formats::ByteBuilder two;
  two.Bytes("GGUF").U32(3).U64(2).U64(0);
  two.Str("a").U32(1).U64(8).U32(0).U64(0);
  two.Str("b").U32(1).U64(8).U32(0).U64(0);
  two.PadTo(32);
  for (int i = 0; i < 8; ++i) two.F32(0);
  EXPECT_THAT(ParseStatus(two.bytes()).message(), HasSubstr("tensors 'a' and 'b' overlap"));

  testing_formats::ByteBuilder dup;
  dup.Bytes("GGUF").U32(3).U64(0).U64(2).Str("k").U32(4).U32(1).Str("k").U32(4).U32(2);
  EXPECT_EQ(ParseStatus(dup.bytes()).message(), "m.gguf: duplicate metadata key 'k'");

  testing_formats::ByteBuilder huge;
  huge.Bytes("GGUF").U32(3).U64(0).U64(1).Str("k").U32(9).U32(8).U64(1ull << 60);
  EXPECT_THAT(ParseStatus(huge.bytes()).message(),
              HasSubstr("truncated: array of 1152921504606846976 string values"));

  testing_formats::ByteBuilder deep;
  deep.Bytes("GGUF").U32(3).U64(0).U64(1).Str("k").U32(9);
  for (int i = 0; i < 20; ++i) deep.U32(9).U64(1);
  EXPECT_THAT(ParseStatus(deep.bytes()).message(), HasSubstr("arrays nested more than 8 deep"));

  testing_formats::ByteBuilder align;
  align.Bytes("GGUF").U32(3).U64(0).U64(1).Str("general.alignment").U32(4).U32(24);
  EXPECT_THAT(ParseStatus(align.bytes()).message(),
              HasSubstr("general.alignment must be a u32 power of two"));

  EXPECT_EQ(ReadGguf("/nonexistent/x.gguf").status().message(),
            "/nonexistent/x.gguf: no such file");
}

}  // namespace
}  // namespace slimlm
