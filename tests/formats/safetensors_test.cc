#include "slimlm/formats/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "formats/test_files.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using ::testing::HasSubstr;
using testing_formats::ReadBytes;
using testing_formats::WriteBytes;
using testing_formats::WriteText;

constexpr char kStoriesHf[] = "models/stories260K/hf/model.safetensors";

// A safetensors file from a header string and raw data.
std::vector<uint8_t> MakeFile(const std::string& header, const std::vector<uint8_t>& data) {
  testing_formats::ByteBuilder b;
  b.U64(header.size()).Bytes(header);
  std::vector<uint8_t> out = b.bytes();
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::string ParseMessage(const std::vector<uint8_t>& bytes) {
  return ParseSafetensors(bytes, "m.safetensors", nullptr).status().message();
}

TEST(Safetensors, ReadsStories260K) {
  SLIMLM_REQUIRE_SHARED_DATA(kStoriesHf);
  Result<SafetensorsContents> st = ReadSafetensors(testing::SharedDataPath(kStoriesHf));
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->tensors.size(), 47u);
  ASSERT_EQ(st->metadata.size(), 1u);
  EXPECT_EQ(st->metadata[0], (std::pair<std::string, std::string>("format", "pt")));
  // Data order: the first tensor at data offset 0 is the embedding.
  const StoredTensor& embd = st->tensors[0];
  EXPECT_EQ(embd.name, "model.embed_tokens.weight");
  EXPECT_EQ(embd.dtype, DType::kF32);
  EXPECT_EQ(embd.shape, Shape({512, 64}));
  EXPECT_EQ(embd.nbytes, 131072u);
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kStoriesHf));
  EXPECT_NE(embd.owner, nullptr);
  EXPECT_EQ(std::memcmp(embd.data, file.data() + 8 + 4856, 64), 0);
  EXPECT_EQ(st->tensors[1].name, "model.layers.0.input_layernorm.weight");
  EXPECT_EQ(st->tensors[2].shape, Shape({64, 172}));  // mlp.down_proj
}

TEST(Safetensors, WriteReproducesTheFileByteForByte) {
  SLIMLM_REQUIRE_SHARED_DATA(kStoriesHf);
  std::string source = testing::SharedDataPath(kStoriesHf);
  Result<SafetensorsContents> st = ReadSafetensors(source);
  ASSERT_TRUE(st.ok());
  std::string out = testing::MakeTempDir() + "/copy.safetensors";
  ASSERT_TRUE(WriteSafetensors(out, st->tensors, st->metadata).ok());
  EXPECT_TRUE(ReadBytes(source) == ReadBytes(out));
}

TEST(Safetensors, RoundTripsHalfTypesAndSortsLikeTheLibrary) {
  std::vector<uint16_t> h = {0x3c00, 0xc000, 0x7bff};  // 1, -2, 65504 in f16
  std::vector<uint16_t> bf = {0x3f80, 0x4000};
  std::vector<float> f = {1.5f};
  std::vector<StoredTensor> tensors = {
      {"b.half", DType::kF16, Shape({3}), reinterpret_cast<const uint8_t*>(h.data()), 6, nullptr},
      {"a.bf", DType::kBF16, Shape({1, 2}), reinterpret_cast<const uint8_t*>(bf.data()), 4,
       nullptr},
      {"z.f32", DType::kF32, Shape({1}), reinterpret_cast<const uint8_t*>(f.data()), 4, nullptr}};
  std::string path = testing::MakeTempDir() + "/t.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, tensors, {}).ok());
  std::vector<uint8_t> bytes = ReadBytes(path);
  uint64_t header_size;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  EXPECT_EQ(std::string(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(header_size)),
            "{\"z.f32\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            "\"a.bf\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[4,8]},"
            "\"b.half\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[8,14]}}");
  Result<SafetensorsContents> back = ReadSafetensors(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->tensors.size(), 3u);
  EXPECT_EQ(back->tensors[2].name, "b.half");
  EXPECT_EQ(back->tensors[2].dtype, DType::kF16);
  EXPECT_EQ(std::memcmp(back->tensors[2].data, h.data(), 6), 0);
  EXPECT_EQ(back->tensors[1].shape, Shape({1, 2}));
  std::vector<uint8_t> q(34);
  std::vector<StoredTensor> quantized = {{"q", DType::kQ8_0, Shape({32}), q.data(), 34, nullptr}};
  EXPECT_THAT(WriteSafetensors(path, quantized, {}).message(),
              HasSubstr("tensor 'q' is q8_0; safetensors output holds f32, f16 and bf16"));
}

TEST(Safetensors, CopiesMisalignedTensors) {
  // The header is padded to 8 bytes, so the F32 tensor at data offset 3 is at an odd address.
  std::string header = R"({"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},)"
                       R"("f":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}})";
  header.resize((header.size() + 7) / 8 * 8, ' ');
  std::vector<uint8_t> data = {0, 0x3c, 0, 0, 0, 0xc0, 0x3f};
  std::vector<uint8_t> bytes = MakeFile(header, data);
  Result<SafetensorsContents> st = ParseSafetensors(bytes, "m.safetensors", nullptr);
  ASSERT_TRUE(st.ok()) << st.status().message();
  ASSERT_EQ(st->tensors.size(), 2u);
  const StoredTensor& f = st->tensors[1];
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data) % 4, 0u);
  EXPECT_NE(f.owner, nullptr);
  float value;
  std::memcpy(&value, f.data, 4);
  EXPECT_EQ(value, 1.5f);
}

