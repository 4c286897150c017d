#include "slimlm/formats/metadata.h"

#include <cstring>
#include <limits>
#include <type_traits>

#include "slimlm/core/check.h"

namespace slimlm {

std::string_view MetaTypeName(MetaType type) {
  switch (type) {
    case MetaType::kU8:
      return "u8";
    case MetaType::kI8:
      return "i8";
    case MetaType::kU16:
      return "u16";
    case MetaType::kI16:
      return "i16";
    case MetaType::kU32:
      return "u32";
    case MetaType::kI32:
      return "i32";
    case MetaType::kF32:
      return "f32";
    case MetaType::kBool:
      return "bool";
    case MetaType::kString:
      return "string";
    case MetaType::kArray:
      return "array";
    case MetaType::kU64:
      return "u64";
    case MetaType::kI64:
      return "i64";
    case MetaType::kF64:
      return "f64";
  }
  return "unknown";
}

bool IsValidMetaType(uint32_t raw) { return raw <= static_cast<uint32_t>(MetaType::kF64); }

size_t MetaScalarBytes(MetaType type) {
  switch (type) {
    case MetaType::kU8:
    case MetaType::kI8:
    case MetaType::kBool:
      return 1;
    case MetaType::kU16:
    case MetaType::kI16:
      return 2;
    case MetaType::kU32:
    case MetaType::kI32:
    case MetaType::kF32:
      return 4;
    case MetaType::kU64:
    case MetaType::kI64:
    case MetaType::kF64:
      return 8;
    case MetaType::kString:
    case MetaType::kArray:
      return 0;
  }
  return 0;
}

template <typename T>
uint64_t MetaValue::Scalar(T v) {
  if constexpr (std::is_same_v<T, float>) {
    uint32_t u;
    std::memcpy(&u, &v, sizeof(u));
    return u;
  } else if constexpr (std::is_same_v<T, double>) {
    uint64_t u;
    std::memcpy(&u, &v, sizeof(u));
    return u;
  } else if constexpr (std::is_signed_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  } else {
    return static_cast<uint64_t>(v);
  }
}

template uint64_t MetaValue::Scalar(uint8_t);
template uint64_t MetaValue::Scalar(int8_t);
template uint64_t MetaValue::Scalar(uint16_t);
template uint64_t MetaValue::Scalar(int16_t);
template uint64_t MetaValue::Scalar(uint32_t);
template uint64_t MetaValue::Scalar(int32_t);
template uint64_t MetaValue::Scalar(uint64_t);
template uint64_t MetaValue::Scalar(int64_t);
template uint64_t MetaValue::Scalar(float);
template uint64_t MetaValue::Scalar(double);
template uint64_t MetaValue::Scalar(bool);

MetaValue MetaValue::String(std::string v) {
  MetaValue m(MetaType::kString, 0);
  m.string_ = std::move(v);
  return m;
}

MetaValue MetaValue::StringArray(std::vector<std::string> v) {
  return MakeArray(MetaType::kString, std::move(v));
}

MetaValue MetaValue::ArrayOfArrays(std::vector<MetaValue> v) {
  for (const MetaValue& e : v) SLIMLM_CHECK(e.is_array()) << "ArrayOfArrays element not an array";
  return MakeArray(MetaType::kArray, std::move(v));
}

size_t MetaValue::array_size() const {
  return std::visit(
      [](const auto& a) -> size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(a)>, std::monostate>) {
          return 0;
        } else {
          return a.size();
        }
      },
      array_);
}

std::optional<int64_t> MetaValue::AsInt() const {
  switch (type_) {
    case MetaType::kU8:
    case MetaType::kU16:
    case MetaType::kU32:
    case MetaType::kBool:
      return static_cast<int64_t>(bits_);
    case MetaType::kU64:
      if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(bits_);
    case MetaType::kI8:
    case MetaType::kI16:
    case MetaType::kI32:
    case MetaType::kI64:
      return static_cast<int64_t>(bits_);
    default:
      return std::nullopt;
  }
}

std::optional<double> MetaValue::AsDouble() const {
  if (type_ == MetaType::kF32) {
    float f;
    uint32_t u = static_cast<uint32_t>(bits_);
    std::memcpy(&f, &u, sizeof(f));
    return f;
  }
  if (type_ == MetaType::kF64) {
    double d;
    std::memcpy(&d, &bits_, sizeof(d));
    return d;
  }
  if (type_ == MetaType::kU64) return static_cast<double>(bits_);
  if (auto i = AsInt()) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> MetaValue::AsBool() const {
  if (type_ != MetaType::kBool) return std::nullopt;
  return bits_ != 0;
}

const std::string* MetaValue::AsString() const {
  return type_ == MetaType::kString ? &string_ : nullptr;
}

std::optional<std::vector<int64_t>> MetaValue::AsIntArray() const {
  if (!is_array()) return std::nullopt;
  return std::visit(
      [](const auto& a) -> std::optional<std::vector<int64_t>> {
        using V = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<V, std::monostate> ||
                      std::is_same_v<V, std::vector<std::string>> ||
                      std::is_same_v<V, std::vector<MetaValue>> ||
                      std::is_same_v<V, std::vector<float>> ||
                      std::is_same_v<V, std::vector<double>>) {
          return std::nullopt;
        } else {
          std::vector<int64_t> out;
          out.reserve(a.size());
          for (auto x : a) out.push_back(static_cast<int64_t>(x));
          return out;
        }
      },
      array_);
}

std::optional<std::vector<float>> MetaValue::AsFloatArray() const {
  if (!is_array()) return std::nullopt;
  return std::visit(
      [](const auto& a) -> std::optional<std::vector<float>> {
        using V = std::decay_t<decltype(a)>;
        if constexpr (std::is_same_v<V, std::monostate> ||
                      std::is_same_v<V, std::vector<std::string>> ||
                      std::is_same_v<V, std::vector<MetaValue>>) {
          return std::nullopt;
        } else {
          std::vector<float> out;
          out.reserve(a.size());
          for (auto x : a) out.push_back(static_cast<float>(x));
          return out;
        }
      },
      array_);
}

bool MetaValue::operator==(const MetaValue& other) const {
  return type_ == other.type_ && array_type_ == other.array_type_ && bits_ == other.bits_ &&
         string_ == other.string_ && array_ == other.array_;
}

void Metadata::Set(const std::string& key, MetaValue value) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(value);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(key, std::move(value));
}

bool Metadata::Erase(const std::string& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(it->second));
  index_.clear();
  for (size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
  return true;
}

const MetaValue* Metadata::Find(std::string_view key) const {
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

std::optional<int64_t> Metadata::GetInt(std::string_view key) const {
  const MetaValue* v = Find(key);
  return v ? v->AsInt() : std::nullopt;
}

std::optional<double> Metadata::GetDouble(std::string_view key) const {
  const MetaValue* v = Find(key);
  return v ? v->AsDouble() : std::nullopt;
}

std::optional<bool> Metadata::GetBool(std::string_view key) const {
  const MetaValue* v = Find(key);
  return v ? v->AsBool() : std::nullopt;
}

std::optional<std::string> Metadata::GetString(std::string_view key) const {
  const MetaValue* v = Find(key);
  if (v == nullptr || v->AsString() == nullptr) return std::nullopt;
  return *v->AsString();
}

}  // namespace slimlm
