// Writing packed models (WritePackedModel, WritePackedModelStreamed in
// common/packed/packed_model.h): inputs checked against the source, the
// manifest built one quantized tensor at a time, the data streamed into a
// temporary directory that is verified before it is renamed into place.
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/crc32c.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/packed/companion_files.h"
#include "common/packed/packed_model.h"
#include "common/safetensors/writer.h"

namespace glvq {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// ---------------------------------------------------------------------------
// Writing: inputs checked against the source

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
    if (name.find(kComponentInfix) != std::string::npos) {
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

// The source's config.json (or {}) with quantization_config added.
absl::StatusOr<std::string> PackedConfigJson(const fs::path& source_dir,
                                              const QuantizationConfig& config) {
  json j = json::object();
  const fs::path path = source_dir / kConfigFileName;
  if (fs::exists(path)) {
    ASSIGN_OR_RETURN(j, ReadJsonObject(path));
    if (j.contains(std::string(kQuantizationConfigKey))) {
      return absl::InvalidArgumentError(absl::StrCat(
          path.string(), ": the source model already has a quantization_config"));
    }
  }
  j[std::string(kQuantizationConfigKey)] = QuantizationConfigToJson(config);
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
  t.tile_rows = qt.tile_rows;
  t.num_groups = qt.NumGroups();
  const size_t prefix = qt.name.size() + kComponentInfix.size();
  for (const TensorToWrite& c : ComponentTensors(qt)) {
    t.components.emplace(c.name.substr(prefix),
                         ManifestComponent{c.name, c.dtype, c.shape, c.data.size(),
                                           Crc32c(c.data)});
  }
  t.accounting = ComputeAccounting(qt);
  t.quality = qt.quality;
  return t;
}

// Pass-through tensor `name` as written: the source's, or its replacement.
absl::StatusOr<TensorView> PassthroughView(const SafetensorsModel& source, const std::string& name,
                                           const PassthroughValues* replaced) {
  ASSIGN_OR_RETURN(TensorView view, source.Get(name));
  if (replaced == nullptr) return view;
  const auto it = replaced->find(name);
  if (it != replaced->end()) view.data = it->second;
  return view;
}

// Each replacement names a pass-through float tensor of the source and has
// its byte size.
absl::Status CheckReplacements(const SafetensorsModel& source,
                               const std::set<std::string, std::less<>>& quantized,
                               const PassthroughValues* replaced) {
  if (replaced == nullptr) return absl::OkStatus();
  for (const auto& [name, bytes] : *replaced) {
    const TensorEntry* e = source.Find(name);
    if (e == nullptr || quantized.contains(name) || !IsFloatDType(e->dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "replaced tensor '", name, "' is not a pass-through float tensor of the source"));
    }
    ASSIGN_OR_RETURN(const TensorView view, source.Get(name));
    if (view.data.size() != bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat("replaced tensor '", name, "' has ",
                                                     bytes.size(), " bytes, the source's ",
                                                     view.data.size()));
    }
  }
  return absl::OkStatus();
}

// The manifest, one quantized tensor loaded at a time.
absl::StatusOr<Manifest> BuildManifest(const SafetensorsModel& source,
                                       const std::set<std::string, std::less<>>& quantized,
                                       const QuantizedTensorLoader& load,
                                       const QuantizationConfig& config,
                                       const PassthroughValues* replaced) {
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
    ASSIGN_OR_RETURN(TensorView view, PassthroughView(source, name, replaced));
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
                             const PassthroughValues* replaced, FileSink& sink) {
  if (!t.quantized) {
    ASSIGN_OR_RETURN(TensorView view, PassthroughView(source, t.name, replaced));
    return sink.Write(view.data);
  }
  ASSIGN_OR_RETURN(const QuantizedTensor* qt, load(t.name));
  for (const TensorToWrite& c : ComponentTensors(*qt)) {
    if (c.name == name) return sink.Write(c.data);
  }
  return absl::InternalError(absl::StrCat("tensor '", t.name, "' lost its component '", name,
                                          "' between loads"));
}

}  // namespace

absl::Status WritePackedModel(const fs::path& out_dir, const SafetensorsModel& source,
                              std::span<const QuantizedTensor> quantized,
                              const QuantizationConfig& config, uint64_t max_shard_bytes,
                              const PassthroughValues* replaced) {
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
  return WritePackedModelStreamed(out_dir, source, names, load, config, max_shard_bytes, replaced)
      .status();
}

absl::StatusOr<Manifest> WritePackedModelStreamed(const fs::path& out_dir,
                                                  const SafetensorsModel& source,
                                                  const std::vector<std::string>& names,
                                                  const QuantizedTensorLoader& load,
                                                  const QuantizationConfig& config,
                                                  uint64_t max_shard_bytes,
                                                  const PassthroughValues* replaced) {
  RETURN_IF_ERROR(ValidateQuantizationConfig(config));
  RETURN_IF_ERROR(CheckSourceNames(source));
  ASSIGN_OR_RETURN(const auto quantized, QuantizedNames(source, names));
  RETURN_IF_ERROR(CheckReplacements(source, quantized, replaced));
  ASSIGN_OR_RETURN(std::string config_json, PackedConfigJson(source.directory(), config));
  ASSIGN_OR_RETURN(Manifest manifest, BuildManifest(source, quantized, load, config, replaced));
  std::vector<const ManifestTensor*> owner;
  const std::vector<TensorToStream> tensors = PackedTensors(manifest, &owner);
  const TensorDataWriter write_data = [&](size_t i, FileSink& sink) {
    return WritePackedData(*owner[i], tensors[i].name, source, load, replaced, sink);
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

}  // namespace glvq
