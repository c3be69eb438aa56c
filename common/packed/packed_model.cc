#include "common/packed/packed_model.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/crc32c.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/packed/companion_files.h"
#include "common/safetensors/writer.h"

namespace glvq {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

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
  meta.tile_rows = t.tile_rows;
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
  ASSIGN_OR_RETURN(json j, ReadJsonObject(path));
  const auto qc = j.find(std::string(kQuantizationConfigKey));
  if (qc == j.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ".", Sv(kQuantizationConfigKey), ": missing"));
  }
  const std::string where = absl::StrCat(path.string(), ".", Sv(kQuantizationConfigKey));
  ASSIGN_OR_RETURN(QuantizationConfig actual, QuantizationConfigFromJson(*qc, where));
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
  ASSIGN_OR_RETURN(json j, ReadJsonObject(packed_dir / kConfigFileName));
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
