// The manifest of a packed model (glvq_manifest.json, docs/format.md §5)
// and the model-wide quantization_config (§6): their types, their JSON
// form, and the checks on them. Packed models themselves are
// common/packed/packed_model.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/packed/layout.h"
#include "common/packed/quantized_tensor.h"
#include "common/tensor/dtype.h"
#include "nlohmann/json.hpp"

namespace glvq {

inline constexpr std::string_view kManifestFileName = "glvq_manifest.json";
inline constexpr std::string_view kManifestFormat = "glvq-packed";

// The model-wide description written to config.json's quantization_config
// and to the manifest.
// A method parameter's value in quantization_config (a JSON scalar).
using ConfigValue = std::variant<bool, int64_t, double, std::string>;

struct QuantizationConfig {
  std::string method;      // free-form method name, e.g. "glvq", "rtn"
  double bits = 0;         // target bits per weight (may be fractional), > 0
  int64_t lattice_dim = 0; // d, >= 1 (1 for scalar methods; pvq: D; trellis: L)
  int64_t group_size = 0;  // columns per group, >= 1
  // The job's method parameters (e.g. "rht": true, "window": 12), written
  // as further keys of quantization_config. Descriptive: decoding needs
  // only the manifest. Keys are lower_snake_case and never one of the
  // fixed keys above.
  std::map<std::string, ConfigValue, std::less<>> parameters;
  bool operator==(const QuantizationConfig&) const = default;
};

// One component tensor as recorded in the manifest.
struct ManifestComponent {
  std::string tensor;  // safetensors name, "<name>.glvq.<component>"
  DType dtype = DType::kU8;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
  bool operator==(const ManifestComponent&) const = default;
};

// One entry of the manifest's "tensors" list.
struct ManifestTensor {
  std::string name;
  bool quantized = false;
  DType dtype = DType::kF32;  // the tensor's dtype; for quantized: the source dtype
  std::vector<int64_t> shape;
  // Pass-through tensors only.
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
  // Quantized tensors only.
  std::string method;
  int64_t group_size = 0;
  int64_t dim = 0;
  int64_t tile_rows = 1;  // trellis rows per sequence; "tile_rows" in JSON only when > 1
  int64_t num_groups = 0;
  std::map<std::string, ManifestComponent, std::less<>> components;  // by component
  BitsAccounting accounting;
  std::optional<TensorQuality> quality;
  bool operator==(const ManifestTensor&) const = default;
};

struct Manifest {
  int64_t format_version = packed::kFormatVersion;
  QuantizationConfig config;
  std::vector<ManifestTensor> tensors;  // sorted by name
  BitsAccounting totals;                // over quantized tensors
  uint64_t passthrough_bytes = 0;
  bool operator==(const Manifest&) const = default;
};

// The manifest as written to glvq_manifest.json: deterministic JSON (sorted
// keys, two-space indent, shortest round-trip doubles), newline-terminated.
std::string SerializeManifest(const Manifest& manifest);
// Parses and checks the structure of a manifest. INVALID_ARGUMENT for
// malformed JSON or missing/mistyped fields, UNIMPLEMENTED for another
// format or format_version. Unknown keys are ignored. Does not check
// consistency with the data (PackedModel::Open does).
absl::StatusOr<Manifest> ParseManifest(std::string_view json_text);

// A model directory's config.json, and its key for quantization_config.
inline constexpr std::string_view kConfigFileName = "config.json";
inline constexpr std::string_view kQuantizationConfigKey = "quantization_config";

// INVALID_ARGUMENT unless `config` is sane: a method, bits in (0, 8],
// lattice_dim within the largest method dimension, a positive group size,
// parameter names not reserved, finite parameter values.
absl::Status ValidateQuantizationConfig(const QuantizationConfig& config);

// quantization_config as JSON (with "quant_method": "glvq" and the format
// version), and back from the JSON object `obj` found at `where`:
// INVALID_ARGUMENT for a missing or mistyped key or another quant_method,
// UNIMPLEMENTED for another format_version.
nlohmann::json QuantizationConfigToJson(const QuantizationConfig& config);
absl::StatusOr<QuantizationConfig> QuantizationConfigFromJson(const nlohmann::json& obj,
                                                              std::string where);

// The JSON object in file `path` (INVALID_ARGUMENT if it is not one), and
// JSON as the format writes it: two-space indent, newline-terminated.
absl::StatusOr<nlohmann::json> ReadJsonObject(const std::filesystem::path& path);
std::string DumpJson(const nlohmann::json& j);

}  // namespace glvq
