// `glvq inspect PATH [--json]`: lists a model's tensors (plain safetensors or
// a glvq packed model), validating everything it reads.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/one_line.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "common/safetensors/reader.h"
#include "nlohmann/json.hpp"

namespace glvq::cli {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct Row {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  bool quantized = false;
  double bits_per_weight = 0;
};

struct Report {
  std::string path;
  std::string format;  // "safetensors" or "glvq-packed"
  std::vector<std::string> files;
  std::optional<json> config;
  std::vector<Row> rows;
};

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// config.json beside the weights, if there is one; malformed JSON is an error.
absl::StatusOr<std::optional<json>> LoadConfig(const fs::path& dir) {
  const fs::path p = dir / "config.json";
  if (!fs::exists(p)) return std::optional<json>();
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(p));
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return absl::InvalidArgumentError(p.string() + ": not a valid JSON object");
  }
  return std::optional<json>(std::move(parsed));
}

absl::StatusOr<Report> InspectSafetensors(const fs::path& path) {
  ASSIGN_OR_RETURN(SafetensorsModel model, SafetensorsModel::Open(path));
  Report report{path.string(), "safetensors", {}, std::nullopt, {}};
  for (const auto& file : model.files()) report.files.push_back(file->path().filename().string());
  for (const std::string& name : model.tensor_names()) {
    const TensorEntry* e = model.Find(name);
    report.rows.push_back({name, std::string(DTypeName(e->dtype)), e->shape,
                           e->end - e->begin, false, 8.0 * static_cast<double>(DTypeSize(e->dtype))});
  }
  ASSIGN_OR_RETURN(report.config, LoadConfig(model.directory()));
  return report;
}

// A packed model lists its logical tensors: each quantized weight once, with
// the bytes of all its components and its exact bits per weight.
absl::StatusOr<Report> InspectPacked(const fs::path& dir) {
  ASSIGN_OR_RETURN(PackedModel model, PackedModel::Open(dir));
  Report report{dir.string(), "glvq-packed", {}, std::nullopt, {}};
  for (const auto& file : model.safetensors().files()) {
    report.files.push_back(file->path().filename().string());
  }
  for (const ManifestTensor& t : model.manifest().tensors) {
    Row row{t.name, DTypeName(t.dtype), t.shape, t.bytes, t.quantized,
            8.0 * static_cast<double>(DTypeSize(t.dtype))};
    if (t.quantized) {
      row.bytes = t.accounting.total_bits / 8;
      row.bits_per_weight = t.accounting.TotalPerWeight();
    }
    report.rows.push_back(std::move(row));
  }
  ASSIGN_OR_RETURN(report.config, LoadConfig(dir));
  return report;
}

absl::StatusOr<Report> InspectModel(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(path.string() + ": no such file or directory");
  }
  if (fs::is_directory(path) && fs::exists(path / kManifestFileName)) return InspectPacked(path);
  return InspectSafetensors(path);
}

json TotalsJson(const Report& r) {
  uint64_t bytes = 0;
  int64_t params = 0, quantized = 0;
  for (const Row& row : r.rows) {
    bytes += row.bytes;
    params += Elements(row.shape);
    if (row.quantized) ++quantized;
  }
  json t;
  t["tensors"] = r.rows.size();
  t["quantized_tensors"] = quantized;
  t["parameters"] = params;
  t["bytes"] = bytes;
  t["bits_per_parameter"] = params > 0 ? 8.0 * static_cast<double>(bytes) / static_cast<double>(params) : 0.0;
  return t;
}

void PrintJson(const Report& r) {
  json out;
  out["path"] = r.path;
  out["format"] = r.format;
  out["files"] = r.files;
  out["config"] = r.config ? *r.config : json(nullptr);
  json tensors = json::array();
  for (const Row& row : r.rows) {
    tensors.push_back({{"name", row.name}, {"dtype", row.dtype}, {"shape", row.shape},
                       {"bytes", row.bytes}, {"quantized", row.quantized},
                       {"bits_per_weight", row.bits_per_weight}});
  }
  out["tensors"] = std::move(tensors);
  out["totals"] = TotalsJson(r);
  std::cout << out.dump(2) << "\n";
}

std::string ScalarText(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void PrintTable(const Report& r) {
  std::cout << "model:  " << r.path << " (" << r.format << ", " << r.files.size()
            << (r.files.size() == 1 ? " file)\n" : " files)\n");
  if (r.config) {
    std::cout << "config:";
    for (const auto& [key, value] : r.config->items()) {
      if (!value.is_structured()) std::cout << ' ' << key << '=' << ScalarText(value);
    }
    std::cout << "\n";
    for (const auto& [key, value] : r.config->items()) {
      if (value.is_object()) std::cout << key << ": " << value.dump() << "\n";
    }
  } else {
    std::cout << "config: (no config.json)\n";
  }
  size_t width = 4;
  for (const Row& row : r.rows) width = std::max(width, row.name.size());
  const int w = static_cast<int>(width);
  std::cout << absl::StrFormat("\n%-*s  %-5s  %-14s  %12s  %-5s  %8s\n", w, "NAME", "DTYPE",
                               "SHAPE", "BYTES", "QUANT", "BITS/W");
  for (const Row& row : r.rows) {
    std::cout << absl::StrFormat("%-*s  %-5s  %-14s  %12d  %-5s  %8.3f\n", w, row.name, row.dtype,
                                 ShapeToString(row.shape), row.bytes,
                                 row.quantized ? "yes" : "no", row.bits_per_weight);
  }
  const json t = TotalsJson(r);
  std::cout << absl::StrFormat(
      "\ntotals: %d tensors (%d quantized), %d parameters, %d bytes, %.3f bits/parameter\n",
      t["tensors"].get<int64_t>(), t["quantized_tensors"].get<int64_t>(),
      t["parameters"].get<int64_t>(), t["bytes"].get<uint64_t>(),
      t["bits_per_parameter"].get<double>());
}

}  // namespace

void RegisterInspectCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "inspect", "List the tensors of a model (safetensors file/directory or glvq packed model)");
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("path", *path, "Model file or directory")->required();
  cmd->add_flag("--json", *as_json, "Print one JSON object");
  cmd->callback([path, as_json, exit_code] {
    absl::StatusOr<Report> report = InspectModel(*path);
    if (!report.ok()) {
      std::cerr << "glvq inspect: " << ErrorLine(report.status()) << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    if (*as_json) {
      PrintJson(*report);
    } else {
      PrintTable(*report);
    }
  });
}

}  // namespace glvq::cli
