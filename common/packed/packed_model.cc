#include "common/base/string_view.h"
#include "common/packed/packed_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/crc32c.h"
#include "common/packed/companion_files.h"
#include "common/packed/pvq.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/safetensors/writer.h"
#include "nlohmann/json.hpp"

namespace glvq {
namespace {

namespace fs = std::filesystem;
// std::map-backed objects: keys come out sorted, so dumps are deterministic.
using json = nlohmann::json;

constexpr std::string_view kConfigFileName = "config.json";
constexpr std::string_view kQuantizationConfigKey = "quantization_config";
constexpr std::string_view kQuantMethod = "glvq";
constexpr std::string_view kGlvqInfix = ".glvq.";
constexpr uint64_t kMaxJsonInt = std::numeric_limits<int64_t>::max();

// ---------------------------------------------------------------------------
// Small helpers

std::string CrcHex(uint32_t crc) { return absl::StrFormat("%08x", crc); }


absl::Status DataLoss(absl::string_view where, absl::string_view problem) {
  return absl::DataLossError(absl::StrCat(where, ": ", problem));
}

// Prefixes an error with `where`, keeping its code.
absl::Status Annotate(const absl::Status& s, absl::string_view where) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
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

json ConfigToJson(const QuantizationConfig& c) {
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
  if (t.name.find(kGlvqInfix) != std::string::npos) {
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

// ---------------------------------------------------------------------------
// Writing: inputs checked against the source

absl::Status ValidateConfig(const QuantizationConfig& c) {
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

absl::Status CheckAgainstSource(const SafetensorsModel& source, const QuantizedTensor& qt) {
  RETURN_IF_ERROR(ValidateQuantizedTensor(qt));
  const TensorEntry* e = source.Find(qt.name);
  if (e == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("quantized tensor '", qt.name, "' is not in the source model"));
  }
  const std::vector<int64_t> shape = {qt.rows, qt.cols};
  if (!IsFloatDType(e->dtype) || e->shape != shape || e->dtype != qt.source_dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantized tensor '", qt.name, "' is ", Sv(DTypeName(qt.source_dtype)), " ",
        ShapeToString(shape), " but the source tensor is ", Sv(DTypeName(e->dtype)), " ",
        ShapeToString(e->shape), " (must be the same 2-D float tensor)"));
  }
  return absl::OkStatus();
}

// Component names live in the ".glvq." namespace, which a source must not
// use itself, so every packed tensor name has exactly one meaning.
absl::Status CheckSourceNames(const SafetensorsModel& source) {
  for (const std::string& name : source.tensor_names()) {
    if (name.find(kGlvqInfix) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "source tensor '", name, "' uses the reserved name part '.glvq.'"));
    }
  }
  return absl::OkStatus();
}

// Every quantized name once, each naming a tensor of the source.
absl::StatusOr<std::set<std::string, std::less<>>> QuantizedNames(
    const SafetensorsModel& source, const std::vector<std::string>& names) {
  std::set<std::string, std::less<>> set;
  for (const std::string& name : names) {
    if (source.Find(name) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantized tensor '", name, "' is not in the source model"));
    }
    if (!set.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantized tensor '", name, "' is given twice"));
    }
  }
  return set;
}

absl::StatusOr<json> ReadConfigJson(const fs::path& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": not a valid JSON object"));
  }
  return j;
}

std::string DumpJson(const json& j) { return j.dump(2) + "\n"; }

// The source's config.json (or {}) with quantization_config added.
absl::StatusOr<std::string> PackedConfigJson(const fs::path& source_dir,
                                              const QuantizationConfig& config) {
  json j = json::object();
  const fs::path path = source_dir / kConfigFileName;
  if (fs::exists(path)) {
    ASSIGN_OR_RETURN(j, ReadConfigJson(path));
    if (j.contains(std::string(kQuantizationConfigKey))) {
      return absl::InvalidArgumentError(absl::StrCat(
          path.string(), ": the source model already has a quantization_config"));
    }
  }
  j[std::string(kQuantizationConfigKey)] = ConfigToJson(config);
  return DumpJson(j);
}

ManifestTensor PassthroughEntry(const std::string& name, const TensorView& view) {
  ManifestTensor t;
  t.name = name;
  t.quantized = false;
  t.dtype = view.dtype;
  t.shape = view.shape;
  t.bytes = view.data.size();
  t.crc32c = Crc32c(view.data);
  return t;
}

