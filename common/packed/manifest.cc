#include "common/packed/manifest.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/packed/pvq.h"

namespace glvq {
namespace {

// std::map-backed objects: keys come out sorted, so dumps are deterministic.
using json = nlohmann::json;

constexpr std::string_view kQuantMethod = "glvq";
constexpr uint64_t kMaxJsonInt = std::numeric_limits<int64_t>::max();

std::string CrcHex(uint32_t crc) { return absl::StrFormat("%08x", crc); }

absl::Status DataLoss(absl::string_view where, absl::string_view problem) {
  return absl::DataLossError(absl::StrCat(where, ": ", problem));
}

// ---------------------------------------------------------------------------
// JSON: typed field access with errors that say where

class JsonFields {
 public:
  static absl::StatusOr<JsonFields> Of(const json& obj, std::string where) {
    if (!obj.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": expected a JSON object"));
    }
    return JsonFields(obj, std::move(where));
  }

  const std::string& where() const { return where_; }
  bool Has(const std::string& key) const { return obj_->contains(key); }
  const json& object() const { return *obj_; }

  absl::StatusOr<const json*> Get(const std::string& key) const {
    auto it = obj_->find(key);
    if (it == obj_->end()) return Error(key, "missing");
    return &*it;
  }
  absl::StatusOr<std::string> String(const std::string& key) const {
    ASSIGN_OR_RETURN(const json* v, Get(key));
    if (!v->is_string()) return Error(key, "expected a string");
    return v->get<std::string>();
  }
  absl::StatusOr<int64_t> Int(const std::string& key) const {
    ASSIGN_OR_RETURN(const json* v, Get(key));
    if (v->is_number_unsigned() && v->get<uint64_t>() <= kMaxJsonInt) return v->get<int64_t>();
    if (v->is_number_integer() && !v->is_number_unsigned()) return v->get<int64_t>();
    return Error(key, "expected an integer");
  }
  absl::StatusOr<uint64_t> Uint(const std::string& key) const {
    ASSIGN_OR_RETURN(const json* v, Get(key));
    if (!v->is_number_unsigned()) return Error(key, "expected a non-negative integer");
    return v->get<uint64_t>();
  }
  absl::StatusOr<double> Double(const std::string& key) const {
    ASSIGN_OR_RETURN(const json* v, Get(key));
    if (!v->is_number()) return Error(key, "expected a number");
    return v->get<double>();
  }
  absl::StatusOr<bool> Bool(const std::string& key) const {
    ASSIGN_OR_RETURN(const json* v, Get(key));
    if (!v->is_boolean()) return Error(key, "expected true or false");
    return v->get<bool>();
  }
  absl::StatusOr<JsonFields> Object(const std::string& key) const {
    ASSIGN_OR_RETURN(const json* v, Get(key));
    return Of(*v, absl::StrCat(where_, ".", key));
  }
  absl::StatusOr<const json*> Array(const std::string& key) const {
    ASSIGN_OR_RETURN(const json* v, Get(key));
    if (!v->is_array()) return Error(key, "expected an array");
    return v;
  }
  absl::StatusOr<std::vector<int64_t>> Shape(const std::string& key) const {
    ASSIGN_OR_RETURN(const json* v, Array(key));
    std::vector<int64_t> shape;
    for (const json& d : *v) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > kMaxJsonInt) {
        return Error(key, "expected non-negative integers");
      }
      shape.push_back(d.get<int64_t>());
    }
    return shape;
  }
  absl::StatusOr<DType> Dtype(const std::string& key) const {
    ASSIGN_OR_RETURN(std::string name, String(key));
    std::optional<DType> dtype = ParseDType(name);
    if (!dtype) return Error(key, absl::StrCat("unknown dtype '", name, "'"));
    return *dtype;
  }
  absl::StatusOr<uint32_t> Crc(const std::string& key) const {
    ASSIGN_OR_RETURN(std::string hex, String(key));
    const bool ok = hex.size() == 8 && hex.find_first_not_of("0123456789abcdef") ==
                                           std::string::npos;
    if (!ok) return Error(key, "expected 8 lowercase hex digits");
    return static_cast<uint32_t>(std::strtoul(hex.c_str(), nullptr, 16));
  }
  const json& raw() const { return *obj_; }

 private:
  JsonFields(const json& obj, std::string where) : obj_(&obj), where_(std::move(where)) {}
  absl::Status Error(const std::string& key, absl::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ".", key, ": ", problem));
  }
  const json* obj_;
  std::string where_;
};

