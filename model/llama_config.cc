#include "model/llama_config.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace glvq::model {
namespace {

using json = nlohmann::json;

// Typed reads of config keys; every error names the file and the key.
class ConfigReader {
 public:
  ConfigReader(const json& config, const std::string& where) : c_(config), where_(where) {}

  absl::Status Error(const std::string& key, const std::string& problem) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ": ", key, " ", problem));
  }

  bool Has(const std::string& key) const { return c_.contains(key) && !c_.at(key).is_null(); }

  // A positive integer; `fallback` when the key is absent (required if none).
  absl::StatusOr<int64_t> PositiveInt(const std::string& key,
                                      std::optional<int64_t> fallback = std::nullopt) const {
    if (!Has(key)) {
      if (fallback.has_value()) return *fallback;
      return Error(key, "is missing");
    }
    const json& v = c_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
      return Error(key, absl::StrCat("must be a positive integer, not ", v.dump()));
    }
    return v.get<int64_t>();
  }

  absl::StatusOr<int64_t> NonNegativeInt(const std::string& key, int64_t fallback) const {
    if (!Has(key)) return fallback;
    const json& v = c_.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0) {
      return Error(key, absl::StrCat("must be a non-negative integer, not ", v.dump()));
    }
    return v.get<int64_t>();
  }

  absl::StatusOr<double> PositiveNumber(const json& obj, const std::string& key,
                                        double fallback) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return fallback;
    const json& v = obj.at(key);
    if (!v.is_number() || !(v.get<double>() > 0)) {
      return Error(key, absl::StrCat("must be a positive number, not ", v.dump()));
    }
    return v.get<double>();
  }

  absl::StatusOr<bool> Bool(const std::string& key, bool fallback) const {
    if (!Has(key)) return fallback;
    if (!c_.at(key).is_boolean()) return Error(key, "must be true or false");
    return c_.at(key).get<bool>();
  }

  absl::StatusOr<std::string> String(const std::string& key, const std::string& fallback) const {
    if (!Has(key)) return fallback;
    if (!c_.at(key).is_string()) return Error(key, "must be a string");
    return c_.at(key).get<std::string>();
  }

  const json& raw() const { return c_; }
  const std::string& where() const { return where_; }

 private:
  const json& c_;
  const std::string& where_;
};

absl::Status Unimplemented(const ConfigReader& r, const std::string& what) {
  return absl::UnimplementedError(
      absl::StrCat(r.where(), ": ", what, " is not supported by glvq's Llama forward pass"));
}

// Rejects what the forward pass does not implement rather than computing
// something subtly different from the reference.
absl::Status CheckSupported(const ConfigReader& r) {
  ASSIGN_OR_RETURN(std::string type, r.String("model_type", "llama"));
  if (type != "llama") {
    return r.Error("model_type", absl::StrCat("is \"", type, "\"; only \"llama\" is supported"));
  }
  ASSIGN_OR_RETURN(std::string act, r.String("hidden_act", "silu"));
  if (act != "silu") return Unimplemented(r, absl::StrCat("hidden_act \"", act, "\""));
  if (r.Has("rope_scaling")) return Unimplemented(r, "rope_scaling");
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    ASSIGN_OR_RETURN(bool bias, r.Bool(key, false));
    if (bias) return Unimplemented(r, key);
  }
  return absl::OkStatus();
}

// rope_theta, or (newer transformers) rope_parameters.rope_theta with the
// default rope_type.
absl::StatusOr<double> RopeTheta(const ConfigReader& r) {
  if (!r.Has("rope_parameters")) return r.PositiveNumber(r.raw(), "rope_theta", 10000.0);
  const json& p = r.raw().at("rope_parameters");
  if (!p.is_object()) return r.Error("rope_parameters", "must be an object");
  if (p.contains("rope_type") && p.at("rope_type") != "default") {
    return Unimplemented(r, absl::StrCat("rope_type ", p.at("rope_type").dump()));
  }
  return r.PositiveNumber(p, "rope_theta", 10000.0);
}

absl::Status FillSizes(const ConfigReader& r, LlamaConfig& c) {
  ASSIGN_OR_RETURN(c.hidden_size, r.PositiveInt("hidden_size"));
  ASSIGN_OR_RETURN(c.intermediate_size, r.PositiveInt("intermediate_size"));
  ASSIGN_OR_RETURN(c.num_layers, r.PositiveInt("num_hidden_layers"));
  ASSIGN_OR_RETURN(c.num_heads, r.PositiveInt("num_attention_heads"));
  ASSIGN_OR_RETURN(c.num_kv_heads, r.PositiveInt("num_key_value_heads", c.num_heads));
  ASSIGN_OR_RETURN(c.vocab_size, r.PositiveInt("vocab_size"));
  ASSIGN_OR_RETURN(c.max_position_embeddings, r.PositiveInt("max_position_embeddings", 2048));
  if (c.num_heads % c.num_kv_heads != 0) {
    return r.Error(
        "num_key_value_heads",
        absl::StrCat(c.num_kv_heads, " does not divide num_attention_heads ", c.num_heads));
  }
  if (!r.Has("head_dim") && c.hidden_size % c.num_heads != 0) {
    return r.Error("hidden_size", absl::StrCat(c.hidden_size, " is not a multiple of ",
                                               "num_attention_heads ", c.num_heads));
  }
  ASSIGN_OR_RETURN(c.head_dim, r.PositiveInt("head_dim", c.hidden_size / c.num_heads));
  if (c.head_dim % 2 != 0) {
    return r.Error("head_dim", absl::StrCat(c.head_dim, " is odd; rotary embeddings need pairs"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LlamaConfig> ParseLlamaConfig(std::string_view json_text, const std::string& where) {
  const json parsed = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not a valid JSON object"));
  }
  const ConfigReader r(parsed, where);
  RETURN_IF_ERROR(CheckSupported(r));
  LlamaConfig c;
  RETURN_IF_ERROR(FillSizes(r, c));
  ASSIGN_OR_RETURN(c.rms_norm_eps, r.PositiveNumber(parsed, "rms_norm_eps", 1e-6));
  ASSIGN_OR_RETURN(c.rope_theta, RopeTheta(r));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  ASSIGN_OR_RETURN(c.bos_token_id, r.NonNegativeInt("bos_token_id", 1));
  return c;
}

absl::StatusOr<LlamaConfig> LoadLlamaConfig(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / "config.json";
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat(path.string(),
                                              ": no such file (a Llama model "
                                              "directory needs its config.json)"));
    }
    return text.status();
  }
  return ParseLlamaConfig(*text, path.string());
}

}  // namespace glvq::model
