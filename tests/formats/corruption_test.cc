// Truncated and bit-flipped model files: every reader must return an error Status or load
// successfully, never crash or read out of bounds. The parsers run on exact-size heap copies, so
// AddressSanitizer (the dev preset) flags any read past the end; tensors of files that load are
// checked to lie inside the buffer and touched at both ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "formats/test_files.h"
#include "slimlm/formats/gguf.h"
#include "slimlm/formats/llama2c.h"
#include "slimlm/formats/safetensors.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using testing_formats::ReadBytes;
using testing_formats::WriteBytes;

// Parses bytes; returns whether they loaded, after checking every tensor lies inside `bytes`
// (or in a copy the reader owns) and reading its first and last byte.
using Parser = std::function<bool(const std::vector<uint8_t>& bytes)>;

volatile uint8_t g_sink;

void CheckTensors(const std::vector<StoredTensor>& tensors, const std::vector<uint8_t>& bytes) {
  for (const StoredTensor& t : tensors) {
    ASSERT_GT(t.nbytes, 0u) << t.name;
    ASSERT_EQ(t.nbytes, TensorBytes(t.dtype, t.shape)) << t.name;
    const uint8_t* begin = bytes.data();
    const uint8_t* end = bytes.data() + bytes.size();
    bool inside = t.data >= begin && t.data + t.nbytes <= end;
    bool owned_copy = !inside && t.owner != nullptr;
    ASSERT_TRUE(inside || owned_copy) << t.name;
    g_sink = static_cast<uint8_t>(t.data[0] ^ t.data[t.nbytes - 1]);
  }
}

bool ParseGgufChecked(const std::vector<uint8_t>& bytes) {
  Result<WeightStore> store = ParseGguf(bytes, "fuzz.gguf", nullptr);
  if (!store.ok()) {
    EXPECT_EQ(store.status().message().find('\n'), std::string::npos) << "one line";
    EXPECT_EQ(store.status().message().rfind("fuzz.gguf: ", 0), 0u) << store.status().message();
    return false;
  }
  CheckTensors(store->tensors(), bytes);
  return true;
}

bool ParseSafetensorsChecked(const std::vector<uint8_t>& bytes) {
  Result<SafetensorsContents> st = ParseSafetensors(bytes, "fuzz.safetensors", nullptr);
  if (!st.ok()) {
    EXPECT_EQ(st.status().message().rfind("fuzz.safetensors: ", 0), 0u) << st.status().message();
    return false;
  }
  CheckTensors(st->tensors, bytes);
  return true;
}

bool ParseLlama2cChecked(const std::vector<uint8_t>& bytes) {
  Result<WeightStore> store = ParseLlama2c(bytes, "fuzz.bin", nullptr);
  if (!store.ok()) {
    EXPECT_EQ(store.status().message().rfind("fuzz.bin: ", 0), 0u) << store.status().message();
    return false;
  }
  CheckTensors(store->tensors(), bytes);
  return true;
}

// Every prefix up to `header_end` + 64 bytes, then `samples` evenly spaced prefixes and the last
// 8. None loads: every format needs all of its bytes.
void TruncateEverywhere(const std::vector<uint8_t>& file, size_t header_end, size_t samples,
                        const Parser& parse) {
  std::vector<size_t> cuts;
  for (size_t n = 0; n < std::min(file.size(), header_end + 64); ++n) cuts.push_back(n);
  for (size_t i = 0; i < samples; ++i) cuts.push_back(file.size() * i / samples);
  for (size_t back = 1; back <= 8; ++back) cuts.push_back(file.size() - back);
  for (size_t cut : cuts) {
    std::vector<uint8_t> prefix(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(cut));
    ASSERT_FALSE(parse(prefix)) << "a " << cut << "-byte prefix loaded";
  }
  ASSERT_TRUE(parse(file));
}

// `rounds` copies with 1-4 random bits flipped (or a byte set to 0x00 / 0xFF) within the first
// `region` bytes. Returns how many still loaded, for the log.
int FlipBits(const std::vector<uint8_t>& file, size_t region, int rounds, const Parser& parse) {
  int loaded = 0;
  for (int seed = 0; seed < rounds; ++seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(seed));
    std::vector<uint8_t> bytes = file;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t at = rng() % region;
      switch (rng() % 6) {
        case 0:
          bytes[at] = 0x00;
          break;
        case 1:
          bytes[at] = 0xff;
          break;
        default:
          bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
      }
    }
    loaded += parse(bytes) ? 1 : 0;
    if (::testing::Test::HasFatalFailure()) {
      ADD_FAILURE() << "seed " << seed;
      return loaded;
    }
  }
  return loaded;
}

constexpr char kGguf[] = "models/stories260K/stories260K.gguf";
constexpr char kSafetensors[] = "models/stories260K/hf/model.safetensors";
constexpr char kBin[] = "models/stories260K/stories260K.bin";