// ---------------------------------------------------------------------------
// Manifest <-> JSON

json ConfigToJsonImpl(const QuantizationConfig& c) {
  json j = json::object();
  j["quant_method"] = kQuantMethod;
  j["format_version"] = packed::kFormatVersion;
  j["method"] = c.method;
  j["bits"] = c.bits;
  j["lattice_dim"] = c.lattice_dim;
  j["group_size"] = c.group_size;
  for (const auto& [key, value] : c.parameters) {
    std::visit([&j, &key](const auto& v) { j[key] = v; }, value);
  }
  return j;
}

constexpr std::array<std::string_view, 6> kFixedConfigKeys = {
    "quant_method", "format_version", "method", "bits", "lattice_dim", "group_size"};

bool IsFixedConfigKey(std::string_view key) {
  return std::find(kFixedConfigKeys.begin(), kFixedConfigKeys.end(), key) !=
         kFixedConfigKeys.end();
}

absl::StatusOr<ConfigValue> ConfigValueFromJson(const json& v, const std::string& where,
                                                const std::string& key) {
  if (v.is_boolean()) return ConfigValue(v.get<bool>());
  if (v.is_number_integer() && (!v.is_number_unsigned() || v.get<uint64_t>() <= kMaxJsonInt)) {
    return ConfigValue(v.get<int64_t>());
  }
  if (v.is_number_float()) return ConfigValue(v.get<double>());
  if (v.is_string()) return ConfigValue(v.get<std::string>());
  return absl::InvalidArgumentError(
      absl::StrCat(where, ".", key, ": a method parameter must be a boolean, number or string"));
}

