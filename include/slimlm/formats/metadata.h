// Typed key-value metadata, with GGUF's value types.
//
// Every loader fills one Metadata with GGUF's key names (general.architecture,
// llama.embedding_length, tokenizer.ggml.tokens, ...), whatever the file format it read, so the
// layers above read one vocabulary of keys. Keys keep their insertion order, which the GGUF
// writer preserves.
#ifndef SLIMLM_FORMATS_METADATA_H_
#define SLIMLM_FORMATS_METADATA_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace slimlm {

// GGUF's metadata value type ids.
enum class MetaType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// "u32", "string", "array", ... for messages.
std::string_view MetaTypeName(MetaType type);
// True when `raw` is one of the 13 GGUF value types.
bool IsValidMetaType(uint32_t raw);
// Bytes of a scalar of this type in GGUF (1, 2, 4 or 8); 0 for strings and arrays.
size_t MetaScalarBytes(MetaType type);

class MetaValue {
 public:
  MetaValue() = default;  // A u8 zero; assign a real value before use.

  // Scalars.
  static MetaValue U8(uint8_t v) { return MetaValue(MetaType::kU8, Scalar(v)); }
  static MetaValue I8(int8_t v) { return MetaValue(MetaType::kI8, Scalar(v)); }
  static MetaValue U16(uint16_t v) { return MetaValue(MetaType::kU16, Scalar(v)); }
  static MetaValue I16(int16_t v) { return MetaValue(MetaType::kI16, Scalar(v)); }
  static MetaValue U32(uint32_t v) { return MetaValue(MetaType::kU32, Scalar(v)); }
  static MetaValue I32(int32_t v) { return MetaValue(MetaType::kI32, Scalar(v)); }
  static MetaValue U64(uint64_t v) { return MetaValue(MetaType::kU64, Scalar(v)); }
  static MetaValue I64(int64_t v) { return MetaValue(MetaType::kI64, Scalar(v)); }
  static MetaValue F32(float v) { return MetaValue(MetaType::kF32, Scalar(v)); }
  static MetaValue F64(double v) { return MetaValue(MetaType::kF64, Scalar(v)); }
  static MetaValue Bool(bool v) { return MetaValue(MetaType::kBool, Scalar(v)); }
  static MetaValue String(std::string v);

  // Arrays. Numeric arrays hold one element type; bool arrays are stored as u8 0/1.
  static MetaValue U8Array(std::vector<uint8_t> v) {
    return MakeArray(MetaType::kU8, std::move(v));
  }
  static MetaValue I8Array(std::vector<int8_t> v) { return MakeArray(MetaType::kI8, std::move(v)); }
  static MetaValue U16Array(std::vector<uint16_t> v) {
    return MakeArray(MetaType::kU16, std::move(v));
  }
  static MetaValue I16Array(std::vector<int16_t> v) {
    return MakeArray(MetaType::kI16, std::move(v));
  }
  static MetaValue U32Array(std::vector<uint32_t> v) {
    return MakeArray(MetaType::kU32, std::move(v));
  }
  static MetaValue I32Array(std::vector<int32_t> v) {
    return MakeArray(MetaType::kI32, std::move(v));
  }
  static MetaValue U64Array(std::vector<uint64_t> v) {
    return MakeArray(MetaType::kU64, std::move(v));
  }
  static MetaValue I64Array(std::vector<int64_t> v) {
    return MakeArray(MetaType::kI64, std::move(v));
  }
  static MetaValue F32Array(std::vector<float> v) {
    return MakeArray(MetaType::kF32, std::move(v));
  }
  static MetaValue F64Array(std::vector<double> v) {
    return MakeArray(MetaType::kF64, std::move(v));
  }
  static MetaValue BoolArray(std::vector<uint8_t> v) {
    return MakeArray(MetaType::kBool, std::move(v));
  }
  static MetaValue StringArray(std::vector<std::string> v);
  // An array of arrays (GGUF allows nesting); every element must be an array.
  static MetaValue ArrayOfArrays(std::vector<MetaValue> v);

  MetaType type() const { return type_; }
  bool is_array() const { return type_ == MetaType::kArray; }
  // For arrays: the element type.
  MetaType array_type() const { return array_type_; }
  // For arrays: the element count; 0 for scalars.
  size_t array_size() const;

  // Any integer type or bool, converted; nullopt for other types or when it does not fit.
  std::optional<int64_t> AsInt() const;
  // Any numeric type, converted to double.
  std::optional<double> AsDouble() const;
  std::optional<bool> AsBool() const;
  // The string, or nullptr when not a string.
  const std::string* AsString() const;

  // Typed array access: nullptr unless the array's element type is exactly T
  // (uint8_t for kBool arrays too).
  template <typename T>
  const std::vector<T>* ArrayOf() const {
    return std::get_if<std::vector<T>>(&array_);
  }
  const std::vector<std::string>* AsStringArray() const { return ArrayOf<std::string>(); }
  const std::vector<MetaValue>* AsArrayOfArrays() const { return ArrayOf<MetaValue>(); }
  // Any integer-typed array converted to int64; nullopt for other types.
  std::optional<std::vector<int64_t>> AsIntArray() const;
  // Any numeric array converted to float.
  std::optional<std::vector<float>> AsFloatArray() const;

  // The raw scalar payload for writers: integers as two's complement in the low bits,
  // f32/f64 as their bit patterns.
  uint64_t scalar_bits() const { return bits_; }

  bool operator==(const MetaValue& other) const;

 private:
  using ArrayStorage =
      std::variant<std::monostate, std::vector<uint8_t>, std::vector<int8_t>, std::vector<uint16_t>,
                   std::vector<int16_t>, std::vector<uint32_t>, std::vector<int32_t>,
                   std::vector<uint64_t>, std::vector<int64_t>, std::vector<float>,
                   std::vector<double>, std::vector<std::string>, std::vector<MetaValue>>;

  template <typename T>
  static uint64_t Scalar(T v);
  template <typename T>
  static MetaValue MakeArray(MetaType element, std::vector<T> v) {
    MetaValue m(MetaType::kArray, 0);
    m.array_type_ = element;
    m.array_ = std::move(v);
    return m;
  }
  MetaValue(MetaType type, uint64_t bits) : type_(type), bits_(bits) {}

  MetaType type_ = MetaType::kU8;
  MetaType array_type_ = MetaType::kU8;
  uint64_t bits_ = 0;
  std::string string_;
  ArrayStorage array_;
};

// An ordered map from key to MetaValue.
class Metadata {
 public:
  // Inserts or replaces (keeping the original position when replacing).
  void Set(const std::string& key, MetaValue value);
  // Removes a key; false when absent.
  bool Erase(const std::string& key);
  const MetaValue* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  size_t size() const { return entries_.size(); }
  const std::vector<std::pair<std::string, MetaValue>>& entries() const { return entries_; }

  // Convenience getters: nullopt when absent or of an incompatible type.
  std::optional<int64_t> GetInt(std::string_view key) const;
  std::optional<double> GetDouble(std::string_view key) const;
  std::optional<bool> GetBool(std::string_view key) const;
  std::optional<std::string> GetString(std::string_view key) const;

  bool operator==(const Metadata& other) const { return entries_ == other.entries_; }

 private:
  std::vector<std::pair<std::string, MetaValue>> entries_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace slimlm

#endif  // SLIMLM_FORMATS_METADATA_H_