TEST(Safetensors, SpecificErrors) {
  EXPECT_EQ(ParseMessage({1, 2, 3}), "m.safetensors: not a safetensors file (only 3 bytes)");
  EXPECT_EQ(ParseMessage(MakeFile("[1]", {})),
            "m.safetensors: not a safetensors file (the header does not start with '{')");
  EXPECT_EQ(ParseMessage(MakeFile("{\"a\":", {})), "m.safetensors: the header is not valid JSON");
  std::vector<uint8_t> big = MakeFile("{}", {});
  big[0] = 0xff;
  big[1] = 0xff;
  EXPECT_EQ(ParseMessage(big),
            "m.safetensors: truncated: the 65535-byte header ends at byte 65543, file has 10 "
            "bytes");
  big[7] = 0x7f;
  EXPECT_THAT(ParseMessage(big), HasSubstr("over the 100 MiB limit"));
  EXPECT_EQ(ParseMessage(MakeFile(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})",
                                  std::vector<uint8_t>(16))),
            "m.safetensors: tensor 'w' has 12 bytes of data, but shape [2, 2] of F32 needs 16");
  EXPECT_EQ(ParseMessage(MakeFile(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                                  std::vector<uint8_t>(8))),
            "m.safetensors: truncated: tensor 'w' data [0, 16) lies outside the 8 bytes of data in "
            "the file");
  EXPECT_THAT(ParseMessage(MakeFile(R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                                    std::vector<uint8_t>(8))),
              HasSubstr("tensor 'w' has unsupported dtype I64; slimlm loads F32, F16 and BF16"));
  EXPECT_THAT(ParseMessage(MakeFile(R"({"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,8]}})",
                                    std::vector<uint8_t>(8))),
              HasSubstr("unknown dtype Q9"));
  EXPECT_THAT(ParseMessage(MakeFile(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                                    std::vector<uint8_t>(4))),
              HasSubstr("invalid shape [-1]"));
  EXPECT_THAT(ParseMessage(MakeFile(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1]}})", {})),
              HasSubstr("lacks a string dtype, a shape or data_offsets"));
  EXPECT_THAT(ParseMessage(MakeFile(
                  R"({"w":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})", {})),
              HasSubstr("has 5 dimensions (at most 4)"));
  EXPECT_THAT(ParseMessage(MakeFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                    R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                    std::vector<uint8_t>(8))),
              HasSubstr("tensors 'a' and 'b' overlap"));
  EXPECT_THAT(ParseMessage(MakeFile(R"({"__metadata__":{"k":1}})", {})),
              HasSubstr("__metadata__ value of 'k' is not a string"));
  EXPECT_EQ(ReadSafetensors("/nonexistent.safetensors").status().code(), StatusCode::kNotFound);
}

TEST(Safetensors, ReadsShardedModels) {
  std::string dir = testing::MakeTempDir();
  std::vector<float> a = {1, 2}, b = {3, 4, 5};
  std::vector<StoredTensor> shard1 = {
      {"a", DType::kF32, Shape({2}), reinterpret_cast<const uint8_t*>(a.data()), 8, nullptr}};
  std::vector<StoredTensor> shard2 = {
      {"b", DType::kF32, Shape({3}), reinterpret_cast<const uint8_t*>(b.data()), 12, nullptr}};
  ASSERT_TRUE(
      WriteSafetensors(dir + "/model-00001-of-00002.safetensors", shard1, {{"format", "pt"}}).ok());
  ASSERT_TRUE(WriteSafetensors(dir + "/model-00002-of-00002.safetensors", shard2, {}).ok());
  WriteText(dir + "/model.safetensors.index.json",
            R"({"metadata":{"total_size":20},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
            R"("b":"model-00002-of-00002.safetensors"}})");
  Result<SafetensorsContents> st = ReadShardedSafetensors(dir + "/model.safetensors.index.json");
  ASSERT_TRUE(st.ok()) << st.status().message();
  ASSERT_EQ(st->tensors.size(), 2u);
  EXPECT_EQ(st->tensors[0].name, "a");
  EXPECT_EQ(st->tensors[1].name, "b");
  EXPECT_EQ(std::memcmp(st->tensors[1].data, b.data(), 12), 0);
  EXPECT_EQ(st->metadata.size(), 1u);

  WriteText(dir + "/bad.index.json", R"({"weight_map":{"a":"model-00002-of-00002.safetensors",)"
                                     R"("b":"model-00002-of-00002.safetensors"}})");
  EXPECT_THAT(ReadShardedSafetensors(dir + "/bad.index.json").status().message(),
              HasSubstr("tensor 'a' is listed in model-00002-of-00002.safetensors but not found"));
  WriteText(dir + "/escape.index.json", R"({"weight_map":{"a":"../x.safetensors"}})");
  EXPECT_THAT(ReadShardedSafetensors(dir + "/escape.index.json").status().message(),
              HasSubstr("shard name '../x.safetensors' is not a plain file name"));
  WriteText(dir + "/dup.index.json",
            R"({"weight_map":{"a":"model-00001-of-00002.safetensors","b":"copy.safetensors"}})");
  ASSERT_TRUE(WriteSafetensors(dir + "/copy.safetensors", {shard1[0], shard2[0]}, {}).ok());
  EXPECT_THAT(ReadShardedSafetensors(dir + "/dup.index.json").status().message(),
              HasSubstr("tensor 'a' is in both"));
  WriteText(dir + "/nomap.index.json", R"({"metadata":{}})");
  EXPECT_THAT(ReadShardedSafetensors(dir + "/nomap.index.json").status().message(),
              HasSubstr("no \"weight_map\" object"));
}

}  // namespace
}  // namespace slimlm
