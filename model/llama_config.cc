#include "model/llama_config.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

  // An id or a list of ids (eos_token_id); empty when absent.
  absl::StatusOr<std::vector<int64_t>> IdList(const std::string& key) const {
    std::vector<int64_t> ids;
    if (!Has(key)) return ids;
    const json& v = c_.at(key);
    for (const json& id : v.is_array() ? v : json::array({v})) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0) {
        return Error(key, absl::StrCat("must be a non-negative integer or a list of them, not ",
                                       v.dump().substr(0, 80)));
      }
      ids.push_back(id.get<int64_t>());
    }
    return ids;
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

constexpr const char* kModelTypes[] = {"llama", "mistral", "qwen2", "qwen3"};

// Rejects what the forward pass does not implement rather than computing
// something subtly different from the reference; sets the family's switches.
absl::Status ReadFamily(const ConfigReader& r, LlamaConfig& c) {
  ASSIGN_OR_RETURN(c.model_type, r.String("model_type", "llama"));
  if (std::find(std::begin(kModelTypes), std::end(kModelTypes), c.model_type) ==
      std::end(kModelTypes)) {
    return r.Error("model_type", absl::StrCat("is \"", c.model_type, "\"; supported: ",
                                              absl::StrJoin(kModelTypes, ", ")));
  }
  ASSIGN_OR_RETURN(std::string act, r.String("hidden_act", "silu"));
  if (act != "silu") return Unimplemented(r, absl::StrCat("hidden_act \"", act, "\""));
  for (const char* moe : {"num_experts", "num_local_experts", "moe_intermediate_size"}) {
    if (r.Has(moe)) return Unimplemented(r, absl::StrCat("a mixture of experts (", moe, ")"));
  }
  ASSIGN_OR_RETURN(bool sliding, r.Bool("use_sliding_window", false));
  if (sliding) return Unimplemented(r, "use_sliding_window (per-layer sliding windows)");
  if (c.model_type == "mistral" && r.Has("sliding_window")) {
    ASSIGN_OR_RETURN(c.sliding_window, r.PositiveInt("sliding_window"));
  }
  ASSIGN_OR_RETURN(const bool attention_bias, r.Bool("attention_bias", false));
  c.qkv_bias = c.model_type == "qwen2" || attention_bias;  // Qwen2: always, o_proj never
  c.o_bias = c.model_type != "qwen2" && attention_bias;
  ASSIGN_OR_RETURN(c.mlp_bias, r.Bool("mlp_bias", false));
  c.qk_norm = c.model_type == "qwen3";
  return absl::OkStatus();
}

absl::StatusOr<RopeType> ParseRopeType(const ConfigReader& r, const std::string& name) {
  if (name == "default") return RopeType::kDefault;
  if (name == "linear") return RopeType::kLinear;
  if (name == "dynamic") return RopeType::kDynamic;
  if (name == "llama3") return RopeType::kLlama3;
  if (name == "yarn") return RopeType::kYarn;
  return Unimplemented(r, absl::StrCat("rope_type \"", name,
                                       "\" (supported: default, linear, dynamic, llama3, yarn)"));
}