ManifestTensor QuantizedEntry(const QuantizedTensor& qt) {
  ManifestTensor t;
  t.name = qt.name;
  t.quantized = true;
  t.dtype = qt.source_dtype;
  t.shape = {qt.rows, qt.cols};
  t.method = qt.method;
  t.group_size = qt.group_size;
  t.dim = qt.dim;
  t.num_groups = qt.NumGroups();
  const size_t prefix = qt.name.size() + kGlvqInfix.size();
  for (const TensorToWrite& c : ComponentTensors(qt)) {
    t.components.emplace(c.name.substr(prefix),
                         ManifestComponent{c.name, c.dtype, c.shape, c.data.size(),
                                           Crc32c(c.data)});
  }
  t.accounting = ComputeAccounting(qt);
  t.quality = qt.quality;
  return t;
}

// The manifest, one quantized tensor loaded at a time.
absl::StatusOr<Manifest> BuildManifest(const SafetensorsModel& source,
                                       const std::set<std::string, std::less<>>& quantized,
                                       const QuantizedTensorLoader& load,
                                       const QuantizationConfig& config) {
  Manifest m;
  m.config = config;
  // Quantized names are a subset of the (sorted) source names.
  for (const std::string& name : source.tensor_names()) {
    if (quantized.contains(name)) {
      ASSIGN_OR_RETURN(const QuantizedTensor* qt, load(name));
      if (qt->name != name) {
        return absl::InternalError(
            absl::StrCat("asked for tensor '", name, "', got '", qt->name, "'"));
      }
      RETURN_IF_ERROR(CheckAgainstSource(source, *qt));
      m.tensors.push_back(QuantizedEntry(*qt));
      m.totals += m.tensors.back().accounting;
      continue;
    }
    ASSIGN_OR_RETURN(TensorView view, source.Get(name));
    m.tensors.push_back(PassthroughEntry(name, view));
    m.passthrough_bytes += view.data.size();
  }
  return m;
}

// The safetensors tensors of the packed model, as the manifest describes
// them; `owner[i]` is the manifest entry tensor i belongs to.
std::vector<TensorToStream> PackedTensors(const Manifest& m,
                                          std::vector<const ManifestTensor*>* owner) {
  std::vector<TensorToStream> out;
  for (const ManifestTensor& t : m.tensors) {
    if (!t.quantized) {
      out.push_back({t.name, t.dtype, t.shape, t.bytes});
      owner->push_back(&t);
      continue;
    }
    for (const auto& [component, c] : t.components) {
      out.push_back({c.tensor, c.dtype, c.shape, c.bytes});
      owner->push_back(&t);
    }
  }
  return out;
}

// Writes packed tensor `name` of manifest entry `t`: a pass-through
// tensor from the source, a component from its tensor as loaded again.
absl::Status WritePackedData(const ManifestTensor& t, const std::string& name,
                             const SafetensorsModel& source, const QuantizedTensorLoader& load,
                             FileSink& sink) {
  if (!t.quantized) {
    ASSIGN_OR_RETURN(TensorView view, source.Get(t.name));
    return sink.Write(view.data);
  }
  ASSIGN_OR_RETURN(const QuantizedTensor* qt, load(t.name));
  for (const TensorToWrite& c : ComponentTensors(*qt)) {
    if (c.name == name) return sink.Write(c.data);
  }
  return absl::InternalError(absl::StrCat("tensor '", t.name, "' lost its component '", name,
                                          "' between loads"));
}

// ---------------------------------------------------------------------------
// Reading: verification against the data

absl::Status VerifyBytes(absl::string_view what, const TensorEntry* e, DType dtype,
                         const std::vector<int64_t>& shape, uint64_t bytes, uint32_t crc,
                         const SafetensorsModel& st) {
  if (e == nullptr) return DataLoss(what, "listed in the manifest but missing from the data");
  if (e->dtype != dtype || e->shape != shape || e->end - e->begin != bytes) {
    return DataLoss(what, absl::StrCat(
        "manifest says ", Sv(DTypeName(dtype)), " ", ShapeToString(shape), " (", bytes,
        " bytes), data has ", Sv(DTypeName(e->dtype)), " ", ShapeToString(e->shape), " (",
        e->end - e->begin, " bytes)"));
  }
  ASSIGN_OR_RETURN(TensorView view, st.Get(e->name));
  const uint32_t actual = Crc32c(view.data);
  if (actual != crc) {
    return DataLoss(what, absl::StrCat("CRC32C mismatch: manifest says ", CrcHex(crc),
                                       ", data has ", CrcHex(actual)));
  }
  return absl::OkStatus();
}

