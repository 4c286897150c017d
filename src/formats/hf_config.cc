// config.json <-> GGUF keys (the table is in hf_config.h). nlohmann::json is used without
// exceptions where possible and every throw is caught in this file.
#include "slimlm/formats/hf_config.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include <nlohmann/json.hpp>

#include "formats/byte_reader.h"

namespace slimlm {
namespace {

using formats_internal::Printable;
using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// The field, or nullptr when absent or null (HF writes null for "use the default").
const Json* Field(const Json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::optional<int64_t> AsInteger(const Json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

// A positive integer that fits GGUF's u32 keys; nullopt when absent.
Result<std::optional<int64_t>> OptionalCount(const Json& j, const char* key,
                                             const std::string& path) {
  const Json* v = Field(j, key);
  if (v == nullptr) return std::optional<int64_t>();
  std::optional<int64_t> n = AsInteger(*v);
  if (!n || *n <= 0 || *n > std::numeric_limits<uint32_t>::max()) {
    return CorruptError("{}: \"{}\" must be a positive integer (it is {})", path, key,
                        Printable(v->dump()));
  }
  return n;
}

Result<int64_t> RequiredCount(const Json& j, const char* key, const std::string& path) {
  SLIMLM_ASSIGN_OR_RETURN(std::optional<int64_t> n, OptionalCount(j, key, path));
  if (!n) return CorruptError("{}: missing \"{}\"", path, key);
  return *n;
}

Result<std::optional<double>> OptionalNumber(const Json& j, const char* key,
                                             const std::string& path) {
  const Json* v = Field(j, key);
  if (v == nullptr) return std::optional<double>();
  if (!v->is_number()) {
    return CorruptError("{}: \"{}\" must be a number (it is {})", path, key, Printable(v->dump()));
  }
  return std::optional<double>(v->get<double>());
}

// bos_token_id / eos_token_id: an integer, or a list whose first entry counts (Llama 3.1 lists
// several end tokens; the tokenizer's own files name the rest).
Status AddTokenId(const Json& j, const char* key, const std::string& gguf_key,
                  const std::string& path, Metadata* out) {
  const Json* v = Field(j, key);
  if (v != nullptr && v->is_array()) v = v->empty() ? nullptr : &(*v)[0];
  if (v == nullptr) return Status::Ok();
  std::optional<int64_t> id = AsInteger(*v);
  if (!id || *id < 0 || *id > std::numeric_limits<uint32_t>::max()) {
    return CorruptError("{}: \"{}\" must be a token id (it is {})", path, key,
                        Printable(v->dump()));
  }
  out->Set(gguf_key, MetaValue::U32(static_cast<uint32_t>(*id)));
  return Status::Ok();
}

Status AddRopeScaling(const Json& j, const std::string& arch, const std::string& path,
                      Metadata* out) {
  const Json* scaling = Field(j, "rope_scaling");
  if (scaling == nullptr) return Status::Ok();
  if (!scaling->is_object()) return CorruptError("{}: \"rope_scaling\" is not an object", path);
  const Json* type = Field(*scaling, "rope_type");
  if (type == nullptr) type = Field(*scaling, "type");
  if (type == nullptr || !type->is_string()) {
    return CorruptError("{}: \"rope_scaling\" has no \"rope_type\"", path);
  }
  std::string kind = type->get<std::string>();
  if (kind == "default") return Status::Ok();
  if (kind != "linear" && kind != "dynamic" && kind != "yarn" && kind != "llama3") {
    return UnsupportedError(
        "{}: rope_scaling type '{}' is not supported (linear, dynamic, yarn "
        "and llama3 are)",
        path, Printable(kind));
  }
  std::string scope = path + " rope_scaling";
  SLIMLM_ASSIGN_OR_RETURN(std::optional<double> factor, OptionalNumber(*scaling, "factor", scope));
  if (!factor || *factor <= 0) {
    return CorruptError("{}: rope_scaling '{}' needs a positive \"factor\"", path, kind);
  }
  out->Set(arch + ".rope.scaling.type", MetaValue::String(kind));
  out->Set(arch + ".rope.scaling.factor", MetaValue::F32(static_cast<float>(*factor)));
  SLIMLM_ASSIGN_OR_RETURN(std::optional<int64_t> original,
                          OptionalCount(*scaling, "original_max_position_embeddings", scope));
  if (original) {
    out->Set(arch + ".rope.scaling.original_context_length",
             MetaValue::U32(static_cast<uint32_t>(*original)));
  }
  if (kind == "yarn") {
    // GGUF's (llama.cpp's) names for YaRN's tuning knobs.
    const std::pair<const char*, const char*> yarn_keys[] = {
        {"beta_fast", ".rope.scaling.yarn_beta_fast"},
        {"beta_slow", ".rope.scaling.yarn_beta_slow"},
        {"attention_factor", ".rope.scaling.attn_factor"}};
    for (const auto& [field, suffix] : yarn_keys) {
      SLIMLM_ASSIGN_OR_RETURN(std::optional<double> v, OptionalNumber(*scaling, field, scope));
      if (v) out->Set(arch + suffix, MetaValue::F32(static_cast<float>(*v)));
    }
  }
  if (kind != "llama3") return Status::Ok();
  SLIMLM_ASSIGN_OR_RETURN(std::optional<double> low,
                          OptionalNumber(*scaling, "low_freq_factor", scope));
  SLIMLM_ASSIGN_OR_RETURN(std::optional<double> high,
                          OptionalNumber(*scaling, "high_freq_factor", scope));
  if (!original || !low || !high) {
    return CorruptError(
        "{}: rope_scaling 'llama3' needs original_max_position_embeddings, "
        "low_freq_factor and high_freq_factor",
        path);
  }
  out->Set("slimlm.rope.scaling.low_freq_factor", MetaValue::F32(static_cast<float>(*low)));
  out->Set("slimlm.rope.scaling.high_freq_factor", MetaValue::F32(static_cast<float>(*high)));
  return Status::Ok();
}

Result<std::string> ArchitectureOf(const Json& j, const std::string& path) {
  const Json* type = Field(j, "model_type");
  if (type == nullptr || !type->is_string()) {
    return CorruptError("{}: missing \"model_type\"", path);
  }
  std::string model_type = type->get<std::string>();
  if (model_type == "llama" || model_type == "mistral") return std::string("llama");
  if (model_type == "qwen2" || model_type == "qwen3") return model_type;
  return UnsupportedError(
      "{}: model_type '{}' is not supported (llama, mistral, qwen2 and qwen3 "
      "are)",
      path, Printable(model_type));
}

Status ParseConfig(const Json& j, const std::string& path, HfConfigInfo* info, Metadata* out) {
  if (!j.is_object()) return CorruptError("{}: not a JSON object", path);
  SLIMLM_ASSIGN_OR_RETURN(info->architecture, ArchitectureOf(j, path));
  const std::string& arch = info->architecture;
  info->model_type = j["model_type"].get<std::string>();
  if (const Json* act = Field(j, "hidden_act"); act != nullptr && *act != "silu") {
    return UnsupportedError("{}: hidden_act {} is not supported (silu is)", path,
                            Printable(act->dump()));
  }
  SLIMLM_ASSIGN_OR_RETURN(int64_t hidden, RequiredCount(j, "hidden_size", path));
  SLIMLM_ASSIGN_OR_RETURN(int64_t ffn, RequiredCount(j, "intermediate_size", path));
  SLIMLM_ASSIGN_OR_RETURN(int64_t layers, RequiredCount(j, "num_hidden_layers", path));
  SLIMLM_ASSIGN_OR_RETURN(int64_t heads, RequiredCount(j, "num_attention_heads", path));
  SLIMLM_ASSIGN_OR_RETURN(std::optional<int64_t> kv_heads,
                          OptionalCount(j, "num_key_value_heads", path));
  SLIMLM_ASSIGN_OR_RETURN(std::optional<int64_t> head_dim, OptionalCount(j, "head_dim", path));
  SLIMLM_ASSIGN_OR_RETURN(std::optional<int64_t> context,
                          OptionalCount(j, "max_position_embeddings", path));
  SLIMLM_ASSIGN_OR_RETURN(int64_t vocab, RequiredCount(j, "vocab_size", path));
  SLIMLM_ASSIGN_OR_RETURN(std::optional<double> eps, OptionalNumber(j, "rms_norm_eps", path));
  SLIMLM_ASSIGN_OR_RETURN(std::optional<double> theta, OptionalNumber(j, "rope_theta", path));
  if (!head_dim && hidden % heads != 0) {
    return CorruptError("{}: num_attention_heads {} does not divide hidden_size {}", path, heads,
                        hidden);
  }
  if (kv_heads && heads % *kv_heads != 0) {
    return CorruptError("{}: num_key_value_heads {} does not divide num_attention_heads {}", path,
                        *kv_heads, heads);
  }
  if (const Json* tie = Field(j, "tie_word_embeddings"); tie != nullptr) {
    if (!tie->is_boolean()) return CorruptError("{}: \"tie_word_embeddings\" is not a bool", path);
    info->tie_word_embeddings = tie->get<bool>();
  }
  auto u32 = [](int64_t v) { return MetaValue::U32(static_cast<uint32_t>(v)); };
  out->Set("general.architecture", MetaValue::String(arch));
  // HF's defaults when config.json omits the context length.
  out->Set(arch + ".context_length", u32(context.value_or(arch == "llama" ? 2048 : 32768)));
  out->Set(arch + ".embedding_length", u32(hidden));
  out->Set(arch + ".feed_forward_length", u32(ffn));
  out->Set(arch + ".block_count", u32(layers));
  out->Set(arch + ".attention.head_count", u32(heads));
  out->Set(arch + ".attention.head_count_kv", u32(kv_heads.value_or(heads)));
  out->Set(arch + ".rope.dimension_count", u32(head_dim.value_or(hidden / heads)));
  if (head_dim) {
    out->Set(arch + ".attention.key_length", u32(*head_dim));
    out->Set(arch + ".attention.value_length", u32(*head_dim));
  }
  out->Set(arch + ".attention.layer_norm_rms_epsilon",
           MetaValue::F32(static_cast<float>(eps.value_or(1e-6))));
  out->Set(arch + ".rope.freq_base", MetaValue::F32(static_cast<float>(theta.value_or(10000.0))));
  SLIMLM_RETURN_IF_ERROR(AddRopeScaling(j, arch, path, out));
  out->Set(arch + ".vocab_size", u32(vocab));
  SLIMLM_RETURN_IF_ERROR(AddTokenId(j, "bos_token_id", "tokenizer.ggml.bos_token_id", path, out));
  SLIMLM_RETURN_IF_ERROR(AddTokenId(j, "eos_token_id", "tokenizer.ggml.eos_token_id", path, out));
  return Status::Ok();
}

// A metadata number as config.json should show it: f32 values by their shortest decimal form,
// so 1e-5 stored as f32 is written 1e-05 rather than 9.999999747378752e-06.
std::optional<double> JsonNumber(const Metadata& m, const std::string& key) {
  const MetaValue* v = m.Find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type() == MetaType::kF32) {
    std::string shortest = fmt::format("{}", static_cast<float>(*v->AsDouble()));
    return std::strtod(shortest.c_str(), nullptr);
  }
  return v->AsDouble();
}

Status WriteRopeScaling(const Metadata& m, const std::string& arch, OrderedJson* config) {
  std::optional<std::string> type = m.GetString(arch + ".rope.scaling.type");
  if (!type || *type == "none") return Status::Ok();
  OrderedJson scaling;
  scaling["rope_type"] = *type;
  if (auto factor = JsonNumber(m, arch + ".rope.scaling.factor")) scaling["factor"] = *factor;
  if (auto n = m.GetInt(arch + ".rope.scaling.original_context_length")) {
    scaling["original_max_position_embeddings"] = *n;
  }
  if (auto low = JsonNumber(m, "slimlm.rope.scaling.low_freq_factor")) {
    scaling["low_freq_factor"] = *low;
  }
  if (auto high = JsonNumber(m, "slimlm.rope.scaling.high_freq_factor")) {
    scaling["high_freq_factor"] = *high;
  }
  (*config)["rope_scaling"] = scaling;
  return Status::Ok();
}

}  // namespace

Result<HfConfigInfo> HfConfigToMetadata(std::string_view json_text, const std::string& path,
                                        Metadata* out) {
  HfConfigInfo info;
  try {
    Json j = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return CorruptError("{}: not valid JSON", path);
    SLIMLM_RETURN_IF_ERROR(ParseConfig(j, path, &info, out));
  } catch (const std::exception& e) {
    return CorruptError("{}: bad config: {}", path, e.what());
  }
  return info;
}

Result<std::string> HfConfigFromStore(const WeightStore& store) {
  const Metadata& m = store.metadata();
  std::string arch = m.GetString("general.architecture").value_or("");
  const char* class_name = arch == "llama"   ? "LlamaForCausalLM"
                           : arch == "qwen2" ? "Qwen2ForCausalLM"
                           : arch == "qwen3" ? "Qwen3ForCausalLM"
                                             : nullptr;
  if (class_name == nullptr) {
    return UnsupportedError(
        "architecture '{}' cannot be written as a Hugging Face config "
        "(llama, qwen2 and qwen3 can)",
        Printable(arch));
  }
  auto need = [&](const std::string& suffix) -> Result<int64_t> {
    std::optional<int64_t> v = m.GetInt(arch + "." + suffix);
    if (!v || *v <= 0) return InvalidArgumentError("metadata lacks {}.{}", arch, suffix);
    return *v;
  };
  const StoredTensor* embd = store.Find("token_embd.weight");
  if (embd == nullptr) return InvalidArgumentError("the model has no token_embd.weight");
  SLIMLM_ASSIGN_OR_RETURN(int64_t hidden, need("embedding_length"));
  SLIMLM_ASSIGN_OR_RETURN(int64_t heads, need("attention.head_count"));
  OrderedJson c;
  try {
    c["architectures"] = {class_name};
    c["model_type"] = arch;
    c["hidden_size"] = hidden;
    SLIMLM_ASSIGN_OR_RETURN(c["intermediate_size"], need("feed_forward_length"));
    SLIMLM_ASSIGN_OR_RETURN(c["num_hidden_layers"], need("block_count"));
    c["num_attention_heads"] = heads;
    c["num_key_value_heads"] = m.GetInt(arch + ".attention.head_count_kv").value_or(heads);
    c["head_dim"] = m.GetInt(arch + ".attention.key_length").value_or(hidden / heads);
    c["vocab_size"] = m.GetInt(arch + ".vocab_size").value_or(embd->shape[0]);
    if (auto n = m.GetInt(arch + ".context_length")) c["max_position_embeddings"] = *n;
    c["rms_norm_eps"] = JsonNumber(m, arch + ".attention.layer_norm_rms_epsilon").value_or(1e-6);
    c["rope_theta"] = JsonNumber(m, arch + ".rope.freq_base").value_or(10000.0);
    SLIMLM_RETURN_IF_ERROR(WriteRopeScaling(m, arch, &c));
    c["hidden_act"] = "silu";
    c["tie_word_embeddings"] = store.Find("output.weight") == nullptr;
    if (auto bos = m.GetInt("tokenizer.ggml.bos_token_id")) c["bos_token_id"] = *bos;
    if (auto eos = m.GetInt("tokenizer.ggml.eos_token_id")) c["eos_token_id"] = *eos;
    if (arch == "llama") {
      c["attention_bias"] = store.Find("blk.0.attn_q.bias") != nullptr;
      c["mlp_bias"] = false;
    }
    c["torch_dtype"] = embd->dtype == DType::kF16    ? "float16"
                       : embd->dtype == DType::kBF16 ? "bfloat16"
                                                     : "float32";
    return c.dump(2) + "\n";
  } catch (const std::exception& e) {
    return InternalError("cannot build config.json: {}", e.what());
  }
}

}  // namespace slimlm