absl::Status CheckFormatVersion(int64_t version, absl::string_view where) {
  if (version != packed::kFormatVersion) {
    return absl::UnimplementedError(absl::StrCat(
        where, ": format_version ", version, " is not supported (this reader reads ",
        packed::kFormatVersion, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<QuantizationConfig> ConfigFromJson(const JsonFields& f) {
  ASSIGN_OR_RETURN(std::string quant_method, f.String("quant_method"));
  if (quant_method != kQuantMethod) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.where(), ".quant_method: expected \"glvq\", got \"", quant_method, "\""));
  }
  ASSIGN_OR_RETURN(int64_t version, f.Int("format_version"));
  RETURN_IF_ERROR(CheckFormatVersion(version, f.where()));
  QuantizationConfig c;
  ASSIGN_OR_RETURN(c.method, f.String("method"));
  ASSIGN_OR_RETURN(c.bits, f.Double("bits"));
  ASSIGN_OR_RETURN(c.lattice_dim, f.Int("lattice_dim"));
  ASSIGN_OR_RETURN(c.group_size, f.Int("group_size"));
  for (const auto& [key, value] : f.object().items()) {
    if (IsFixedConfigKey(key)) continue;
    ASSIGN_OR_RETURN(c.parameters[key], ConfigValueFromJson(value, f.where(), key));
  }
  return c;
}

void PutAccounting(const BitsAccounting& acc, json& j) {
  j["bits_payload"] = acc.payload_bits;
  j["bits_total"] = acc.total_bits;
  j["bits_per_weight_payload"] = acc.PayloadPerWeight();
  j["bits_per_weight_total"] = acc.TotalPerWeight();
}

// The per-weight figures are derived values; a manifest whose figures do not
// follow from its own integers has been tampered with or corrupted.
absl::StatusOr<BitsAccounting> GetAccounting(const JsonFields& f, uint64_t weights) {
  BitsAccounting acc{.weights = weights};
  ASSIGN_OR_RETURN(acc.payload_bits, f.Uint("bits_payload"));
  ASSIGN_OR_RETURN(acc.total_bits, f.Uint("bits_total"));
  ASSIGN_OR_RETURN(double payload_pw, f.Double("bits_per_weight_payload"));
  ASSIGN_OR_RETURN(double total_pw, f.Double("bits_per_weight_total"));
  if (payload_pw != acc.PayloadPerWeight() || total_pw != acc.TotalPerWeight()) {
    return DataLoss(f.where(), absl::StrCat(
        "bits per weight (", payload_pw, ", ", total_pw, ") do not follow from bits ",
        acc.payload_bits, ", ", acc.total_bits, " and ", weights, " weights"));
  }
  return acc;
}

json ComponentToJson(const ManifestComponent& c) {
  json j = json::object();
  j["tensor"] = c.tensor;
  j["dtype"] = DTypeName(c.dtype);
  j["shape"] = c.shape;
  j["bytes"] = c.bytes;
  j["crc32c"] = CrcHex(c.crc32c);
  return j;
}

absl::StatusOr<ManifestComponent> ComponentFromJson(const JsonFields& f) {
  ManifestComponent c;
  ASSIGN_OR_RETURN(c.tensor, f.String("tensor"));
  ASSIGN_OR_RETURN(c.dtype, f.Dtype("dtype"));
  ASSIGN_OR_RETURN(c.shape, f.Shape("shape"));
  ASSIGN_OR_RETURN(c.bytes, f.Uint("bytes"));
  ASSIGN_OR_RETURN(c.crc32c, f.Crc("crc32c"));
  return c;
}

json QualityToJson(const TensorQuality& q) {
  json j = json::object();
  j["nmse"] = q.nmse;
  j["sqnr_db"] = q.sqnr_db;
  j["proxy_loss"] = q.proxy_loss;
  j["top_error"] = q.top_error;
  return j;
}

absl::StatusOr<TensorQuality> QualityFromJson(const JsonFields& f) {
  TensorQuality q;
  ASSIGN_OR_RETURN(q.nmse, f.Double("nmse"));
  ASSIGN_OR_RETURN(q.sqnr_db, f.Double("sqnr_db"));
  ASSIGN_OR_RETURN(q.proxy_loss, f.Double("proxy_loss"));
  // Manifests written before top_error existed lack it.
  if (f.Has("top_error")) {
    ASSIGN_OR_RETURN(q.top_error, f.Double("top_error"));
  }
  return q;
}

json TensorToJson(const ManifestTensor& t) {
  json j = json::object();
  j["name"] = t.name;
  j["quantized"] = t.quantized;
  j["dtype"] = DTypeName(t.dtype);
  j["shape"] = t.shape;
  if (!t.quantized) {
    j["bytes"] = t.bytes;
    j["crc32c"] = CrcHex(t.crc32c);
    return j;
  }
  j["method"] = t.method;
  j["group_size"] = t.group_size;
  j["dim"] = t.dim;
  if (t.tile_rows != 1) j["tile_rows"] = t.tile_rows;
  j["num_groups"] = t.num_groups;
  json components = json::object();
  for (const auto& [name, c] : t.components) components[name] = ComponentToJson(c);
  j["components"] = std::move(components);
  PutAccounting(t.accounting, j);
  if (t.quality) j["quality"] = QualityToJson(*t.quality);
  return j;
}

absl::Status CheckQuantizedEntryShape(const JsonFields& f, const ManifestTensor& t) {
  if (t.shape.size() != 2 || t.shape[0] < 1 || t.shape[1] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.where(), ": a quantized tensor must be 2-D and non-empty, got ",
        ShapeToString(t.shape)));
  }
  if (!IsFloatDType(t.dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.where(), ": source dtype ", Sv(DTypeName(t.dtype)), " is not a float dtype"));
  }
  if (ComponentNames(t.method).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.where(), ": unknown method '", t.method, "'"));
  }
  return absl::OkStatus();
}