absl::Status VerifyTensorSet(const Manifest& m, const SafetensorsModel& st) {
  std::set<std::string, std::less<>> listed;
  for (const ManifestTensor& t : m.tensors) {
    if (!t.quantized) listed.insert(t.name);
    for (const auto& [name, c] : t.components) listed.insert(c.tensor);
  }
  for (const std::string& name : st.tensor_names()) {
    if (!listed.contains(name)) {
      return DataLoss(absl::StrCat("tensor '", name, "'"),
                      "present in the data but not listed in the manifest");
    }
  }
  return absl::OkStatus();  // listed-but-missing is reported by VerifyBytes
}

QuantizedTensor MetaOf(const ManifestTensor& t) {
  QuantizedTensor meta;
  meta.name = t.name;
  meta.method = t.method;
  meta.source_dtype = t.dtype;
  meta.rows = t.shape[0];
  meta.cols = t.shape[1];
  meta.group_size = t.group_size;
  meta.dim = t.dim;
  meta.quality = t.quality;
  return meta;
}

absl::StatusOr<QuantizedTensor> LoadFromData(const ManifestTensor& t,
                                             const SafetensorsModel& st, bool load_codes) {
  std::map<std::string, TensorView, std::less<>> views;
  for (const auto& [name, c] : t.components) {
    ASSIGN_OR_RETURN(views[name], st.Get(c.tensor));
  }
  absl::StatusOr<QuantizedTensor> qt =
      QuantizedTensorFromComponents(MetaOf(t), views, load_codes);
  if (!qt.ok()) return absl::DataLossError(qt.status().message());
  return qt;
}

absl::Status VerifyQuantized(const ManifestTensor& t, const SafetensorsModel& st) {
  const std::string what = absl::StrCat("quantized tensor '", t.name, "'");
  for (const auto& [name, c] : t.components) {
    RETURN_IF_ERROR(VerifyBytes(absl::StrCat(what, " component '", c.tensor, "'"),
                                st.Find(c.tensor), c.dtype, c.shape, c.bytes, c.crc32c, st));
  }
  ASSIGN_OR_RETURN(QuantizedTensor qt, LoadFromData(t, st, /*load_codes=*/false));
  if (qt.NumGroups() != t.num_groups) {
    return DataLoss(what, absl::StrCat("manifest says ", t.num_groups, " groups, data has ",
                                       qt.NumGroups()));
  }
  const BitsAccounting acc = ComputeAccounting(qt);
  if (!(acc == t.accounting)) {
    return DataLoss(what, absl::StrCat(
        "manifest says bits_payload ", t.accounting.payload_bits, ", bits_total ",
        t.accounting.total_bits, "; the data has ", acc.payload_bits, ", ", acc.total_bits));
  }
  return absl::OkStatus();
}

absl::Status VerifyTotals(const Manifest& m) {
  BitsAccounting totals;
  uint64_t passthrough = 0;
  for (const ManifestTensor& t : m.tensors) {
    if (t.quantized) totals += t.accounting;
    if (!t.quantized) passthrough += t.bytes;
  }
  if (!(totals == m.totals) || passthrough != m.passthrough_bytes) {
    return DataLoss("manifest totals", absl::StrCat(
        "say ", m.totals.weights, " weights, ", m.totals.payload_bits, " payload bits, ",
        m.totals.total_bits, " total bits, ", m.passthrough_bytes,
        " pass-through bytes; the tensors sum to ", totals.weights, ", ",
        totals.payload_bits, ", ", totals.total_bits, ", ", passthrough));
  }
  return absl::OkStatus();
}

absl::Status VerifyConfigJson(const fs::path& dir, const QuantizationConfig& expected) {
  const fs::path path = dir / kConfigFileName;
  ASSIGN_OR_RETURN(json j, ReadConfigJson(path));
  ASSIGN_OR_RETURN(JsonFields f, JsonFields::Of(j, path.string()));
  ASSIGN_OR_RETURN(JsonFields qc, f.Object(std::string(kQuantizationConfigKey)));
  ASSIGN_OR_RETURN(QuantizationConfig actual, ConfigFromJson(qc));
  if (!(actual == expected)) {
    return DataLoss(path.string(), "quantization_config differs from the manifest's");
  }
  return absl::OkStatus();
}