// yarn's attention factor, as transformers infers it when absent.
double YarnMscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// rope_theta and the scaling, from rope_parameters (transformers ≥ 5) or
// rope_scaling + rope_theta (older configs, as Llama 3.x ships them).
absl::Status ReadRope(const ConfigReader& r, LlamaConfig& c) {
  const char* key = r.Has("rope_parameters") ? "rope_parameters"
                    : r.Has("rope_scaling")  ? "rope_scaling"
                                             : nullptr;
  static const json kEmpty = json::object();
  const json& p = key != nullptr ? r.raw().at(key) : kEmpty;
  if (!p.is_object()) return r.Error(key, "must be an object");
  ASSIGN_OR_RETURN(const double top_theta, r.PositiveNumber(r.raw(), "rope_theta", 10000.0));
  ASSIGN_OR_RETURN(c.rope_theta, r.PositiveNumber(p, "rope_theta", top_theta));
  for (const json* holder : {&r.raw(), &p}) {
    if (holder->contains("partial_rotary_factor") &&
        holder->at("partial_rotary_factor") != json(1.0)) {
      return Unimplemented(r, "partial_rotary_factor");
    }
  }
  std::string type = "default";
  for (const char* k : {"rope_type", "type"}) {
    if (p.contains(k) && p.at(k).is_string()) {
      type = p.at(k).get<std::string>();
      break;
    }
  }
  RopeScaling& s = c.rope_scaling;
  ASSIGN_OR_RETURN(s.type, ParseRopeType(r, type));
  if (s.type == RopeType::kDefault) return absl::OkStatus();
  const std::string where = absl::StrCat(key, ".");
  const auto required = [&](const char* name) -> absl::StatusOr<double> {
    if (!p.contains(name) || !p.at(name).is_number() || !(p.at(name).get<double>() > 0)) {
      return r.Error(where + name, absl::StrCat("must be a positive number for rope_type ", type));
    }
    return p.at(name).get<double>();
  };
  ASSIGN_OR_RETURN(const int64_t top_original,
                   r.PositiveInt("original_max_position_embeddings", c.max_position_embeddings));
  s.original_max_position_embeddings = top_original;
  if (p.contains("original_max_position_embeddings")) {
    ASSIGN_OR_RETURN(const double original, required("original_max_position_embeddings"));
    s.original_max_position_embeddings = static_cast<int64_t>(original);
  }
  if (s.type == RopeType::kYarn && (!p.contains("factor") || p.at("factor").is_null())) {
    s.factor = double(c.max_position_embeddings) / double(s.original_max_position_embeddings);
  } else {
    ASSIGN_OR_RETURN(s.factor, required("factor"));
  }
  if (s.type == RopeType::kLlama3) {
    ASSIGN_OR_RETURN(s.low_freq_factor, required("low_freq_factor"));
    ASSIGN_OR_RETURN(s.high_freq_factor, required("high_freq_factor"));
    if (!(s.high_freq_factor > s.low_freq_factor)) {
      return r.Error(where + "high_freq_factor", "must exceed low_freq_factor");
    }
  }
  if (s.type == RopeType::kYarn) {
    ASSIGN_OR_RETURN(s.beta_fast, r.PositiveNumber(p, "beta_fast", 32.0));
    ASSIGN_OR_RETURN(s.beta_slow, r.PositiveNumber(p, "beta_slow", 1.0));
    if (p.contains("truncate") && p.at("truncate").is_boolean()) s.truncate = p.at("truncate");
    ASSIGN_OR_RETURN(const double mscale, r.PositiveNumber(p, "mscale", 0.0));
    ASSIGN_OR_RETURN(const double mscale_all_dim, r.PositiveNumber(p, "mscale_all_dim", 0.0));
    s.attention_factor = mscale > 0 && mscale_all_dim > 0
                             ? YarnMscale(s.factor, mscale) / YarnMscale(s.factor, mscale_all_dim)
                             : YarnMscale(s.factor, 1.0);
    if (p.contains("attention_factor") && !p.at("attention_factor").is_null()) {
      ASSIGN_OR_RETURN(s.attention_factor, required("attention_factor"));
    }
  }
  return absl::OkStatus();
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
  LlamaConfig c;
  RETURN_IF_ERROR(ReadFamily(r, c));
  RETURN_IF_ERROR(FillSizes(r, c));
  ASSIGN_OR_RETURN(c.rms_norm_eps, r.PositiveNumber(parsed, "rms_norm_eps", 1e-6));
  RETURN_IF_ERROR(ReadRope(r, c));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  ASSIGN_OR_RETURN(c.bos_token_id, r.NonNegativeInt("bos_token_id", 1));
  ASSIGN_OR_RETURN(c.eos_token_ids, r.IdList("eos_token_id"));
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