absl::Status ComponentsFromJson(const JsonFields& f, ManifestTensor& t) {
  ASSIGN_OR_RETURN(JsonFields comps, f.Object("components"));
  // Keys of a std::map-backed object iterate in sorted order, as do the names.
  std::vector<std::string> actual;
  for (const auto& [key, value] : comps.raw().items()) actual.push_back(key);
  // rht_seed and (glvq) row_scale are optional; anything else unknown is an error.
  const bool with_rht_seed = comps.Has(std::string(kRhtSeedComponent));
  const bool with_row_scale = comps.Has(std::string(kRowScaleComponent));
  const std::vector<std::string> expected =
      ComponentNames(t.method, with_rht_seed, with_row_scale);
  if (actual != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        comps.where(), ": expected components {", absl::StrJoin(expected, ", "), "}"));
  }
  for (const std::string& name : expected) {
    ASSIGN_OR_RETURN(JsonFields cf, comps.Object(name));
    ASSIGN_OR_RETURN(ManifestComponent c, ComponentFromJson(cf));
    if (c.tensor != ComponentTensorName(t.name, name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          cf.where(), ".tensor: expected \"", ComponentTensorName(t.name, name), "\""));
    }
    t.components.emplace(name, std::move(c));
  }
  return absl::OkStatus();
}

absl::Status QuantizedFieldsFromJson(const JsonFields& f, ManifestTensor& t) {
  ASSIGN_OR_RETURN(t.method, f.String("method"));
  RETURN_IF_ERROR(CheckQuantizedEntryShape(f, t));
  ASSIGN_OR_RETURN(t.group_size, f.Int("group_size"));
  ASSIGN_OR_RETURN(t.dim, f.Int("dim"));
  if (f.Has("tile_rows")) {
    ASSIGN_OR_RETURN(t.tile_rows, f.Int("tile_rows"));
  }
  ASSIGN_OR_RETURN(t.num_groups, f.Int("num_groups"));
  RETURN_IF_ERROR(ComponentsFromJson(f, t));
  ASSIGN_OR_RETURN(t.accounting,
                   GetAccounting(f, static_cast<uint64_t>(t.shape[0] * t.shape[1])));
  if (f.Has("quality")) {
    ASSIGN_OR_RETURN(JsonFields q, f.Object("quality"));
    ASSIGN_OR_RETURN(t.quality, QualityFromJson(q));
  }
  return absl::OkStatus();
}

absl::StatusOr<ManifestTensor> TensorFromJson(const JsonFields& f) {
  ManifestTensor t;
  ASSIGN_OR_RETURN(t.name, f.String("name"));
  if (t.name.find(kComponentInfix) != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.where(), ".name: '", t.name, "' uses the reserved name part '.glvq.'"));
  }
  ASSIGN_OR_RETURN(t.quantized, f.Bool("quantized"));
  ASSIGN_OR_RETURN(t.dtype, f.Dtype("dtype"));
  ASSIGN_OR_RETURN(t.shape, f.Shape("shape"));
  if (t.quantized) {
    RETURN_IF_ERROR(QuantizedFieldsFromJson(f, t));
  } else {
    ASSIGN_OR_RETURN(t.bytes, f.Uint("bytes"));
    ASSIGN_OR_RETURN(t.crc32c, f.Crc("crc32c"));
  }
  return t;
}

json TotalsToJson(const Manifest& m) {
  json j = json::object();
  j["weights_quantized"] = m.totals.weights;
  PutAccounting(m.totals, j);
  j["passthrough_bytes"] = m.passthrough_bytes;
  return j;
}

absl::Status TotalsFromJson(const JsonFields& f, Manifest& m) {
  ASSIGN_OR_RETURN(uint64_t weights, f.Uint("weights_quantized"));
  ASSIGN_OR_RETURN(m.totals, GetAccounting(f, weights));
  ASSIGN_OR_RETURN(m.passthrough_bytes, f.Uint("passthrough_bytes"));
  return absl::OkStatus();
}