absl::Status VerifyAgainstData(const Manifest& m, const SafetensorsModel& st) {
  RETURN_IF_ERROR(VerifyTensorSet(m, st));
  for (const ManifestTensor& t : m.tensors) {
    if (t.quantized) {
      RETURN_IF_ERROR(VerifyQuantized(t, st));
    } else {
      RETURN_IF_ERROR(VerifyBytes(absl::StrCat("tensor '", t.name, "'"), st.Find(t.name),
                                  t.dtype, t.shape, t.bytes, t.crc32c, st));
    }
  }
  return VerifyTotals(m);
}

// ---------------------------------------------------------------------------
// Dequantized output

absl::StatusOr<std::string> DequantizedConfigJson(const fs::path& packed_dir) {
  ASSIGN_OR_RETURN(json j, ReadConfigJson(packed_dir / kConfigFileName));
  j.erase(std::string(kQuantizationConfigKey));
  return DumpJson(j);
}

// Decodes quantized weight `t` into `dtype` bytes.
absl::StatusOr<std::vector<std::byte>> DequantizedBytes(const PackedModel& model,
                                                        const ManifestTensor& t,
                                                        DType dtype) {
  ASSIGN_OR_RETURN(std::vector<float> values, model.Dequantize(t.name));
  std::vector<std::byte> bytes(values.size() * DTypeSize(dtype));
  RETURN_IF_ERROR(ConvertFromF32(values, dtype, bytes));
  return bytes;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

std::string SerializeManifest(const Manifest& m) {
  json j = json::object();
  j["format"] = kManifestFormat;
  j["format_version"] = m.format_version;
  j["quantization_config"] = ConfigToJson(m.config);
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

absl::Status WritePackedModel(const fs::path& out_dir, const SafetensorsModel& source,
                              std::span<const QuantizedTensor> quantized,
                              const QuantizationConfig& config, uint64_t max_shard_bytes) {
  std::map<std::string, const QuantizedTensor*, std::less<>> by_name;
  for (const QuantizedTensor& qt : quantized) {
    if (!by_name.emplace(qt.name, &qt).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantized tensor '", qt.name, "' is given twice"));
    }
  }
  std::vector<std::string> names;
  for (const auto& [name, qt] : by_name) names.push_back(name);
  const QuantizedTensorLoader load =
      [&](const std::string& name) -> absl::StatusOr<const QuantizedTensor*> {
    return by_name.at(name);
  };
  return WritePackedModelStreamed(out_dir, source, names, load, config, max_shard_bytes)
      .status();
}

absl::StatusOr<Manifest> WritePackedModelStreamed(const fs::path& out_dir,
                                                  const SafetensorsModel& source,
                                                  const std::vector<std::string>& names,
                                                  const QuantizedTensorLoader& load,
                                                  const QuantizationConfig& config,
                                                  uint64_t max_shard_bytes) {
  RETURN_IF_ERROR(ValidateConfig(config));
  RETURN_IF_ERROR(CheckSourceNames(source));
  ASSIGN_OR_RETURN(const auto quantized, QuantizedNames(source, names));
  ASSIGN_OR_RETURN(std::string config_json, PackedConfigJson(source.directory(), config));
  ASSIGN_OR_RETURN(Manifest manifest, BuildManifest(source, quantized, load, config));
  std::vector<const ManifestTensor*> owner;
  const std::vector<TensorToStream> tensors = PackedTensors(manifest, &owner);
  const TensorDataWriter write_data = [&](size_t i, FileSink& sink) {
    return WritePackedData(*owner[i], tensors[i].name, source, load, sink);
  };
  const auto fill = [&](const fs::path& tmp) -> absl::Status {
    RETURN_IF_ERROR(
        StreamSafetensorsModel(tmp, tensors, write_data, source.metadata(), max_shard_bytes));
    RETURN_IF_ERROR(AtomicWriteString(tmp / kConfigFileName, config_json));
    RETURN_IF_ERROR(CopyCompanionFiles(source.directory(), tmp));
    RETURN_IF_ERROR(AtomicWriteString(tmp / kManifestFileName, SerializeManifest(manifest)));
    // Re-read what was written before it is presented as done.
    return PackedModel::Open(tmp).status();
  };
  RETURN_IF_ERROR(WriteDirectoryAtomically(out_dir, fill));
  return manifest;
}

absl::StatusOr<PackedModel> PackedModel::Open(const fs::path& dir) {
  const fs::path manifest_path = dir / kManifestFileName;
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(manifest_path));
  absl::StatusOr<Manifest> manifest = ParseManifest(text);
  RETURN_IF_ERROR(Annotate(manifest.status(), manifest_path.string()));
  RETURN_IF_ERROR(VerifyConfigJson(dir, manifest->config));
  ASSIGN_OR_RETURN(SafetensorsModel st, SafetensorsModel::Open(dir));
  RETURN_IF_ERROR(Annotate(VerifyAgainstData(*manifest, st), dir.string()));
  return PackedModel(dir, *std::move(manifest), std::move(st));
}

const ManifestTensor* PackedModel::Find(std::string_view name) const {
  auto it = std::lower_bound(
      manifest_.tensors.begin(), manifest_.tensors.end(), name,
      [](const ManifestTensor& t, std::string_view n) { return t.name < n; });
  if (it == manifest_.tensors.end() || it->name != name) return nullptr;
  return &*it;
}

bool PackedModel::IsQuantized(std::string_view name) const {
  const ManifestTensor* t = Find(name);
  return t != nullptr && t->quantized;
}

absl::StatusOr<QuantizedTensor> PackedModel::LoadQuantized(std::string_view name) const {
  const ManifestTensor* t = Find(name);
  if (t == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no tensor '", Sv(name), "' in ", directory_.string()));
  }
  if (!t->quantized) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor '", Sv(name), "' is not quantized"));
  }
  return LoadFromData(*t, safetensors_, /*load_codes=*/true);
}