TEST(Corruption, TruncatedGguf) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kGguf));
  TruncateEverywhere(file, 14176, 200, ParseGgufChecked);
}

TEST(Corruption, BitFlippedGguf) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kGguf));
  int loaded = FlipBits(file, 14176, 2000, ParseGgufChecked);
  std::cout << "bit-flipped GGUF files that still loaded: " << loaded << " of 2000\n";
}

// The tensor infos (bytes 11,347 to 14,152 of stories260K.gguf) hold the dims, types and offsets;
// a uniform flip over the header lands there only a fifth of the time, so flip there directly.
TEST(Corruption, BitFlippedGgufTensorInfos) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kGguf));
  constexpr size_t kInfosBegin = 11347, kInfosEnd = 14152;
  for (int seed = 0; seed < 2000; ++seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(seed) + 1000003);
    std::vector<uint8_t> bytes = file;
    for (int f = 0; f < 2; ++f) {
      size_t at = kInfosBegin + rng() % (kInfosEnd - kInfosBegin);
      bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
    }
    ParseGgufChecked(bytes);
    ASSERT_FALSE(HasFatalFailure()) << "seed " << seed;
  }
}

TEST(Corruption, TruncatedSafetensors) {
  SLIMLM_REQUIRE_SHARED_DATA(kSafetensors);
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kSafetensors));
  TruncateEverywhere(file, 8 + 4856, 200, ParseSafetensorsChecked);
}

TEST(Corruption, BitFlippedSafetensors) {
  SLIMLM_REQUIRE_SHARED_DATA(kSafetensors);
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kSafetensors));
  int loaded = FlipBits(file, 8 + 4856, 2000, ParseSafetensorsChecked);
  std::cout << "bit-flipped safetensors files that still loaded: " << loaded << " of 2000\n";
}

TEST(Corruption, TruncatedLlama2c) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kBin));
  TruncateEverywhere(file, 28, 200, ParseLlama2cChecked);
}

TEST(Corruption, BitFlippedLlama2c) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  std::vector<uint8_t> file = ReadBytes(testing::SharedDataPath(kBin));
  FlipBits(file, 28, 2000, ParseLlama2cChecked);
  // A version-1 header over the same weights: the 256-byte header region.
  testing_formats::ByteBuilder v1;
  v1.U32(kLlama2cMagic).I32(1);
  for (int v : {8, 16, 2, 2, 1, 4, 4}) v1.I32(v);
  v1.U8(1).PadTo(256);
  // dim 8, hidden 16, 2 layers, kv_dim 4, vocab 4: norms 2*8*2 + 8, embedding 32, matrices.
  size_t floats = 2 * 8 + 2 * 8 + 8 + 4 * 8 + 2 * (64 + 32 + 32 + 64 + 3 * 128);
  for (size_t i = 0; i < floats; ++i) v1.F32(static_cast<float>(i));
  ASSERT_TRUE(ParseLlama2cChecked(v1.bytes()));
  TruncateEverywhere(v1.bytes(), 256, 50, ParseLlama2cChecked);
  FlipBits(v1.bytes(), 64, 1000, ParseLlama2cChecked);
}

// The public readers over real files (the memory-mapped path) give errors too.
TEST(Corruption, TruncatedFilesOnDisk) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  std::string dir = testing::MakeTempDir();
  std::vector<uint8_t> gguf = ReadBytes(testing::SharedDataPath(kGguf));
  std::vector<uint8_t> st = ReadBytes(testing::SharedDataPath(kSafetensors));
  std::vector<uint8_t> bin = ReadBytes(testing::SharedDataPath(kBin));
  for (size_t cut : {size_t{0}, size_t{3}, size_t{20}, size_t{5000}, size_t{14175}, size_t{14177},
                     size_t{500000}}) {
    auto write = [&](const std::vector<uint8_t>& file, const std::string& name) {
      std::vector<uint8_t> prefix(
          file.begin(), file.begin() + static_cast<std::ptrdiff_t>(std::min(cut, file.size() - 1)));
      WriteBytes(dir + "/" + name, prefix);
      return dir + "/" + name;
    };
    EXPECT_FALSE(ReadGguf(write(gguf, "t.gguf")).ok()) << cut;
    EXPECT_FALSE(ReadGgufMetadata(write(gguf, "t.gguf")).ok()) << cut;
    EXPECT_FALSE(ReadSafetensors(write(st, "t.safetensors")).ok()) << cut;
    EXPECT_FALSE(ReadLlama2c(write(bin, "t.bin")).ok()) << cut;
  }
  std::vector<uint8_t> cut = gguf;
  cut.resize(600000);
  WriteBytes(dir + "/cut.gguf", cut);
  EXPECT_EQ(ReadGguf(dir + "/cut.gguf").status().message(),
            dir +
                "/cut.gguf: truncated: tensor 'blk.1.ffn_up.weight' data ends at byte 639840, "
                "file has 600000 bytes");
}

}  // namespace
}  // namespace slimlm