absl::Status TensorsFromJson(const JsonFields& f, Manifest& m) {
  ASSIGN_OR_RETURN(const json* list, f.Array("tensors"));
  for (size_t i = 0; i < list->size(); ++i) {
    ASSIGN_OR_RETURN(JsonFields tf, JsonFields::Of((*list)[i], absl::StrCat(f.where(),
                                                                ".tensors[", i, "]")));
    ASSIGN_OR_RETURN(ManifestTensor t, TensorFromJson(tf));
    if (!m.tensors.empty() && !(m.tensors.back().name < t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(tf.where(), ": tensors are not sorted by name without duplicates"));
    }
    m.tensors.push_back(std::move(t));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateQuantizationConfig(const QuantizationConfig& c) {
  if (c.method.empty()) return absl::InvalidArgumentError("quantization config: empty method");
  if (!std::isfinite(c.bits) || c.bits <= 0 || c.bits > packed::kMaxCodeBits) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantization config: bits must be in (0, 8], got ", c.bits));
  }
  // The largest `dim` of any method: pvq's D (glvq's d stops at 32).
  if (c.lattice_dim < 1 || c.lattice_dim > pvq::kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantization config: lattice_dim must be in 1..", pvq::kMaxDim, ", got ",
        c.lattice_dim));
  }
  if (c.group_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantization config: group_size must be positive, got ", c.group_size));
  }
  for (const auto& [key, value] : c.parameters) {
    if (IsFixedConfigKey(key) || key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantization config: parameter name '", key, "' is reserved"));
    }
    if (const double* d = std::get_if<double>(&value); d != nullptr && !std::isfinite(*d)) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantization config: parameter '", key, "' is not finite"));
    }
  }
  return absl::OkStatus();
}

json QuantizationConfigToJson(const QuantizationConfig& config) {
  return ConfigToJsonImpl(config);
}

absl::StatusOr<QuantizationConfig> QuantizationConfigFromJson(const json& obj,
                                                              std::string where) {
  ASSIGN_OR_RETURN(const JsonFields f, JsonFields::Of(obj, std::move(where)));
  return ConfigFromJson(f);
}

absl::StatusOr<json> ReadJsonObject(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": not a valid JSON object"));
  }
  return j;
}

std::string DumpJson(const json& j) { return j.dump(2) + "\n"; }

std::string SerializeManifest(const Manifest& m) {
  json j = json::object();
  j["format"] = kManifestFormat;
  j["format_version"] = m.format_version;
  j["quantization_config"] = ConfigToJsonImpl(m.config);
  json tensors = json::array();
  for (const ManifestTensor& t : m.tensors) tensors.push_back(TensorToJson(t));
  j["tensors"] = std::move(tensors);
  j["totals"] = TotalsToJson(m);
  return DumpJson(j);
}

absl::StatusOr<Manifest> ParseManifest(std::string_view json_text) {
  const json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("manifest: not valid JSON");
  ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, "manifest"));
  ASSIGN_OR_RETURN(std::string format, f.String("format"));
  if (format != kManifestFormat) {
    return absl::UnimplementedError(absl::StrCat(
        "manifest: format \"", format, "\" is not \"", Sv(kManifestFormat), "\""));
  }
  Manifest m;
  ASSIGN_OR_RETURN(m.format_version, f.Int("format_version"));
  RETURN_IF_ERROR(CheckFormatVersion(m.format_version, "manifest"));
  ASSIGN_OR_RETURN(JsonFields qc, f.Object(std::string(kQuantizationConfigKey)));
  ASSIGN_OR_RETURN(m.config, ConfigFromJson(qc));
  RETURN_IF_ERROR(TensorsFromJson(f, m));
  ASSIGN_OR_RETURN(JsonFields totals, f.Object("totals"));
  RETURN_IF_ERROR(TotalsFromJson(totals, m));
  return m;
}

}  // namespace glvq