absl::StatusOr<std::vector<float>> PackedModel::Dequantize(std::string_view name) const {
  const ManifestTensor* t = Find(name);
  if (t == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no tensor '", Sv(name), "' in ", directory_.string()));
  }
  if (t->quantized) {
    ASSIGN_OR_RETURN(QuantizedTensor qt, LoadQuantized(name));
    std::vector<float> out(static_cast<size_t>(qt.NumWeights()));
    RETURN_IF_ERROR(DequantizeRef(qt, out));
    return out;
  }
  if (!IsFloatDType(t->dtype)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor '", Sv(name), "' is ", Sv(DTypeName(t->dtype)), ", not a float tensor"));
  }
  ASSIGN_OR_RETURN(TensorView view, safetensors_.Get(name));
  std::vector<float> out(static_cast<size_t>(view.NumElements()));
  RETURN_IF_ERROR(ConvertToF32(view.dtype, view.data, out));
  return out;
}

absl::Status WriteDequantizedModel(const PackedModel& model, const fs::path& out_dir,
                                   std::optional<DType> dtype, uint64_t max_shard_bytes) {
  if (dtype.has_value() && !IsFloatDType(*dtype)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dequantized weights must be stored in a float dtype, not ", Sv(DTypeName(*dtype))));
  }
  ASSIGN_OR_RETURN(std::string config_json, DequantizedConfigJson(model.directory()));
  // Owns the decoded tensors' bytes; moving a vector keeps its data in place,
  // so the spans in `tensors` stay valid as `buffers` grows.
  std::vector<std::vector<std::byte>> buffers;
  std::vector<TensorToWrite> tensors;
  for (const ManifestTensor& t : model.manifest().tensors) {
    if (!t.quantized) {
      ASSIGN_OR_RETURN(TensorView view, model.safetensors().Get(t.name));
      tensors.push_back({t.name, view.dtype, view.shape, view.data});
      continue;
    }
    const DType out_dtype = dtype.value_or(t.dtype);
    ASSIGN_OR_RETURN(std::vector<std::byte> bytes, DequantizedBytes(model, t, out_dtype));
    buffers.push_back(std::move(bytes));
    tensors.push_back({t.name, out_dtype, t.shape, buffers.back()});
  }
  return WriteDirectoryAtomically(out_dir, [&](const fs::path& tmp) -> absl::Status {
    RETURN_IF_ERROR(WriteSafetensorsModel(tmp, tensors, model.safetensors().metadata(),
                                          max_shard_bytes));
    RETURN_IF_ERROR(AtomicWriteString(tmp / kConfigFileName, config_json));
    RETURN_IF_ERROR(CopyCompanionFiles(model.directory(), tmp));
    return SafetensorsModel::Open(tmp).status();
  });
}

}  // namespace glvq
